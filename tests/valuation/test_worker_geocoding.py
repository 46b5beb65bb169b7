"""End to end with a real Celery worker: a lead that gives only an address is posted, fanned out,
geocoded by the (fake) Census server inside the worker's valuation task, and valued."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from leads.models import Lead, LeadEvent
from tests.fakes.census import FakeCensus
from tests.valuation.conftest import synthetic_sales
from valuation.models import Sale, Valuation
from valuation.services import model_train

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_until(predicate, timeout: float = 90, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_geocodes_and_values_an_address_only_lead(start_worker, make_api_key) -> None:
    Sale.objects.bulk_create(synthetic_sales())
    model_train()
    census = FakeCensus().start()
    try:
        worker = start_worker(
            VALUATION_GEOCODER="census",
            VALUATION_GEOCODER_URL=census.url,
            VALUATION_DEFAULT_AS_OF="2015-06-05",
        )
        key = make_api_key("leads:create")
        response = Client().post(
            "/api/leads",
            data=json.dumps(
                {
                    "name": "Address Only",
                    "phone": "(206) 555-0190",
                    "address": "1400 5th Ave, Seattle, WA 98101",
                    "living_area_sqft": 1800,
                    "property_type": "sfr",
                }
            ),
            content_type="application/json",
            HTTP_X_API_KEY=key,
        )
        assert response.status_code == 201
        lead_id = response.json()["id"]

        wait_until(
            lambda: Valuation.objects.filter(lead_id=lead_id, status="ok").exists(),
            what=f"the worker's valuation\n{worker.output()[-3000:]}",
        )
    finally:
        census.stop()

    lead = Lead.objects.get(id=lead_id)
    assert (lead.latitude, lead.longitude, lead.location_precision) == (47.621, -122.331, "interpolated")
    assert census.addresses == ["1400 5th Ave, Seattle, WA 98101"]
    valuation = Valuation.objects.get(lead_id=lead_id)
    assert valuation.location_precision == "interpolated"
    assert set(valuation.result["imputed"]) >= {"building_grade", "beds", "baths", "year_built", "lot_sqft"}
    assert LeadEvent.objects.filter(lead_id=lead_id, kind="valuation").count() == 1
