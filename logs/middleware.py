"""One central-log entry per API request, so a journey starts with the web request that began it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("logs.access")

_SKIP = ("/api/health",)  # polled by load balancers: noise, not journeys


class RequestLogMiddleware:
    """Logs `METHOD path status duration` for /api/ requests (event `http.request`). Sits inside
    RequestIdMiddleware, so the entry carries the request id, and the lead id when the view set one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith("/api/") or request.path_info.startswith(_SKIP):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        api_key = getattr(request, "api_key", None)
        logger.log(
            logging.WARNING if response.status_code >= 500 else logging.INFO,
            "%s %s %s in %.1f ms",
            request.method,
            request.path_info,
            response.status_code,
            duration_ms,
            extra={
                "event": "http.request",
                "method": request.method,
                "path": request.path_info,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "api_key": api_key.name if api_key is not None else None,
            },
        )
        return response
