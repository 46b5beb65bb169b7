"""The intake's commit does not NOTIFY (that would serialise every lead's commit); its waker does,
after the commit, and every other outbox writer still NOTIFYs from the trigger."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction

from leads.intake.sql import insert_new_lead
from leads.intake.wake import outbox_wake
from leads.models import Lead, OutboxEvent
from leads.outbox import OUTBOX_CHANNEL, OutboxSpec, outbox_add

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listener() -> Iterator[Any]:
    params = {
        k: v
        for k, v in connection.get_connection_params().items()
        if k not in ("cursor_factory", "context", "prepare_threshold")
    }
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
        yield conn


def _notifications(listener: Any, timeout: float) -> int:
    return sum(1 for _ in listener.notifies(timeout=timeout, stop_after=1))


def _new_lead() -> bool:
    lead_id = uuid.uuid4()
    key = f"{lead_id.hex[:8]} maple st|98105"
    return insert_new_lead(
        lead={"id": lead_id, "name": "Jane", "phone": "+12065550123", "email": "", "address_key": key},
        outbox={"key": f"lead:{lead_id}:fan_out", "task_name": "leads.fan_out", "kwargs": {}, "lead_id": lead_id},
    )


def test_the_new_lead_commit_is_silent_and_the_waker_notifies_after_it(listener) -> None:
    assert _new_lead()
    assert (Lead.objects.count(), OutboxEvent.objects.count()) == (1, 1)
    assert _notifications(listener, timeout=1.0) == 0
    outbox_wake()
    assert _notifications(listener, timeout=10.0) == 1


def test_other_outbox_writers_still_notify_from_the_trigger(listener) -> None:
    with transaction.atomic():
        outbox_add(events=[OutboxSpec("test:other-writer", "leads.fan_out", {}, None)])
    assert _notifications(listener, timeout=10.0) == 1
