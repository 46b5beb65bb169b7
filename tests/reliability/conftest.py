"""Fixtures of the reliability suite: the fault rig (real gunicorn, real workers, a private
redis-server as the broker, the fake Slack, beat's messages) and the end-of-scenario checks."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
import requests
from django.core.cache import cache

from tests.conftest import ALL_QUEUES, WorkerProcess
from tests.fakes.slack import FakeSlack
from tests.leads.conftest import FORM, acquisitions, form_key  # noqa: F401 - fixtures shared with the leads tests

# Beat's jobs that put lost work back on track; the rig sends them as beat would, every tick.
UPKEEP_TASKS = ("leads.relay_outbox", "leads.repair_fan_out", "notifications.sweep")
NEW_LEAD_LINE = "🔥 *New Lead!*"


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class BrokerWorker(WorkerProcess):
    """A worker on the rig's private broker: its readiness ping goes through that broker too."""

    def wait_ready(self, timeout: float = 90) -> None:
        from leadsite.celery import app

        markers: list[str] = []
        deadline = time.monotonic() + timeout
        next_ping = 0.0
        while time.monotonic() < deadline:
            # A ping published while a killed worker's queue bindings are being expired can be
            # routed nowhere (kombu's Redis transport): ping again every few seconds until one lands.
            if time.monotonic() >= next_ping:
                markers.append(uuid.uuid4().hex)
                with app.connection_for_write(self.env["CELERY_BROKER_URL"]) as conn:
                    app.send_task("leadsite.ping", args=[markers[-1]], connection=conn)
                next_ping = time.monotonic() + 5
            if any(cache.get(f"ping:{marker}") is not None for marker in markers):
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"worker did not start:\n{self.output()}")


@dataclass
class Post:
    status: int
    seconds: float
    body: dict[str, Any]


