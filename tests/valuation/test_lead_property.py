"""Staff set a lead's location and property facts (PATCH /api/leads/{id}, lead_set_property): the
valuation is re-queued through the outbox and re-valued; values that cannot be valued are 422."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from leads.models import Lead, LeadEvent, OutboxEvent
from leads.services import lead_set_property
from notifications.models import Delivery
from valuation.models import Valuation
from valuation.services import model_train
from valuation.tasks import value_lead


@pytest.fixture
def trained(make_sales, settings):
    settings.VALUATION_DEFAULT_AS_OF = "2015-06-05"
    make_sales()
    return model_train()


@pytest.fixture
def write_key(make_api_key) -> str:
    return make_api_key("leads:write", "leads:read", name="crm")


def make_lead(**fields) -> Lead:
    # No ZIP code and no coordinates: nothing can place it until staff do.
    defaults = {"name": "Jane Seller", "phone": "+12065550100", "address": "somewhere in Seattle"}
    return Lead.objects.create(**{**defaults, **fields})


def patch(client, lead: Lead, body: dict, key: str):
    return client.patch(
        f"/api/leads/{lead.id}", data=json.dumps(body), content_type="application/json", HTTP_X_API_KEY=key
    )


FACTS = {
    "latitude": 47.621,
    "longitude": -122.331,
    "living_area_sqft": 1800,
    "beds": 3,
    "baths": 2,
    "year_built": 1960,
    "lot_sqft": 5000,
    "property_type": "sfr",
}


def run_queued_valuations(lead: Lead) -> list[str]:
    """Run the value_lead tasks the outbox holds for this lead (what a worker would do)."""
    keys = []
    for event in OutboxEvent.objects.filter(lead=lead, task_name="valuation.value_lead").order_by("id"):
        value_lead(**event.kwargs)
        keys.append(event.key)
    return keys


def test_patch_sets_facts_requeues_and_revalues(trained, client, write_key, django_capture_on_commit_callbacks) -> None:
    lead = make_lead()
    value_lead(str(lead.id))
    assert Valuation.objects.get(lead=lead).status == "insufficient_data"

    with django_capture_on_commit_callbacks(execute=False):
        response = patch(client, lead, FACTS, write_key)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["latitude"], body["longitude"], body["living_area_sqft"], body["lot_sqft"]) == (
        47.621,
        -122.331,
        1800,
        5000,
    )
    assert body["location_precision"] == "manual"
    lead.refresh_from_db()
    assert lead.location_precision == "manual"
    assert lead.baths == Decimal("2.00")
    entries = list(LeadEvent.objects.filter(lead=lead, kind="property"))
    assert len(entries) == 1
    assert entries[0].message.startswith("property facts updated: latitude — → 47.621, longitude — → -122.331")
    assert entries[0].message.endswith("by API key crm")
    assert entries[0].data["changed"]["living_area_sqft"] == {"from": None, "to": 1800}

    # The same facts again: nothing changes, nothing is queued.
    with django_capture_on_commit_callbacks(execute=False):
        assert patch(client, lead, FACTS, write_key).status_code == 200
    assert LeadEvent.objects.filter(lead=lead, kind="property").count() == 1
    assert run_queued_valuations(lead) == [f"lead:{lead.id}:valuation:facts:{entries[0].id}"]

    first = Valuation.objects.get(lead=lead)
    assert first.status == "ok"
    assert first.location_precision == "manual"
    assert Delivery.objects.filter(key=f"lead:{lead.id}:valuation_ready").exists()

    # A bigger house: re-queued, re-valued, a second message with its own key.
    with django_capture_on_commit_callbacks(execute=False):
        assert patch(client, lead, {"living_area_sqft": 3000}, write_key).status_code == 200
    assert len(run_queued_valuations(lead)) == 2
    second = Valuation.objects.get(lead=lead)
    assert second.estimate > first.estimate
    assert LeadEvent.objects.filter(lead=lead, kind="valuation").count() == 3  # not valued, valued, re-valued
    digest = second.result["inputs_digest"]
    assert Delivery.objects.filter(key=f"lead:{lead.id}:valuation_ready:{digest}").exists()

    # A redelivered task with unchanged facts: no new entry.
    value_lead(str(lead.id))
    assert LeadEvent.objects.filter(lead=lead, kind="valuation").count() == 3


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"lot_sqft": 0}, "lot_sqft", "must be between 1 and 100,000,000"),
        ({"living_area_sqft": -1200}, "living_area_sqft", "must be between 100 and 100,000"),
        ({"latitude": 91, "longitude": -122.3}, "latitude", "must be between -90 and 90"),
        ({"latitude": 47.6, "longitude": -181}, "longitude", "must be between -180 and 180"),
        ({"year_built": dt.date.today().year + 1}, "year_built", "cannot be in the future"),
        ({"latitude": 47.6}, "latitude", "latitude and longitude are set (or cleared) together"),
        ({"beds": -1}, "beds", "must be between 0 and 50"),
    ],
)
def test_facts_that_cannot_be_valued_are_422_and_nothing_is_written(
    db, client, write_key, body: dict, field: str, message: str
) -> None:
    lead = make_lead(living_area_sqft=1500)

    response = patch(client, lead, {**body, "note": "should not be written either"}, write_key)

    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert any(message in text for text in detail[field]), detail
    lead.refresh_from_db()
    assert (lead.latitude, lead.living_area_sqft, lead.lot_sqft, lead.beds) == (None, 1500, None, None)
    assert not LeadEvent.objects.filter(lead=lead).exists()
    assert not OutboxEvent.objects.filter(lead=lead).exists()


def test_a_rejected_status_change_leaves_the_facts_unwritten(db, client, write_key) -> None:
    lead = make_lead(status="won")

    response = patch(client, lead, {"living_area_sqft": 2000, "status": "new"}, write_key)

    assert response.status_code == 422
    lead.refresh_from_db()
    assert lead.living_area_sqft is None
    assert not OutboxEvent.objects.filter(lead=lead).exists()


def test_patch_needs_the_write_scope(db, client, make_api_key) -> None:
    lead = make_lead()
    read_only = make_api_key("leads:read")
    assert patch(client, lead, {"beds": 3}, read_only).status_code == 403


def test_lead_set_property_for_the_admin_with_an_actor(db, staff_user) -> None:
    lead = make_lead()

    lead_set_property(lead_id=lead.id, facts={"beds": 4, "property_type": "townhouse"}, actor=staff_user, by="")

    lead.refresh_from_db()
    assert (lead.beds, lead.property_type) == (4, "townhouse")
    entry = LeadEvent.objects.get(lead=lead, kind="property")
    assert entry.actor == staff_user
    assert entry.message == "property facts updated: beds — → 4, property_type — → townhouse by staff"
    assert OutboxEvent.objects.filter(lead=lead, task_name="valuation.value_lead").count() == 1
