"""The one NinjaAPI, mounted at /api/. Each app contributes a router from its own api.py."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from ninja import NinjaAPI
from ninja.errors import HttpError

from leadsite.auth import RateLimited
from leadsite.outages import install_outage_handlers
from leadsite.parser import JsonParser
from leadsite.schemas import ErrorOut
from leadsite.storable import InvalidJson

logger = logging.getLogger(__name__)

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
ERROR_DESCRIPTIONS = {
    "400": "Bad request: the body is not JSON we accept (or nests too deeply), a NUL in the query string",
    "401": "Missing or wrong API key (or signature)",
    "403": "The API key lacks the scope, or the browser origin is not allowed",
    "404": "Not found",
    "409": "Conflict",
    "413": "Request body too large",
    "414": "Request line over 4 KB: answered by gunicorn, as HTML, before the application",
    "415": "Content-Type is not application/json",
    "422": "Validation error: `detail` lists the problems per field",
    "429": "Rate limit exceeded; see Retry-After",
    "503": "A backing service (database) is unavailable; see Retry-After",
}


def _error_codes(method: str, path: str, operation: dict) -> list[str]:
    """The errors an operation can answer besides those it declares itself (see leadsite.middleware,
    leadsite.auth and the exception handlers below)."""
    codes = ["503"]  # the database can be down for any operation
    if operation.get("security"):
        codes += ["401", "403", "429"]
    if method in ("post", "put", "patch"):
        codes += ["400", "413", "415", "422"]
    if operation.get("parameters"):
        codes += ["400", "422"]
    if any(param.get("in") == "query" for param in operation.get("parameters", [])):
        codes.append("414")
    if "{" in path:
        codes.append("404")
    return codes


class LeadsiteAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict | None = None) -> Any:
        """ninja's schema, plus every error response an operation can give, each an ErrorOut."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schema.setdefault("components", {}).setdefault("schemas", {})["ErrorOut"] = ErrorOut.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for code in _error_codes(method, path, operation):
                    if code not in responses:
                        content = (
                            {"text/html": {"schema": {"type": "string"}}}
                            if code == "414"
                            else {"application/json": {"schema": ERROR_REF}}
                        )
                        responses[code] = {"description": ERROR_DESCRIPTIONS[code], "content": content}
                    if code in ("429", "503"):
                        responses[code].setdefault("headers", RETRY_AFTER)
        return schema


api = LeadsiteAPI(
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
# Database / Redis unreachable: 503 + Retry-After at once (leadsite/outages.py).
install_outage_handlers(api)


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
