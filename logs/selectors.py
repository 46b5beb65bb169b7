"""Reads of the central log store: search with keyset pagination, a lead's journey."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone
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


def _lexeme(value: str) -> str:
    """A tsquery literal matching exactly one lexeme (quotes doubled, backslashes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def level_terms(level: int | None) -> list[str]:
    return [f"lvl:{value}" for value in sorted(LEVELS.values()) if level is not None and value >= level]


def text_filter(
    queryset: QuerySet[LogEntry], query: str, *, service: str = "", level: int | None = None
) -> QuerySet[LogEntry]:
    """Full text on PostgreSQL (the generated `search` tsvector, GIN-indexed; web-search syntax: words are
    ANDed, "quoted phrases", -excluded); a plain case-insensitive substring match elsewhere.

    `service` and `level` (the caller filters on them too) are added to the tsquery as the `svc:…` and
    `lvl:…` lexemes the store puts in every row's tsvector (migration 0003): the GIN index then
    intersects the word's posting list with the service's and the levels', and a word that never
    occurs in that service costs no heap reads at all. (Only the five standard levels have terms: an
    entry at a custom level such as 25 is found by text only without a level filter.)"""
    query = without_nul(query).strip()
    if not query:
        return queryset
    if connections[queryset.db].vendor == "postgresql":
        return queryset.filter(_tsquery_condition(query, service=service, level=level))
    return queryset.filter(Q(message__icontains=query) | Q(event__icontains=query))


def _all_words_required(query: str) -> bool:
    """No OR and no -negation in a web-search query: every word it has must be in a matching entry."""
    return not any(token.startswith("-") or token.lower() == "or" for token in query.replace('"', " ").split())


def _tsquery_condition(query: str, *, service: str, level: int | None) -> RawSQL:
    """`search @@ (<words> && 'svc:…' && ('lvl:40' | 'lvl:50'))`, any part optional (not all); with words and a
    service, when every word is required, `'svc:<service>/<word>' & …` (the pairs the store indexes,
    migration 0006) in place of `'svc:<service>'`."""
    parts: list[str] = []
    params: list[str] = []
    if query:
        parts.append("websearch_to_tsquery('simple'::regconfig, %s)")
        params.append(query)
    service = without_nul(service)
    if service and query and _all_words_required(query) and "/" not in service:
        # 'svc:beat/timeout': one GIN lookup instead of intersecting 'timeout' with 'svc:beat' (migration
        # 0006). A pair is only ever indexed for the entry's own service (a service name has no '/'), so
        # the pairs imply 'svc:beat', which is left out: that posting list is a third of the day's
        # entries, and intersecting it cost ~10 ms a partition even beside a short pair list.
        parts.append("logs_service_words(%s, %s)")
        params += [query, service]
    elif service:
        parts.append("%s::tsquery")
        params.append(_lexeme(f"svc:{service}"))
    terms = level_terms(level)
    if terms:  # none above CRITICAL: then level__gte alone already matches nothing
        parts.append("%s::tsquery")
        params.append("(" + " | ".join(_lexeme(term) for term in terms) + ")")
    return RawSQL(f"search @@ ({' && '.join(parts)})", params, output_field=BooleanField())


@dataclass(frozen=True)
class LogFilters:
    q: str = ""
    level: int | None = None  # minimum level
    service: str = ""
    since: datetime | None = None
    until: datetime | None = None
    request_id: str = ""
    lead_id: str = ""


def gin_path(filters: LogFilters, using: str = "default") -> bool:
    """Whether a search is answered from the GIN index in time windows (`text_windows`): on PostgreSQL,
    with text, or with a minimum level of WARNING or above (a few per cent of entries or fewer, which a
    walk of the time index meets too rarely: CRITICAL alone took 300-400 ms at 20M). Not with a
    request or lead id: their own B-tree index is narrower than anything else."""
    if connections[using].vendor != "postgresql" or without_nul(filters.request_id) or without_nul(filters.lead_id):
        return False
    if without_nul(filters.q).strip():
        return True
    return filters.level is not None and filters.level >= logging.WARNING and bool(level_terms(filters.level))


def log_entries_filter(filters: LogFilters, queryset: QuerySet[LogEntry] | None = None) -> QuerySet[LogEntry]:
    qs = LogEntry.objects.all() if queryset is None else queryset
    request_id, lead_id, service = map(without_nul, (filters.request_id, filters.lead_id, filters.service))
    query = without_nul(filters.q).strip()
    if request_id:
        qs = qs.filter(request_id=request_id)
    if lead_id:
        qs = qs.filter(lead_id=lead_id)
    if filters.since:
        qs = qs.filter(time__gte=filters.since)
    if filters.until:
        qs = qs.filter(time__lt=filters.until)
    if gin_path(filters, qs.db):
        # Service and level become GIN terms of one tsquery (see text_filter); as B-tree conditions as
        # well they would tempt the planner into a bitmap of every row of that service or level.
        if filters.level is not None and not level_terms(filters.level):
            qs = qs.filter(level__gte=filters.level)
        return qs.filter(_tsquery_condition(query, service=service, level=filters.level))
    if filters.level is not None:
        qs = qs.filter(level__gte=filters.level)
    if service:
        qs = qs.filter(service=service)
    return text_filter(qs, query)


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


# Searches walk back (or forward) through time in windows that grow by WINDOW_GROWTH, starting at
# FIRST_WINDOW. See `text_windows` for why.
FIRST_WINDOW = timedelta(minutes=2)
WINDOW_GROWTH = 8
# No entry is newer than this (POST /api/logs refuses timestamps further ahead; the handler stamps now).
FUTURE_SKEW = timedelta(hours=1)
# Where the newest (oldest) entry is looked for first (one or two day partitions), before the whole store.
NEWEST_PROBE = timedelta(days=1)


def windowed_path(filters: LogFilters, using: str = "default") -> bool:
    """Whether a search reads time windows (`text_windows`): on PostgreSQL, unless it names a request or
    lead id (their own B-tree index is narrower than any window)."""
    return connections[using].vendor == "postgresql" and not (
        without_nul(filters.request_id) or without_nul(filters.lead_id)
    )


def newest_entry_time(before: datetime, using: str = "default") -> datetime | None:
    """The time of the newest entry before `before`: a probe of the last day's partitions' time index,
    then (after a quiet day) of all of them."""
    entries = LogEntry.objects.using(using).filter(time__lt=before).order_by("-time").values_list("time", flat=True)
    return entries.filter(time__gte=before - NEWEST_PROBE).first() or entries.first()


def oldest_entry_time(since: datetime | None, retained: datetime, using: str = "default") -> datetime | None:
    """The time of the oldest entry from `since` on: a probe of the first day's partitions (from `since`,
    else everything up to a day into the retention window), then of all of them."""
    entries = LogEntry.objects.using(using).order_by("time").values_list("time", flat=True)
    if since:
        entries = entries.filter(time__gte=since)
    return entries.filter(time__lt=(since or retained) + NEWEST_PROBE).first() or entries.first()


def text_windows(
    *,
    since: datetime | None,
    until: datetime | None,
    oldest_first: bool,
    now: datetime | None = None,
    using: str = "default",
) -> list[tuple[datetime | None, datetime | None]]:
    """Half-open time windows [start, end) covering [since, until), nearest the reading end first,
    each WINDOW_GROWTH times longer than the one before; None is an open end. They start at the entry
    nearest the reading end (the newest one before `until`, or the oldest after `since`), so a quiet
    hour or a store whose writers stopped costs no empty windows.

    Why windows: a full-text match can be common (then the newest minutes already fill a page) or
    rare or absent (then only the GIN index, asked about every day, can say so quickly). A single
    ORDER BY time LIMIT query makes PostgreSQL bet on one plan from its guess of the word's
    frequency: for a word (or a word-and-service pair) it believes common it walks the time index
    hoping to meet matches, which for a rare or absent one means reading every row (330-520 ms at 1M
    rows before this, seconds at 20M). So each window of a text search is read through the GIN index
    only (`gin_only`): it costs the matches inside the window, a common word stops after the first
    small window (about 900 entries at 20M a month), and a rare or absent one costs one GIN lookup per
    day partition in a handful of queries (2 min, 16 min, 2 h, 17 h, 6 days, 45 days back). A search
    without text reads the same windows with its B-tree indexes: the first window's one or two
    partitions fill most pages, instead of planning and probing every day's. Whatever is older than
    the retention window (entries in the default partition, days not yet dropped) is one last
    open-ended window."""
    now = now or timezone.now()
    high = min(until, now + FUTURE_SKEW) if until else now + FUTURE_SKEW
    windows: list[tuple[datetime | None, datetime | None]] = []
    length = FIRST_WINDOW
    retained = now - timedelta(days=settings.LOG_RETENTION_DAYS + 1)
    if oldest_first:
        oldest = oldest_entry_time(since, retained, using)
        if oldest is None or oldest >= high:
            return []
        start: datetime | None = since
        end = oldest + length
        while True:
            end = min(end, high)
            windows.append((start, end))
            if end >= high:
                return windows
            start, length = end, length * WINDOW_GROWTH
            end = start + length
    newest = newest_entry_time(high, using)
    if newest is None or (since and newest < since):
        return []
    low = since if since else retained
    end_: datetime = high
    start_ = newest - length  # the first window also takes whatever arrives after the probe
    while end_ > low:
        start_ = max(start_, low)
        windows.append((start_, end_))
        end_, length = start_, length * WINDOW_GROWTH
        start_ = end_ - length
    if not since:
        windows.append((None, min(retained, high)))  # the default partition, days not yet dropped
    return windows


def _in_window(queryset: QuerySet, start: datetime | None, end: datetime | None) -> QuerySet:
    if start is not None:
        queryset = queryset.filter(time__gte=start)
    return queryset if end is None else queryset.filter(time__lt=end)


@contextmanager
def gin_only(using: str = "default") -> Iterator[None]:
    """Inside: the planner may not walk an index in time order or scan a table, so a text condition
    is answered by a bitmap scan of the GIN index (plus any B-tree bitmap it cares to AND in), whose
    cost follows the number of matches, not of rows. SET LOCAL ends with the transaction; inside a
    caller's transaction the previous values are put back on the way out."""
    connection = connections[using]
    nested = connection.in_atomic_block
    with transaction.atomic(using=using), connection.cursor() as cursor:
        previous = None
        if nested:
            cursor.execute("SELECT current_setting('enable_indexscan'), current_setting('enable_seqscan')")
            previous = cursor.fetchone()
        cursor.execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_seqscan = off")
        try:
            yield
        finally:
            if previous is not None and not connection.needs_rollback:
                cursor.execute(
                    "SELECT set_config('enable_indexscan', %s, true), set_config('enable_seqscan', %s, true)",
                    previous,
                )


def read_in_order(
    queryset: QuerySet,
    *,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, int] | None = None,
    oldest_first: bool = False,
    windowed: bool = False,
    gin: bool = False,
) -> list:
    """Up to `limit` rows of `queryset` (entries, or a values_list of them) newest first (or oldest
    first), after the keyset position `after` = (time, id) if given. `windowed`: read `text_windows`
    until `limit` rows are found; `gin`: each window through the GIN index only (`gin_only`)."""
    if after:
        time, pk = after
        if oldest_first:
            queryset = queryset.filter(time__gte=time).exclude(time=time, id__lte=pk)
            since = max(since, time) if since else time
        else:
            queryset = queryset.filter(time__lte=time).exclude(time=time, id__gte=pk)
            bound = time + timedelta(microseconds=1)
            until = min(until, bound) if until else bound
    queryset = queryset.order_by("time", "id") if oldest_first else queryset.order_by("-time", "-id")
    if not windowed:
        return list(queryset[:limit])
    rows: list = []
    windows = text_windows(since=since, until=until, oldest_first=oldest_first, using=queryset.db)
    with gin_only(queryset.db) if gin else nullcontext():
        for start, end in windows:
            rows += _in_window(queryset, start, end)[: limit - len(rows)]
            if len(rows) >= limit:
                break
    return rows


