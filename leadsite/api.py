"""The one NinjaAPI, mounted at /api/. Each app contributes a router from its own api.py."""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from ninja import NinjaAPI
from ninja.errors import HttpError

from leadsite.auth import RateLimited
from leadsite.parser import JsonParser
from leadsite.storable import InvalidJson

logger = logging.getLogger(__name__)

api = NinjaAPI(
    title="leadsite API",
    version="1.0",
    description=(
        "Seller-lead intake and back office. Authenticate with `X-Api-Key` (scoped keys from "
        '`manage.py create_api_key`) or a staff session. Errors are JSON `{"detail": ...}`.'
    ),
    urls_namespace="api",
    parser=JsonParser(),
)


def install_error_handlers(api: NinjaAPI) -> None:
    """JSON errors for everything: 413, 422 (domain validation), 429 with Retry-After, 500 without a traceback."""

    @api.exception_handler(RateLimited)
    def _rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
        response = api.create_response(request, {"detail": str(exc)}, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response

    @api.exception_handler(RequestDataTooBig)
    def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return api.create_response(request, {"detail": "request body too large"}, status=413)

    @api.exception_handler(DjangoValidationError)
    def _domain_validation(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return api.create_response(request, {"detail": detail}, status=422)

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # ninja wraps a parser error in "Cannot parse request body"; ours says what was wrong.
        detail = str(exc.__cause__) if isinstance(exc.__cause__, InvalidJson) else str(exc)
        return api.create_response(request, {"detail": detail}, status=exc.status_code)

    @api.exception_handler(Exception)
    def _unhandled(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("unhandled API error on %s %s", request.method, request.path)
        return api.create_response(
            request,
            {"detail": "internal server error", "request_id": getattr(request, "request_id", None)},
            status=500,
        )


install_error_handlers(api)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The project's 404 handler: JSON for /api/ like every other API error, Django's page elsewhere."""
    if request.path_info.startswith("/api/") or request.path_info == "/api":
        return JsonResponse({"detail": "Not Found"}, status=404)
    return page_not_found(request, exception)


def _mount_routers() -> None:
    from importlib import import_module

    from leadsite.health import router as health_router

    api.add_router("/", health_router)
    for app_label in ("leads", "valuation", "grading", "notifications", "logs"):
        module = import_module(f"{app_label}.api")
        router = getattr(module, "router", None)
        if router is not None:
            api.add_router("/", router)


_mount_routers()
