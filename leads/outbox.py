"""Transactional outbox: Celery tasks that must start because of a database change, without loss.

`outbox_add()` writes the events in the caller's transaction, so they commit (or roll back) with
the change that causes them. After commit they are handed to a publishing thread in the same
process (the request never waits on the broker), which sends them at once on a fail-fast broker
connection of this module's own and marks them published; if the broker is down the rows stay
pending. `outbox_relay()` (beat, every few seconds; `manage.py outbox_relay` by hand) publishes
whatever is still pending, claiming rows with SELECT ... FOR UPDATE SKIP LOCKED so that two relays
never publish the same row.

Delivery is at least once: a crash between publishing and marking the row sends it again, so
every consumer is idempotent (and keyed by the event's `key`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from leads.models import OutboxEvent
from leadsite.celery import app
from leadsite.context import current_request_id, lead_id_var, request_id_var

logger = logging.getLogger(__name__)

# The relay leaves rows this young to the after-commit publisher of the request that wrote them.
RELAY_GRACE = timedelta(seconds=5)
RELAY_BATCH = 200
# After a failed publish this process stops trying for a while (the relay takes over), so a dead
# broker costs one short timeout per process per window, not one per event.
BREAKER_SECONDS = 5.0
# Our publishing connection gives up at once instead of kombu's default retry-forever-with-sleeps.
_FAIL_FAST = {"max_retries": 0, "socket_timeout": 0.5, "socket_connect_timeout": 0.5, "retry_on_timeout": False}


@dataclass(frozen=True)
class OutboxSpec:
    key: str
    task_name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    lead_id: uuid.UUID | str | None = None


def outbox_add(
    *, events: Iterable[OutboxSpec], skip_existing: bool = False, publish_now: bool = False
) -> list[OutboxEvent]:
    """Record events inside the caller's transaction; they are published after it commits.

    `skip_existing`: leave out events whose key is already recorded (a consumer that runs twice
    adds its follow-up events once; the caller serialises itself, e.g. with a row lock, and the
    unique key is the backstop). `publish_now`: publish on this thread right after commit instead of
    handing the rows to the publishing thread (for Celery tasks, which have no request to keep fast).
    """
    events = list(events)
    if skip_existing and events:
        existing = set(OutboxEvent.objects.filter(key__in=[e.key for e in events]).values_list("key", flat=True))
        events = [e for e in events if e.key not in existing]
    if not events:
        return []
    request_id = current_request_id() or ""
    rows = OutboxEvent.objects.bulk_create(
        OutboxEvent(key=e.key, task_name=e.task_name, kwargs=e.kwargs, lead_id=e.lead_id, request_id=request_id)
        for e in events
    )
    if publish_now:
        transaction.on_commit(lambda: outbox_publish(rows))
    else:
        transaction.on_commit(lambda: dispatcher.submit(rows))
    return rows


class _Publisher:
    """One fail-fast broker connection per thread (and per process, after a fork), plus a breaker."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._open_until = 0.0

    def broker_down(self) -> bool:
        return time.monotonic() < self._open_until

    def trip(self) -> None:
        self._open_until = time.monotonic() + BREAKER_SECONDS

    def reset(self) -> None:
        self._open_until = 0.0

    @contextmanager
    def producer(self) -> Iterator[Any]:
        local = self._local
        if getattr(local, "pid", None) != os.getpid() or getattr(local, "url", None) != app.conf.broker_url:
            local.conn = app.connection_for_write(transport_options=_FAIL_FAST)
            # One producer per connection, kept: building one per message costs more than sending it.
            local.producer = app.amqp.Producer(local.conn, auto_declare=False)
            _reuse_redis_client(local.producer.channel)
            local.pid, local.url = os.getpid(), app.conf.broker_url
        try:
            yield local.producer
        except Exception:
            # Whatever broke, start from a fresh connection next time.
            local.conn.release()
            local.pid = None
            raise

    def send(self, row: OutboxEvent) -> None:
        # The task's headers carry the correlation ids of the request that wrote the row
        # (leadsite.celery copies them from these contextvars), even when the relay sends it later.
        tokens = (
            request_id_var.set(row.request_id or current_request_id()),
            lead_id_var.set(str(row.lead_id) if row.lead_id else lead_id_var.get()),
        )
        try:
            with self.producer() as producer:
                app.send_task(row.task_name, kwargs=row.kwargs, producer=producer)
        finally:
            request_id_var.reset(tokens[0])
            lead_id_var.reset(tokens[1])


