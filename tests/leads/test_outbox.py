"""The outbox: requests only write rows; the workers' pump publishes them as they commit, each once."""

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
from leads.outbox import BREAKER_SECONDS, OutboxPump, OutboxSpec, flow, outbox_add, outbox_relay, publisher
from leads.tasks import fan_out
from leadsite.celery import app
from notifications.models import Delivery
from tests.leads.conftest import FORM

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_breaker():
    publisher.reset()
    flow.reset()
    yield
    publisher.reset()
    flow.reset()


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

    yield url, redis.Redis(port=port), stop, start
    # Celery keeps the connection and producer pools it opened during the test: left pointing at
    # this (now stopped) server, they would fail the next tests' publishing with "connection refused".
    forget_broker_connections()


def forget_broker_connections() -> None:
    from kombu import pools

    pools.reset()  # closes every pooled connection and empties kombu's registry: new pools come next
    app._pool = None
    if "amqp" in app.__dict__:
        app.__dict__["amqp"]._producer_pool = None
    publisher.reset()


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
    # The lead journey's events; Slack deliveries start through the outbox too, notifications owns those.
    rows = OutboxEvent.objects.exclude(task_name__startswith="notifications.").order_by("id")
    return [(r.published_at is not None, r.attempts, r.last_error) for r in rows]


def wait_until(condition, timeout: float = 10.0) -> float:
    """Seconds until condition() held; fails the test after `timeout`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
def pump():
    """Start outbox pumps in this process, as a worker's main process runs one; stopped after the test."""
    started: list[OutboxPump] = []

    def start(**options: float) -> OutboxPump:
        started.append(OutboxPump(**options).start())
        return started[-1]

    yield start
    for each in started:
        each.stop()


def all_published() -> bool:
    return not OutboxEvent.objects.filter(published_at=None).exists()


def test_intake_writes_the_event_and_the_pump_publishes_it_once(private_broker, form_key, pump):
    _, broker, _, _ = private_broker
    status, _, lead_id = post(Client(), form_key)
    assert status == 201
    # The request wrote one event and no Slack delivery, and published nothing itself.
    assert published() == [(False, 0, "")]
    assert list(OutboxEvent.objects.values_list("task_name", flat=True)) == ["leads.fan_out"]
    assert Delivery.objects.count() == 0
    assert queued_tasks(broker) == Counter()

    # A worker's pump, idle for a minute unless woken: the insert trigger's NOTIFY wakes it.
    running = pump(idle_seconds=60)
    assert running.ready.wait(5)  # listening, and what was pending when it started is sent
    assert published() == [(True, 1, "")]
    assert queued_tasks(broker) == Counter({("leads.fan_out", lead_id): 1})

    # The fan-out task (run here as a worker would) writes its own events once, even when redelivered;
    # the pump publishes them within moments of the commit, though its idle wait is a minute.
    assert fan_out(lead_id) is True
    assert fan_out(lead_id) is True
    assert wait_until(all_published, timeout=5) < 5
    assert queued_tasks(broker) == Counter({("leads.fan_out", lead_id): 1, ("valuation.value_lead", lead_id): 1})
    assert published() == [(True, 1, "")] * 2
    assert running.published >= 2
    assert outbox_relay(grace=timedelta(0)) == 0


def test_a_commit_wakes_the_pump_at_once(private_broker, form_key, pump):
    _, broker, _, _ = private_broker
    assert pump(idle_seconds=60).ready.wait(5)  # listening
    client = Client()
    client.get("/api/health")
    waits = []
    for i in range(5):
        status, _, lead_id = post(client, form_key, phone=f"20655501{i:02d}", email="")
        assert status == 201
        waits.append(wait_until(lambda lead_id=lead_id: queued_tasks(broker)[("leads.fan_out", lead_id)] == 1, 5))
    # Woken by NOTIFY, not by its one-minute idle timeout.
    assert max(waits) < 1.0, waits


