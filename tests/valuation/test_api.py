from __future__ import annotations

import json

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
