"""Tiny typed readers for environment settings.

Every setting leadsite reads comes through one of these, so a bad value fails at start-up with a
message that names the variable instead of surfacing later as a confusing runtime error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str = "", *, environ: Mapping[str, str] | None = None) -> str:
    value = _raw(name, environ)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no), got {value!r}")


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    value = _raw(name, environ)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {number}")
    return number


def env_list(name: str, default: list[str], *, environ: Mapping[str, str] | None = None) -> list[str]:
    value = _raw(name, environ)
    if value is None or value == "":
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(
    name: str,
    default: str = "",
    *,
    schemes: tuple[str, ...],
    environ: Mapping[str, str] | None = None,
) -> str:
    """A URL whose scheme is one of `schemes`; '' when unset and no default."""
    value = env_str(name, default, environ=environ)
    if not value:
        return ""
    parsed = urlparse(value)
    if parsed.scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ImproperlyConfigured(f"{name} must be a URL starting with {allowed}, got {value!r}")
    if parsed.scheme in {"http", "https", "redis", "rediss", "postgres", "postgresql", "amqp"} and not parsed.hostname:
        raise ImproperlyConfigured(f"{name} must name a host, got {value!r}")
    return value


def require_secret_key() -> None:
    """Called by the entry points that serve or sign (wsgi, asgi, runserver, Celery worker and beat)."""
    from django.conf import settings

    if settings.LEADSITE_SECRET_KEY_MISSING:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")


def redis_url_with_db(url: str, db: int) -> str:
    """`url` (redis://, rediss://, unix://) pointing at database number `db` instead of its own.

    The default broker lives next to the cache on the same server but in another database, so a
    cache FLUSHDB or an eviction of cache keys never drops queued tasks.
    """
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "db"]
    if parts.scheme == "unix":
        # Built by hand: urlunsplit() turns "unix:///path" into "unix:/path".
        return f"unix://{parts.netloc}{parts.path}?{urlencode([*query, ('db', str(db))])}"
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


def redis_url_db(url: str) -> int:
    """The database number a redis URL selects (path `/n` or `?db=n`; 0 when it names none)."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    db = parse_qs(parts.query).get("db", [""])[0] or parts.path.strip("/")
    return int(db) if db.isdigit() else 0


def env_decimal(
    name: str,
    default: str,
    *,
    minimum: str | None = None,
    maximum: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Decimal:
    """A finite decimal (money shares, ratios), kept exact: no float on the way in."""
    value = _raw(name, environ)
    text = default if value is None or value == "" else value
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name} must be a decimal number, got {text!r}") from None
    if not number.is_finite():
        raise ImproperlyConfigured(f"{name} must be a finite number, got {text!r}")
    if minimum is not None and number < Decimal(minimum):
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    if maximum is not None and number > Decimal(maximum):
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {number}")
    return number
