"""The outbox: published after commit, relayed when the broker was down, each event once."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.test import Client

from leads.models import Lead, OutboxEvent
from leads.outbox import OutboxSpec, dispatcher, outbox_add, outbox_relay, publisher
from leads.tasks import fan_out
from leadsite.celery import app
from notifications.models import Delivery
from tests.leads.conftest import FORM

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_breaker():
    publisher.reset()
    yield
    publisher.reset()


@pytest.fixture
def private_broker(redis_server, monkeypatch):
    """Point this process's Celery app at a private redis-server; returns (url, port, redis client, restart)."""
    url, proc = redis_server()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    # Celery reads CELERY_BROKER_URL from the environment before its own settings.
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    assert app.conf.broker_url == url
    state = {"proc": proc}

    def stop() -> None:
        state["proc"].terminate()
        state["proc"].wait(5)

    def start() -> None:
        _, state["proc"] = redis_server(port=port)

    return url, redis.Redis(port=port), stop, start


def queued_tasks(client: redis.Redis, queues: tuple[str, ...] = ("celery", "valuation")) -> Counter:
    """(task name, lead_id) of every lead-journey message waiting in Celery's queues on Redis
    (valuations have a queue of their own: leadsite.settings CELERY_TASK_ROUTES)."""
    seen: Counter = Counter()
    for raw in (raw for queue in queues for raw in client.lrange(queue, 0, -1)):
        message = json.loads(raw)
        task = message["headers"]["task"]
        if task.startswith(("leads.", "valuation.")):  # not the Slack deliveries, which notifications own
            _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            seen[(task, kwargs.get("lead_id"))] += 1
    return seen


def post(client: Client, key: str, **overrides: object) -> tuple[int, float, str]:
    started = time.monotonic()
    response = client.post(
        "/api/leads", json.dumps({**FORM, **overrides}), content_type="application/json", HTTP_X_API_KEY=key
    )
    return response.status_code, time.monotonic() - started, response.json()["id"]


def published() -> list[tuple[bool, int, str]]:
    assert dispatcher.flush(), "the outbox publisher thread did not finish"
    # The lead journey's events; Slack deliveries start through the outbox too, notifications owns those.
    rows = OutboxEvent.objects.exclude(task_name__startswith="notifications.").order_by("id")
    return [(r.published_at is not None, r.attempts, r.last_error) for r in rows]


def test_events_go_out_once_after_commit(private_broker, form_key):
    _, broker, _, _ = private_broker
    status, _, lead_id = post(Client(), form_key)
    assert status == 201
    # The request wrote one event and no Slack delivery; this process's publisher thread sent it
    # right after the commit, not the relay.
    assert published() == [(True, 1, "")]
    assert list(OutboxEvent.objects.values_list("task_name", flat=True)) == ["leads.fan_out"]
    assert Delivery.objects.count() == 0
    assert queued_tasks(broker) == Counter({("leads.fan_out", lead_id): 1})
    # The relay finds nothing left to do: nothing is published twice.
    assert outbox_relay(grace=timedelta(0)) == 0

    # The fan-out task (run here as a worker would) publishes its own events once, even when redelivered.
    assert fan_out(lead_id) is True
    assert fan_out(lead_id) is True
    assert queued_tasks(broker) == Counter(
        {("leads.fan_out", lead_id): 1, ("leads.assign_lead", lead_id): 1, ("valuation.value_lead", lead_id): 1}
    )
    assert published() == [(True, 1, "")] * 3
    assert outbox_relay(grace=timedelta(0)) == 0


def test_broker_down_intake_answers_fast_and_relay_publishes_each_event_once(private_broker, form_key):
    _, broker, stop_broker, start_broker = private_broker
    client = Client()
    client.get("/api/health")  # load the URLconf (and every app's API) before timing anything
    stop_broker()
    results = [post(client, form_key, phone=f"20655501{i:02d}", email="") for i in range(5)]
    assert [status for status, _, _ in results] == [201] * 5
    # The first request notices the dead broker (fail-fast connection); the rest skip it.
    assert max(elapsed for _, elapsed, _ in results) < 1.0, results
    lead_ids = [lead_id for _, _, lead_id in results]
    assert [is_published for is_published, _, _ in published()] == [False] * 5
    first = OutboxEvent.objects.get(lead_id=lead_ids[0])
    assert first.attempts == 1 and "Connection refused" in first.last_error

    # While the broker is still down the relay gives up quickly and keeps everything.
    assert outbox_relay(grace=timedelta(0)) == 0
    assert OutboxEvent.objects.filter(published_at=None).count() == 5

    start_broker()
    assert outbox_relay(grace=timedelta(0)) == 5
    assert outbox_relay(grace=timedelta(0)) == 0
    assert queued_tasks(broker) == Counter({("leads.fan_out", lead_id): 1 for lead_id in lead_ids})
    assert OutboxEvent.objects.filter(published_at=None).count() == 0

    # Each fan-out then happens once, even if its message was delivered twice.
    for lead_id in lead_ids + lead_ids:
        fan_out(lead_id)
    expected = Counter(
        {
            (task, lead_id): 1
            for lead_id in lead_ids
            for task in ("leads.fan_out", "leads.assign_lead", "valuation.value_lead")
        }
    )
    assert queued_tasks(broker) == expected
    assert OutboxEvent.objects.filter(published_at=None).count() == 0
    assert Delivery.objects.filter(event_type="new_lead").count() == 5
    assert outbox_relay(grace=timedelta(0)) == 0


def test_relay_leaves_fresh_rows_to_their_request(private_broker):
    _, broker, _, _ = private_broker
    lead = Lead.objects.create(name="Ann", phone="+12065550123")
    OutboxEvent.objects.create(key="k-fresh", task_name="leads.assign_lead", kwargs={"lead_id": str(lead.id)})
    assert outbox_relay() == 0
    assert outbox_relay(grace=timedelta(0)) == 1
    assert queued_tasks(broker) == Counter({("leads.assign_lead", str(lead.id)): 1})


def test_concurrent_relays_publish_each_row_once(private_broker):
    _, broker, _, _ = private_broker
    lead = Lead.objects.create(name="Ann", phone="+12065550123")
    OutboxEvent.objects.bulk_create(
        OutboxEvent(key=f"k-{i}", task_name="leads.assign_lead", kwargs={"lead_id": str(lead.id), "n": i})
        for i in range(300)
    )
    counts: list[int] = []

    def relay() -> None:
        try:
            counts.append(outbox_relay(grace=timedelta(0), batch=50))
        finally:
            connection.close()

    threads = [threading.Thread(target=relay) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 300
    assert sum(queued_tasks(broker).values()) == 300
    assert OutboxEvent.objects.filter(published_at=None).count() == 0


def test_rolled_back_transaction_publishes_nothing(private_broker):
    from django.db import transaction

    _, broker, _, _ = private_broker
    lead = Lead.objects.create(name="Ann", phone="+12065550123")
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_add(events=[OutboxSpec("k-rollback", "leads.assign_lead", {"lead_id": str(lead.id)}, lead.id)])
        raise RuntimeError("boom")
    assert OutboxEvent.objects.count() == 0
    assert broker.llen("celery") == 0
