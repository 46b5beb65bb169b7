"""Effect-based repair: a lead whose fan-out effects are missing past the grace period gets them."""

from __future__ import annotations

import datetime
import json

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from leads.models import Lead, LeadEvent, OutboxEvent
from leads.outbox import outbox_relay
from leads.repair import REPAIR_MAX_ATTEMPTS, leads_fan_out_repair
from leads.tasks import fan_out
from notifications.models import Delivery
from tests.leads.conftest import FORM
from valuation.tasks import value_lead

pytestmark = pytest.mark.django_db(transaction=True)

LATER = datetime.timedelta(minutes=5)  # well past LEAD_REPAIR_GRACE_SECONDS (120 s)


def intake(form_key: str, **overrides: object) -> str:
    response = Client().post(
        "/api/leads", json.dumps({**FORM, **overrides}), content_type="application/json", HTTP_X_API_KEY=form_key
    )
    assert response.status_code == 201, response.content
    outbox_relay(grace=None)  # published, as a worker's pump would
    return response.json()["id"]


def run_journey(lead_id: str) -> None:
    """What a healthy worker does with the lead's messages."""
    fan_out(lead_id)
    value_lead(lead_id)


def kinds(lead_id: str) -> list[str]:
    # The fan-out's own entries; a `property` entry (the valuation locating the lead from its
    # address) is the valuation's business, not the fan-out's.
    return sorted(LeadEvent.objects.filter(lead_id=lead_id).exclude(kind="property").values_list("kind", flat=True))


def test_lead_whose_fan_out_task_was_lost_is_fanned_out_by_the_repair(form_key, acquisitions):
    alice = acquisitions("alice")
    lead_id = intake(form_key)
    # The fan-out event went to the broker (published), then the message was lost: nothing happened.
    assert OutboxEvent.objects.get(key=f"lead:{lead_id}:fan_out").published_at is not None
    assert kinds(lead_id) == []

    # Within the grace period the repair leaves it to the worker.
    report = leads_fan_out_repair()
    assert (report.checked, report.repaired) == (0, 0)

    report = leads_fan_out_repair(now=timezone.now() + LATER)
    assert report.as_dict() == {
        "checked": 1,
        "complete": 0,
        "repaired": 1,
        "missing": {"created": 1, "new_lead": 1, "assigned": 1, "valuation": 1},
        "deferred": False,
    }
    # The repair ran the worker's fan-out: the lead is assigned, and its valuation event written.
    assert kinds(lead_id) == ["assigned", "created"]
    assert Lead.objects.get(id=lead_id).assigned_to == alice
    assert Delivery.objects.filter(key=f"lead:{lead_id}:new_lead").count() == 1
    outbox_relay(grace=None)
    events = OutboxEvent.objects.filter(lead_id=lead_id).exclude(key__endswith=":fan_out")
    assert sorted(e.key.rsplit(":", 1)[1] for e in events if e.published_at) == ["valuation"]

    value_lead(lead_id)
    assert Lead.objects.get(id=lead_id).fan_out_done_at is None

    # Complete now: marked done once, never checked again.
    report = leads_fan_out_repair(now=timezone.now() + 2 * LATER)
    assert (report.checked, report.complete, report.repaired) == (1, 1, 0)
    assert Lead.objects.get(id=lead_id).fan_out_done_at is not None
    assert leads_fan_out_repair(now=timezone.now() + 3 * LATER).checked == 0
    assert kinds(lead_id) == ["assigned", "created", "valuation"]
    assert Delivery.objects.filter(lead_id=lead_id, event_type="new_lead").count() == 1


def test_published_valuation_that_never_happened_is_re_armed(form_key, acquisitions):
    acquisitions("alice")
    lead_id = intake(form_key)
    fan_out(lead_id)
    outbox_relay(grace=None)
    valuation = OutboxEvent.objects.get(key=f"lead:{lead_id}:valuation")
    assert valuation.published_at is not None and valuation.attempts == 1  # "published", yet never done

    report = leads_fan_out_repair(now=timezone.now() + LATER)
    assert (report.repaired, report.missing) == (1, {"valuation": 1})
    # Re-armed: pending again (the pumps are woken), then published again (a second attempt).
    assert OutboxEvent.objects.get(key=f"lead:{lead_id}:valuation").published_at is None
    outbox_relay(grace=None)
    valuation.refresh_from_db()
    assert valuation.published_at is not None and valuation.attempts == 2
    assert valuation.last_error == "re-armed by repair: valuation missing"
    # What did happen was left alone: one `created`, one assignment, one New Lead.
    assert kinds(lead_id) == ["assigned", "created"]
    assert Delivery.objects.filter(lead_id=lead_id, event_type="new_lead").count() == 1

    value_lead(lead_id)
    report = leads_fan_out_repair(now=timezone.now() + 2 * LATER)
    assert (report.complete, report.repaired) == (1, 0)