def nth_key(
    queryset: QuerySet,
    position: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    windowed: bool = False,
    gin: bool = False,
) -> tuple[datetime, int] | None:
    """The (time, id) of the `position`-th row (from 1) of `queryset` newest first, read as `read_in_order`
    reads it (the same windows, the same indexes), or None when it has fewer rows. For a page number typed
    without a cursor: PostgreSQL skips the rows before it and sends one key per window (the last of the
    window's first `remaining` rows, and how many there were) instead of every key before the page, which
    cost ~17 ms of Python for page 50 of 50.

    Once rows have been found, a window is read in pieces sized from their rate (the time the remaining
    rows should take, a quarter more, at least the time already covered), newest first: a common word
    needs ~33 minutes for page 50 where the third window is 2 hours, whose every match (~3,600 heap pages
    at 20M) a bitmap scan would read before sorting."""
    keys = queryset.values_list("time", "id").order_by("-time", "-id")
    if not windowed:
        found, key = _last_of_first(keys, position)
        return key if found >= position else None
    remaining, found_total = position, 0
    windows = text_windows(since=since, until=until, oldest_first=False, using=keys.db)  # before gin_only
    if not windows:
        return None
    # The newest entry (the first window's end is "now" + skew): where the rate of rows found is counted from.
    top = windows[0][0] + FIRST_WINDOW if windows[0][0] is not None else None
    if len(windows) > 2 and windows[1][0] is not None:
        # The first two windows (2 + 16 minutes) as one query: each query of a text search scans the day's
        # whole posting list of its words in the GIN index (64,000 entries for "slack" at 20M, 6-11 ms).
        windows = [(windows[1][0], windows[0][1]), *windows[2:]]
    with gin_only(keys.db) if gin else nullcontext():
        for start, end in windows:
            while True:
                piece = start
                if start is not None and end is not None and top is not None and found_total:
                    covered = top - end
                    estimate = covered * (remaining / found_total) * 1.25
                    piece = max(start, end - max(estimate, covered, FIRST_WINDOW))
                found, key = _last_of_first(_in_window(keys, piece, end), remaining)
                if found >= remaining:
                    return key
                remaining -= found
                found_total += found
                if piece == start:
                    break
                end = piece
    return None


