from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from logs.models import LogEntry
from logs.services import error_spike_check, log_entries_purge_expired
from logs.tasks import check_error_spike, purge_expired
from notifications.models import Alert, Delivery

NOW = datetime(2026, 3, 10, 12, 7, 30, tzinfo=UTC)


@pytest.mark.django_db
def test_retention_deletes_only_entries_older_than_the_setting_in_batches(settings, make_entry):
    # March 2026 has no day partitions in the test database: these rows sit in the default partition,
    # which retention empties row by row (bounded batches) with the exact cutoff.
    settings.LOG_RETENTION_DAYS = 30
    for i in range(7):
        make_entry(f"old {i}", time=NOW - timedelta(days=30, seconds=1 + i))
    make_entry("just inside", time=NOW - timedelta(days=30) + timedelta(seconds=1))
    make_entry("today", time=NOW)

    purged = log_entries_purge_expired(now=NOW, batch_size=3)
    assert (purged.days_dropped, purged.rows_deleted) == ([], 7)
    assert sorted(LogEntry.objects.values_list("message", flat=True)) == ["just inside", "today"]
    assert log_entries_purge_expired(now=NOW, batch_size=3).rows_deleted == 0


@pytest.mark.django_db
def test_one_retention_run_is_bounded_and_the_next_one_continues(settings, make_entry):
    settings.LOG_RETENTION_DAYS = 30
    for i in range(7):
        make_entry(f"old {i}", time=NOW - timedelta(days=31, seconds=i))
    assert log_entries_purge_expired(now=NOW, batch_size=2, max_batches=2).rows_deleted == 4
    assert LogEntry.objects.count() == 3
    assert log_entries_purge_expired(now=NOW, batch_size=2, max_batches=2).rows_deleted == 3
    assert LogEntry.objects.count() == 0


@pytest.mark.django_db
def test_the_beat_task_purges_with_the_real_clock(settings, make_entry):
    settings.LOG_RETENTION_DAYS = 1
    make_entry("ancient", time=datetime.now(tz=UTC) - timedelta(days=400))
    make_entry("fresh", time=datetime.now(tz=UTC))
    result = purge_expired()
    # The row in the default partition is deleted; of the day partitions the migration made a month
    # back, the oldest 7 (the per-run bound) are dropped whole.
    assert result["rows_deleted"] == 1
    yesterday = (datetime.now(tz=UTC) - timedelta(days=1)).date().isoformat()
    assert len(result["days_dropped"]) == 7 and all(day < yesterday for day in result["days_dropped"])
    assert list(LogEntry.objects.values_list("message", flat=True)) == ["fresh"]


def _errors(make_entry, count: int, at: datetime) -> None:
    for i in range(count):
        make_entry(f"boom {i}", time=at, level=logging.ERROR, service="worker")


SPIKE_MESSAGE = "Error spike: 5 or more errors logged within 5 minutes"


@pytest.mark.django_db
def test_no_alert_below_the_threshold(settings, make_entry):
    settings.LOG_ERROR_SPIKE_THRESHOLD = 5
    _errors(make_entry, 4, NOW - timedelta(minutes=1))
    make_entry("loud warning", time=NOW, level=logging.WARNING)
    _errors(make_entry, 3, NOW - timedelta(minutes=6))  # outside the 5-minute look-back
    assert error_spike_check(now=NOW) is None
    assert Alert.objects.count() == 0
    assert Delivery.objects.count() == 0


@pytest.mark.django_db
def test_a_spike_raises_one_notifications_alert_and_repeats_collapse_into_its_count(settings, make_entry):
    settings.LOG_ERROR_SPIKE_THRESHOLD = 5
    settings.ALERT_COLLAPSE_SECONDS = 600
    _errors(make_entry, 5, NOW - timedelta(minutes=2))

    alert = error_spike_check(now=NOW)
    assert alert is not None
    assert (alert.message, alert.severity, alert.source, alert.count) == (SPIKE_MESSAGE, "critical", "logs", 1)
    delivery = Delivery.objects.get()
    assert (delivery.event_type, delivery.key) == ("alert", f"alert:{alert.pk}")
    assert delivery.payload["message"] == SPIKE_MESSAGE
    assert delivery.payload["severity"] == "critical"

    # Still spiking a minute later: the same alert counts it, and no second message is queued.
    _errors(make_entry, 3, NOW)
    again = error_spike_check(now=NOW + timedelta(minutes=1))
    assert again is not None and again.pk == alert.pk
    assert Alert.objects.get().count == 2
    assert Delivery.objects.count() == 1
    assert Delivery.objects.get().payload["count"] == 2  # not posted yet: it will post with the count

    # After the collapse window a spike is news again.
    Alert.objects.update(first_seen=timezone.now() - timedelta(seconds=601), window=F("window") - 1)
    assert error_spike_check(now=NOW + timedelta(minutes=2)).pk != alert.pk
    assert Delivery.objects.count() == 2


@pytest.mark.django_db
def test_the_beat_task_checks_the_last_five_minutes(settings, make_entry):
    settings.LOG_ERROR_SPIKE_THRESHOLD = 2
    _errors(make_entry, 2, datetime.now(tz=UTC) - timedelta(seconds=30))
    assert check_error_spike() is True
    assert Alert.objects.get().source == "logs"
    settings.LOG_ERROR_SPIKE_THRESHOLD = 3
    assert check_error_spike() is False
