"""CORS per API key: django-cors-headers asks this whether a request's origin may be allowed."""

from __future__ import annotations

from corsheaders.signals import check_request_enabled
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
