"""The shape of one central-log entry and the limits on it, shared by the handler (which makes rows)
and the store (which writes them). Neither imports the other for these: both import this module."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

MAX_MESSAGE_CHARS = 10_000
MAX_EXCEPTION_CHARS = 20_000
MAX_CONTEXT_CHARS = 2_000  # a string in `extra`, or the repr of an object that JSON has no type for
MAX_CONTEXT_ITEMS = 50
MAX_CONTEXT_DEPTH = 3  # what the handler copies out of a record
MAX_STORED_CONTEXT_DEPTH = 20  # what the store accepts from the API


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


COLUMNS = LogRow._fields
