"""Signal receivers: CORS per API key, and skipping the health check of a busy database connection."""

from __future__ import annotations

import time

from corsheaders.signals import check_request_enabled
from django.core.signals import request_finished, request_started
from django.db import connections
from django.dispatch import receiver
from django.http import HttpRequest

from leadsite.services import allowed_origins_all, api_key_authenticate


@receiver(check_request_enabled)
def cors_allow_key_origins(sender: object, request: HttpRequest, **kwargs: object) -> bool:
    origin = request.headers.get("Origin")
    if not origin or not request.path_info.startswith("/api/"):
        return False
    raw_key = request.headers.get("X-Api-Key")
    if raw_key:
        key = api_key_authenticate(raw_key)
        return key is not None and origin in key.allowed_origins
    # Preflights carry no key: allow the origins that some active key allows. The real request
    # is then checked against its own key's origins by ApiKeyAuth.
    return request.method == "OPTIONS" and origin in allowed_origins_all()


# A busy connection needs no health check: Django (CONN_HEALTH_CHECKS) pings a reused connection
# with a round trip before the first query of every request. A connection that finished a request
# without errors less than HOT_CONNECTION_SECONDS ago is taken as healthy; if the database went away
# in that moment, that one request gets the outage answer (503, leadsite.outages) and Django drops
# the connection. An idle connection is still checked.
HOT_CONNECTION_SECONDS = 1.0
_used_at: dict[int, float] = {}


@receiver(request_finished, dispatch_uid="leadsite.db_used_at")
def _note_connection_used(sender: object, **kwargs: object) -> None:
    conn = connections["default"]
    if conn.connection is not None and not conn.errors_occurred:
        _used_at[id(conn)] = time.monotonic()


@receiver(request_started, dispatch_uid="leadsite.db_skip_hot_health_check")
def _skip_health_check_when_hot(sender: object, **kwargs: object) -> None:
    conn = connections["default"]
    used_at = _used_at.get(id(conn))
    if conn.connection is not None and used_at is not None and time.monotonic() - used_at < HOT_CONNECTION_SECONDS:
        conn.health_check_done = True
