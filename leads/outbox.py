"""Transactional outbox: Celery tasks that must start because of a database change, without loss.

`outbox_add()` writes the events in the caller's transaction, so they commit (or roll back) with
the change that causes them. Nothing else happens on the caller's side: a request never touches
the broker. On PostgreSQL an insert trigger (migration leads 0010) sends a NOTIFY when the rows
commit, and the outbox pump that runs inside every Celery worker (`OutboxPump`, started by
leadsite.celery) wakes, claims the pending rows with SELECT ... FOR UPDATE SKIP LOCKED, publishes
them and marks them, a batch at a time. Several pumps (one per worker machine) share the work
without publishing a row twice. `outbox_relay()` is that claim-publish-mark step; beat also runs
it every few seconds for rows older than a grace period (a backstop when no worker is up), and
`manage.py outbox_relay` runs it by hand. The embedded database (SQLite, `make run`) has no NOTIFY
and one writer: there the writer publishes right after its own commit.

Delivery is at least once: a crash between publishing and marking the row sends it again, so
every consumer is idempotent (and keyed by the event's `key`).

Flow control: the relay publishes to a queue only while it holds fewer than
OUTBOX_BROKER_QUEUE_LIMIT messages (`broker_queue_sizes()`); when the workers fall behind, the
backlog waits here, in PostgreSQL, durable and in order, and goes out as they catch up. So the
broker holds a bounded buffer, and losing its data (flushed, evicted, a restart without
persistence) loses at most that buffer, which the effect-based repair (leads.repair) re-runs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
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


def outbox_add(*, events: Iterable[OutboxSpec], skip_existing: bool = False) -> list[OutboxEvent]:
    """Record events inside the caller's transaction; a pump publishes them once it commits.

    `skip_existing`: leave out events whose key is already recorded (a consumer that runs twice
    adds its follow-up events once; the caller serialises itself, e.g. with a row lock, and the
    unique key is the backstop).
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
    outbox_written(rows)
    return rows


def outbox_written(rows: list[OutboxEvent]) -> None:
    """After inserting outbox rows by other means (the intake's one-statement path): on the embedded
    database, publish them after commit; on PostgreSQL the insert trigger has woken the pumps."""
    if connection.vendor != "postgresql":
        transaction.on_commit(lambda: outbox_publish(rows))


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


def outbox_publish(rows: list[OutboxEvent]) -> int:
    """Publish these rows now if the broker answers and mark them; never raises, never waits long."""
    if publisher.broker_down():
        return 0
    sent, error = _send_all(rows)
    try:
        if sent:
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


@dataclass
class RelayResult:
    published: int = 0
    broker_error: Exception | None = None
    held: frozenset[str] = frozenset()  # queues at their limit: their rows were left pending


def broker_queue_sizes() -> dict[str, int] | None:
    """Messages waiting in each of the app's queues; None when the broker cannot tell (down)."""
    try:
        with publisher.producer() as producer:
            channel = producer.channel
            sizes = {}
            for name in app.amqp.queues:
                try:
                    sizes[name] = channel.queue_declare(queue=name, passive=True).message_count
                except producer.connection.channel_errors:
                    sizes[name] = 0  # never declared: nothing waits in it
            return sizes
    except Exception:  # noqa: BLE001 - no answer means no evidence of a backlog
        return None


_QUEUE_OF: dict[str, str] = {}


def _queue_of(task_name: str) -> str:
    """The queue a task is routed to (CELERY_TASK_ROUTES), remembered per name."""
    queue = _QUEUE_OF.get(task_name)
    if queue is None:
        route = app.amqp.router.route({}, task_name)
        queue = _QUEUE_OF[task_name] = route["queue"].name
    return queue


class _FlowControl:
    """How full the broker's queues are. Asks the broker at most every CHECK_SECONDS while none is
    full, and on every call while one is or when told `fresh` (the relay draining a backlog, a
    batch at a time), so publishing resumes as soon as the workers make room."""

    CHECK_SECONDS = 0.25

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}
        self._checked_at = 0.0

    def reset(self) -> None:
        with self._lock:
            self._sizes, self._checked_at = {}, 0.0

    def check(self, *, fresh: bool = False) -> tuple[frozenset[str], int | None]:
        """(the queues at the limit, how many more messages any other queue may take; None: no limit)."""
        limit = settings.OUTBOX_BROKER_QUEUE_LIMIT
        if not limit or publisher.broker_down():
            return frozenset(), None
        with self._lock:
            full = any(size >= limit for size in self._sizes.values())
            if fresh or full or time.monotonic() - self._checked_at >= self.CHECK_SECONDS:
                self._sizes = broker_queue_sizes() or {}
                self._checked_at = time.monotonic()
            held = frozenset(name for name, size in self._sizes.items() if size >= limit)
            if held and not full:
                logger.info("outbox: holding events for full queue(s) %s: %s", sorted(held), self._sizes)
            others = [size for name, size in self._sizes.items() if name not in held]
            return held, max(1, limit - max(others, default=0))


flow = _FlowControl()


def queue_full(task_name: str) -> bool:
    """Whether the queue this task goes to is at OUTBOX_BROKER_QUEUE_LIMIT (its work is in line)."""
    held, _ = flow.check(fresh=True)
    return _queue_of(task_name) in held


def outbox_relay(*, grace: timedelta | None = RELAY_GRACE, batch: int = RELAY_BATCH) -> int:
    """Publish pending events older than `grace` (all of them with None); returns how many went out.
    Safe to run concurrently: each batch is claimed with FOR UPDATE SKIP LOCKED."""
    return _relay(grace=grace, batch=batch).published


