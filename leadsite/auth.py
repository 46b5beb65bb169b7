"""Authentication for the JSON API: `X-Api-Key` with a scope, or a logged-in staff session.

Use `auth=api_key("leads:read")` for form/service endpoints and `auth=staff_or_key("leads:read")`
for staff endpoints. A missing or wrong key is 401, a key without the scope 403, a key over its
rate limit 429 with Retry-After, a browser origin the key does not allow 403.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import AuthorizationError, HttpError
from ninja.security import APIKeyHeader
from ninja.security.session import SessionAuthIsStaff

from leadsite.permissions import SCOPE_PERMISSIONS
from leadsite.services import AuthenticatedKey, api_key_authenticate, rate_limit_check


class RateLimited(HttpError):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(429, "rate limit exceeded for this API key")


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address the
    outermost trusted proxy saw (X-Forwarded-For, counted from the right: only our proxies' entries
    can be trusted, a client can put anything on the left)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            try:
                # It is stored as the consent IP (an inet column): an address or nothing.
                return str(ipaddress.ip_address(hops[-proxies]))
            except ValueError:
                pass
    return request.META.get("REMOTE_ADDR", "")


def origin_is_same_site(request: HttpRequest, origin: str) -> bool:
    return origin.split("://", 1)[-1] == request.get_host()


class ApiKeyAuth(APIKeyHeader):
    param_name = "X-Api-Key"

    def __init__(self, scope: str) -> None:
        # With no key header, authenticate() returns None: the next auth class (if any) gets its turn,
        # else ninja answers 401.
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, key: str | None) -> AuthenticatedKey | None:
        if not key:
            return None
        api_key = api_key_authenticate(key)
        if api_key is None:
            return None
        if not api_key.has_scope(self.scope):
            raise AuthorizationError(message=f"this API key lacks the {self.scope!r} scope")
        origin = request.headers.get("Origin")
        if origin and origin not in api_key.allowed_origins and not origin_is_same_site(request, origin):
            raise AuthorizationError(message=f"origin {origin} is not allowed for this API key")
        retry_after, ticket = rate_limit_check(key=api_key, client=client_address(request))
        if retry_after is not None:
            raise RateLimited(retry_after)
        # leadsite.middleware settles it once the response says whether the request was rejected.
        request.rate_limit_ticket = ticket  # type: ignore[attr-defined]
        request.api_key = api_key  # type: ignore[attr-defined]
        return api_key


class StaffSessionAuth(SessionAuthIsStaff):
    """The admin's session (CSRF-checked on unsafe methods by ninja), holding the model permission the
    admin asks for the same data (leadsite.permissions.SCOPE_PERMISSIONS): 403 without it."""

    def __init__(self, scope: str | None = None) -> None:
        self.permission = SCOPE_PERMISSIONS.get(scope) if scope else None
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user is None or not user.is_active:
            return None
        allowed = user.is_superuser if self.permission is None else user.has_perm(self.permission)
        if self.scope is not None and not allowed:
            raise AuthorizationError(message=f"your staff account lacks the permission for {self.scope!r}")
        return user


def api_key(scope: str) -> list:
    return [ApiKeyAuth(scope)]


def staff_or_key(scope: str) -> list:
    return [ApiKeyAuth(scope), StaffSessionAuth(scope)]
