from __future__ import annotations

import io
from collections.abc import Callable

from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware
from django.http import HttpRequest, HttpResponse, JsonResponse

from leadsite.context import is_well_formed_request_id, lead_id_var, new_request_id, request_id_var
from leadsite.services import rate_limit_settle


class RequestIdMiddleware:
    """Keeps a well-formed incoming X-Request-ID or makes one; returns it on every response.

    The id lives in a contextvar for the request's duration, so logging and every Celery task
    the request starts carry it (see leadsite.celery).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID")
        request_id = incoming if is_well_formed_request_id(incoming) else new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        lead_token = lead_id_var.set(None)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
            lead_id_var.reset(lead_token)
        response["X-Request-ID"] = request_id
        return response


class RequestGuardMiddleware:
    """Cheap checks on API requests before any view reads them, each answered with JSON.

    - 413 for bodies over the limit: 64 KB for the API, 1 MB for log batches on /api/logs ; a chunked
      body (no Content-Length) is read here, bounded, since Django would see it empty).
    - 415 for an /api/ body that is not JSON (webhooks included: Stripe sends JSON).
    - 400 for a NUL character in the query string: PostgreSQL cannot store or compare it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        limit = body_limit_for(path)
        if limit is None:
            return self.get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "invalid Content-Length header"}, status=400)
        if not length and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            # Django reads a body only up to Content-Length, so a chunked body (gunicorn passes it
            # through) would arrive empty. Read it here, bounded by the limit.
            length = read_chunked_body(request, limit)
        if length > limit:
            return JsonResponse(
                {"detail": f"request body too large: {length} bytes, the limit here is {limit} bytes"},
                status=413,
            )
        if length and path.startswith("/api/") and request.content_type != "application/json":
            return JsonResponse(
                {"detail": f"Content-Type must be application/json, got {request.content_type or 'none'!r}"},
                status=415,
            )
        if "\x00" in request.META.get("QUERY_STRING", "") or "%00" in request.META.get("QUERY_STRING", ""):
            return JsonResponse({"detail": "NUL characters are not allowed in query parameters"}, status=400)
        response = self.get_response(request)
        if response.status_code == 405 and path.startswith("/api/") and response.get("Allow"):
            # ninja answers a wrong method in plain text; every API error is JSON.
            allowed = response["Allow"]
            response = JsonResponse({"detail": f"method {request.method} not allowed; use {allowed}"}, status=405)
            response["Allow"] = allowed
        ticket = getattr(request, "rate_limit_ticket", None)
        if ticket is not None:
            # A rejected request (4xx other than 429) counts against its client, not the key's budget.
            status = response.status_code
            rate_limit_settle(ticket=ticket, rejected=400 <= status < 500 and status != 429)
        return response


def read_chunked_body(request: HttpRequest, limit: int) -> int:
    """Read a body sent without Content-Length, at most `limit` + 1 bytes, into the request (so
    `request.body` and `request.POST` see it); returns its length (over `limit` when too big)."""
    stream = request.META.get("wsgi.input")
    if stream is None:
        return 0
    chunks, size = [], 0
    while size <= limit:
        chunk = stream.read(min(64 * 1024, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    body = b"".join(chunks)
    request._body = body  # type: ignore[attr-defined]  # what HttpRequest.body caches
    request._stream = io.BytesIO(body)  # type: ignore[attr-defined]
    request.META["CONTENT_LENGTH"] = str(size)
    return size


def body_limit_for(path: str) -> int | None:
    if path.startswith("/api/logs"):
        return settings.API_LOGS_MAX_BODY_BYTES
    if path.startswith(("/api/", "/slack/")):
        return settings.API_MAX_BODY_BYTES
    return None


class AdminMessageMiddleware(MessageMiddleware):
    """Django's messages, for the admin's pages only: the JSON API never shows a flash message,
    and building the storage costs every API request ~18 µs."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/api/"):
            return self.get_response(request)
        return super().__call__(request)