def test_broker_down_intake_answers_fast_and_the_pump_publishes_each_event_once(private_broker, form_key, pump):
    _, broker, stop_broker, start_broker = private_broker
    client = Client()
    client.get("/api/health")  # load the URLconf (and every app's API) before timing anything
    running = pump(idle_seconds=0.2)
    stop_broker()
    results = [post(client, form_key, phone=f"20655501{i:02d}", email="") for i in range(5)]
    assert [status for status, _, _ in results] == [201] * 5
    # Intake never talks to the broker: a dead broker costs it nothing.
    assert max(elapsed for _, elapsed, _ in results) < 1.0, results
    lead_ids = [lead_id for _, _, lead_id in results]
    # The pump tried (and failed) to publish the first one: nothing is marked published.
    wait_until(lambda: OutboxEvent.objects.get(lead_id=lead_ids[0]).attempts >= 1, timeout=5)
    assert [is_published for is_published, _, _ in published()] == [False] * 5
    first = OutboxEvent.objects.get(lead_id=lead_ids[0])
    assert first.attempts >= 1 and "Connection refused" in first.last_error

    # While the broker is still down a relay gives up quickly and keeps everything.
    started = time.monotonic()
    assert outbox_relay(grace=timedelta(0)) == 0
    assert time.monotonic() - started < 2.0
    assert OutboxEvent.objects.filter(published_at=None).count() == 5

    start_broker()
    # The pump retries after its breaker's pause and sends everything, once.
    wait_until(all_published, timeout=BREAKER_SECONDS + 5)
    assert running.published == 5
    assert outbox_relay(grace=timedelta(0)) == 0
    assert queued_tasks(broker) == Counter({("leads.fan_out", lead_id): 1 for lead_id in lead_ids})

    # Each fan-out then happens once, even if its message was delivered twice.
    for lead_id in lead_ids + lead_ids:
        fan_out(lead_id)
    wait_until(all_published, timeout=5)
    expected = Counter(
        {(task, lead_id): 1 for lead_id in lead_ids for task in ("leads.fan_out", "valuation.value_lead")}
    )
    assert queued_tasks(broker) == expected
    assert OutboxEvent.objects.filter(published_at=None).count() == 0
    assert Delivery.objects.filter(event_type="new_lead").count() == 5
    assert outbox_relay(grace=timedelta(0)) == 0


def test_beats_relay_leaves_fresh_rows_to_the_pumps(private_broker):
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


# --- Flow control: a backlog waits in PostgreSQL, not in the broker ------------------------------


def test_a_full_queue_holds_its_events_in_the_outbox_and_the_other_queues_go_on(private_broker, settings):
    _, broker, _, _ = private_broker
    settings.OUTBOX_BROKER_QUEUE_LIMIT = 3
    lead = Lead.objects.create(name="Ann", phone="+12065550123")
    outbox_add(
        events=[OutboxSpec(f"k-{i}", "leads.fan_out", {"lead_id": str(lead.id), "n": i}, lead.id) for i in range(10)]
        + [OutboxSpec("k-value", "valuation.value_lead", {"lead_id": str(lead.id)}, lead.id)]
    )
    # The lead journey's queue takes 3, then the rest of its events wait here; the valuation,
    # behind them in the table but on a queue with room, goes out.
    assert outbox_relay(grace=None) == 4
    assert (broker.llen("celery"), broker.llen("valuation")) == (3, 1)
    assert OutboxEvent.objects.filter(published_at=None).count() == 7
    assert outbox_relay(grace=None) == 0  # still full: nothing more

    # A worker takes two messages: two more go out, never above the limit, each event once.
    consumed: list[bytes] = []
    while OutboxEvent.objects.filter(published_at=None).exists():
        consumed += [broker.rpop("celery"), broker.rpop("celery")]
        outbox_relay(grace=None)
        assert broker.llen("celery") <= 3
    consumed += broker.lrange("celery", 0, -1)
    numbers = sorted(json.loads(base64.b64decode(json.loads(raw)["body"]))[1]["n"] for raw in consumed)
    assert numbers == list(range(10))


def test_the_pump_resumes_a_held_queue_as_soon_as_the_workers_make_room(private_broker, settings, pump):
    _, broker, _, _ = private_broker
    settings.OUTBOX_BROKER_QUEUE_LIMIT = 2
    lead = Lead.objects.create(name="Ann", phone="+12065550123")
    outbox_add(
        events=[OutboxSpec(f"k-{i}", "leads.fan_out", {"lead_id": str(lead.id), "n": i}, lead.id) for i in range(5)]
    )
    running = pump(idle_seconds=60)  # woken by nothing but its own short re-check while held
    assert running.ready.wait(5)
    wait_until(lambda: broker.llen("celery") == 2, timeout=5)
    assert OutboxEvent.objects.filter(published_at=None).count() == 3
    broker.rpop("celery")
    # Room for one: the pump sees it within moments, though no commit woke it.
    assert wait_until(lambda: OutboxEvent.objects.filter(published_at=None).count() == 2, timeout=5) < 2
    assert broker.llen("celery") == 2
