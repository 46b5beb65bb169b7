"""Correlation context: the request id (and lead id) of the work being done right now.

Set by the request middleware for web requests and by Celery signals inside tasks, read by the
logging filter and by the Celery publish signal so the id travels with every task a request starts.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
lead_id_var: ContextVar[str | None] = ContextVar("lead_id", default=None)

# Letters, digits and - _ . : only, so a client cannot inject log lines or headers.
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def is_well_formed_request_id(value: str | None) -> bool:
    return bool(value) and bool(_WELL_FORMED.match(value))


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id_var.get()


def current_lead_id() -> str | None:
    return lead_id_var.get()


class ContextFilter(logging.Filter):
    """Stamps request_id and lead_id on every log record (unless the caller set them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        if not getattr(record, "lead_id", None):
            record.lead_id = lead_id_var.get()
        return True
