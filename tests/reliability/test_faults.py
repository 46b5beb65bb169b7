"""Fault injection against real processes: gunicorn, Celery workers, a private redis-server as the
broker, PostgreSQL behind a proxy the test can cut, the fake Slack, and beat's upkeep messages.

Each scenario ends the same way: every lead that got a 201 is announced exactly once in Slack,
assigned and valued (attempted), with no outbox event unsent, no delivery pending and nothing
left in the broker's queues (FaultRig.assert_every_accepted_lead_announced_once).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import requests
from django.db import connection

from leads.models import Lead, OutboxEvent
from tests.conftest import ALL_QUEUES, ROOT
from tests.reliability.conftest import BrokerWorker, FaultRig, TcpProxy, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]


def queued(rig: FaultRig) -> int:
    broker = rig.broker()
    return sum(broker.llen(queue) for queue in ALL_QUEUES.split(","))


def test_broker_stopped_during_a_burst_then_restarted(fault_rig: FaultRig):
    rig = fault_rig
    rig.start_web()
    rig.start_worker()
    rig.start_beat()
    session = requests.Session()
    for _ in range(8):
        assert rig.post_lead(session).status == 201

    rig.stop_broker()
    during = [rig.post_lead(session) for _ in range(8)]
    # The form never waits for the broker: accepted at once, the fan-out waits in the outbox.
    assert [post.status for post in during] == [201] * 8
    # (Each answers in milliseconds; the bound leaves room for a loaded 2-core CI machine.)
    assert max(post.seconds for post in during) < 2.0, [post.seconds for post in during]
    assert OutboxEvent.objects.filter(published_at=None).count() >= 8

    rig.restart_broker()  # back, and empty: whatever was queued in it is gone
    for _ in range(8):
        assert rig.post_lead(session).status == 201
    rig.assert_every_accepted_lead_announced_once()


def test_broker_data_flushed_after_the_leads_were_accepted(fault_rig: FaultRig):
    rig = fault_rig
    rig.start_web()
    session = requests.Session()
    for _ in range(12):
        assert rig.post_lead(session).status == 201
    # Published (by a relay, as a worker's pump would): every lead's fan-out is in the broker, and
    # the outbox counts it done...
    relay = subprocess.run(
        [sys.executable, "manage.py", "outbox_relay", "--grace", "0"],
        cwd=ROOT,
        env=rig.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert relay.returncode == 0, relay.stderr
    wait_until(lambda: not OutboxEvent.objects.filter(published_at=None).exists(), 15, "the outbox to publish")
    wait_until(lambda: queued(rig) == 12, 15, "12 fan-out messages in the broker")
    rig.broker().flushall()  # ...then lost.
    assert queued(rig) == 0

    rig.start_worker()
    rig.start_beat()
    rig.assert_every_accepted_lead_announced_once()
    # It was the effect-based repair that found them, not a redelivery.
    assert Lead.objects.filter(id__in=rig.accepted(), fan_out_repairs__gte=1).count() == 12


def test_worker_sigkilled_repeatedly_during_a_burst(fault_rig: FaultRig):
    rig = fault_rig
    rig.start_web()
    rig.start_worker()
    rig.start_beat()
    done = threading.Event()

    def burst(count: int = 30) -> None:
        session = requests.Session()
        for _ in range(count):
            rig.post_lead(session)
            time.sleep(0.1)
        done.set()

    sender = threading.Thread(target=burst, daemon=True)
    sender.start()
    for _ in range(3):
        time.sleep(1.0)
        rig.workers[-1].kill()  # SIGKILL to the whole worker (main process and its pool), mid-work
        rig.start_worker()
    sender.join(60)
    assert done.is_set()
    assert [p for p in rig.posts if p.status != 201] == []
    assert len(rig.accepted()) == 30
    rig.assert_every_accepted_lead_announced_once()


def test_database_unreachable_for_the_web_process(fault_rig: FaultRig, make_api_key):
    rig = fault_rig
    staff_key = make_api_key("leads:read", name="staff")
    db = connection.settings_dict
    proxy = TcpProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))).open()
    try:
        rig.start_web(DATABASE_URL=f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}")
        rig.start_worker()
        rig.start_beat()
        session = requests.Session()
        for _ in range(5):
            assert rig.post_lead(session).status == 201

        proxy.close()  # PostgreSQL is gone for the web process (its open connections cut too)
        down = [rig.post_lead(session) for _ in range(6)]
        # Fast and honest: 503 with Retry-After (checked by post_lead), JSON detail, within 2 s.
        assert [post.status for post in down] == [503] * 6, [(p.status, p.body) for p in down]
        assert {post.body["detail"] for post in down} == {"the database is unavailable; retry shortly"}
        assert max(post.seconds for post in down) < 2.0, [post.seconds for post in down]
        started = time.monotonic()
        listing = session.get(f"{rig.base_url}/api/leads", headers={"X-Api-Key": staff_key}, timeout=10)
        assert (listing.status_code, time.monotonic() - started < 2.0) == (503, True)
        health = session.get(f"{rig.base_url}/api/health", timeout=10)
        assert health.status_code == 503 and health.headers["Retry-After"]
        assert health.json()["status"] == "down" and health.json()["database"].startswith("down")
        assert health.json()["broker"] == "ok"

        proxy.open()
        # Back: the next requests reconnect by themselves.
        wait_until(lambda: rig.post_lead(session).status == 201, 15, "intake to accept leads again")
        for _ in range(4):
            assert rig.post_lead(session).status == 201
        assert session.get(f"{rig.base_url}/api/health", timeout=10).json()["database"] == "ok"
        rig.assert_every_accepted_lead_announced_once()
    finally:
        proxy.close()


def test_database_unreachable_for_the_worker_then_back(fault_rig: FaultRig):
    """The worker keeps its PostgreSQL connections between tasks; when PostgreSQL goes away for it
    (its open connections cut, new ones refused) while the form keeps accepting leads, nothing is
    lost or doubled: once it is back, every lead is announced once, assigned and valued."""
    rig = fault_rig
    db = connection.settings_dict
    proxy = TcpProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))).open()
    try:
        rig.start_web()  # the web process reaches PostgreSQL directly
        worker = BrokerWorker(
            {**rig.env, "DATABASE_URL": f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}"},
            queues=ALL_QUEUES,
            concurrency=1,  # one pool process: every task after the outage meets the connections it kept
        )
        rig.workers.append(worker)
        worker.start()
        rig.start_beat()
        session = requests.Session()
        for _ in range(5):
            assert rig.post_lead(session).status == 201
        wait_until(lambda: len(rig.new_lead_posts()) == 5, 30, "the first leads announced")

        unavailable = "outbox pump: database unavailable"
        seen = worker.output().count(unavailable)
        proxy.close()  # PostgreSQL is gone for the worker, its kept connections cut mid-life
        for _ in range(10):
            assert rig.post_lead(session).status == 201
        # The worker has met the outage (its pump's connection failed) before PostgreSQL comes back.
        wait_until(lambda: worker.output().count(unavailable) > seen, 30, "the worker to meet the outage")
        proxy.open()
        rig.assert_every_accepted_lead_announced_once(timeout=90)
    finally:
        proxy.close()
