"""Abuse of public form keys and of what the API answers: junk floods, repeats, over-sharing."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from leads.models import Lead, LeadEvent, LeadStatus, TimelineKind
from notifications.models import Delivery
from tests.security.conftest import LEAD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _whole_minute_ahead() -> None:
    # The limits count in fixed one-minute windows: start each test early in a window, so a flood and
    # what follows it fall in the same one (waits at most ~15 s, for a clock condition).
    deadline = time.monotonic() + 20
    while time.time() % 60 > 45 and time.monotonic() < deadline:
        time.sleep(0.2)


def _post_lead(client, key: str, body: dict, address: str):
    return client.post(
        "/api/leads", json.dumps(body), content_type="application/json", HTTP_X_API_KEY=key, REMOTE_ADDR=address
    )


def test_a_junk_flood_from_one_address_never_starves_valid_leads_from_others(client, make_api_key) -> None:
    key = make_api_key("leads:create", origins=["https://www.example.com"], rate_limit=5, name="form")
    junk = [_post_lead(client, key, {"name": ""}, "198.51.100.7").status_code for _ in range(30)]
    # A public key: one address gets a share of it (API_CLIENT_RATE_PER_MINUTE, here capped by the key's 5).
    assert junk == [422] * 5 + [429] * 25
    # The key's own budget was given back by every rejected request: five real sellers still get in.
    for n in range(5):
        body = {**LEAD, "phone": f"206555{1000 + n}"}
        assert _post_lead(client, key, body, f"203.0.113.{n + 1}").status_code == 201
    # The sixth valid lead in the minute is over the key's limit, whoever sends it.
    over = _post_lead(client, key, {**LEAD, "phone": "2065552000"}, "203.0.113.99")
    assert over.status_code == 429
    assert int(over["Retry-After"]) >= 1
    assert Lead.objects.count() == 5


def test_rejected_requests_are_counted_per_address_apart_from_valid_ones(client, make_api_key, settings) -> None:
    settings.RATE_LIMIT_REJECTED_PER_MINUTE = 20
    key = make_api_key("leads:create", rate_limit=100, name="server form")  # a secret key: no origins
    junk = [_post_lead(client, key, {"name": "x"}, "198.51.100.8").status_code for _ in range(25)]
    assert junk == [422] * 20 + [429] * 5
    # That address is refused for the rest of the minute, even with a valid lead ...
    assert _post_lead(client, key, LEAD, "198.51.100.8").status_code == 429
    # ... and every other address is not.
    assert _post_lead(client, key, LEAD, "203.0.113.50").status_code == 201


def test_a_server_key_lets_its_one_client_use_its_whole_limit(client, make_api_key) -> None:
    key = make_api_key("leads:create", rate_limit=12, name="crm sync")
    statuses = [
        _post_lead(client, key, {**LEAD, "phone": f"206555{3000 + n}"}, "10.0.0.5").status_code for n in range(13)
    ]
    assert statuses == [201] * 12 + [429]


def test_the_client_address_is_taken_from_trusted_proxies_only(client, make_api_key, settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    key = make_api_key("leads:create", origins=["https://www.example.com"], rate_limit=100, name="form")
    settings.API_CLIENT_RATE_PER_MINUTE = 2

    def post(forwarded: str, phone: str) -> int:
        return client.post(
            "/api/leads",
            json.dumps({**LEAD, "phone": phone}),
            content_type="application/json",
            HTTP_X_API_KEY=key,
            REMOTE_ADDR="10.0.0.1",  # the load balancer
            HTTP_X_FORWARDED_FOR=forwarded,
        ).status_code

    # A client cannot dodge its limit by inventing addresses on the left of X-Forwarded-For.
    assert [post(f"1.2.3.{n}, 198.51.100.9", f"20655540{n:02d}") for n in range(3)] == [201, 201, 429]
    assert post("198.51.100.10", "2065554100") == 201
    # What the proxy passes on is stored as the consent IP only if it is an address.
    response = client.post(
        "/api/leads",
        json.dumps({**LEAD, "phone": "2065554200", "consent": True, "consent_text": "ok"}),
        content_type="application/json",
        HTTP_X_API_KEY=key,
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="not-an-address",
    )
    assert response.status_code == 201
    assert Lead.objects.get(phone="+12065554200").consent_ip == "10.0.0.1"


def test_repeats_post_at_most_one_slack_message_per_lead_per_hour(client, make_api_key) -> None:
    key = make_api_key("leads:create", name="form")
    first = _post_lead(client, key, LEAD, "203.0.113.1")
    assert first.status_code == 201
    lead_id = first.json()["id"]
    for _ in range(4):
        repeat = _post_lead(client, key, {**LEAD, "message": "still there?"}, "203.0.113.1")
        assert (repeat.status_code, repeat.json()) == (200, {"id": lead_id, "duplicate": True})
    assert LeadEvent.objects.filter(lead_id=lead_id, kind=TimelineKind.REPEAT).count() == 4
    assert Delivery.objects.filter(lead_id=lead_id, event_type="repeat_lead").count() == 1
    # An hour after the notified repeat, the next one is announced again.
    LeadEvent.objects.filter(lead_id=lead_id, kind=TimelineKind.REPEAT).update(
        created_at=LeadEvent.objects.get(lead_id=lead_id, kind=TimelineKind.REPEAT, data__notified=True).created_at
        - timedelta(minutes=61)
    )
    assert _post_lead(client, key, LEAD, "203.0.113.1").status_code == 200
    assert Delivery.objects.filter(lead_id=lead_id, event_type="repeat_lead").count() == 2


def test_the_duplicate_answer_does_not_reveal_the_leads_status(client, make_api_key) -> None:
    key = make_api_key("leads:create", name="form")
    lead_id = _post_lead(client, key, LEAD, "203.0.113.1").json()["id"]
    Lead.objects.filter(id=lead_id).update(status=LeadStatus.UNDER_CONTRACT)
    repeat = _post_lead(client, key, LEAD, "203.0.113.2")
    assert repeat.json() == {"id": lead_id, "duplicate": True}


def test_a_write_only_key_gets_back_only_what_it_wrote(client, make_api_key) -> None:
    form = make_api_key("leads:create", name="form")
    lead_id = _post_lead(client, form, {**LEAD, "consent": True, "consent_text": "ok"}, "203.0.113.1").json()["id"]
    writer = make_api_key("leads:write", name="writer")
    response = client.patch(f"/api/leads/{lead_id}", "{}", content_type="application/json", HTTP_X_API_KEY=writer)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "status", "assignee", "updated_at"}
    assert (body["id"], body["status"], body["assignee"]) == (lead_id, "new", None)
    reader_writer = make_api_key("leads:write", "leads:read", name="crm")
    full = client.patch(f"/api/leads/{lead_id}", "{}", content_type="application/json", HTTP_X_API_KEY=reader_writer)
    assert full.json()["consent"]["ip"] == "203.0.113.1"
