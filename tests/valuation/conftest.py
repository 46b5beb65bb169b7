"""Small synthetic sales markets: fast to train on (about a second), with a known price structure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pytest

from valuation import core
from valuation.models import Sale

CENTER = (47.62, -122.33)


def identical_houses(n: int, **columns: np.ndarray) -> core.SaleArrays:
    """`n` sales of identical houses at one point, one a day from 2015-01-01, at $500,000; `columns`
    overrides any column (e.g. prices, coordinates, facts)."""
    same = np.ones(n)
    base = {
        "ids": np.array([f"s{i}" for i in range(n)], dtype=object),
        "day": core.to_day("2015-01-01") + np.arange(n),
        "price": 500_000 * same,
        "lat": 47.62 * same,
        "lon": -122.33 * same,
        "living": 1800 * same,
        "lot": 5000 * same,
        "grade": 7 * same,
        "beds": 3 * same,
        "baths": 2 * same,
        "year_built": 1950 * same,
        "waterfront": 0 * same,
        "townhouse": 0 * same,
        "eff_age": 65 * same,
        "area": 1 * same,
        "parcel": np.array([f"p{i}" for i in range(n)], dtype=object),
    }
    base.update(columns)
    return core.SaleArrays(**base)


def synthetic_sales(
    n: int = 600,
    start: dt.date = dt.date(2013, 1, 1),
    end: dt.date = dt.date(2015, 5, 31),
    seed: int = 1,
    prefix: str = "s",
    center: tuple[float, float] = CENTER,
    lat_slope: float = 3.0,
) -> list[Sale]:
    """Sales in a ~2x2 mile square; price rises 0.8%/month, with size, grade and location effects."""
    rng = np.random.default_rng(seed)
    days = (end - start).days
    sales = []
    for i in range(n):
        sale_date = start + dt.timedelta(days=int(rng.integers(0, days + 1)))
        lat = center[0] + rng.uniform(-0.015, 0.015)
        lon = center[1] + rng.uniform(-0.02, 0.02)
        living = int(rng.integers(900, 3500))
        grade = int(rng.integers(6, 10))
        year_built = int(rng.integers(1910, 2010))
        months = (sale_date - start).days / 30.44
        price = (
            400_000
            * (living / 1800) ** 0.6
            * 1.09 ** (grade - 7)
            * np.exp(lat_slope * (lat - center[0]))
            * 1.008**months
            * np.exp(rng.normal(0, 0.06))
        )
        sales.append(
            Sale(
                sale_id=f"{prefix}{i}",
                pinx=f"p{prefix}{i}",
                price=int(price),
                sale_date=sale_date,
                use_type="townhouse" if i % 5 == 0 else "sfr",
                area=1,
                lot_sqft=int(rng.integers(2000, 9000)),
                waterfront=False,
                bldg_grade=grade,
                living_area_sqft=living,
                beds=int(rng.integers(2, 5)),
                baths=float(rng.integers(2, 8)) / 2,
                year_built=year_built,
                age=sale_date.year - year_built,
                eff_age=sale_date.year - year_built,
                latitude=lat,
                longitude=lon,
            )
        )
    return sales


@pytest.fixture
def make_sales(db) -> Callable[..., list[Sale]]:
    def make(**kwargs) -> list[Sale]:
        return Sale.objects.bulk_create(synthetic_sales(**kwargs))

    return make


SUBJECT = {
    "latitude": 47.621,
    "longitude": -122.331,
    "living_area_sqft": 1800,
    "beds": 3,
    "baths": 2.0,
    "year_built": 1960,
    "lot_sqft": 5000,
    "property_type": "sfr",
}


@pytest.fixture(autouse=True)
def _fresh_model_memo() -> None:
    # Model versions are memoised per process for a few seconds; each test has its own database rows.
    from valuation import engine, services

    engine.forget_versions()
    services.valuation_memory_clear()
