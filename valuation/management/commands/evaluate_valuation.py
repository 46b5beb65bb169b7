from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from valuation import core
from valuation.csvformat import read_sales_csv
from valuation.evaluation import walk_forward

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "seattle_sales_2010_2015.csv"


class Command(BaseCommand):
    help = (
        "Walk-forward accuracy on a sales CSV alone (no database): for each month of --year, train on "
        "earlier sales only and value every sale of that month as of its sale date."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--path", default=str(DEFAULT_PATH))
        parser.add_argument("--year", type=int, default=2015)
        parser.add_argument("--months", type=int, nargs="*", help="only these months (1-12)")

    def handle(self, *args, path: str, year: int, months: list[int] | None, **options) -> None:
        started = time.monotonic()
        try:
            records = [fields for _, fields, error in read_sales_csv(path) if error is None]
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from None
        sales = core.arrays_from_records(records)
        wanted = [f"{year}-{m:02d}" for m in (months or range(1, 13))]
        if not np.any(sales.day >= core.to_day(f"{wanted[0]}-01")):
            raise CommandError(f"no sales in {year} in {path}")
        overall, per_month, skipped = walk_forward(sales, wanted, progress=self.stdout.write)
        o = overall
        self.stdout.write("")
        self.stdout.write(f"Walk-forward {wanted[0]}..{wanted[-1]}: {o['n']} sales valued, {skipped} insufficient data")
        self.stdout.write(f"  median absolute % error  {o['median_ape']:.1%}")
        self.stdout.write(
            f"  within 5% / 10% / 20%    {o['within_5']:.1%} / {o['within_10']:.1%} / {o['within_20']:.1%}"
        )
        self.stdout.write(f"  median ratio             {o['median_ratio']:.3f}")
        self.stdout.write(f"  COD                      {o['cod']:.1f}")
        self.stdout.write(f"  PRD                      {o['prd']:.3f}")
        self.stdout.write(f"  inside low-high          {o['inside_range']:.1%}")
        self.stdout.write(f"  ({time.monotonic() - started:.0f}s)")
