"""Writes to the central log store: batch inserts, retention, the error-spike alert."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from leadsite.storable import storable_json, storable_text
from logs.models import LenientJSONEncoder, LogEntry
from logs.partitions import (
    DEFAULT_PARTITION,
    is_partitioned,
    partitions_drop_before,
    partitions_ensure,
    partitions_ensure_around,
)
from logs.records import COLUMNS, MAX_EXCEPTION_CHARS, MAX_MESSAGE_CHARS, LogRow
from logs.redact import redact_context, redact_text

if TYPE_CHECKING:
    from notifications.models import Alert

logger = logging.getLogger(__name__)

SPIKE_WINDOW = timedelta(minutes=5)
PURGE_BATCH_SIZE = 5_000
PURGE_MAX_BATCHES = 20  # at most 100,000 rows deleted per run; the next hourly run continues
PURGE_MAX_DAYS = 7
PARTITIONS_AHEAD_DAYS = 7


_COPY_SQL = f"COPY {LogEntry._meta.db_table} ({', '.join(COLUMNS)}) FROM STDIN"
_ENCODER = LenientJSONEncoder(ensure_ascii=False)


def _context_json(context: dict[str, Any]) -> str:
    return _ENCODER.encode(redact_context(storable_json(context)))


def _clean_row(row: LogRow) -> tuple:
    """The row's values in column order, each as its column can store it, personal data redacted."""
    return (
        row.time,
        row.level,
        storable_text(row.level_name, 16),
        storable_text(row.service, 64),
        storable_text(row.logger, 200),
        storable_text(row.event, 100),
        redact_text(storable_text(row.message, MAX_MESSAGE_CHARS)),
        _context_json(row.context),
        storable_text(row.request_id, 128),
        storable_text(row.lead_id, 64),
        redact_text(storable_text(row.exception, MAX_EXCEPTION_CHARS)),
        storable_text(row.host, 255),
        row.process,
    )


def log_entries_write(rows: list[LogRow], *, using: str = "default") -> int:
    """Insert `rows` in one statement: COPY on PostgreSQL (several times faster than a multi-row
    INSERT for big batches), bulk_create elsewhere. Every text is made storable first (leadsite.storable): both the API and the CentralLogHandler write through here. Returns the number written."""
    if not rows:
        return 0
    connection = connections[using]
    if connection.vendor == "postgresql":
        # A day without its partition (the beat job creates them ahead) gets one now, if it lies in
        # the retention window or the week ahead (a bogus timestamp must not create a table); other
        # days, and a day whose creation fails, land in the default partition.
        today = timezone.now().astimezone(UTC).date()
        first, last = today - timedelta(days=settings.LOG_RETENTION_DAYS), today + timedelta(days=PARTITIONS_AHEAD_DAYS)
        days = {row.time.astimezone(UTC).date() for row in rows}
        partitions_ensure({day for day in days if first <= day <= last}, using=using)
        with connection.cursor() as cursor, cursor.cursor.copy(_COPY_SQL) as copy:
            for row in rows:
                copy.write_row(_clean_row(row))
        return len(rows)
    entries = []
    for row in rows:
        values = dict(zip(COLUMNS, _clean_row(row), strict=True))
        values["context"] = json.loads(values["context"])
        entries.append(LogEntry(**values))
    LogEntry.objects.using(using).bulk_create(entries, batch_size=500)
    return len(rows)


@dataclass(frozen=True)
class Purged:
    days_dropped: list[date]
    rows_deleted: int


def log_entries_purge_expired(
    *,
    now: datetime | None = None,
    batch_size: int = PURGE_BATCH_SIZE,
    max_batches: int = PURGE_MAX_BATCHES,
    max_days: int = PURGE_MAX_DAYS,
) -> Purged:
    """Retention, bounded per run and safe while entries arrive.

    On PostgreSQL, whole days older than LOG_RETENTION_DAYS go by dropping their partition (no row
    is read, deleted or vacuumed; at most `max_days` per run, each DROP in its own short transaction
    with a lock timeout): an entry lives for the retention period and at most one day more. Entries
    that sit in the default partition (days that had no partition) and, on SQLite, the plain table
    are deleted `batch_size` rows per statement, at most `max_batches` statements per run; the hourly
    beat run picks up where this one stopped."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.LOG_RETENTION_DAYS)
    days = partitions_drop_before(cutoff, limit=max_days)
    deleted = 0
    for _ in range(max_batches):
        count = _delete_expired_batch(cutoff, batch_size)
        deleted += count
        if count < batch_size:
            break
    if days or deleted:
        logger.info(
            "retention: dropped %d day partition(s), deleted %d log entries older than %s",
            len(days),
            deleted,
            cutoff.isoformat(),
            extra={"event": "logs.purged", "days_dropped": [day.isoformat() for day in days], "deleted": deleted},
        )
    return Purged(days_dropped=days, rows_deleted=deleted)


def _delete_expired_batch(cutoff: datetime, batch_size: int) -> int:
    if is_partitioned():
        # Only the default partition: an expired day with a partition of its own is dropped whole.
        with connections["default"].cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {DEFAULT_PARTITION} WHERE ctid = ANY(ARRAY("
                f"SELECT ctid FROM {DEFAULT_PARTITION} WHERE time < %s LIMIT %s))",
                [cutoff, batch_size],
            )
            return cursor.rowcount
    ids = list(LogEntry.objects.filter(time__lt=cutoff).order_by("time").values_list("id", flat=True)[:batch_size])
    if not ids:
        return 0
    count, _ = LogEntry.objects.filter(id__in=ids).delete()
    return count


def partitions_maintain(*, now: datetime | None = None) -> list[date]:
    """Create the day partitions of the retention window and the next PARTITIONS_AHEAD_DAYS days, so
    entries land in their own day and never in the default partition (beat, hourly; the writer also
    creates a missing day on demand)."""
    return partitions_ensure_around(
        now or timezone.now(), behind_days=settings.LOG_RETENTION_DAYS, ahead_days=PARTITIONS_AHEAD_DAYS
    )


def error_spike_check(*, now: datetime | None = None) -> Alert | None:
    """Count ERROR+ entries in the last 5 minutes; at LOG_ERROR_SPIKE_THRESHOLD or more, raise an
    `alert` through the notifications app. Its message is the same every time, so while the spike
    lasts the checks collapse into one Slack message with a count (ALERT_COLLAPSE_SECONDS) instead of
    one message per check. Returns the alert, or None below the threshold."""
    from notifications.alerts import alert_raise

    now = now or timezone.now()
    threshold = settings.LOG_ERROR_SPIKE_THRESHOLD
    errors = LogEntry.objects.filter(level__gte=logging.ERROR, time__gt=now - SPIKE_WINDOW, time__lte=now).count()
    if errors < threshold:
        return None
    alert, _ = alert_raise(
        message=f"Error spike: {threshold} or more errors logged within 5 minutes",
        severity="critical",
        source="logs",
    )
    logger.warning(
        "error spike: %d errors in the last 5 minutes (threshold %d)",
        errors,
        threshold,
        extra={"event": "logs.error_spike", "error_count": errors, "threshold": threshold, "alert_id": alert.pk},
    )
    return alert
