"""Quiet by default: routine upkeep does not flood the store at INFO; what helps debug a lead stays."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

import pytest

from logs.handler import stop_all
from logs.models import LogEntry


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition never became true")


@pytest.fixture
def store_on(transactional_db, settings) -> Iterator[None]:
    """This process's configured CentralLogHandler (settings.LOGGING) writes to the store."""
    settings.LOGS_TO_DATABASE = True
    # Records earlier tests' handlers dropped (a store down on purpose) are not this test's business:
    # without this the flusher would report them here, as a WARNING in the store.
    from logs.handler import _HANDLERS, STATS

    for handler in list(_HANDLERS):
        handler._dropped_reported = STATS["dropped"]
    yield
    stop_all()  # flushes and closes the flusher's connection, or the test database could not be dropped


@pytest.mark.worker
def test_a_real_worker_keeps_routine_task_chatter_out_and_other_tasks_in(start_worker):
    from leads.tasks import relay_outbox
    from leadsite.tasks import ping

    start_worker()  # writes to the store: LOGS_TO_DATABASE is on outside pytest
    for _ in range(3):
        relay_outbox.delay()
    task_id = ping.delay(uuid.uuid4().hex).id

    # One worker process works in order: once this ping's "succeeded" is stored, the relay runs were
    # too (the readiness ping's lines are there as well, so wait for this one's by its id).
    _wait_for(
        lambda: LogEntry.objects.filter(
            message__contains=f"leadsite.ping[{task_id}] succeeded", service="worker"
        ).exists()
    )
    ping_lines = list(LogEntry.objects.filter(message__contains="leadsite.ping[").values_list("level_name", "message"))
    assert any(level == "INFO" and "received" in message for level, message in ping_lines), ping_lines
    assert any(level == "INFO" and "succeeded" in message for level, message in ping_lines), ping_lines
    assert list(LogEntry.objects.filter(message__contains="leads.relay_outbox").values_list("message", flat=True)) == []


def test_beat_ticks_of_frequent_tasks_are_dropped_but_not_the_daily_ones(store_on):
    beat = logging.getLogger("celery.beat")
    # Exactly how celery.beat.Scheduler.apply_entry logs each due task.
    beat.info("Scheduler: Sending due task %s (%s)", "leads-relay-outbox", "leads.relay_outbox")
    beat.info("Scheduler: Sending due task %s (%s)", "notifications-daily-digest", "notifications.daily_digest")
    beat.warning("Scheduler: Sending due task %s (%s)", "leads-relay-outbox", "leads.relay_outbox")
    stop_all()
    assert list(LogEntry.objects.order_by("id").values_list("level_name", "message")) == [
        ("INFO", "Scheduler: Sending due task notifications-daily-digest (notifications.daily_digest)"),
        ("WARNING", "Scheduler: Sending due task leads-relay-outbox (leads.relay_outbox)"),
    ]


def test_favicon_404s_are_not_stored_but_api_requests_and_other_404s_are(store_on, client):
    assert client.get("/favicon.ico").status_code == 404
    assert client.get("/robots.txt").status_code == 404
    assert client.get("/no-such-page").status_code == 404
    assert client.get("/api/logs").status_code == 401
    stop_all()
    stored = list(LogEntry.objects.order_by("id").values_list("logger", "message"))
    assert not [row for row in stored if "favicon" in row[1] or "robots" in row[1]], stored
    assert ("django.request", "Not Found: /no-such-page") in stored
    access = [message for logger, message in stored if logger == "logs.access"]
    assert len(access) == 1 and access[0].startswith("GET /api/logs 401 in "), stored
