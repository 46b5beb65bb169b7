"""Reads of the central log store: search with keyset pagination, a lead's journey."""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from logs.models import LogEntry

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def parse_level(value: str | int) -> int:
    """ "error", "ERROR" or 40 -> 40."""
    if isinstance(value, int):
        return value
    text = value.strip().lower()
    if text.isascii() and text.isdigit():  # "²".isdigit() is True too, but int("²") raises
        return int(text)
    if text not in LEVELS:
        raise ValidationError({"level": f"unknown level {value!r}; use debug, info, warning, error or critical"})
    return LEVELS[text]


def without_nul(value: str) -> str:
    """Stored text never holds NUL (leadsite.storable strips it; PostgreSQL refuses it as a
    parameter): a filter value is compared the same way."""
    return value.replace("\x00", "")


def text_filter(queryset: QuerySet[LogEntry], query: str) -> QuerySet[LogEntry]:
    """Full text on PostgreSQL (the generated `search` tsvector, GIN-indexed; web-search syntax: words are
    ANDed, "quoted phrases", -excluded); a plain case-insensitive substring match elsewhere."""
    query = without_nul(query).strip()
    if not query:
        return queryset
    if connections[queryset.db].vendor == "postgresql":
        return queryset.filter(
            RawSQL(
                "search @@ websearch_to_tsquery('simple'::regconfig, %s)",
                (query,),
                output_field=BooleanField(),
            )
        )
    return queryset.filter(Q(message__icontains=query) | Q(event__icontains=query))


@dataclass(frozen=True)
class LogFilters:
    q: str = ""
    level: int | None = None  # minimum level
    service: str = ""
    since: datetime | None = None
    until: datetime | None = None
    request_id: str = ""
    lead_id: str = ""


def log_entries_filter(filters: LogFilters, queryset: QuerySet[LogEntry] | None = None) -> QuerySet[LogEntry]:
    qs = LogEntry.objects.all() if queryset is None else queryset
    request_id, lead_id, service = map(without_nul, (filters.request_id, filters.lead_id, filters.service))
    if request_id:
        qs = qs.filter(request_id=request_id)
    if lead_id:
        qs = qs.filter(lead_id=lead_id)
    if filters.level is not None:
        qs = qs.filter(level__gte=filters.level)
    if service:
        qs = qs.filter(service=service)
    if filters.since:
        qs = qs.filter(time__gte=filters.since)
    if filters.until:
        qs = qs.filter(time__lt=filters.until)
    return text_filter(qs, filters.q)


def encode_cursor(entry: LogEntry) -> str:
    return base64.urlsafe_b64encode(f"{entry.time.isoformat()}|{entry.id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, pk = raw.partition("|")
        time = parse_datetime(when)
        if time is None:
            raise ValueError
        return time, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError({"cursor": "invalid cursor"}) from None


def log_entries_page(
    filters: LogFilters, *, cursor: str | None = None, limit: int = 100, oldest_first: bool = False
) -> tuple[list[LogEntry], str | None]:
    """One page of matching entries, newest first (or oldest first for reading a journey), and the
    cursor of the next page. Keyset pagination on (time, id): no OFFSET and no COUNT(*), so page 1000
    costs what page 1 does on millions of rows."""
    qs = log_entries_filter(filters)
    if cursor:
        time, pk = decode_cursor(cursor)
        if oldest_first:
            qs = qs.filter(time__gte=time).exclude(time=time, id__lte=pk)
        else:
            qs = qs.filter(time__lte=time).exclude(time=time, id__gte=pk)
    qs = qs.order_by("time", "id") if oldest_first else qs.order_by("-time", "-id")
    entries = list(qs[: limit + 1])
    if len(entries) > limit:
        return entries[:limit], encode_cursor(entries[limit - 1])
    return entries, None


def lead_journey_url(lead_id: object) -> str:
    """The admin list of everything logged about a lead: entries stamped with its id or carrying the
    request id of the form post that created it (see logs.admin.JourneyFilter). For the lead's admin
    page: `format_html('<a href="{}">Journey in the logs</a>', lead_journey_url(lead.pk))`."""
    return f"{reverse('admin:logs_logentry_changelist')}?{urlencode({'journey': str(lead_id)})}"


def lead_journey_filter(lead_id: str) -> Q:
    """Entries about the lead: its id, or the request id it was created by (logged before the id existed)."""
    from leads.models import Lead

    condition = Q(lead_id=lead_id)
    request_id = (
        Lead.objects.filter(pk=lead_id).values_list("request_id", flat=True).first() if _is_uuid(lead_id) else None
    )
    if request_id:
        condition |= Q(request_id=request_id)
    return condition


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
