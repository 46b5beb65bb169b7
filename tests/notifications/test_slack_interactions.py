from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest

from leads.models import Lead, LeadEvent, OutboxEvent
from notifications.models import Delivery, StaffProfile
from notifications.services import delivery_send, notify
from notifications.tasks import respond, update_message
from tests.notifications.conftest import new_lead_context

URL = "/slack/interactions"
SIGNING_SECRET = "slack-signing-secret"

pytestmark = pytest.mark.django_db


def _request(client, payload: dict, *, secret: str = SIGNING_SECRET, at: int | None = None, body_suffix: str = ""):
    body = urlencode({"payload": json.dumps(payload)})
    ts = str(int(time.time()) if at is None else at)
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return client.post(
        URL,
        data=body + body_suffix,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=ts,
        HTTP_X_SLACK_SIGNATURE=signature,
    )


def _claim_payload(lead, slack_user: str, message_ts: str, response_url: str) -> dict:
    return {
        "type": "block_actions",
        "user": {"id": slack_user},
        "channel": {"id": "C1"},
        "message": {"ts": message_ts},
        "response_url": response_url,
        "actions": [{"action_id": "lead_claim", "value": str(lead.id), "type": "button"}],
    }


@pytest.fixture
def posted_lead(fake_slack, slack_settings, make_lead):
    lead = make_lead(name="Ann Seller")
    notify(event_type="new_lead", context=new_lead_context(lead), key=f"lead:{lead.id}:new_lead", lead_id=lead.id)
    delivery = Delivery.objects.get()
    delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return lead, delivery


def _staff(username: str, slack_id: str, first_name: str = ""):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(
        username, f"{username}@example.com", "pw", is_staff=True, first_name=first_name
    )
    StaffProfile.objects.create(user=user, slack_user_id=slack_id)
    return user


def test_claim_assigns_the_lead_updates_the_message_and_a_second_claim_is_told_it_is_taken(
    client, posted_lead, fake_slack
) -> None:
    lead, delivery = posted_lead
    bob = _staff("bob", "UBOB", first_name="Bob")
    _staff("cy", "UCY")

    started = time.monotonic()
    response = _request(client, _claim_payload(lead, "UBOB", delivery.ts, fake_slack.response_url("a")))
    assert time.monotonic() - started < 3
    assert response.status_code == 200
    assert response.json() == {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": "✅ It's yours — you claimed this lead.",
    }
    lead.refresh_from_db()
    assert lead.assigned_to == bob and lead.claimed_at is not None
    assert LeadEvent.objects.filter(lead=lead, kind="claimed").count() == 1
    # Through the outbox: the original message is edited and the clicker gets an ephemeral answer.
    assert {"notifications.update_message", "notifications.respond"} <= set(
        OutboxEvent.objects.filter(published_at=None).values_list("task_name", flat=True)
    )
    update_message(delivery.pk, {"claimed_by": "Bob"})
    respond(fake_slack.response_url("a"), "✅ It's yours — you claimed this lead.")
    [update] = fake_slack.updates()
    assert update.body["ts"] == delivery.ts and update.body["channel"] == "#leads"
    assert update.text.endswith("Claimed by Bob")
    assert "lead_claim" not in json.dumps(update.body["blocks"])

    second = _request(client, _claim_payload(lead, "UCY", delivery.ts, ""))
    assert second.status_code == 200
    assert second.json()["text"] == "Too late: this lead is already taken by Bob."
    lead.refresh_from_db()
    assert lead.assigned_to == bob


def test_unknown_slack_user_gets_a_polite_answer(client, posted_lead, slack_settings) -> None:
    lead, delivery = posted_lead
    response = _request(client, _claim_payload(lead, "UNOBODY", delivery.ts, ""))
    assert response.status_code == 200
    assert "Ask an admin to add your Slack user id (UNOBODY)" in response.json()["text"]
    assert Lead.objects.get(pk=lead.pk).assigned_to is None


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"secret": "wrong"}, id="bad-signature"),
        pytest.param({"at": int(time.time()) - 301}, id="stale"),
        pytest.param({"body_suffix": "&x=1"}, id="tampered"),
    ],
)
def test_bad_or_stale_signature_is_401(client, posted_lead, kwargs) -> None:
    lead, delivery = posted_lead
    _staff("bob", "UBOB")
    response = _request(client, _claim_payload(lead, "UBOB", delivery.ts, ""), **kwargs)
    assert response.status_code == 401
    assert Lead.objects.get(pk=lead.pk).claimed_at is None


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"actions": {"action_id": "lead_claim"}}, id="actions-dict"),
        pytest.param({"actions": [1]}, id="actions-number"),
        pytest.param({"actions": [{"action_id": "lead_claim", "value": 7}]}, id="value-number"),
        pytest.param({"user": "UBOB"}, id="user-string"),
        pytest.param({"message": "m"}, id="message-string"),
        pytest.param({"container": []}, id="container-list"),
    ],
)
def test_oddly_shaped_claim_gets_a_polite_answer_and_claims_nothing(client, posted_lead, change) -> None:
    lead, delivery = posted_lead
    _staff("bob", "UBOB")
    payload = {**_claim_payload(lead, "UBOB", delivery.ts, ""), **change}
    response = _request(client, payload)
    assert response.status_code == 200
    assert response.json() == {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": "Sorry, I couldn't read that action.",
    }
    assert Lead.objects.get(pk=lead.pk).claimed_at is None
