"""POST /api/logs (outside services send batches), GET /api/logs (search), GET /api/logs/stats."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter, field_validator
from pydantic import ValidationError as PydanticValidationError

from leadsite.auth import api_key, staff_or_key
from leadsite.context import is_well_formed_request_id
from leadsite.schemas import ErrorOut, UtcDatetime
from logs.handler import STATS, detect_service
from logs.records import MAX_MESSAGE_CHARS, LogRow
from logs.selectors import LEVELS, LogFilters, log_entries_page, parse_level
from logs.services import log_entries_write

router = Router(tags=["logs"])

MAX_BATCH_ENTRIES = 1_000
MAX_FUTURE_SKEW = timedelta(hours=1)


class LogEntryIn(BaseModel):
    """One entry from an outside service. Unknown fields are an error (a typo should not vanish silently)."""

    model_config = ConfigDict(extra="forbid")

    timestamp: datetime
    level: str | int
    service: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    message: Annotated[str, StringConstraints(max_length=MAX_MESSAGE_CHARS)]
    event: Annotated[str, StringConstraints(max_length=100)] = ""
    context: dict[str, Any] = {}
    request_id: str | None = None
    lead_id: Annotated[str, StringConstraints(max_length=64)] | None = None

    @field_validator("timestamp")
    @classmethod
    def _timestamp(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # naive timestamps are taken as UTC
        now = timezone.now()
        if value > now + MAX_FUTURE_SKEW:
            raise ValueError("timestamp is more than an hour in the future")
        # Retention would delete it at once; and a year-1 timestamp shifted by its offset lands in 1 BC,
        # which PostgreSQL stores but Python cannot read back (every list showing it would fail).
        if value < now - timedelta(days=settings.LOG_RETENTION_DAYS):
            raise ValueError(f"timestamp is older than the {settings.LOG_RETENTION_DAYS}-day retention period")
        # PostgreSQL refuses offsets beyond +-15:59 (+20:00 is valid ISO 8601): store UTC.
        return value.astimezone(UTC)

    @field_validator("level")
    @classmethod
    def _level(cls, value: str | int) -> int:
        if isinstance(value, int):
            if value not in LEVELS.values():
                raise ValueError("level must be one of 10, 20, 30, 40, 50")
            return value
        if value.strip().lower() not in LEVELS:
            raise ValueError("level must be debug, info, warning, error or critical")
        return LEVELS[value.strip().lower()]

    @field_validator("request_id")
    @classmethod
    def _request_id(cls, value: str | None) -> str | None:
        if value is not None and not is_well_formed_request_id(value):
            raise ValueError("request_id must be 8-128 characters of letters, digits and . _ : -")
        return value


_BATCH = TypeAdapter(list[LogEntryIn])


class LogBatchIn(Schema):
    entries: list[Any] = Field(..., description=f"up to {MAX_BATCH_ENTRIES} entries (see LogEntryIn)")


class RejectedEntry(Schema):
    index: int
    errors: list[dict[str, str]]


class LogBatchOut(Schema):
    accepted: int
    rejected: list[RejectedEntry]


def _entry_errors(error: PydanticValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(part) for part in item["loc"]) or "entry", "message": item["msg"]}
        for item in error.errors()
    ]


def _validate_batch(items: list[Any]) -> tuple[list[LogEntryIn], list[dict[str, Any]]]:
    try:
        return _BATCH.validate_python(items), []  # fast path: the whole batch at once
    except PydanticValidationError:
        pass
    good: list[LogEntryIn] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            good.append(LogEntryIn.model_validate(item))
        except PydanticValidationError as exc:
            rejected.append({"index": index, "errors": _entry_errors(exc)})
    return good, rejected


@router.post(
    "/logs",
    auth=api_key("logs:write"),
    response={202: LogBatchOut, 413: ErrorOut},
    summary="Send a batch of log entries",
)
def logs_ingest(request: HttpRequest, payload: LogBatchIn):
    """Each entry is validated on its own: the good ones are stored, the bad ones are listed in
    `rejected` with their index and errors (so one malformed line never loses a batch). 202 with the
    count accepted. At most 1,000 entries and 1 MB per batch (413)."""
    if len(payload.entries) > MAX_BATCH_ENTRIES:
        raise HttpError(413, f"too many entries: {len(payload.entries)}, at most {MAX_BATCH_ENTRIES} per batch")
    entries, rejected = _validate_batch(payload.entries)
    source = f"api:{request.auth.name}"[:200]
    client = request.META.get("REMOTE_ADDR", "")
    log_entries_write(
        [
            LogRow(
                time=entry.timestamp,
                level=entry.level,
                level_name=logging.getLevelName(entry.level),
                service=entry.service,
                logger=source,
                event=entry.event,
                message=entry.message,
                context=entry.context,
                request_id=entry.request_id or "",
                lead_id=entry.lead_id or "",
                exception="",
                host=client,
                process=None,
            )
            for entry in entries
        ]
    )
    return Status(202, {"accepted": len(entries), "rejected": rejected})


class LogEntryOut(Schema):
    id: int
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


class LogPageOut(Schema):
    items: list[LogEntryOut]
    next_cursor: str | None


class LogQuery(Schema):
    q: str = Field("", description='full text (PostgreSQL web-search syntax: words, "phrases", -not)')
    level: str | None = Field(None, description="minimum level: debug, info, warning, error, critical")
    service: str = ""
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    request_id: str = ""
    lead_id: str = ""
    cursor: str | None = Field(None, description="next_cursor of the previous page")
    limit: int = Field(100, ge=1, le=500)
    order: Literal["desc", "asc"] = Field("desc", description="desc: newest first; asc: a journey in order")


@router.get("/logs", auth=staff_or_key("logs:read"), response=LogPageOut, summary="Search the central log")
def logs_search(request: HttpRequest, query: Query[LogQuery]):
    filters = LogFilters(
        q=query.q,
        level=parse_level(query.level) if query.level else None,
        service=query.service,
        since=query.since,
        until=query.until,
        request_id=query.request_id,
        lead_id=query.lead_id,
    )
    entries, next_cursor = log_entries_page(
        filters, cursor=query.cursor, limit=query.limit, oldest_first=query.order == "asc"
    )
    return {"items": entries, "next_cursor": next_cursor}


class HandlerStatsOut(Schema):
    service: str
    pid: int
    queued: int
    written: int
    dropped: int
    failed_batches: int
    last_error: str
    last_error_at: str | None


@router.get(
    "/logs/stats",
    auth=staff_or_key("logs:read"),
    response=HandlerStatsOut,
    summary="This process's log handler counters",
)
def logs_handler_stats(request: HttpRequest):
    """Counters of the central log handler in the process that answers (each web worker has its own):
    `dropped` rises when the store is down or the in-memory queue is full."""
    return {"service": detect_service(), "pid": os.getpid(), **STATS}
