from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from tests.valuation.conftest import SUBJECT, synthetic_sales
from valuation import engine
from valuation.engine import PropertyFacts
from valuation.models import ModelVersion, Sale
from valuation.services import model_train, valuation_get

AS_OF = dt.date(2015, 6, 5)


def value(as_of: dt.date = AS_OF, **overrides) -> dict:
    return valuation_get(facts=PropertyFacts(**{**SUBJECT, **overrides}), as_of=as_of)


def test_estimate_has_range_confidence_and_comps_before_as_of(make_sales) -> None:
    make_sales()
    version = model_train()

    result = value()

    assert result["status"] == "ok"
    assert result["model_version"] == version.id
    assert result["as_of"] == "2015-06-05"
    assert result["method"] == "comps+model"
    assert set(result["imputed"]) == {"building_grade"}
    # The synthetic market: ~400k for 1,800 sqft grade ~7.5 in early 2013, +0.8%/month for 29 months.
    assert 400_000 < result["estimate"] < 650_000
    assert result["low"] < result["estimate"] < result["high"]
    assert 0 < result["confidence"] <= 1
    assert 3 <= len(result["comps"]) <= 10
    for comp in result["comps"]:
        assert set(comp) == {
            "sale_id",
            "price",
            "date",
            "distance_miles",
            "living_area_sqft",
            "beds",
            "baths",
            "year_built",
            "indicated_value",
            "weight",
        }
        assert comp["date"] < "2015-06-05"
        assert comp["distance_miles"] <= 1.0


def test_sales_after_as_of_are_never_used_as_comps_or_for_training(make_sales) -> None:
    make_sales(end=dt.date(2015, 5, 31))
    before = model_train()
    baseline = value()

    # Later sales right at the subject's door at ten times the price, and a model trained with them.
    later = synthetic_sales(n=80, start=AS_OF, end=dt.date(2015, 8, 31), seed=7, prefix="late")
    for sale in later:
        sale.price *= 10
        sale.latitude, sale.longitude = SUBJECT["latitude"], SUBJECT["longitude"]
    Sale.objects.bulk_create(later)
    newer = model_train()
    assert newer.trained_to == dt.date(2015, 8, 31)

    again = valuation_get(facts=PropertyFacts(**SUBJECT), as_of=AS_OF)

    # The model trained on later sales is not used for this as-of date; the answer is unchanged.
    assert again["model_version"] == before.id
    assert {k: v for k, v in again.items()} == {**baseline}
    assert not [c for c in again["comps"] if c["sale_id"].startswith("late")]
    # As of a later date, the newer model and the later sales are fair game.
    later_result = value(as_of=dt.date(2015, 9, 1))
    assert later_result["model_version"] == newer.id
    assert any(c["sale_id"].startswith("late") for c in later_result["comps"])


def test_missing_facts_are_insufficient_data(make_sales) -> None:
    make_sales()
    version = model_train()

    result = valuation_get(facts=PropertyFacts(latitude=47.62, longitude=-122.33), as_of=AS_OF)

    assert result == {
        "status": "insufficient_data",
        "detail": "need at least latitude, longitude and living_area_sqft; missing: living_area_sqft",
        "missing": ["living_area_sqft"],
        "estimate": None,
        "low": None,
        "high": None,
        "confidence": None,
        "comps": [],
        "method": "comps+model",
        "as_of": "2015-06-05",
        "model_version": version.id,
    }


def test_no_comps_nearby_or_no_model_is_insufficient_data(make_sales) -> None:
    make_sales()
    assert value()["detail"] == "no valuation model trained on sales before 2015-06-05"
    model_train()

    far_away = value(latitude=47.75, longitude=-122.33)
    assert far_away["status"] == "insufficient_data"
    assert far_away["detail"] == "fewer than 3 comparable sales within 1 mile in the 2 years before 2015-06-05"
    assert far_away["estimate"] is None

    too_late = value(as_of=dt.date(2018, 1, 1))
    assert too_late["detail"] == "fewer than 3 comparable sales within 1 mile in the 2 years before 2018-01-01"

    condo = value(property_type="condo")
    assert condo["detail"] == "only single-family homes and townhouses can be valued, not 'condo'"


def test_cached_answer_is_reused_until_a_retrain_changes_the_version(make_sales) -> None:
    make_sales()
    first_version = model_train()
    start = engine.COMPUTATIONS

    first = value()
    # The same house typed slightly differently (sub-metre coordinates, 2.1 baths) is the same key.
    second = value(latitude=SUBJECT["latitude"] + 0.000001, baths=2.1)
    assert engine.COMPUTATIONS == start + 1
    assert second == first

    value(living_area_sqft=1900)
    assert engine.COMPUTATIONS == start + 2

    new_version = model_train()
    assert new_version.id != first_version.id
    third = value()
    assert engine.COMPUTATIONS == start + 3
    assert third["model_version"] == new_version.id


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_requests_compute_once() -> None:
    Sale.objects.bulk_create(synthetic_sales())
    model_train()
    assert ModelVersion.objects.count() == 1
    start = engine.COMPUTATIONS
    barrier = threading.Barrier(8)
    results: list[dict] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(value())
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert errors == []
    assert len(results) == 8
    assert engine.COMPUTATIONS == start + 1
    assert all(r == results[0] for r in results)
    assert results[0]["status"] == "ok"
