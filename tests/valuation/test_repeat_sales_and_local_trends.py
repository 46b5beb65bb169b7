"""The same house's earlier sale, the lead-facts model and the local (per-area) index."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from tests.valuation.conftest import SUBJECT, synthetic_sales
from valuation import core, engine
from valuation.engine import PropertyFacts
from valuation.models import Sale
from valuation.services import model_train, valuation_get

AS_OF = dt.date(2015, 6, 5)


def _sale_at(sale_id: str, sale_date: dt.date, latitude: float, longitude: float) -> Sale:
    template = synthetic_sales(n=1, seed=3, prefix="x")[0]
    template.sale_id, template.pinx = sale_id, f"p{sale_id}"
    template.sale_date, template.price = sale_date, 333_000
    template.latitude, template.longitude = latitude, longitude
    template.living_area_sqft, template.year_built = SUBJECT["living_area_sqft"], SUBJECT["year_built"]
    template.age = template.eff_age = sale_date.year - template.year_built
    return template


def test_an_earlier_sale_of_the_same_house_is_a_comp_for_six_years_a_neighbours_for_two(make_sales) -> None:
    make_sales()  # 2013-01 .. 2015-05
    four_years_ago = dt.date(2011, 6, 1)
    own = _sale_at("own-2011", four_years_ago, SUBJECT["latitude"], SUBJECT["longitude"])
    # The same size and age 100 m away: a neighbour, too old to be a comp.
    neighbour = _sale_at("next-door-2011", four_years_ago, SUBJECT["latitude"] + 0.0009, SUBJECT["longitude"])
    seven_years_ago = _sale_at("own-2008", dt.date(2008, 5, 1), SUBJECT["latitude"], SUBJECT["longitude"])
    Sale.objects.bulk_create([own, neighbour, seven_years_ago])
    model_train()

    result = valuation_get(facts=PropertyFacts(**SUBJECT), as_of=AS_OF)

    comp_ids = [c["sale_id"] for c in result["comps"]]
    assert comp_ids[0] == "own-2011"  # the house itself weighs most
    assert "next-door-2011" not in comp_ids
    assert "own-2008" not in comp_ids


def test_lead_facts_are_valued_by_a_model_that_never_saw_grade_or_waterfront(make_sales) -> None:
    make_sales()
    model = engine.load_model(model_train().id)
    subject = engine._subject(PropertyFacts(**SUBJECT, building_grade=7), AS_OF)
    better = dataclasses.replace(subject, grade=np.array([11.0]), waterfront=np.array([1.0]))

    assert model.lead_hedonic is not None
    assert model.predict_log(better, lead=True)[0] == model.predict_log(subject, lead=True)[0]
    # The full-facts model does use them (the synthetic market pays 9% a grade step).
    assert model.predict_log(better)[0] > model.predict_log(subject)[0] + 0.1
    assert model.comp_params.lead_shrink is not None


def test_a_model_pickled_before_price_per_sqft_still_models_price() -> None:
    sales = core.arrays_from_records([vars(s) for s in synthetic_sales(n=50)])
    index = core.PriceIndex(first_month=516, log_index=np.zeros(12), slope=0.0)
    old = core.ModelParams()
    del old.__dict__["per_sqft"]  # what unpickling a ModelParams from before the field gives

    assert np.array_equal(core.target_offset(sales, index, old), index.at(sales.day))
    now = core.target_offset(sales, index, core.ModelParams())
    assert np.allclose(now, index.at(sales.day) + np.log(sales.living))


def test_area_index_moves_a_comp_by_its_areas_own_trend_and_stops_at_the_last_month() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    day = rng.integers(core.to_day("2013-01-01"), core.to_day("2014-12-31"), n)
    area = rng.choice([1.0, 2.0], n)
    months = (day - core.to_day("2013-01-01")) / 30.44
    # Area 2 rose 1% a month faster than the city; area 1 moved with it.
    residual = np.where(area == 2.0, 0.01 * (months - 12), 0.0) + rng.normal(0, 0.05, n)
    sales = core.SaleArrays.from_rows([{"day": int(d), "area": a} for d, a in zip(day, area, strict=True)])

    index = core.fit_area_index(sales, residual)

    start = np.array([core.to_day("2013-06-15")] * 3)
    later = core.to_day("2014-06-15")
    shift = index.shift(np.array([1.0, 2.0, 99.0]), start, later)
    assert abs(shift[0]) < 0.02
    assert 0.09 < shift[1] < 0.15  # ~12 months at 1%
    assert shift[2] == 0.0  # an area it never saw
    # Beyond the training sales the local deviation stays where it was: no guessing a trend.
    far = index.shift(np.array([2.0]), np.array([core.to_day("2014-12-15")]), core.to_day("2016-06-01"))
    assert far[0] == 0.0
