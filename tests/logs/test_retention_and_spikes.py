from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from logs.models import ErrorSpikeAlert, LogEntry
from logs.services import error_spike_check, log_entries_purge_expired
from logs.tasks import check_error_spike, purge_expired
from notifications.models import Delivery

NOW = datetime(2026, 3, 10, 12, 7, 30, tzinfo=UTC)


@pytest.mark.django_db
def test_retention_deletes_only_entries_older_than_the_setting_in_batches(settings, make_entry):
    settings.LOG_RETENTION_DAYS = 30
    for i in range(7):
        make_entry(f"old {i}", time=NOW - timedelta(days=30, seconds=1 + i))
    make_entry("just inside", time=NOW - timedelta(days=30) + timedelta(seconds=1))
    make_entry("today", time=NOW)

    assert log_entries_purge_expired(now=NOW, batch_size=3) == 7
    assert sorted(LogEntry.objects.values_list("message", flat=True)) == ["just inside", "today"]
    assert log_entries_purge_expired(now=NOW, batch_size=3) == 0


@pytest.mark.django_db
def test_the_beat_task_purges_with_the_real_clock(settings, make_entry):
    settings.LOG_RETENTION_DAYS = 1
    make_entry("ancient", time=datetime.now(tz=UTC) - timedelta(days=2))
    make_entry("fresh", time=datetime.now(tz=UTC))
    assert purge_expired() == 1
    assert list(LogEntry.objects.values_list("message", flat=True)) == ["fresh"]


def _errors(make_entry, count: int, at: datetime) -> None:
    for i in range(count):
        make_entry(f"boom {i}", time=at, level=logging.ERROR, service="worker")


@pytest.mark.django_db
def test_no_alert_below_the_threshold(settings, make_entry):
    settings.LOG_ERROR_SPIKE_THRESHOLD = 5
    _errors(make_entry, 4, NOW - timedelta(minutes=1))
    make_entry("loud warning", time=NOW, level=logging.WARNING)
    _errors(make_entry, 3, NOW - timedelta(minutes=6))  # outside the 5-minute look-back
    assert error_spike_check(now=NOW) is None
    assert ErrorSpikeAlert.objects.count() == 0
    assert Delivery.objects.count() == 0


@pytest.mark.django_db
def test_a_spike_alerts_once_per_window(settings, make_entry):
    settings.LOG_ERROR_SPIKE_THRESHOLD = 5
    _errors(make_entry, 5, NOW - timedelta(minutes=2))

    alert = error_spike_check(now=NOW)
    assert alert is not None
    assert (alert.window_start, alert.error_count, alert.threshold) == (datetime(2026, 3, 10, 12, 5, tzinfo=UTC), 5, 5)
    deliveries = list(Delivery.objects.values("event_type", "key"))
    assert deliveries == [{"event_type": "alert", "key": "log-spike:2026-03-10T12:05:00+00:00"}]
    delivery = Delivery.objects.get()
    assert delivery.payload["severity"] == "critical"
    assert delivery.payload["source"] == "logs"
    assert delivery.payload["message"] == "5 errors logged in the last 5 minutes (threshold 5)"

    # Still spiking a minute later, same window: nothing new.
    _errors(make_entry, 3, NOW)
    assert error_spike_check(now=NOW + timedelta(minutes=1)) is None
    assert ErrorSpikeAlert.objects.count() == 1
    assert Delivery.objects.count() == 1

    # The next window may alert again.
    assert error_spike_check(now=NOW + timedelta(minutes=2, seconds=30)) is not None
    assert list(ErrorSpikeAlert.objects.order_by("window_start").values_list("error_count", flat=True)) == [5, 8]
    assert Delivery.objects.count() == 2


@pytest.mark.django_db
def test_the_beat_task_checks_the_last_five_minutes(settings, make_entry):
    settings.LOG_ERROR_SPIKE_THRESHOLD = 2
    _errors(make_entry, 2, datetime.now(tz=UTC) - timedelta(seconds=30))
    assert check_error_spike() is True
    assert check_error_spike() is False
    assert ErrorSpikeAlert.objects.count() == 1
