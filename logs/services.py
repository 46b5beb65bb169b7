"""Writes to the central log store: batch inserts, retention, the error-spike alert."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from leadsite.storable import storable_json, storable_text
from logs.handler import MAX_EXCEPTION_CHARS, MAX_MESSAGE_CHARS
from logs.models import ErrorSpikeAlert, LenientJSONEncoder, LogEntry

logger = logging.getLogger(__name__)

SPIKE_WINDOW = timedelta(minutes=5)
PURGE_BATCH_SIZE = 5_000


class LogRow(NamedTuple):
    time: datetime
    level: int
    level_name: str
    service: str
    logger: str
    event: str
    message: str
    context: dict[str, Any]
    request_id: str
    lead_id: str
    exception: str
    host: str
    process: int | None


_COLUMNS = LogRow._fields
_COPY_SQL = f"COPY {LogEntry._meta.db_table} ({', '.join(_COLUMNS)}) FROM STDIN"
_ENCODER = LenientJSONEncoder(ensure_ascii=False)


def _context_json(context: dict[str, Any]) -> str:
    return _ENCODER.encode(storable_json(context))


def _clean_row(row: LogRow) -> tuple:
    """The row's values in column order, each as its column can store it."""
    return (
        row.time,
        row.level,
        storable_text(row.level_name, 16),
        storable_text(row.service, 64),
        storable_text(row.logger, 200),
        storable_text(row.event, 100),
        storable_text(row.message, MAX_MESSAGE_CHARS),
        _context_json(row.context),
        storable_text(row.request_id, 128),
        storable_text(row.lead_id, 64),
        storable_text(row.exception, MAX_EXCEPTION_CHARS),
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
        with connection.cursor() as cursor, cursor.cursor.copy(_COPY_SQL) as copy:
            for row in rows:
                copy.write_row(_clean_row(row))
        return len(rows)
    entries = []
    for row in rows:
        values = dict(zip(_COLUMNS, _clean_row(row), strict=True))
        values["context"] = json.loads(values["context"])
        entries.append(LogEntry(**values))
    LogEntry.objects.using(using).bulk_create(entries, batch_size=500)
    return len(rows)


def log_entries_purge_expired(*, now: datetime | None = None, batch_size: int = PURGE_BATCH_SIZE) -> int:
    """Delete entries older than LOG_RETENTION_DAYS, `batch_size` rows per statement so no single
    transaction holds locks on (or bloats WAL with) millions of rows. Returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.LOG_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(LogEntry.objects.filter(time__lt=cutoff).order_by("time").values_list("id", flat=True)[:batch_size])
        if not ids:
            break
        count, _ = LogEntry.objects.filter(id__in=ids).delete()
        deleted += count
        if len(ids) < batch_size:
            break
    if deleted:
        logger.info(
            "deleted %d log entries older than %s",
            deleted,
            cutoff.isoformat(),
            extra={"event": "logs.purged", "deleted": deleted},
        )
    return deleted


def spike_window_start(now: datetime) -> datetime:
    """The fixed 5-minute window `now` falls in: an alert fires at most once per window."""
    return now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)


def error_spike_check(*, now: datetime | None = None) -> ErrorSpikeAlert | None:
    """Count ERROR+ entries in the last 5 minutes; over LOG_ERROR_SPIKE_THRESHOLD, record one
    ErrorSpikeAlert for the current window and notify `alert` (once: the window is unique and the
    notify key is per window). Returns the alert created now, or None."""
    from notifications.services import notify

    now = now or timezone.now()
    threshold = settings.LOG_ERROR_SPIKE_THRESHOLD
    errors = LogEntry.objects.filter(level__gte=logging.ERROR, time__gt=now - SPIKE_WINDOW, time__lte=now).count()
    if errors < threshold:
        return None
    window = spike_window_start(now)
    if ErrorSpikeAlert.objects.filter(window_start=window).exists():
        return None
    try:
        with transaction.atomic():
            alert = ErrorSpikeAlert.objects.create(window_start=window, error_count=errors, threshold=threshold)
            notify(
                event_type="alert",
                context={
                    "message": f"{errors} errors logged in the last 5 minutes (threshold {threshold})",
                    "severity": "critical",
                    "source": "logs",
                    "error_count": errors,
                    "threshold": threshold,
                    "window_start": window.isoformat(),
                },
                key=f"log-spike:{window.isoformat()}",
            )
    except IntegrityError:
        return None  # another beat run recorded this window first
    logger.warning(
        "error spike: %d errors in the last 5 minutes (threshold %d)",
        errors,
        threshold,
        extra={"event": "logs.error_spike", "error_count": errors, "threshold": threshold},
    )
    return alert
