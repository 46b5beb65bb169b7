"""GET /api/health: is the database, the cache and the broker reachable?"""

from __future__ import annotations

import time
import uuid

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema, Status

from leadsite.outages import RETRY_AFTER_SECONDS

router = Router(tags=["health"])


class HealthOut(Schema):
    status: str  # ok | degraded | down
    database: str
    cache: str
    broker: str
    duration_ms: float


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; say which
        return f"down: {exc.__class__.__name__}"


def _check_cache() -> str:
    probe = f"health:{uuid.uuid4().hex}"
    try:
        cache.set(probe, "1", 5)
        ok = cache.get(probe) == "1"
        cache.delete(probe)
    except Exception as exc:  # noqa: BLE001
        return f"down: {exc.__class__.__name__}"
    # django-redis swallows errors (IGNORE_EXCEPTIONS), so a miss right after a set means down.
    return "ok" if ok else "down: no answer"


def _check_broker() -> str:
    from leadsite.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=1)
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return f"down: {exc.__class__.__name__}"


@router.get("/health", response={200: HealthOut, 503: HealthOut}, auth=None, summary="Service health")
def health(request: HttpRequest, response: HttpResponse) -> Status:
    started = time.perf_counter()
    parts = {"database": _check_database(), "cache": _check_cache(), "broker": _check_broker()}
    if parts["database"] != "ok":
        overall, code = "down", 503
    elif any(v != "ok" for v in parts.values()):
        overall, code = "degraded", 200
    else:
        overall, code = "ok", 200
    body = {"status": overall, **parts, "duration_ms": round((time.perf_counter() - started) * 1000, 1)}
    if code == 503:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return Status(code, body)
