"""Fast, honest failure: when a part the request cannot do without is down, say so at once.

PostgreSQL unreachable (or a statement, lock or advisory-lock wait over its bound, see
DATABASE_* in leadsite.settings) and Redis errors that escape the degrade-gracefully paths become
`503 {"detail": ...}` with `Retry-After`, never a 500 after a hang. Clients (web forms, services)
retry a 503; a 500 says "our bug".
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis.exceptions
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5

# InterfaceError: a connection that broke earlier in this request ("connection already closed").
DATABASE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def outage_detail(exc: Exception) -> str:
    """What the client is told: which part is unavailable, never the driver's message (hosts, users)."""
    if isinstance(exc, DATABASE_ERRORS):
        return "the database is unavailable; retry shortly"
    return "a backing service (Redis) is unavailable; retry shortly"


def outage_response(api: NinjaAPI, request: HttpRequest, exc: Exception) -> HttpResponse:
    # A warning, not an error with a traceback: an outage is not a bug, and one per request would
    # also set off the central log's error-spike alert for every request during the outage.
    logger.warning("503 on %s %s: %s: %s", request.method, request.path, exc.__class__.__name__, exc)
    response = api.create_response(request, {"detail": outage_detail(exc)}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def install_outage_handlers(api: NinjaAPI) -> None:
    """Map database and Redis connection errors to 503 + Retry-After on every endpoint of `api`."""

    def handler(request: HttpRequest, exc: Exception) -> HttpResponse:
        return outage_response(api, request, exc)

    for exc_class in (*DATABASE_ERRORS, *REDIS_ERRORS):
        api.add_exception_handler(exc_class, handler)


class OutageMiddleware:
    """The same 503 for views outside the NinjaAPI (Slack interactions, the admin), which would
    otherwise answer Django's 500 page when the database is down."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (*DATABASE_ERRORS, *REDIS_ERRORS)):
            return None
        logger.warning("503 on %s %s: %s: %s", request.method, request.path, exception.__class__.__name__, exception)
        detail = outage_detail(exception)
        if request.path.startswith(("/api/", "/slack/")):
            response: HttpResponse = JsonResponse({"detail": detail}, status=503)
        else:
            response = HttpResponse(f"Service unavailable: {detail}.", status=503, content_type="text/plain")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