def _last_of_first(keys: QuerySet, limit: int) -> tuple[int, tuple[datetime, int] | None]:
    """How many of `keys`' first `limit` rows there are (the last one's position), and its (time, id)."""
    sql, params = keys[:limit].query.sql_with_params()
    with connections[keys.db].cursor() as cursor:
        cursor.execute(
            "SELECT time, id, position FROM (SELECT first_rows.time, first_rows.id, row_number() OVER "
            f"(ORDER BY first_rows.time DESC, first_rows.id DESC) AS position FROM ({sql}) AS first_rows) AS numbered "
            "ORDER BY position DESC LIMIT 1",
            params,
        )
        row = cursor.fetchone()
    return (0, None) if row is None else (row[2], (row[0], row[1]))


def log_entries_page(
    filters: LogFilters, *, cursor: str | None = None, limit: int = 100, oldest_first: bool = False
) -> tuple[list[LogEntry], str | None]:
    """One page of matching entries, newest first (or oldest first for reading a journey), and the
    cursor of the next page. Keyset pagination on (time, id): no OFFSET and no COUNT(*), so page 1000
    costs what page 1 does on millions of rows. On PostgreSQL a search reads time windows
    (`text_windows`), a full-text one through the GIN index, until the page is full."""
    qs = log_entries_filter(filters)
    entries = read_in_order(
        qs,
        limit=limit + 1,
        since=filters.since,
        until=filters.until,
        after=decode_cursor(cursor) if cursor else None,
        oldest_first=oldest_first,
        windowed=windowed_path(filters, qs.db),
        gin=gin_path(filters, qs.db),
    )
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
