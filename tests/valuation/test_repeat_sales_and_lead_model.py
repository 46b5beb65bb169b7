"""The same house's earlier sale and the lead-facts model."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from tests.valuation.conftest import SUBJECT, synthetic_sales
from valuation import engine
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
