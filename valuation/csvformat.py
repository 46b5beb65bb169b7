"""The sales CSV format (the shared Seattle file's columns) -> validated Sale field dicts.

One parser for `import_sales` and for `evaluate_valuation`, so both read a file the same way.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REQUIRED_COLUMNS = (
    "pinx",
    "sale_id",
    "sale_price",
    "sale_date",
    "use_type",
    "area",
    "lot_sf",
    "wfnt",
    "bldg_grade",
    "tot_sf",
    "beds",
    "baths",
    "age",
    "eff_age",
    "longitude",
    "latitude",
)
USE_TYPES = ("sfr", "townhouse")


class CsvFormatError(ValueError):
    """The file itself is unusable (missing columns); bad rows are reported per line instead."""


def _number(row: dict[str, str], column: str, *, low: float, high: float, integer: bool = False) -> Any:
    raw = (row.get(column) or "").strip()
    if raw == "":
        raise ValueError(f"{column} is empty")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{column} is not a number: {raw!r}") from None
    if not (low <= value <= high):
        raise ValueError(f"{column}={raw} is outside {low:g}..{high:g}")
    if integer:
        if value != int(value):
            raise ValueError(f"{column} must be a whole number: {raw!r}")
        return int(value)
    return value


def parse_row(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row -> Sale fields. Raises ValueError naming the column on a bad value."""
    sale_id = (row.get("sale_id") or "").strip()
    pinx = (row.get("pinx") or "").strip()
    if not sale_id:
        raise ValueError("sale_id is empty")
    if not pinx:
        raise ValueError("pinx is empty")
    raw_date = (row.get("sale_date") or "").strip()
    try:
        sale_date = dt.date.fromisoformat(raw_date)
    except ValueError:
        raise ValueError(f"sale_date is not an ISO date: {raw_date!r}") from None
    use_type = (row.get("use_type") or "").strip().lower()
    if use_type not in USE_TYPES:
        raise ValueError(f"use_type must be one of {', '.join(USE_TYPES)}: {use_type!r}")
    wfnt = (row.get("wfnt") or "").strip()
    if wfnt not in ("0", "1"):
        raise ValueError(f"wfnt must be 0 or 1: {wfnt!r}")
    age = _number(row, "age", low=0, high=300, integer=True)
    return {
        "sale_id": sale_id[:40],
        "pinx": pinx[:20],
        "price": _number(row, "sale_price", low=1_000, high=1_000_000_000, integer=True),
        "sale_date": sale_date,
        "use_type": use_type,
        "area": _number(row, "area", low=0, high=10_000, integer=True),
        "lot_sqft": _number(row, "lot_sf", low=0, high=100_000_000, integer=True),
        "waterfront": wfnt == "1",
        "bldg_grade": _number(row, "bldg_grade", low=1, high=13, integer=True),
        "living_area_sqft": _number(row, "tot_sf", low=100, high=100_000, integer=True),
        "beds": _number(row, "beds", low=0, high=50, integer=True),
        "baths": _number(row, "baths", low=0, high=50),
        "age": age,
        "eff_age": _number(row, "eff_age", low=0, high=300, integer=True),
        "year_built": sale_date.year - age,
        "latitude": _number(row, "latitude", low=-90, high=90),
        "longitude": _number(row, "longitude", low=-180, high=180),
    }


def read_sales_csv(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield (line number, fields, None) for good rows and (line number, None, error) for bad ones."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CsvFormatError(f"{path}: missing column(s): {', '.join(missing)}")
        for row in reader:
            line = reader.line_num
            if None in row:
                yield line, None, "too many fields"
                continue
            try:
                yield line, parse_row(row), None
            except ValueError as exc:
                yield line, None, str(exc)
