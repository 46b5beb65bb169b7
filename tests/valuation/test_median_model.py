"""The hedonic model fits the median price of a house like this one, not the mean: sales far from
the market (between relatives, distressed, a teardown bought for the lot) do not pull it."""

from __future__ import annotations

import dataclasses

import numpy as np

from valuation import core


def _same_houses(prices: np.ndarray) -> core.SaleArrays:
    """Sales of identical houses at one place within one quarter: only the prices differ."""
    n = len(prices)
    same = np.ones(n)
    return core.SaleArrays(
        ids=np.array([f"s{i}" for i in range(n)], dtype=object),
        day=core.to_day("2015-01-01") + np.arange(n) % 90,
        price=prices.astype(float),
        lat=47.62 * same,
        lon=-122.33 * same,
        living=1800 * same,
        lot=5000 * same,
        grade=7 * same,
        beds=3 * same,
        baths=2 * same,
        year_built=1950 * same,
        waterfront=0 * same,
        townhouse=0 * same,
        eff_age=65 * same,
        area=1 * same,
        parcel=np.array([f"p{i}" for i in range(n)], dtype=object),
    )


def test_a_third_of_sales_at_twice_the_typical_price_does_not_pull_the_model_up() -> None:
    typical = np.full(300, 500_000.0)
    wild = np.where(np.arange(300) % 3 == 0, 1_000_000.0, typical)
    sales = _same_houses(wild)
    index = core.fit_price_index(_same_houses(typical))  # flat: only the model can move
    params = core.ModelParams()

    model = core.fit_hedonic(sales, index, params)
    value = np.exp(model.predict(core.feature_matrix(sales.take(slice(0, 1)), params))[0])

    assert params.loss == "absolute_error"
    assert abs(value / 500_000 - 1) < 0.01
    # Least squares (the mean) on the same sales: a third of the way to double, in logs.
    squared = dataclasses.replace(params, loss="squared_error")
    mean_model = core.fit_hedonic(sales, index, squared)
    mean_value = np.exp(mean_model.predict(core.feature_matrix(sales.take(slice(0, 1)), squared))[0])
    assert mean_value / 500_000 > 1.2
