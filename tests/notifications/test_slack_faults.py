"""Fault injection for Slack and Stripe: real Celery workers, real gunicorn, private redis-servers
where Redis is faulted, the fake Slack. Each scenario is bounded and ends with every message posted
exactly once and nothing stuck."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
import requests
from django.core.cache import cache
from django.db import transaction

from leadsite.celery import app
from notifications.models import Delivery, Payment, StaffProfile, StripeEvent
from notifications.services import deliveries_sweep, delivery_send, notify
from tests.conftest import ROOT, WorkerProcess
from tests.notifications.conftest import new_lead_context
from tests.notifications.test_stripe_webhook import SECRET as STRIPE_SECRET
from tests.notifications.test_stripe_webhook import _checkout, _event, _sign

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

SIGNING_SECRET = "slack-signing-secret"
OPEN = ("pending", "sending", "failed")


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _notify_new_lead(lead) -> Delivery:
    with transaction.atomic():
        notify(event_type="new_lead", context=new_lead_context(lead), key=f"lead:{lead.id}:new_lead", lead_id=lead.id)
    return Delivery.objects.get(key=f"lead:{lead.id}:new_lead")


def _names(fake_slack) -> list[str]:
    return [m.text.split("\n")[1].split(" · ")[0] for m in fake_slack.messages() if m.text.startswith("🔥")]


def test_slack_500_then_429_then_hanging_then_timing_out_after_accepting_posts_each_message_once(
    slack_worker, fake_slack, make_lead
) -> None:
    slack_worker(concurrency=2, SLACK_TIMEOUT_SECONDS="1")
    fake_slack.fail_next("chat.postMessage", "http_500")
    fake_slack.fail_next("chat.postMessage", "ratelimited", retry_after=1)
    fake_slack.fail_next("chat.postMessage", "hang")  # stores nothing, never answers
    fake_slack.fail_next("chat.postMessage", "accept_late", delay=3)  # stores it, answers after the timeout
    leads = [make_lead(name=f"Lead {i}", phone=f"+1206555010{i}") for i in range(6)]

    for lead in leads:
        _notify_new_lead(lead)

    wait_until(lambda: Delivery.objects.filter(status="sent").count() == 6, 60, "all six deliveries sent")
    # Four failed calls, then five clean posts: the sixth message is the accepted one, adopted.
    assert Counter(fake_slack.outcomes()) == {"http_500": 1, "ratelimited": 1, "hang": 1, "accept_late": 1, "ok": 5}
    assert sorted(_names(fake_slack)) == sorted(lead.name for lead in leads)  # each once
    sent = dict(Delivery.objects.values_list("key", "ts"))
    stored = {m.text.split("\n")[1].split(" · ")[0]: m.ts for m in fake_slack.messages()}
    assert sent == {f"lead:{lead.id}:new_lead": stored[lead.name] for lead in leads}
    # The accepted-then-timed-out post was found in the channel's history, not posted again.
    assert any(c.method == "conversations.history" for c in fake_slack.calls)
    assert Delivery.objects.filter(status__in=OPEN).count() == 0
    assert deliveries_sweep() == {"stuck": 0, "requeued": 0}


def test_worker_killed_after_slack_accepted_the_post_still_posts_once(
    slack_worker, fake_slack, make_lead, slack_settings
) -> None:
    first = slack_worker(SLACK_TIMEOUT_SECONDS="30")
    fake_slack.fail_next("chat.postMessage", "accept_hang")  # Slack keeps it; the answer never comes
    lead = make_lead(name="Kim Killed")
    delivery = _notify_new_lead(lead)

    assert fake_slack.hung.wait(20), first.output()
    [stored] = fake_slack.messages()
    assert Delivery.objects.get(pk=delivery.pk).status == "sending"
    first.kill()  # SIGKILL while the post is in flight

    slack_worker()
    slack_settings.SLACK_SENDING_STALE_SECONDS = 1
    # What beat's sweep does every 30 s, run here until the row is stale enough to count as stuck.
    swept: list[dict[str, int]] = []
    wait_until(lambda: swept.append(deliveries_sweep()) or swept[-1]["stuck"] == 1, 10, "the stuck row swept")
    assert swept[-1] == {"stuck": 1, "requeued": 1}

    wait_until(lambda: Delivery.objects.get(pk=delivery.pk).status == "sent", 30, "the delivery sent")
    assert fake_slack.messages() == [stored]  # adopted from the history, not posted twice
    delivery.refresh_from_db()
    assert (delivery.ts, delivery.attempts) == (stored.ts, 2)
    assert deliveries_sweep() == {"stuck": 0, "requeued": 0}


def test_beat_requeues_a_pending_delivery_whose_task_was_flushed_from_the_broker(
    start_worker, fake_slack, slack_settings, make_lead, worker_env, request
) -> None:
    from leads.models import OutboxEvent
    from leads.outbox import outbox_relay

    lead = make_lead(name="Flo Flushed")
    _notify_new_lead(lead)  # no worker yet: the send task waits in the broker...
    assert outbox_relay(grace=None) == 1  # published, as a worker's pump would
    assert OutboxEvent.objects.filter(task_name="notifications.send_delivery", published_at=None).count() == 0
    _redis(os.environ["CELERY_BROKER_URL"]).flushdb()  # ...and the broker's data is lost

    env = {
        "SLACK_BOT_TOKEN": fake_slack.token,
        "SLACK_API_BASE_URL": fake_slack.base_url,
        "SLACK_SWEEP_GRACE_SECONDS": "2",
    }
    start_worker(**env)
    beat = BeatProcess({**worker_env, **env}).start()
    request.addfinalizer(beat.stop)

    # Beat's sweep (every 30 s) finds the row overdue and queues its task again.
    wait_until(lambda: Delivery.objects.get().status == "sent", 75, "the flushed delivery repaired by beat")
    assert _names(fake_slack) == ["Flo Flushed"]
    assert Delivery.objects.get().requeued_at is not None


def test_broker_paused_alerts_and_slack_interactions_answer_fast_and_post_once_after(
    fake_slack, slack_settings, redis_server, web_server, worker_env, make_lead, make_api_key, request
) -> None:
    broker_url, broker = redis_server()
    slack_env = {
        "CELERY_BROKER_URL": broker_url,
        "SLACK_BOT_TOKEN": fake_slack.token,
        "SLACK_API_BASE_URL": fake_slack.base_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    }
    base = web_server(**slack_env)
    worker = PrivateBrokerWorker({**worker_env, **slack_env}).start()
    request.addfinalizer(worker.stop)
    # A lead whose New Lead message is already in Slack, and a staff member who can claim it.
    lead = make_lead(name="Ann Seller")
    parent = _notify_new_lead(lead)
    delivery_send(delivery_id=parent.pk)
    parent.refresh_from_db()
    from django.contrib.auth import get_user_model

    bob = get_user_model().objects.create_user("bob", "bob@example.com", "pw", is_staff=True, first_name="Bob")
    StaffProfile.objects.create(user=bob, slack_user_id="UBOB")
    key = make_api_key("alerts:create")
    assert requests.get(f"{base}/api/health", timeout=20).status_code in (200, 503)  # warm the process up

    os.kill(broker.pid, signal.SIGSTOP)
    request.addfinalizer(lambda: os.kill(broker.pid, signal.SIGCONT))
    timings = {}
    started = time.monotonic()
    alert = requests.post(
        f"{base}/api/alerts",
        json={"message": "Disk almost full", "severity": "critical", "source": "ops"},
        headers={"X-Api-Key": key},
        timeout=10,
    )
    timings["alert"] = time.monotonic() - started
    started = time.monotonic()
    claim = _interaction(base, lead, parent.ts, fake_slack.response_url("claim"))
    timings["interaction"] = time.monotonic() - started
    assert (alert.status_code, alert.json()["collapsed"]) == (201, False)
    assert (claim.status_code, claim.json()["text"]) == (200, "✅ It's yours — you claimed this lead.")
    assert max(timings.values()) < 1.0, timings
    print(f"answers with the broker paused: {timings}")

    os.kill(broker.pid, signal.SIGCONT)
    # What beat's outbox relay does every 10 s.
    wait_until(lambda: _relay(worker_env, broker_url) == "published 0 outbox event(s)", 30, "the outbox drained")

    def texts() -> list[str]:
        return [m.text.split("\n")[0] for m in fake_slack.messages()]

    wait_until(lambda: len(texts()) == 3 and fake_slack.updates(), 30, "the alert, the claim reply and the edit")
    wait_until(lambda: [c for c in fake_slack.calls if c.method == "response/claim"], 30, "the ephemeral answer")
    assert sorted(texts()) == sorted(
        ["🔥 *New Lead!*", "🚨 *Alert!* Disk almost full", "🙋 *Claimed!* Bob took Ann Seller"]
    )
    [update] = fake_slack.updates()
    assert update.body["ts"] == parent.ts and update.text.endswith("Claimed by Bob")
    assert [c.body.get("text") for c in fake_slack.calls if c.method == "response/claim"] == [
        "✅ It's yours — you claimed this lead."
    ]
    wait_until(lambda: not Delivery.objects.filter(status__in=OPEN).exists(), 10, "no open deliveries")


def test_stripe_one_event_concurrently_and_out_of_order_is_one_payment_and_one_message(
    slack_worker, fake_slack, web_server
) -> None:
    slack_worker()
    base = web_server(STRIPE_WEBHOOK_SECRET=STRIPE_SECRET, GUNICORN_CMD_ARGS="--threads 8")
    # payment_intent.succeeded before checkout.session.completed, and Stripe retrying both.
    intent = _event("evt_pi9", id="pi_9", amount=9900, amount_received=9900, metadata={}, receipt_email=None)
    checkout = _checkout("evt_cs9", "pi_9")
    assert _stripe(base, _event("evt_warm", "customer.created"))[1] == "ignored"  # warm the process up

    assert _stripe(base, intent) == (200, "recorded")
    barrier = threading.Barrier(8)
    results: list[tuple[int, str]] = []

    def deliver(body: bytes) -> None:
        barrier.wait(10)
        results.append(_stripe(base, body))

    threads = [threading.Thread(target=deliver, args=(body,)) for body in [intent, checkout] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert results == [(200, "duplicate")] * 8
    payment = Payment.objects.get()
    assert (payment.payment_intent_id, payment.checkout_session_id, payment.customer, str(payment.amount)) == (
        "pi_9",
        "cs_7",  # (the shared _checkout helper's session id)
        "Cal Buyer",
        "99.00",
    )
    assert sorted(StripeEvent.objects.values_list("stripe_event_id", "payment_id")) == [
        ("evt_cs9", payment.pk),
        ("evt_pi9", payment.pk),
    ]
    wait_until(lambda: Delivery.objects.filter(status="sent").count() == 1, 30, "the payment announced")
    payments = [m.text for m in fake_slack.messages() if m.text.startswith("💰 *Payment!*")]
    # The first event had no name (it was the payment intent): the message says who paid from its own data.
    assert payments == ["💰 *Payment!* cus_1 paid $99.00"]
    assert Delivery.objects.count() == 1


def test_stripe_checkout_and_intent_at_the_same_moment_are_one_payment(slack_worker, fake_slack, web_server) -> None:
    slack_worker()
    base = web_server(STRIPE_WEBHOOK_SECRET=STRIPE_SECRET, GUNICORN_CMD_ARGS="--threads 8")
    intent = _event("evt_pi8", id="pi_8", amount=9900, amount_received=9900, metadata={}, receipt_email=None)
    checkout = _checkout("evt_cs8", "pi_8")
    assert _stripe(base, _event("evt_warm", "customer.created"))[1] == "ignored"
    barrier = threading.Barrier(8)
    results: list[tuple[int, str]] = []

    def deliver(body: bytes) -> None:
        barrier.wait(10)
        results.append(_stripe(base, body))

    threads = [threading.Thread(target=deliver, args=(body,)) for body in [checkout, intent] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(results) == [(200, "duplicate")] * 7 + [(200, "recorded")]
    assert Payment.objects.count() == 1
    assert StripeEvent.objects.count() == 2
    wait_until(lambda: Delivery.objects.filter(status="sent").count() == 1, 30, "the payment announced")
    assert len([m for m in fake_slack.messages() if m.text.startswith("💰 *Payment!*")]) == 1
    assert Delivery.objects.count() == 1


# --- helpers -----------------------------------------------------------------------------------


class PrivateBrokerWorker(WorkerProcess):
    """A worker on a broker other than this process's default one: its readiness ping goes there too."""

    def wait_ready(self, timeout: float = 30) -> None:
        marker = uuid.uuid4().hex
        with app.connection_for_write(self.env["CELERY_BROKER_URL"]) as conn:
            app.send_task("leadsite.ping", args=[marker], connection=conn)
        wait_until(lambda: cache.get(f"ping:{marker}") is not None, timeout, f"the worker:\n{self.output()}")


