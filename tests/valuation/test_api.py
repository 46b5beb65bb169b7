from __future__ import annotations

import json
import math

import pytest

from tests.valuation.conftest import SUBJECT
from valuation.services import model_train

URL = "/api/valuations"


def post(client, body: dict, key: str | None) -> tuple[int, dict]:
    headers = {"HTTP_X_API_KEY": key} if key else {}
    response = client.post(URL, data=json.dumps(body), content_type="application/json", **headers)
    return response.status_code, response.json()


@pytest.fixture
def key(make_api_key) -> str:
    return make_api_key("valuations:read")


def test_values_a_property(client, key, make_sales) -> None:
    make_sales()
    version = model_train()

    status, body = post(client, {**SUBJECT, "as_of": "2015-06-05", "address": "1 Test St", "building_grade": 8}, key)

    assert status == 200
    assert body["status"] == "ok"
    assert body["model_version"] == version.id
    assert body["as_of"] == "2015-06-05"
    assert body["imputed"] == {}
    assert body["low"] < body["estimate"] < body["high"]
    assert len(body["comps"]) >= 3
    assert all(c["date"] < "2015-06-05" for c in body["comps"])


def test_insufficient_data_is_200_with_status(client, key, make_sales) -> None:
    make_sales()
    model_train()
    status, body = post(client, {**SUBJECT, "latitude": 47.9, "as_of": "2015-06-05"}, key)
    assert status == 200
    assert body["status"] == "insufficient_data"
    assert body["estimate"] is None
    assert body["detail"] == "fewer than 3 comparable sales within 1 mile in the 2 years before 2015-06-05"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"latitude": 91}, "latitude"),
        ({"living_area_sqft": "big"}, "living_area_sqft"),
        ({"property_type": "condo"}, "property_type"),
        ({"as_of": "2015-13-01"}, "as_of"),
        ({"building_grade": 20}, "building_grade"),
        ({"beds": None}, "beds"),
    ],
)
def test_invalid_input_is_422_naming_the_field(client, key, change: dict, field: str) -> None:
    status, body = post(client, {**SUBJECT, **change}, key)
    assert status == 422
    assert [e["loc"][-1] for e in body["detail"]] == [field]


def test_missing_required_field_is_422(client, key) -> None:
    body = {k: v for k, v in SUBJECT.items() if k != "longitude"}
    status, payload = post(client, body, key)
    assert status == 422
    assert [e["loc"][-1] for e in payload["detail"]] == ["longitude"]


def test_needs_a_key_with_the_valuations_scope(client, make_api_key) -> None:
    assert post(client, SUBJECT, None)[0] == 401
    status, body = post(client, SUBJECT, make_api_key("leads:create"))
    assert status == 403
    assert body == {"detail": "this API key lacks the 'valuations:read' scope"}


def test_repeated_request_is_served_from_cache(client, key, make_sales) -> None:
    from valuation import engine

    make_sales()
    model_train()
    start = engine.COMPUTATIONS
    first = post(client, {**SUBJECT, "as_of": "2015-06-05"}, key)
    second = post(client, {**SUBJECT, "as_of": "2015-06-05", "address": "ignored for the key"}, key)
    assert first == second
    assert first[1]["status"] == "ok"
    assert engine.COMPUTATIONS == start + 1


def test_a_stale_valuation_says_so_with_a_wider_range_and_lower_confidence(client, key, make_sales) -> None:
    make_sales()  # sales end on 2015-05-31
    model_train()

    _, fresh = post(client, {**SUBJECT, "as_of": "2015-06-05", "building_grade": 8}, key)
    _, stale = post(client, {**SUBJECT, "as_of": "2015-12-01", "building_grade": 8}, key)

    assert fresh["newest_sale_date"] == stale["newest_sale_date"] == "2015-05-31"
    assert (fresh["stale_days"], stale["stale_days"]) == (5, 184)
    # The same comps, moved by the same index: only the honesty about the gap differs.
    assert [c["sale_id"] for c in fresh["comps"]] == [c["sale_id"] for c in stale["comps"]]
    assert (stale["high"] - stale["low"]) / stale["estimate"] > (fresh["high"] - fresh["low"]) / fresh["estimate"]
    assert stale["confidence"] < fresh["confidence"]


def test_valuation_ready_message_says_as_of_in_whole_dollars() -> None:
    from notifications.templates import render

    text, _ = render(
        "valuation_ready",
        {
            "estimate": 612345,
            "low": 540000,
            "high": 690000,
            "as_of": "2016-01-01",
            "confidence": 0.46,
            "location_note": "located only by its ZIP code's centre (wider range)",
        },
    )

    assert text == (
        "🏠 *Valuation ready*\n$612,345 (range $540,000–$690,000) as of 2016-01-01 · confidence 46% · "
        "located only by its ZIP code's centre (wider range)"
    )


def test_staleness_widens_both_ends_in_quadrature_past_a_month() -> None:
    from valuation.engine import stale_widened

    assert stale_widened(500_000, 450_000, 560_000, 0.6, 31) == (450_000, 560_000, 0.6)
    low, high, confidence = stale_widened(500_000, 450_000, 560_000, 0.6, 31 + 305)  # ten months past
    extra = 1.2816 * 0.012 * 305 / 30.44
    assert low == pytest.approx(500_000 / math.exp(math.hypot(math.log(500 / 450), extra)))
    assert high == pytest.approx(500_000 * math.exp(math.hypot(math.log(560 / 500), extra)))
    assert confidence == 0.35
