"""End to end with real processes: gunicorn, a Celery worker, redis-server stopped and started."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid

import pytest
import requests
from django.core.cache import cache
from django.test import Client

from leads.models import Lead, LeadEvent, OutboxEvent
from leadsite.celery import app
from notifications.models import Delivery
from tests.conftest import ROOT, WorkerProcess
from tests.leads.conftest import FORM

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_until(predicate, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def received(worker_output: str, task: str) -> list[str]:
    """Lead ids of every `task` the worker received (it logs each message with its kwargs)."""
    return re.findall(rf"Task {re.escape(task)}\[[0-9a-f-]+\] received", worker_output)


class PrivateBrokerWorker(WorkerProcess):
    """A worker on a broker other than this process's default one: its readiness ping goes there too."""

    def wait_ready(self, timeout: float = 30) -> None:
        marker = uuid.uuid4().hex
        with app.connection_for_write(self.env["CELERY_BROKER_URL"]) as conn:
            app.send_task("leadsite.ping", args=[marker], connection=conn)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cache.get(f"ping:{marker}") is not None:
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker did not start:\n{self.output()}")


def test_real_worker_consumes_the_new_leads_events(start_worker, acquisitions, form_key):
    alice = acquisitions("alice")
    worker = start_worker()
    response = Client().post(
        "/api/leads",
        json.dumps(FORM),
        content_type="application/json",
        HTTP_X_API_KEY=form_key,
        HTTP_X_REQUEST_ID="e2e-intake-request-1",
    )
    assert response.status_code == 201
    lead_id = response.json()["id"]
    wait_until(lambda: Lead.objects.filter(id=lead_id, assigned_to=alice).exists(), what="assignment by the worker")
    assigned = LeadEvent.objects.get(lead_id=lead_id, kind="assigned")
    # The correlation id of the form request followed the event into the worker.
    assert assigned.request_id == "e2e-intake-request-1"
    assert OutboxEvent.objects.filter(lead_id=lead_id, published_at=None).count() == 0
    # The worker ran the fan-out (timeline, Slack message, the assignment, the valuation event).
    created = LeadEvent.objects.get(lead_id=lead_id, kind="created")
    assert (created.request_id, created.created_at) == ("e2e-intake-request-1", Lead.objects.get(id=lead_id).created_at)
    new_lead = Delivery.objects.get(event_type="new_lead")
    assert new_lead.key == f"lead:{lead_id}:new_lead"
    wait_until(
        lambda: OutboxEvent.objects.filter(lead_id=lead_id, published_at__isnull=False).count() == 2,
        what="the fan-out's events published",
    )
    output = worker.output()
    assert len(received(output, "leads.fan_out")) == 1
    assert re.search(r"Task leads\.fan_out\[[0-9a-f-]+\] succeeded", output)
    # The fan-out assigned the lead itself (no task of its own) and posted the New Lead message
    # itself: no send task was queued for it, and it went out at the first attempt.
    assert received(output, "leads.assign_lead") == []
    wait_until(lambda: Delivery.objects.get(id=new_lead.id).status == "sent", what="the New Lead posted")
    assert Delivery.objects.get(id=new_lead.id).attempts == 1
    assert not OutboxEvent.objects.filter(task_name="notifications.send_delivery", kwargs__delivery_id=new_lead.id)