def _relay(*, grace: timedelta | None, batch: int) -> RelayResult:
    result = RelayResult()
    pending = OutboxEvent.objects.select_for_update(skip_locked=True).filter(published_at=None)
    first = True
    while True:
        # Flow control: nothing for a full queue, and no more at once than the others have room for.
        result.held, room = flow.check(fresh=not first)
        first = False
        size = batch if room is None else min(batch, room)
        with transaction.atomic():
            # Without a grace period there is no time filter at all: rows written on a machine whose
            # clock runs ahead must not wait for this one's to catch up.
            claimed = pending if not grace else pending.filter(created_at__lte=timezone.now() - grace)
            if result.held:
                claimed = claimed.exclude(task_name__in=_task_names_for(result.held))
            rows = list(claimed.order_by("id")[:size])
            if not rows:
                return result
            sent, error = _send_all(rows)
            if sent:
                _mark_published(sent)
            if error is not None:
                failed = [row for row in rows if row.id not in sent]
                # Only the first of them was tried; the others wait for the next run.
                OutboxEvent.objects.filter(id=failed[0].id).update(
                    attempts=F("attempts") + 1, last_error=str(error)[:1000]
                )
                logger.warning("outbox relay: broker unavailable, %d event(s) still pending: %s", len(failed), error)
                result.published += len(sent)
                result.broker_error = error
                return result
        result.published += len(sent)
        if len(rows) < size:
            return result  # nothing more pending (for the queues with room)


def _task_names_for(queues: frozenset[str]) -> list[str]:
    """The names of the tasks (registered with the app) that are routed to these queues."""
    return [name for name in app.tasks if not name.startswith("celery.") and _queue_of(name) in queues]


def outbox_rearm(*, keys: Iterable[str], reason: str) -> list[OutboxEvent]:
    """Publish these events again once the caller's transaction commits: they were published, but
    the effect they stand for never happened (the task was lost in the broker or died for good).

    For the effect-based repair (leads.repair). Consumers are idempotent, so re-arming an event
    whose task was only late is harmless. Returns the re-armed rows.
    """
    rows = list(OutboxEvent.objects.select_for_update().filter(key__in=list(keys)))
    if not rows:
        return []
    OutboxEvent.objects.filter(id__in=[row.id for row in rows]).update(published_at=None, last_error=reason[:1000])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {OUTBOX_CHANNEL}")  # the trigger fires on INSERT only
    outbox_written(rows)
    return rows


# --- The pump ----------------------------------------------------------------------------------

# The insert trigger's channel (migration leads 0010 creates the trigger with this name).
OUTBOX_CHANNEL = "leadsite_outbox"
PUMP_THREAD = "leads-outbox-pump"
# While a queue is at its limit the pump looks again this often.
HELD_POLL_SECONDS = 0.2


class OutboxPump:
    """Publishes outbox rows the moment they commit: one thread, woken by the insert trigger's NOTIFY.

    It LISTENs on a connection of its own and runs the relay without a grace period whenever it is
    woken, and at least every `idle_seconds` (a notification lost with a dropped connection only
    delays rows by that much). With the broker down it backs off for BREAKER_SECONDS at a time; with
    the database down it retries every `retry_seconds`. Runs in each Celery worker's main process
    (leadsite.celery); on the embedded database it does nothing (the writer publishes itself).
    """

    def __init__(self, *, idle_seconds: float = 1.0, retry_seconds: float = 1.0, batch: int = RELAY_BATCH) -> None:
        self.idle_seconds = idle_seconds
        self.retry_seconds = retry_seconds
        self.batch = batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = 0
        # Set once it LISTENs and has sent what was pending when it started.
        self.ready = threading.Event()

    def start(self) -> OutboxPump:
        if connection.vendor != "postgresql" or self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name=PUMP_THREAD, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        from django.db import close_old_connections

        listener = None
        upkeep_at = 0.0
        while not self._stop.is_set():
            try:
                if listener is None:
                    listener = _listen()
                result = _relay(grace=None, batch=self.batch)
                self.published += result.published
                self.ready.set()
                if result.broker_error is not None:
                    self._stop.wait(BREAKER_SECONDS)
                elif not result.published:
                    # Nothing to send: sleep until a commit NOTIFYs (or the idle timeout; while a
                    # queue is full, a short one, to resume as soon as the workers make room).
                    timeout = min(self.idle_seconds, HELD_POLL_SECONDS) if result.held else self.idle_seconds
                    for _ in listener.notifies(timeout=timeout, stop_after=1):
                        pass
            except Exception:  # noqa: BLE001 - the pump must outlive outages; rows wait in the table
                logger.warning("outbox pump: database unavailable, retrying", exc_info=True)
                listener = _close_quietly(listener)
                connection.close()
                self._stop.wait(self.retry_seconds)
            if time.monotonic() >= upkeep_at:
                # Django's connection upkeep (max age, a broken connection), not on every batch.
                close_old_connections()
                upkeep_at = time.monotonic() + 5.0
        _close_quietly(listener)
        connection.close()


def _listen() -> Any:
    import psycopg

    params = {
        k: v
        for k, v in connection.get_connection_params().items()
        if k not in ("cursor_factory", "context", "prepare_threshold")
    }
    listener = psycopg.connect(**params, autocommit=True)
    listener.execute(f"LISTEN {OUTBOX_CHANNEL}")
    return listener


def _close_quietly(listener: Any) -> None:
    if listener is not None:
        try:
            listener.close()
        except Exception:  # noqa: BLE001, S110 - closing a broken connection
            pass
