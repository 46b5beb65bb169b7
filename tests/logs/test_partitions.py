"""The day-partitioned store on real PostgreSQL: routing, partitions made ahead and on demand, and
retention by dropping whole days while entries keep arriving."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection, connections

from logs.models import LogEntry
from logs.partitions import DEFAULT_PARTITION, forget_known_days, partition_days, partition_name, partitions_ensure
from logs.records import LogRow
from logs.services import log_entries_purge_expired, log_entries_write, partitions_maintain


def _row(when: datetime, message: str, service: str = "web") -> LogRow:
    return LogRow(
        time=when,
        level=logging.INFO,
        level_name="INFO",
        service=service,
        logger="tests",
        event="",
        message=message,
        context={},
        request_id="",
        lead_id="",
        exception="",
        host="test",
        process=None,
    )


def _table_of(message: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM logs_logentry WHERE message = %s", [message])
        return cursor.fetchone()[0]


def _today() -> date:
    return datetime.now(tz=UTC).date()


@pytest.mark.django_db
def test_entries_land_in_their_days_partition_or_the_default_one():
    with connection.cursor() as cursor:
        cursor.execute("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'logs_logentry'::regclass")
        assert cursor.fetchone() == ("r",)
    assert _today() in partition_days()
    now = datetime.now(tz=UTC)
    log_entries_write([_row(now, "today's entry"), _row(datetime(2020, 1, 1, tzinfo=UTC), "from 2020")])
    assert _table_of("today's entry") == partition_name(_today())
    assert _table_of("from 2020") == DEFAULT_PARTITION  # no partition that day: stored anyway
    assert LogEntry.objects.count() == 2


@pytest.mark.django_db
def test_the_writer_creates_a_missing_day_on_demand():
    forget_known_days()
    day = _today() + timedelta(days=6)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{partition_name(day)}"')  # as if the beat job had not run yet
    assert day not in partition_days()
    log_entries_write([_row(datetime(day.year, day.month, day.day, 13, tzinfo=UTC), "ahead of time")])
    assert day in partition_days()
    assert _table_of("ahead of time") == partition_name(day)
    # Outside the retention window and the week ahead, no table is made for a stray timestamp.
    log_entries_write([_row(datetime(2020, 1, 1, tzinfo=UTC), "stray")])
    assert _table_of("stray") == DEFAULT_PARTITION


@pytest.mark.django_db
def test_the_beat_job_keeps_a_week_of_partitions_ahead():
    forget_known_days()
    later = datetime.now(tz=UTC) + timedelta(days=40)
    created = partitions_maintain(now=later)
    days = set(partition_days())
    wanted = {later.date() + timedelta(days=offset) for offset in range(0, 8)}
    assert wanted <= days
    assert set(created) >= wanted
    assert partitions_maintain(now=later) == []  # idempotent


@pytest.mark.django_db
def test_a_day_whose_rows_are_in_the_default_partition_stays_there():
    forget_known_days()
    other = date(2019, 6, 1)
    LogEntry.objects.create(
        time=datetime(2019, 6, 1, 8, tzinfo=UTC), level=20, level_name="INFO", service="web", message="in default"
    )
    assert partitions_ensure([other]) == []  # PostgreSQL refuses: the default partition holds that day
    assert _table_of("in default") == DEFAULT_PARTITION


@pytest.mark.django_db(transaction=True)
def test_retention_drops_whole_expired_days_while_entries_keep_arriving(settings):
    settings.LOG_RETENTION_DAYS = 30
    forget_known_days()
    now = datetime.now(tz=UTC)
    cutoff = now - timedelta(days=30)
    expired = [(now - timedelta(days=offset)).date() for offset in range(35, 41)]
    kept = (now - timedelta(days=29)).date()
    partitions_ensure(expired)  # days from before this retention window (as if it had just been shortened)
    log_entries_write(
        [_row(datetime(d.year, d.month, d.day, 12, tzinfo=UTC), f"old {d}") for d in expired]
        + [_row(datetime(kept.year, kept.month, kept.day, 12, tzinfo=UTC), "recent enough")]
    )
    assert set(expired) <= set(partition_days())

    written = [0]
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            while not stop.is_set():
                log_entries_write([_row(datetime.now(tz=UTC), "arriving", service="concurrent") for _ in range(50)])
                written[0] += 50
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while written[0] < 500 and time.monotonic() < deadline:
            time.sleep(0.01)
        first = log_entries_purge_expired(max_days=2)
        rest = log_entries_purge_expired(max_days=50)
        while written[0] < 1000 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(10)

    assert errors == []
    # Bounded: the first run dropped only the two oldest days; the second run the rest.
    assert first.days_dropped == sorted(first.days_dropped) and len(first.days_dropped) == 2
    dropped = first.days_dropped + rest.days_dropped
    assert set(expired) <= set(dropped)
    assert all(datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1) <= cutoff for d in dropped)
    assert not set(dropped) & set(partition_days())
    assert first.rows_deleted == rest.rows_deleted == 0  # whole days went; no row was deleted one by one
    assert not LogEntry.objects.filter(message__startswith="old ").exists()
    assert LogEntry.objects.filter(message="recent enough").count() == 1
    assert LogEntry.objects.filter(service="concurrent").count() == written[0] >= 1000
