"""Demo data for `make run`: the shipped Seattle sales, and a model trained on them.

Importing takes a few seconds and training ~35 s of CPU, so both run synchronously here:
the demo is ready to value as soon as the server is up (no race with a queued training task).
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from valuation.models import ModelVersion, Sale
from valuation.services import model_train, sales_import

DEMO_CSV = Path(__file__).resolve().parent / "data" / "seattle_sales_2010_2015.csv"


def seed(stdout: TextIO) -> None:
    if not Sale.objects.exists():
        report = sales_import(path=DEMO_CSV)
        stdout.write(f"Valuation: imported {report.created} Seattle sales (2010-2015) from {DEMO_CSV.name}")
    if not ModelVersion.objects.filter(is_active=True).exists():
        version = model_train()
        stdout.write(f"Valuation: trained model v{version.id} in {version.training_seconds:.0f}s")
    stdout.write(
        "Valuation: the demo sales end on 2015-12-31; value with as_of=2016-01-01 "
        "(or set VALUATION_DEFAULT_AS_OF=2016-01-01) to see estimates."
    )
