"""The central log store: one row per log entry from any process or outside service."""

from __future__ import annotations

import logging

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class LenientJSONEncoder(DjangoJSONEncoder):
    """Log context holds whatever callers passed as `extra`; an object JSON cannot encode is kept as its repr
    rather than losing the whole batch."""

    def default(self, o: object) -> object:
        try:
            return super().default(o)
        except TypeError:
            return repr(o)


class Level(models.IntegerChoices):
    DEBUG = logging.DEBUG, "DEBUG"
    INFO = logging.INFO, "INFO"
    WARNING = logging.WARNING, "WARNING"
    ERROR = logging.ERROR, "ERROR"
    CRITICAL = logging.CRITICAL, "CRITICAL"


class LogEntry(models.Model):
    """Indexes: (time) for time-ranged browsing, (request_id, time) and (lead_id, time) for journeys,
    (level, time) for "errors in the last hour" and the spike check, (service, time) for one service (a rare
    one would otherwise walk the whole time index).

    On PostgreSQL the table is partitioned by day on `time` (migration 0003, logs.partitions): its
    primary key there is (id, time), as PostgreSQL requires the partition key in it; ids still come
    from one identity sequence, so `id` alone identifies an entry. It also has a generated `search`
    tsvector column with a GIN index per partition for full-text search (not a model field, so SQLite
    needs nothing; see logs.selectors.text_filter). SQLite has one plain table."""

    time = models.DateTimeField()
    level = models.PositiveSmallIntegerField()
    level_name = models.CharField(max_length=16)
    service = models.CharField(max_length=64, help_text="web, worker, beat, or an outside service's name")
    logger = models.CharField(max_length=200, blank=True)
    event = models.CharField(max_length=100, blank=True, help_text="machine-readable name, e.g. lead.created")
    message = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True, encoder=LenientJSONEncoder)
    request_id = models.CharField(max_length=128, blank=True, help_text="correlation id")
    lead_id = models.CharField(max_length=64, blank=True)
    exception = models.TextField(blank=True)
    host = models.CharField(max_length=255, blank=True)
    process = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "log entry"
        verbose_name_plural = "log entries"
        ordering = ("-time", "-id")
        indexes = [
            models.Index(fields=["time"], name="logs_time_idx"),
            models.Index(fields=["request_id", "time"], name="logs_request_time_idx"),
            models.Index(fields=["lead_id", "time"], name="logs_lead_time_idx"),
            models.Index(fields=["level", "time"], name="logs_level_time_idx"),
            models.Index(fields=["service", "time"], name="logs_service_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.level_name} {self.service} {self.message[:80]}"