def test_broker_down_during_intake_then_every_event_published_once(
    web_server, redis_server, worker_env, acquisitions, form_key, request
):
    alice, bob = acquisitions("alice"), acquisitions("bob")
    broker_url, broker = redis_server()
    port = int(broker_url.rsplit(":", 1)[1].split("/")[0])
    base = web_server(CELERY_BROKER_URL=broker_url)
    assert requests.get(f"{base}/api/health", timeout=10).status_code in (200, 503)  # warm the process up

    broker.terminate()
    broker.wait(5)
    lead_ids, timings = [], []
    for i in range(4):
        started = time.monotonic()
        response = requests.post(
            f"{base}/api/leads",
            json={**FORM, "phone": f"20655504{i:02d}", "email": ""},
            headers={"X-Api-Key": form_key},
            timeout=10,
        )
        timings.append(time.monotonic() - started)
        assert response.status_code == 201, response.text
        lead_ids.append(response.json()["id"])
    assert max(timings) < 1.0, timings
    # One event per lead (its fan-out), nothing else of the journey yet.
    assert (
        list(OutboxEvent.objects.filter(published_at=None).values_list("task_name", flat=True)) == ["leads.fan_out"] * 4
    )
    assert Delivery.objects.count() == 0

    redis_server(port=port)  # the broker is back, empty
    relay_env = {**worker_env, "CELERY_BROKER_URL": broker_url}

    def relay() -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", "outbox_relay", "--grace", "0"],
            cwd=ROOT,
            env=relay_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    assert relay() == "published 4 outbox event(s)"
    assert relay() == "published 0 outbox event(s)"
    assert OutboxEvent.objects.filter(published_at=None).count() == 0

    # A worker on the recovered broker consumes each lead's events exactly once.
    worker = PrivateBrokerWorker(relay_env).start()
    request.addfinalizer(worker.stop)
    wait_until(
        lambda: Lead.objects.filter(id__in=lead_ids, assigned_to__isnull=False).count() == 4,
        what="every lead assigned",
    )
    time.sleep(1)  # anything published twice would arrive now
    wait_until(
        lambda: (
            OutboxEvent.objects.filter(published_at__isnull=False)
            .exclude(task_name__startswith="notifications.")
            .count()
            == 8
        ),
        what="every fan-out's events published",
    )
    time.sleep(1)  # anything published twice would arrive now
    output = worker.output()
    assert len(received(output, "leads.fan_out")) == 4
    assert received(output, "leads.assign_lead") == []
    assert len(re.findall(r"valuation\.value_lead\[[0-9a-f-]+\] received|'valuation\.value_lead'", output)) == 4
    assert sorted(Lead.objects.filter(id__in=lead_ids).values_list("assigned_to__username", flat=True)) == [
        "alice",
        "alice",
        "bob",
        "bob",
    ]
    assert LeadEvent.objects.filter(lead_id__in=lead_ids, kind="assigned").count() == 4
    assert LeadEvent.objects.filter(lead_id__in=lead_ids, kind="created").count() == 4
    assert Delivery.objects.filter(event_type="new_lead", lead_id__in=lead_ids).count() == 4
    assert OutboxEvent.objects.filter(published_at=None).count() == 0
    assert alice.pk and bob.pk


def test_the_worker_keeps_its_database_connections_and_replaces_a_dropped_one(start_worker, acquisitions, form_key):
    """Celery's Django fixup closes every connection around every task: a new PostgreSQL backend per
    task, two a lead, and the lead -> Slack latency with them. The worker keeps its connections as a
    web thread does, and when PostgreSQL drops them the next task still runs (once, with no retry)."""
    from django.db import connection

    from valuation.models import Valuation

    acquisitions("alice")
    worker = start_worker()

    def sessions() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            return cursor.fetchone()[0]

    def journey(i: int) -> str:
        body = {
            **FORM,
            "phone": f"(206) 555-{1000 + i}",
            "email": f"seller{i}@example.com",
            "address": f"{100 + i} Pine St, Seattle, WA 98101",
        }
        response = Client().post(
            "/api/leads", json.dumps(body), content_type="application/json", HTTP_X_API_KEY=form_key
        )
        assert response.status_code == 201, response.content
        lead_id = response.json()["id"]
        wait_until(
            lambda: (
                Lead.objects.filter(id=lead_id, assigned_to__isnull=False).exists()
                and Valuation.objects.filter(lead_id=lead_id).exists()
            ),
            what=f"lead {i}'s fan-out and valuation",
        )
        return lead_id

    journey(0)  # the worker's connections are open now
    before = sessions()
    for i in range(1, 11):
        journey(i)
    time.sleep(1.5)  # backends report their sessions to the statistics within a second
    # 20 tasks ran; without the fix that is 20+ new sessions (each task's, and each ended and reported).
    assert sessions() - before <= 3

    # PostgreSQL drops every connection but this test's (a restart, a failover, an idle timeout).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        assert cursor.fetchone()[0] >= 1
    lead_id = journey(11)
    assert LeadEvent.objects.filter(lead_id=lead_id, kind="assigned").count() == 1
    output = worker.output()
    assert "Retry in" not in output and "raised unexpected" not in output, output[-3000:]
