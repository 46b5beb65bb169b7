"""Sales far from the market (between relatives, distressed, a teardown bought for the lot) pull
neither the model (it fits the median price of a house like this one, not the mean) nor, beyond a
bound, the comps' correction."""

from __future__ import annotations

import dataclasses

import numpy as np

from tests.valuation.conftest import identical_houses, synthetic_sales
from valuation import core
from valuation.engine import SALE_FIELDS


def _same_houses(prices: np.ndarray) -> core.SaleArrays:
    """Sales of identical houses at one place within one quarter: only the prices differ."""
    n = len(prices)
    return identical_houses(n, day=core.to_day("2015-01-01") + np.arange(n) % 90, price=prices.astype(float))


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


def test_one_wild_comp_moves_the_estimate_by_at_most_the_clip() -> None:
    records = [{f: getattr(s, f) for f in SALE_FIELDS} for s in synthetic_sales(n=600, seed=7)]
    sales = core.arrays_from_records(records)
    model = core.fit_valuation_model(sales)
    subject = sales.take(slice(0, 1))
    subject.day = np.array([int(sales.day.max()) + 1])
    # The subject's own parcel sold last month at three times what the market pays for it: the
    # comp that weighs most.
    own = subject.take(slice(None))
    own.ids, own.day = np.array(["own"], dtype=object), subject.day - 30
    own.price = np.exp(model.predict_log(own)) * 3
    cand = core.SaleArrays.concat([sales, own])

    est = core.estimate_one(model, subject, cand)

    assert cand.ids[est.comps.idx[0]] == "own" and est.comps.residual[0] > 1.0
    assert 0 < est.correction <= model.comp_params.residual_clip
    unclipped = dataclasses.replace(model, comp_params=dataclasses.replace(model.comp_params, residual_clip=None))
    assert core.estimate_one(unclipped, subject, cand).correction > 2 * model.comp_params.residual_clip