def _reuse_redis_client(channel: Any) -> None:
    """kombu's Redis channel builds a new redis.Redis client (and its table of ~170 response
    callbacks) for every message it sends; this channel belongs to one thread, so keep one."""
    create = getattr(channel, "_create_client", None)
    if create is None or not hasattr(channel, "conn_or_acquire"):
        return  # not the Redis transport
    client = create()
    channel._create_client = lambda asynchronous=False: create(asynchronous=True) if asynchronous else client


publisher = _Publisher()


def _send_all(rows: list[OutboxEvent]) -> tuple[list[int], Exception | None]:
    sent: list[int] = []
    for row in rows:
        try:
            publisher.send(row)
        except Exception as exc:  # noqa: BLE001 - any broker failure leaves the rest for the relay
            publisher.trip()
            return sent, exc
        sent.append(row.id)
    publisher.reset()
    return sent, None


def _no_wal_flush_wait() -> None:
    """On the publisher thread's own connection, commits need not wait for the WAL flush: a mark
    lost in a crash only means the relay publishes that event again (consumers are idempotent)."""
    if connection.vendor != "postgresql" or threading.current_thread().name != _PUBLISHER_THREAD:
        return
    connection.ensure_connection()
    raw = connection.connection
    if getattr(_marked, "conn", None) is not raw:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")
        _marked.conn = raw


_PUBLISHER_THREAD = "leads-outbox-publisher"
_marked = threading.local()


def outbox_publish(rows: list[OutboxEvent]) -> int:
    """Publish these rows now if the broker answers and mark them; never raises, never waits long."""
    if publisher.broker_down():
        return 0
    sent, error = _send_all(rows)
    try:
        if sent:
            _no_wal_flush_wait()
            _mark_published(sent)
        if error is not None:
            failed = [row.id for row in rows if row.id not in sent]
            logger.warning("broker unavailable, %d outbox event(s) left for the relay: %s", len(failed), error)
            OutboxEvent.objects.filter(id=failed[0], published_at=None).update(
                attempts=F("attempts") + 1, last_error=str(error)[:1000]
            )
    except Exception:  # noqa: BLE001 - the lead is committed; the relay repairs the bookkeeping
        logger.exception("could not mark outbox events published; the relay may publish them again")
    return len(sent)


_MARK_PUBLISHED_SQL = (
    f"UPDATE {OutboxEvent._meta.db_table} SET published_at = %s, attempts = attempts + 1"
    " WHERE id = ANY(%s) AND published_at IS NULL"
)


def _mark_published(ids: list[int]) -> None:
    if connection.vendor != "postgresql":
        OutboxEvent.objects.filter(id__in=ids, published_at=None).update(
            published_at=timezone.now(), attempts=F("attempts") + 1
        )
        return
    # Once per batch on the hot path: plain SQL, without the ORM's query building.
    with connection.cursor() as cursor:
        cursor.execute(_MARK_PUBLISHED_SQL, [timezone.now(), ids])


