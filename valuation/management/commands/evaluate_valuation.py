from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from valuation import core
from valuation.csvformat import read_sales_csv
from valuation.evaluation import walk_forward
from valuation.geocoding import nearest_zip_centroids

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
        parser.add_argument("--no-zip", action="store_true", help="skip the ZIP-centroid column")

    def handle(self, *args, path: str, year: int, months: list[int] | None, no_zip: bool, **options) -> None:
        started = time.monotonic()
        try:
            records = [fields for _, fields, error in read_sales_csv(path) if error is None]
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from None
        sales = core.arrays_from_records(records)
        wanted = [f"{year}-{m:02d}" for m in (months or range(1, 13))]
        if not np.any(sales.day >= core.to_day(f"{wanted[0]}-01")):
            raise CommandError(f"no sales in {year} in {path}")
        zips = None if no_zip else nearest_zip_centroids(sales.lat, sales.lon)
        overall, per_month, skipped = walk_forward(sales, wanted, progress=self.stdout.write, zip_centroids=zips)
        names = list(overall)
        heads = {"full": "full facts", "lead": "lead facts", "zip": "lead facts, ZIP centroid"}
        rows = [
            ("sales valued", lambda m, n: f"{m['n']:,}"),
            ("insufficient data", lambda m, n: f"{skipped[n]:,}"),
            ("median absolute % error", lambda m, n: f"{m['median_ape']:.1%}"),
            ("within 5%", lambda m, n: f"{m['within_5']:.1%}"),
            ("within 10%", lambda m, n: f"{m['within_10']:.1%}"),
            ("within 20%", lambda m, n: f"{m['within_20']:.1%}"),
            ("median ratio", lambda m, n: f"{m['median_ratio']:.3f}"),
            ("COD", lambda m, n: f"{m['cod']:.1f}"),
            ("PRD", lambda m, n: f"{m['prd']:.3f}"),
            ("inside low-high (10-90%)", lambda m, n: f"{m['inside_range']:.1%}"),
        ]
        self.stdout.write("")
        self.stdout.write(f"Walk-forward {wanted[0]}..{wanted[-1]} ({time.monotonic() - started:.0f}s)")
        self.stdout.write("")
        self.stdout.write("| | " + " | ".join(heads[n] for n in names) + " |")
        self.stdout.write("| --- |" + " ---: |" * len(names))
        for label, cell in rows:
            self.stdout.write(f"| {label} | " + " | ".join(cell(overall[n], n) for n in names) + " |")
