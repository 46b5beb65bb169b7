"""End to end with a real Celery worker and the fake Slack: a lead from the form, valued by the
worker, an offer graded through the API, one reply in the lead's Slack thread, the offer on the
lead's detail."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from leads.models import Lead
from notifications.models import Delivery
from tests.notifications.conftest import fake_slack, slack_settings, slack_worker  # noqa: F401 (fixtures)
from tests.valuation.conftest import SUBJECT, synthetic_sales
from valuation.models import Sale, Valuation
from valuation.services import model_train

# The valuation model is trained inside the test: minutes on a busy 2-core box.
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

FORM = {
    "name": "Jane Seller",
    "phone": "(206) 555-0123",
    "address": "123 North Main Street, Seattle, WA 98101",
    "condition": "needs work",
    "timeline": "asap",
    "consent": True,
    "consent_text": "I agree to be contacted.",
    **SUBJECT,
}


def wait_until(predicate, timeout: float = 60, what: str = "condition") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_lead_valuation_offer_graded_and_posted_once_in_the_leads_thread(
    slack_worker,  # noqa: F811
    fake_slack,  # noqa: F811
    make_api_key,
) -> None:
    Sale.objects.bulk_create(synthetic_sales())
    model_train()
    worker = slack_worker(VALUATION_DEFAULT_AS_OF="2015-06-01")
    client = Client()
    form_key = make_api_key("leads:create", name="Example form")
    offers_key = make_api_key("offers:write", "leads:read", name="Acquisitions app")

    response = client.post("/api/leads", json.dumps(FORM), content_type="application/json", HTTP_X_API_KEY=form_key)
    assert response.status_code == 201, response.content
    lead_id = response.json()["id"]
    wait_until(
        lambda: Valuation.objects.filter(lead_id=lead_id, status="ok").exists(),
        what=f"the worker's valuation\n{worker.output()[-3000:]}",
    )
    valuation = Valuation.objects.get(lead_id=lead_id)

    graded = client.post(
        "/api/offers",
        json.dumps({"lead_id": lead_id, "amount": str(int(valuation.estimate * 0.55))}),
        content_type="application/json",
        HTTP_X_API_KEY=offers_key,
    )
    assert graded.status_code == 201, graded.content
    offer = graded.json()
    assert offer["arv"] == f"{valuation.estimate}.00" and offer["arv_source"] == "valuation"
    assert offer["repairs_estimated"] is True  # "needs work": medium rehab x 1,800 sqft x 1.10 (1960)
    assert offer["repairs"] == "59400.00"
    assert offer["grade"] in {"A", "B", "C", "D", "F"} and offer["reasons"]

    # Every Slack message of the lead's journey delivered (new lead, valuation, offer): then count.
    wait_until(
        lambda: (
            Delivery.objects.filter(lead_id=lead_id, event_type="offer_graded", status="sent").exists()
            and not Delivery.objects.filter(lead_id=lead_id).exclude(status="sent").exists()
        ),
        what=f"the offer's Slack delivery\n{worker.output()[-3000:]}",
    )
    messages = fake_slack.messages()
    parents = [m for m in messages if m.text.startswith("🔥 *New Lead!*")]
    offer_replies = [m for m in messages if m.text.startswith("📊 *Offer graded:*")]
    assert len(parents) == 1 and len(offer_replies) == 1
    reply = offer_replies[0]
    assert reply.thread_ts == parents[0].ts
    first_line, second_line = reply.text.split("\n")[:2]
    assert first_line == f"📊 *Offer graded:* {offer['grade']} — Jane Seller"
    mao = offer["numbers"]["mao"]
    # Whole dollars, like the reasons and every other money figure in Slack.
    assert f"offer ${int(valuation.estimate * 0.55):,} ·" in second_line
    assert f"MAO ${round(float(mao)):,} ·" in second_line
    assert offer["reasons"][0] in reply.text

    detail = client.get(f"/api/leads/{lead_id}", HTTP_X_API_KEY=offers_key).json()
    assert [(o["id"], o["grade"]) for o in detail["offers"]] == [(offer["id"], offer["grade"])]
    assert [e["kind"] for e in detail["events"]].count("offer") == 1
    assert Lead.objects.filter(id=lead_id).exists()
