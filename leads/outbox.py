"""Transactional outbox: Celery tasks that must start because of a database change, without loss.

`outbox_add()` writes the events in the caller's transaction, so they commit (or roll back) with
the change that causes them. After commit they are published at once, on a fail-fast broker
connection of this module's own; if the broker is down the request still answers and the rows stay
pending. `outbox_relay()` (beat, every few seconds; `manage.py outbox_relay` by hand) publishes
whatever is still pending, claiming rows with SELECT ... FOR UPDATE SKIP LOCKED so that two relays
never publish the same row.

Delivery is at least once: a crash between publishing and marking the row sends it again, so
every consumer is idempotent (and keyed by the event's `key`).
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

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from leads.models import OutboxEvent
from leadsite.celery import app
from leadsite.context import current_request_id, lead_id_var, request_id_var

logger = logging.getLogger(__name__)

# The relay leaves rows this young to the after-commit publisher of the request that wrote them.
RELAY_GRACE = timedelta(seconds=5)
RELAY_BATCH = 200
# After a failed publish this process stops trying inline for a while (the relay takes over), so a
# dead broker costs one request per process per window a short timeout, not every request.
BREAKER_SECONDS = 5.0
# Our publishing connection gives up at once instead of kombu's default retry-forever-with-sleeps.
_FAIL_FAST = {"max_retries": 0, "socket_timeout": 0.5, "socket_connect_timeout": 0.5, "retry_on_timeout": False}


@dataclass(frozen=True)
class OutboxSpec:
    key: str
    task_name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    lead_id: uuid.UUID | str | None = None


def outbox_add(*, events: Iterable[OutboxSpec]) -> list[OutboxEvent]:
    """Record events inside the caller's transaction; they are published after it commits."""
    request_id = current_request_id() or ""
    rows = OutboxEvent.objects.bulk_create(
        OutboxEvent(key=e.key, task_name=e.task_name, kwargs=e.kwargs, lead_id=e.lead_id, request_id=request_id)
        for e in events
    )
    if rows:
        transaction.on_commit(lambda: outbox_publish(rows))
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
    def connection(self) -> Iterator[Any]:
        local = self._local
        if getattr(local, "pid", None) != os.getpid() or getattr(local, "url", None) != app.conf.broker_url:
            local.conn = app.connection_for_write(transport_options=_FAIL_FAST)
            local.pid, local.url = os.getpid(), app.conf.broker_url
        try:
            yield local.conn
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
            with self.connection() as conn:
                app.send_task(row.task_name, kwargs=row.kwargs, connection=conn)
        finally:
            request_id_var.reset(tokens[0])
            lead_id_var.reset(tokens[1])


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
    """After commit: publish these rows now if the broker answers; never raises, never waits long."""
    if publisher.broker_down():
        return 0
    sent, error = _send_all(rows)
    try:
        if sent:
            OutboxEvent.objects.filter(id__in=sent, published_at=None).update(
                published_at=timezone.now(), attempts=F("attempts") + 1
            )
        if error is not None:
            failed = [row.id for row in rows if row.id not in sent]
            logger.warning("broker unavailable, %d outbox event(s) left for the relay: %s", len(failed), error)
            OutboxEvent.objects.filter(id=failed[0], published_at=None).update(
                attempts=F("attempts") + 1, last_error=str(error)[:1000]
            )
    except Exception:  # noqa: BLE001 - the lead is committed; the relay repairs the bookkeeping
        logger.exception("could not mark outbox events published; the relay may publish them again")
    return len(sent)


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