@dataclass
class FaultRig:
    """Everything one fault scenario runs on. `env` is what web and workers share."""

    env: dict[str, str]
    broker_url: str
    broker_port: int
    slack: FakeSlack
    form_key: str
    start_redis: Callable[..., tuple[str, subprocess.Popen]]
    broker_proc: subprocess.Popen
    web_server: Callable[..., str]
    workers: list[BrokerWorker] = field(default_factory=list)
    base_url: str = ""
    posts: list[Post] = field(default_factory=list)
    _beat_stop: threading.Event = field(default_factory=threading.Event)
    _beat: threading.Thread | None = None
    _serial: int = 0

    # --- processes ---
    def start_web(self, **overrides: str) -> str:
        self.base_url = self.web_server(**{**self.env, **overrides})
        assert requests.get(f"{self.base_url}/api/health", timeout=15).status_code in (200, 503)  # warm up
        return self.base_url

    def start_worker(self, concurrency: int = 2) -> BrokerWorker:
        worker = BrokerWorker(self.env, queues=ALL_QUEUES, concurrency=concurrency)
        self.workers.append(worker)  # stopped at the end even if it never became ready
        return worker.start()

    def stop_broker(self) -> None:
        self.broker_proc.kill()
        self.broker_proc.wait(5)

    def restart_broker(self) -> None:
        _, self.broker_proc = self.start_redis(port=self.broker_port)

    def broker(self) -> redis.Redis:
        return redis.Redis.from_url(self.broker_url, socket_timeout=2)

    def start_beat(self, interval: float = 1.0) -> None:
        """Send beat's upkeep messages every `interval` s, as `celery beat` does on its schedule
        (there: every 10 s, 30 s and 60 s; here faster, so a scenario fits in a minute)."""
        from leadsite.celery import app

        def tick() -> None:
            while not self._beat_stop.wait(interval):
                try:
                    with app.connection_for_write(self.broker_url) as conn:
                        conn.ensure_connection(max_retries=1, timeout=1)
                        for name in UPKEEP_TASKS:
                            app.send_task(name, connection=conn)
                except Exception:  # noqa: BLE001, S112 - a broker that is down now is the scenario
                    continue

        self._beat = threading.Thread(target=tick, name="fault-rig-beat", daemon=True)
        self._beat.start()

    def stop(self) -> None:
        self._beat_stop.set()
        if self._beat is not None:
            self._beat.join(5)
        for worker in self.workers:
            worker.stop()

    # --- traffic ---
    def post_lead(self, session: requests.Session | None = None, timeout: float = 30) -> Post:
        self._serial += 1
        body = {**FORM, "phone": f"206555{self._serial:04d}", "email": f"seller{self._serial}@example.com"}
        started = time.monotonic()
        try:
            response = (session or requests).post(
                f"{self.base_url}/api/leads", json=body, headers={"X-Api-Key": self.form_key}, timeout=timeout
            )
        except requests.RequestException as exc:
            # No answer at all is a failure of its own kind; the scenario's checks report it.
            post = Post(0, time.monotonic() - started, {"detail": repr(exc)})
            self.posts.append(post)
            return post
        post = Post(response.status_code, time.monotonic() - started, response.json())
        if post.status >= 500:
            assert post.status == 503, (post.status, post.body)
            assert response.headers.get("Retry-After"), "a 503 without Retry-After"
        self.posts.append(post)
        return post

    def accepted(self) -> list[str]:
        return [post.body["id"] for post in self.posts if post.status == 201]

    # --- the end of every scenario ---
    def new_lead_posts(self) -> Counter:
        """Lead id -> how many New Lead messages the fake Slack accepted for it."""
        seen: Counter = Counter()
        for call in self.slack.messages():
            if call.text.startswith(NEW_LEAD_LINE):
                body = json.dumps(call.body)
                for lead_id in self.accepted():
                    if lead_id in body:
                        seen[lead_id] += 1
        return seen

    def settled(self) -> bool:
        from leads.models import Lead, LeadEvent, OutboxEvent
        from notifications.models import Delivery

        ids = self.accepted()
        posts = self.new_lead_posts()
        return (
            all(posts[lead_id] >= 1 for lead_id in ids)
            and Lead.objects.filter(id__in=ids, assigned_to__isnull=False).count() == len(ids)
            and LeadEvent.objects.filter(lead_id__in=ids, kind="valuation").values("lead_id").distinct().count()
            == len(ids)
            and not OutboxEvent.objects.filter(published_at=None).exists()
            and not Delivery.objects.exclude(status="sent").exists()
        )

    def assert_every_accepted_lead_announced_once(self, timeout: float = 45) -> None:
        """Every 201 lead: one New Lead message, assigned, valuation attempted; nothing stuck or queued."""
        from leads.models import Lead, LeadEvent, OutboxEvent
        from notifications.models import Delivery

        ids = self.accepted()
        assert ids, "no lead was accepted"
        wait_until(self.settled, timeout, "every accepted lead announced, assigned and valued")
        # Nothing left in flight that could still post: the broker's queues are empty.
        broker = self.broker()
        wait_until(lambda: sum(broker.llen(q) for q in ALL_QUEUES.split(",")) == 0, 15, "the broker's queues to drain")
        assert self.new_lead_posts() == Counter({lead_id: 1 for lead_id in ids})
        assert Delivery.objects.filter(event_type="new_lead").count() == len(ids)
        assert LeadEvent.objects.filter(lead_id__in=ids, kind="created").count() == len(ids)
        assert LeadEvent.objects.filter(lead_id__in=ids, kind="assigned").count() == len(ids)
        assert Lead.objects.filter(id__in=ids, assigned_to__isnull=True).count() == 0
        assert not OutboxEvent.objects.filter(published_at=None).exists()
        assert list(Delivery.objects.exclude(status="sent").values_list("key", "status")) == []
        assert not [p for p in self.posts if p.status not in (200, 201, 503)]


@pytest.fixture
def fault_rig(
    worker_env: dict[str, str],
    redis_server,
    web_server,
    form_key: str,  # noqa: F811
    acquisitions,  # noqa: F811
) -> Iterator[FaultRig]:
    acquisitions("alice")
    acquisitions("bob")
    broker_url, broker_proc = redis_server()
    broker_url = broker_url.rsplit("/", 1)[0] + "/1"  # the broker's own database, as in production
    port = int(broker_url.rsplit(":", 1)[1].split("/")[0])
    with FakeSlack() as slack:
        env = {
            **worker_env,
            "CELERY_BROKER_URL": broker_url,
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_API_BASE_URL": slack.base_url,
            "SLACK_DEFAULT_CHANNEL": "#leads",
            # Slack's real pace (1/s per channel) would make a burst take minutes; not the point here.
            "SLACK_CHANNEL_RATE_PER_MINUTE": "6000",
            "SLACK_CHANNEL_BURST": "100",
            # Production waits minutes before calling work lost; a scenario has one minute in all.
            "LEAD_REPAIR_GRACE_SECONDS": "3",
            "SLACK_SENDING_STALE_SECONDS": "3",
            "SLACK_SWEEP_GRACE_SECONDS": "3",
        }
        rig = FaultRig(
            env=env,
            broker_url=broker_url,
            broker_port=port,
            slack=slack,
            form_key=form_key,
            start_redis=redis_server,
            broker_proc=broker_proc,
            web_server=web_server,
        )
        try:
            yield rig
        finally:
            rig.stop()


class TcpProxy:
    """127.0.0.1:<port> -> target, that the test can close (everything refused and cut) and reopen."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() first: close() alone does not wake the thread blocked in accept(), which
            # would go on accepting connections.
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