class _Dispatcher:
    """One publishing thread per process, fed by after-commit hooks.

    A request only puts its committed rows on an in-process queue (microseconds); the thread
    publishes them and marks them with one UPDATE per batch. Under load that is one write for
    many requests, and a slow or dead broker never touches a request's latency. If the process
    dies with rows still queued, they are in the database and the relay sends them.
    """

    MAX_BATCH = 500
    CONNECTION_UPKEEP_SECONDS = 5.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._pid: int | None = None
        self._queue: queue.SimpleQueue[list[OutboxEvent]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._in_flight = 0

    def submit(self, rows: list[OutboxEvent]) -> None:
        if connection.vendor == "sqlite":
            # The embedded database has one writer at a time; a second writing thread would only
            # make the request's next transaction fail with "database is locked".
            outbox_publish(rows)
            return
        with self._lock:
            if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
                if self._pid != os.getpid():  # forked: the parent's queue and thread are not ours
                    self._queue, self._in_flight = queue.SimpleQueue(), 0
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name=_PUBLISHER_THREAD, daemon=True)
                self._thread.start()
            self._in_flight += len(rows)
        self._queue.put(rows)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far has been handled (tests, shutdown)."""
        with self._done:
            return self._done.wait_for(lambda: self._in_flight == 0, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued work, close the thread's database connection and end the thread."""
        with self._lock:
            thread = self._thread if self._pid == os.getpid() else None
            self._thread = None
        if thread is not None and thread.is_alive():
            self._queue.put(None)  # type: ignore[arg-type]
            thread.join(timeout)

    def _run(self) -> None:
        from django.db import close_old_connections

        upkeep_at = 0.0
        while True:
            first = self._queue.get()
            if first is None:
                connection.close()
                return
            rows = list(first)
            while len(rows) < self.MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # type: ignore[arg-type]  # stop after this batch
                    break
                rows.extend(more)
            failed = False
            try:
                outbox_publish(rows)
            except Exception:  # noqa: BLE001 - the thread must survive; the relay covers these rows
                failed = True
                logger.exception("outbox publisher failed; the relay will send these events")
            finally:
                # Django's connection upkeep (max age, dropping a broken connection) at most every few
                # seconds: run per batch, it would cost a health-check round trip every time.
                if failed or connection.errors_occurred or time.monotonic() >= upkeep_at:
                    close_old_connections()
                    upkeep_at = time.monotonic() + self.CONNECTION_UPKEEP_SECONDS
                with self._done:
                    self._in_flight -= len(rows)
                    self._done.notify_all()


dispatcher = _Dispatcher()


def outbox_relay(*, grace: timedelta = RELAY_GRACE, batch: int = RELAY_BATCH) -> int:
    """Publish pending events older than `grace`; returns how many went out. Safe to run concurrently."""
    total = 0
    while True:
        with transaction.atomic():
            rows = list(
                OutboxEvent.objects.select_for_update(skip_locked=True)
                .filter(published_at=None, created_at__lte=timezone.now() - grace)
                .order_by("id")[:batch]
            )
            if not rows:
                return total
            sent, error = _send_all(rows)
            if sent:
                OutboxEvent.objects.filter(id__in=sent).update(
                    published_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
                )
            if error is not None:
                failed = [row for row in rows if row.id not in sent]
                # Only the first of them was tried; the others wait for the next run.
                OutboxEvent.objects.filter(id=failed[0].id).update(
                    attempts=F("attempts") + 1, last_error=str(error)[:1000]
                )
                logger.warning("outbox relay: broker unavailable, %d event(s) still pending: %s", len(failed), error)
                return total + len(sent)
        total += len(sent)
        if len(rows) < batch:
            return total


def outbox_rearm(*, keys: Iterable[str], reason: str) -> list[OutboxEvent]:
    """Publish these events again after the caller's transaction commits: they were published, but
    the effect they stand for never happened (the task was lost in the broker or died for good).

    For the effect-based repair (leads.repair). Consumers are idempotent, so re-arming an event
    whose task was only late is harmless. Returns the re-armed rows.
    """
    rows = list(OutboxEvent.objects.select_for_update().filter(key__in=list(keys)))
    if not rows:
        return []
    OutboxEvent.objects.filter(id__in=[row.id for row in rows]).update(published_at=None, last_error=reason[:1000])
    transaction.on_commit(lambda: outbox_publish(rows))
    return rows