class BeatProcess:
    """A real `celery -A leadsite beat` (its schedule: the outbox relay, the Slack sweep, ...)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> BeatProcess:
        var = self.env["LEADSITE_VAR_DIR"]
        self.log = open(os.path.join(var, f"beat-{uuid.uuid4().hex[:6]}.log"), "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "leadsite",
                "beat",
                "--loglevel=INFO",
                "-s",
                os.path.join(var, f"beat-schedule-{uuid.uuid4().hex[:6]}"),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


def _redis(url: str):  # noqa: ANN202 - a redis.Redis
    import redis

    return redis.Redis.from_url(url)


def _relay(worker_env: dict[str, str], broker_url: str) -> str:
    """`manage.py outbox_relay --grace 0` on the private broker, as beat's relay would run it."""
    result = subprocess.run(
        [sys.executable, "manage.py", "outbox_relay", "--grace", "0"],
        cwd=ROOT,
        env={**worker_env, "CELERY_BROKER_URL": broker_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def _interaction(base: str, lead, message_ts: str, response_url: str) -> requests.Response:
    payload = {
        "type": "block_actions",
        "user": {"id": "UBOB"},
        "channel": {"id": "C1"},
        "message": {"ts": message_ts},
        "response_url": response_url,
        "actions": [{"action_id": "lead_claim", "value": str(lead.id), "type": "button"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    ts = str(int(time.time()))
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return requests.post(
        f"{base}/slack/interactions",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        },
        timeout=10,
    )


def _stripe(base: str, body: bytes) -> tuple[int, str]:
    response = requests.post(
        f"{base}/api/webhooks/stripe",
        data=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": _sign(body)},
        timeout=20,
    )
    return response.status_code, response.json().get("status", response.text)
