"""Staff API (list, detail, PATCH), assignment, claim and speed-to-lead."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest
from django.db import OperationalError
from django.utils import timezone

from leads.models import AssignmentCursor, Lead, LeadEvent, LeadStatus
from leads.services import lead_assign_round_robin, lead_claim, lead_sla_breaches_raise, lead_update
from leads.tasks import fan_out
from notifications.models import Delivery
from tests.fakes.slack import FakeSlack
from tests.leads.conftest import FORM

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(make_api_key) -> str:
    return make_api_key("leads:read", name="CRM sync")


@pytest.fixture
def writer(make_api_key) -> str:
    return make_api_key("leads:read", "leads:write", name="CRM sync")


@pytest.fixture
def lead(post_lead) -> Lead:
    """A new lead after its fan-out task ran (timeline `created`, Slack message, outbox events)."""
    lead_id = post_lead().json()["id"]
    fan_out(lead_id)
    return Lead.objects.get(id=lead_id)


def patch(client, lead_id, body, key):
    return client.patch(f"/api/leads/{lead_id}", json.dumps(body), content_type="application/json", HTTP_X_API_KEY=key)


# --- list and detail ----------------------------------------------------------------------


def test_list_filters_and_paginates(client, post_lead, reader, staff_user):
    ids = [
        post_lead({**FORM, "phone": f"20655501{i:02d}", "email": "", "name": f"Seller {i}"}).json()["id"]
        for i in range(5)
    ]
    Lead.objects.filter(id=ids[0]).update(status=LeadStatus.CONTACTED, assigned_to=staff_user)
    page = client.get("/api/leads?limit=2", HTTP_X_API_KEY=reader).json()
    assert [item["id"] for item in page["items"]] == ids[::-1][:2]
    assert (page["limit"], page["offset"], page["next_offset"]) == (2, 0, 2)
    last = client.get("/api/leads?limit=2&offset=4", HTTP_X_API_KEY=reader).json()
    assert ([i["id"] for i in last["items"]], last["next_offset"]) == ([ids[0]], None)

    def ids_for(query: str) -> list[str]:
        response = client.get(f"/api/leads?{query}", HTTP_X_API_KEY=reader)
        assert response.status_code == 200, response.json()
        return [item["id"] for item in response.json()["items"]]

    assert ids_for("status=contacted") == [ids[0]]
    assert ids_for("assignee=staff") == [ids[0]]
    assert ids_for(f"assignee={staff_user.pk}") == [ids[0]]
    assert len(ids_for("assignee=none")) == 4
    assert ids_for("q=seller 3") == [ids[3]]
    assert ids_for("q=(206) 555-0102") == [ids[2]]
    assert ids_for("q=main street") == ids[::-1]
    assert ids_for("source=Example form") == ids[::-1]
    assert ids_for("source=other") == []
    future = (timezone.now() + datetime.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert ids_for(f"created_after={future}") == []
    assert ids_for(f"created_before={future}") == ids[::-1]
    item = client.get("/api/leads?status=contacted", HTTP_X_API_KEY=reader).json()["items"][0]
    assert item["assignee"] == {"id": staff_user.pk, "username": "staff", "name": ""}
    assert item["phone"] == "+12065550100" and item["source"] == "Example form"


def test_list_rejects_bad_filters_with_422(client, reader):
    assert client.get("/api/leads?status=bogus", HTTP_X_API_KEY=reader).status_code == 422
    assert client.get("/api/leads?limit=1000", HTTP_X_API_KEY=reader).status_code == 422
    assert client.get("/api/leads?created_after=yesterday", HTTP_X_API_KEY=reader).status_code == 422


def test_list_needs_read_scope_or_staff_session(client, form_key, staff_user):
    assert client.get("/api/leads").status_code == 401
    assert client.get("/api/leads", HTTP_X_API_KEY=form_key).status_code == 403
    client.force_login(staff_user)
    assert client.get("/api/leads").status_code == 200


def test_detail_has_lead_timeline_valuation_and_offers(client, lead, reader):
    response = client.get(f"/api/leads/{lead.id}", HTTP_X_API_KEY=reader)
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["name"], body["status"], body["timeline"]) == (str(lead.id), "Jane Seller", "new", "asap")
    assert [(e["kind"], e["message"]) for e in body["events"]] == [("created", "New lead from Example form")]
    assert body["consent"]["given"] is True and body["consent"]["text"] == FORM["consent_text"]
    assert body["utm"]["campaign"] == "spring"
    assert body["offers"] == []
    assert "valuation" in body


def test_detail_unknown_id_is_404_and_bad_id_422(client, reader):
    missing = client.get(f"/api/leads/{uuid.uuid4()}", HTTP_X_API_KEY=reader)
    assert (missing.status_code, missing.json()) == (404, {"detail": "lead not found"})
    bad = client.get("/api/leads/not-a-uuid", HTTP_X_API_KEY=reader)
    assert (bad.status_code, bad.json()) == (422, {"detail": {"id": ["not a valid lead id (a UUID)"]}})
    assert patch(client, uuid.uuid4(), {"note": "x"}, reader).status_code == 403


# --- PATCH ----------------------------------------------------------------------------------


def test_patch_contacted_stops_the_sla_clock(client, lead, writer):
    response = patch(client, lead.id, {"status": "contacted", "note": "Left a voicemail"}, writer)
    assert response.status_code == 200
    assert response.json()["status"] == "contacted"
    lead.refresh_from_db()
    assert lead.first_contacted_at is not None
    status_note = Delivery.objects.get(event_type="lead_status")
    assert (status_note.payload["from"], status_note.payload["to"]) == ("new", "contacted")
    events = list(LeadEvent.objects.filter(lead=lead).values_list("kind", "message"))
    assert events[1:] == [
        ("status", "Status new → contacted by API key CRM sync"),
        ("note", "Left a voicemail"),
    ]
    Lead.objects.filter(id=lead.id).update(created_at=timezone.now() - datetime.timedelta(hours=1))
    assert lead_sla_breaches_raise() == 0


@pytest.mark.parametrize(
    ("path", "target", "error"),
    [
        (["lost"], "new", "a lost lead cannot become new (allowed: contacted)"),
        (
            ["contacted"],
            "spam",
            "a contacted lead cannot become spam (allowed: appointment, lost, offer_made, under_contract)",
        ),
        (["contacted", "appointment", "offer_made", "won"], "lost", "a won lead cannot become lost (allowed: none)"),
    ],
)
def test_patch_rejects_invalid_transitions(client, lead, writer, path, target, error):
    for step in path:
        assert patch(client, lead.id, {"status": step}, writer).status_code == 200
    response = patch(client, lead.id, {"status": target}, writer)
    assert response.status_code == 422
    assert response.json() == {"detail": {"status": [error]}}
    lead.refresh_from_db()
    assert lead.status == path[-1]


def test_patch_unknown_status_or_field_is_422(client, lead, writer):
    assert patch(client, lead.id, {"status": "archived"}, writer).status_code == 422
    assert patch(client, lead.id, {"created_at": "2001-01-01"}, writer).status_code == 422


def test_patch_assignee_by_username_and_unassign(client, lead, writer, acquisitions):
    alice = acquisitions("alice")
    assert patch(client, lead.id, {"assignee": "alice"}, writer).json()["assignee"]["username"] == "alice"
    assert patch(client, lead.id, {"assignee": None}, writer).json()["assignee"] is None
    bad = patch(client, lead.id, {"assignee": "nobody"}, writer)
    assert (bad.status_code, bad.json()) == (422, {"detail": {"assignee": ["no staff user 'nobody'"]}})
    assert list(lead.events.filter(kind="assigned").values_list("message", flat=True)) == [
        "Assigned to alice",
        "Unassigned",
    ]
    assert alice.pk


def test_patch_unknown_lead_is_404(client, writer):
    response = patch(client, uuid.uuid4(), {"status": "contacted"}, writer)
    assert (response.status_code, response.json()) == (404, {"detail": "lead not found"})


def test_staff_session_patch_records_the_actor(client, lead, staff_user):
    client.force_login(staff_user)
    response = client.patch(f"/api/leads/{lead.id}", json.dumps({"note": "Called"}), content_type="application/json")
    assert response.status_code == 200
    note = lead.events.get(kind="note")
    assert note.actor == staff_user


def test_spam_rescued_to_new_fans_out_then(post_lead, writer, client):
    lead_id = post_lead({**FORM, "website": "x"}).json()["id"]
    assert patch(client, lead_id, {"status": "new"}, writer).status_code == 200
    from leads.models import OutboxEvent

    assert sorted(OutboxEvent.objects.filter(lead_id=lead_id).values_list("task_name", flat=True)) == [
        "valuation.value_lead",
    ]
    assert list(Delivery.objects.values_list("key", flat=True)) == [f"lead:{lead_id}:new_lead"]
    # The spam lead kept its own `created` entry; the rescue is on the timeline as a status change.
    kinds = list(LeadEvent.objects.filter(lead_id=lead_id).values_list("kind", flat=True))
    assert kinds == ["created", "status"]
    # A redelivered fan-out changes nothing.
    assert fan_out(lead_id) is True
    assert OutboxEvent.objects.filter(lead_id=lead_id).count() == 1 and Delivery.objects.count() == 1


def test_fan_out_posts_the_new_lead_before_the_rest_of_the_journey(post_lead, acquisitions, settings, monkeypatch):
    """The New Lead is recorded and posted before the journey's transaction (timeline, address parts,
    assignment, valuation event): a failure there does not hold the announcement back, and the
    redelivered task finishes the journey without posting the message again."""
    import leads.services

    acquisitions("alice")
    with FakeSlack() as slack:
        settings.SLACK_BOT_TOKEN, settings.SLACK_API_BASE_URL = slack.token, slack.base_url
        settings.SLACK_DEFAULT_CHANNEL = "#leads"
        lead_id = post_lead().json()["id"]

        def database_gone(*, lead: Lead) -> None:
            raise OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(leads.services, "_assign_next_locked", database_gone)
        with pytest.raises(OperationalError):
            fan_out(lead_id)
        assert [m.text for m in slack.messages()] == [Delivery.objects.get(lead_id=lead_id).text]
        assert Delivery.objects.get(lead_id=lead_id).status == "sent"
        # The journey's transaction rolled back as a whole.
        assert not LeadEvent.objects.filter(lead_id=lead_id).exists()
        assert Lead.objects.get(id=lead_id).assigned_to is None

        monkeypatch.undo()
        assert fan_out(lead_id) is True  # the redelivery
        assert len(slack.messages()) == 1
        assert list(LeadEvent.objects.filter(lead_id=lead_id).values_list("kind", flat=True)) == ["created", "assigned"]
        assert Lead.objects.get(id=lead_id).assigned_to.username == "alice"


# --- Assignment -----------------------------------------------------------------------------


def test_round_robin_skips_inactive_and_non_staff(lead, post_lead, acquisitions):
    alice, _bob_inactive, carol = acquisitions("alice"), acquisitions("bob", active=False), acquisitions("carol")
    acquisitions("dave", staff=False)
    leads = [lead] + [
        Lead.objects.get(id=post_lead({**FORM, "phone": f"20655502{i:02d}", "email": ""}).json()["id"])
        for i in range(3)
    ]
    assigned = [lead_assign_round_robin(lead_id=item.id) for item in leads]
    assert [u.username for u in assigned] == ["alice", "carol", "alice", "carol"]
    assert [Lead.objects.get(id=item.id).assigned_to for item in leads] == [alice, carol, alice, carol]
    assert LeadEvent.objects.get(lead=lead, kind="assigned").message == "Assigned to alice (round-robin)"
    assert AssignmentCursor.objects.get().last_user_id == carol.pk


def test_assignment_is_idempotent(lead, acquisitions):
    acquisitions("alice")
    acquisitions("bob")
    assert lead_assign_round_robin(lead_id=lead.id).username == "alice"
    assert lead_assign_round_robin(lead_id=lead.id) is None
    assert LeadEvent.objects.filter(lead=lead, kind="assigned").count() == 1


def test_assignment_without_staff_leaves_lead_unassigned(lead):
    assert lead_assign_round_robin(lead_id=lead.id) is None
    lead.refresh_from_db()
    assert lead.assigned_to is None


# --- Claim ----------------------------------------------------------------------------------


def test_lead_claim_first_wins_second_gets_the_claimer(lead, acquisitions):
    alice, bob = acquisitions("alice"), acquisitions("bob")
    assert lead_claim(lead_id=lead.id, user=alice) == (True, alice)
    assert lead_claim(lead_id=lead.id, user=bob) == (False, alice)
    lead.refresh_from_db()
    assert lead.assigned_to == alice and lead.claimed_at is not None
    claims = LeadEvent.objects.filter(lead=lead, kind="claimed")
    assert [(c.message, c.actor) for c in claims] == [("Claimed by alice from Slack", alice)]
    assert list(Delivery.objects.filter(event_type="lead_claimed").values_list("key", flat=True)) == [
        f"lead:{lead.id}:lead_claimed"
    ]


# --- Speed-to-lead --------------------------------------------------------------------------


def test_sla_breach_raised_once_per_lead(post_lead, acquisitions, settings):
    settings.LEAD_SLA_MINUTES = 5
    alice = acquisitions("alice")
    old = [post_lead({**FORM, "phone": f"20655503{i:02d}", "email": ""}).json()["id"] for i in range(3)]
    fresh = post_lead({**FORM, "phone": "2065550399", "email": ""}).json()["id"]
    Lead.objects.filter(id__in=old).update(created_at=timezone.now() - datetime.timedelta(minutes=6))
    lead_assign_round_robin(lead_id=old[0])
    lead_update(lead_id=old[2], status="contacted")

    assert lead_sla_breaches_raise() == 2
    assert lead_sla_breaches_raise() == 0
    breaches = LeadEvent.objects.filter(kind="sla_breach").order_by("lead__created_at")
    assert {str(e.lead_id) for e in breaches} == {old[0], old[1]}
    assert LeadEvent.objects.get(lead_id=old[0], kind="sla_breach").message == (
        "Not contacted within 5 min; assigned to alice"
    )
    assert LeadEvent.objects.get(lead_id=old[1], kind="sla_breach").message == "Not contacted within 5 min; unassigned"
    assert Lead.objects.get(id=fresh).sla_breached_at is None
    deliveries = Delivery.objects.filter(event_type="sla_breach")
    assert sorted(deliveries.values_list("key", flat=True)) == sorted(f"lead:{i}:sla_breach" for i in old[:2])
    assigned = deliveries.get(lead_id=old[0]).payload
    assert (assigned["assignee"], assigned["assignee_username"], assigned["sla_minutes"]) == (
        "alice",
        alice.username,
        5,
    )