def test_an_assign_event_from_before_the_fan_out_assigned_itself_is_still_re_armed(form_key, acquisitions):
    """Outbox rows written by an older release (`lead:<id>:assign`) still count: a lost one is re-armed."""
    alice = acquisitions("alice")
    lead_id = intake(form_key)
    fan_out(lead_id)
    value_lead(lead_id)
    # As the old fan-out left it: unassigned, with a published assignment event that never ran.
    Lead.objects.filter(id=lead_id).update(assigned_to=None)
    LeadEvent.objects.filter(lead_id=lead_id, kind="assigned").delete()
    OutboxEvent.objects.create(
        key=f"lead:{lead_id}:assign",
        task_name="leads.assign_lead",
        kwargs={"lead_id": lead_id},
        lead_id=lead_id,
        published_at=timezone.now(),
        attempts=1,
    )
    report = leads_fan_out_repair(now=timezone.now() + LATER)
    assert (report.repaired, report.missing) == (1, {"assigned": 1})
    # The repair's fan-out assigned it, and the old event is re-armed too (its task is a no-op now).
    assert Lead.objects.get(id=lead_id).assigned_to == alice
    assert OutboxEvent.objects.get(key=f"lead:{lead_id}:assign").published_at is None
    assert LeadEvent.objects.filter(lead_id=lead_id, kind="assigned").count() == 1


def test_without_acquisitions_staff_an_unassigned_lead_is_complete(form_key):
    lead_id = intake(form_key)
    run_journey(lead_id)
    report = leads_fan_out_repair(now=timezone.now() + LATER)
    assert (report.checked, report.complete, report.repaired) == (1, 1, 0)


def test_spam_fans_out_to_nobody_even_through_the_repair(form_key, acquisitions):
    acquisitions("alice")
    lead_id = intake(form_key, website="http://spam.example")
    assert Lead.objects.get(id=lead_id).status == "spam"
    before = kinds(lead_id)  # intake's own record of the spam, if any
    report = leads_fan_out_repair(now=timezone.now() + LATER)
    assert report.checked == 0
    assert kinds(lead_id) == before and "assigned" not in before
    assert Delivery.objects.count() == 0
    assert not OutboxEvent.objects.filter(lead_id=lead_id).exclude(key__endswith=":fan_out").exists()


def test_a_lead_that_stays_incomplete_is_retried_after_the_grace_and_then_given_up(form_key, acquisitions):
    acquisitions("alice")
    lead_id = intake(form_key)
    now = timezone.now() + LATER
    assert leads_fan_out_repair(now=now).repaired == 1
    # Repaired a moment ago: not again until the grace period has passed.
    assert leads_fan_out_repair(now=now + datetime.timedelta(seconds=30)).checked == 0
    for attempt in range(2, REPAIR_MAX_ATTEMPTS + 1):
        # The valuation task keeps getting lost (never run here).
        now += LATER
        assert leads_fan_out_repair(now=now).repaired == 1, attempt
    assert Lead.objects.get(id=lead_id).fan_out_repairs == REPAIR_MAX_ATTEMPTS
    assert leads_fan_out_repair(now=now + LATER).checked == 0
    # However many times it ran, the journey's effects exist once.
    assert LeadEvent.objects.filter(lead_id=lead_id, kind="created").count() == 1
    assert Delivery.objects.filter(lead_id=lead_id, event_type="new_lead").count() == 1


def test_candidates_come_from_the_partial_index_not_the_whole_table(form_key, django_assert_num_queries):
    lead_id = intake(form_key)
    run_journey(lead_id)
    leads_fan_out_repair(now=timezone.now() + LATER)
    # Done leads cost nothing: one query that finds no candidate (and a count of the outbox's
    # pending rows, on a partial index).
    with django_assert_num_queries(3):  # the staff lookup, the outbox's backlog and the candidate query
        assert leads_fan_out_repair(now=timezone.now() + 2 * LATER).checked == 0
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a table of 1 row would otherwise be scanned
        sql, params = (
            Lead.objects.filter(fan_out_done_at=None, created_at__lte=timezone.now())
            .exclude(status="spam")
            .order_by("created_at")
            .values_list("id")[:500]
            .query.sql_with_params()
        )
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    assert "lead_fan_out_open_idx" in plan, plan


def test_with_a_broker_backlog_the_repair_only_marks_and_re_runs_nothing(form_key, acquisitions, monkeypatch):
    from leads import repair
    from leadsite.celery import app

    acquisitions("alice")
    done = intake(form_key, phone="2065550188", email="")
    run_journey(done)
    lost = intake(form_key)
    # The workers are behind: more messages wait in the broker than the limit allows.
    monkeypatch.setattr(repair, "REPAIR_BACKLOG_LIMIT", 3)
    with app.connection_for_write() as conn:
        for _ in range(4):
            app.send_task("leadsite.ping", args=["backlog"], connection=conn)
    try:
        report = leads_fan_out_repair(now=timezone.now() + LATER)
        assert (report.deferred, report.complete, report.repaired) == (True, 1, 0)
        assert kinds(lost) == [] and Lead.objects.get(id=done).fan_out_done_at is not None
    finally:
        app.control.purge()
    # Drained: the lost lead is repaired.
    report = leads_fan_out_repair(now=timezone.now() + LATER)
    assert (report.deferred, report.repaired) == (False, 1)
    assert kinds(lost) == ["assigned", "created"]
