"""Leads that give only an address: geocoded by the (fake) Census geocoder in the valuation task,
or placed at their ZIP code's centroid when it is off, down or slow, with the range widened."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from leads.models import Lead, LeadEvent
from notifications.models import Delivery
from tests.fakes.census import FakeCensus
from valuation.geocoding import zip_centroid
from valuation.models import Valuation
from valuation.services import model_train
from valuation.tasks import value_lead

ADDRESS = "1400 5th Ave, Seattle, WA 98101"  # 98101's centroid lies inside the synthetic market
FORM = {
    "name": "Address Only",
    "phone": "(206) 555-0177",
    "address": ADDRESS,
    "living_area_sqft": 1800,
    "beds": 3,
    "baths": "2",
    "year_built": 1960,
    "lot_sqft": 5000,
    "property_type": "sfr",
}


@pytest.fixture
def trained(make_sales, settings):
    settings.VALUATION_DEFAULT_AS_OF = "2015-06-05"
    make_sales()
    return model_train()


@pytest.fixture
def census(settings) -> Iterator[FakeCensus]:
    fake = FakeCensus().start()
    settings.VALUATION_GEOCODER = "census"
    settings.VALUATION_GEOCODER_URL = fake.url
    settings.VALUATION_GEOCODER_TIMEOUT_SECONDS = 1
    yield fake
    fake.stop()


def post_lead(client, make_api_key, **changes) -> Lead:
    key = make_api_key("leads:create")
    response = client.post(
        "/api/leads", data=json.dumps({**FORM, **changes}), content_type="application/json", HTTP_X_API_KEY=key
    )
    assert response.status_code == 201, response.content
    return Lead.objects.get(id=response.json()["id"])


def test_address_only_lead_is_geocoded_by_census_and_valued(trained, census, client, make_api_key) -> None:
    lead = post_lead(client, make_api_key)
    # Intake never calls the geocoder: the request is answered before any lookup.
    assert census.addresses == []
    assert (lead.latitude, lead.longitude, lead.location_precision) == (None, None, "")

    value_lead(str(lead.id))
    value_lead(str(lead.id))  # redelivered: no second lookup, no second valuation

    lead.refresh_from_db()
    assert (lead.latitude, lead.longitude, lead.location_precision) == (47.621, -122.331, "interpolated")
    assert census.addresses == [ADDRESS]
    valuation = Valuation.objects.get(lead=lead)
    assert valuation.status == "ok"
    assert valuation.location_precision == "interpolated"
    assert valuation.result["location_precision"] == "as_given"
    assert "geocoder_fallback" not in valuation.result
    assert valuation.low < valuation.estimate < valuation.high
    messages = list(LeadEvent.objects.filter(lead=lead, kind="property").values_list("message", flat=True))
    assert messages == ["Located from its address (interpolated, census)"]
    valued = LeadEvent.objects.get(lead=lead, kind="valuation")
    assert valued.message.startswith(
        f"Valued at ${valuation.estimate:,} (${valuation.low:,}–${valuation.high:,}) as of 2015-06-05"
    )
    assert Delivery.objects.filter(key=f"lead:{lead.id}:valuation_ready").count() >= 1


def test_census_answer_is_cached_for_a_repeat_address(trained, census, client, make_api_key) -> None:
    first = post_lead(client, make_api_key)
    second = post_lead(client, make_api_key, phone="(206) 555-0178", name="Neighbour")

    value_lead(str(first.id))
    value_lead(str(second.id))

    assert census.addresses == [ADDRESS]
    second.refresh_from_db()
    assert (second.latitude, second.location_precision) == (47.621, "interpolated")


@pytest.mark.parametrize(("mode", "reason"), [("error", "geocoder_unavailable"), ("no_match", "no_match")])
def test_geocoder_error_or_no_match_falls_back_to_the_zip_centroid_flagged(
    trained, census, client, make_api_key, mode: str, reason: str
) -> None:
    census.mode = mode
    lead = post_lead(client, make_api_key)

    value_lead(str(lead.id))

    lead.refresh_from_db()
    centre = zip_centroid("98101")
    assert (lead.latitude, lead.longitude, lead.location_precision) == (
        centre.latitude,
        centre.longitude,
        "zip_centroid",
    )
    valuation = Valuation.objects.get(lead=lead)
    assert valuation.status == "ok"
    assert valuation.location_precision == "zip_centroid"
    assert valuation.result["location_precision"] == "zip_centroid"
    assert valuation.result["geocoder_fallback"] == reason
    message = LeadEvent.objects.get(lead=lead, kind="valuation").message
    assert message.endswith("located only by its ZIP code's centre (wider range)")
    payload = Delivery.objects.filter(key=f"lead:{lead.id}:valuation_ready").first().payload
    assert payload["location_precision"] == "zip_centroid"


def test_slow_geocoder_times_out_to_the_fallback_and_marks_it_down(trained, census, client, make_api_key) -> None:
    census.mode = "slow"
    census.delay = 3.0
    first = post_lead(client, make_api_key)
    second = post_lead(client, make_api_key, phone="(206) 555-0179", address="1401 5th Ave, Seattle, WA 98101")

    value_lead(str(first.id))  # waits at most the 1 s timeout
    value_lead(str(second.id))  # the service is marked down for a minute: not asked at all

    assert census.addresses == [ADDRESS]
    for lead in (first, second):
        lead.refresh_from_db()
        assert lead.location_precision == "zip_centroid"
        valuation = Valuation.objects.get(lead=lead)
        assert (valuation.status, valuation.result["geocoder_fallback"]) == ("ok", "geocoder_unavailable")


def test_geocoder_off_uses_the_zip_centroid_offline(trained, settings, client, make_api_key) -> None:
    settings.VALUATION_GEOCODER = "off"
    lead = post_lead(client, make_api_key)

    value_lead(str(lead.id))

    valuation = Valuation.objects.get(lead=lead)
    assert (valuation.status, valuation.location_precision) == ("ok", "zip_centroid")
    assert valuation.result["geocoder_fallback"] == "geocoder_off"


def test_zip_centroid_valuation_has_a_wider_range_and_lower_confidence(
    make_sales, settings, client, make_api_key
) -> None:
    # A market where the block matters (prices change ~35% across it north to south), so knowing
    # only the ZIP code costs accuracy, which the calibration measures.
    settings.VALUATION_DEFAULT_AS_OF = "2015-06-05"
    make_sales(lat_slope=10.0)
    model_train()
    settings.VALUATION_GEOCODER = "off"
    centre = zip_centroid("98101")
    coarse = post_lead(client, make_api_key)
    fine = post_lead(client, make_api_key, phone="(206) 555-0180", latitude=centre.latitude, longitude=centre.longitude)
    assert fine.location_precision == "manual"

    value_lead(str(coarse.id))
    value_lead(str(fine.id))

    c, f = Valuation.objects.get(lead=coarse), Valuation.objects.get(lead=fine)
    assert c.result["comps"] == f.result["comps"]  # the same point and facts: only the honesty differs
    assert (c.high - c.low) / c.estimate > (f.high - f.low) / f.estimate
    assert c.confidence <= f.confidence


def test_lead_with_unknown_zip_and_no_geocoder_is_not_valued(trained, settings, client, make_api_key) -> None:
    settings.VALUATION_GEOCODER = "off"
    lead = post_lead(client, make_api_key, address="12 Nowhere Rd, Springfield, ZZ 00000")

    value_lead(str(lead.id))

    valuation = Valuation.objects.get(lead=lead)
    assert valuation.status == "insufficient_data"
    assert valuation.result["missing"] == ["latitude", "longitude"]
    assert valuation.result["geocoder_fallback"] == "geocoder_off"
