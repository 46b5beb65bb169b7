"""API key services: creation, lookup (cached) and per-key rate limiting."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from leadsite.models import ApiKey, Scope

KEY_CACHE_SECONDS = 60
# Each process also keeps keys it has just seen in memory for a few seconds: auth then costs no
# network round trip on the hot path. A revoked or edited key stops working everywhere within
# this many seconds.
KEY_LOCAL_SECONDS = 10
_KEY_LOCAL_MAX = 1000
_local_keys: dict[str, tuple[float, dict]] = {}
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class AuthenticatedKey:
    """What a request knows about the key that authenticated it (safe to cache)."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    rate_limit: int

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def _hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _key_cache_key(prefix: str) -> str:
    return f"apikey:v1:{prefix}"


def _validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise ValidationError(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(Scope.values)}")
    if not scopes:
        raise ValidationError("an API key needs at least one scope")
    return sorted(set(scopes))


def _validate_origins(origins: list[str]) -> list[str]:
    cleaned = []
    for origin in origins:
        origin = origin.rstrip("/")
        if not origin.startswith(("http://", "https://")) or "/" in origin.split("://", 1)[1]:
            raise ValidationError(f"origin must look like https://example.com, got {origin!r}")
        cleaned.append(origin)
    return cleaned


def api_key_create(
    *, name: str, scopes: list[str], allowed_origins: list[str] | None = None, rate_limit: int = 60
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is never stored and shown once."""
    if rate_limit < 0:
        raise ValidationError("rate limit must be 0 (unlimited) or more requests per minute")
    prefix = secrets.token_hex(4)
    raw_key = f"ls_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name,
            prefix=prefix,
            hashed_key=_hash(raw_key),
            scopes=_validate_scopes(scopes),
            allowed_origins=_validate_origins(allowed_origins or []),
            rate_limit=rate_limit,
        )
    return key, raw_key


def api_key_invalidate(*, prefix: str) -> None:
    _local_keys.pop(prefix, None)
    cache.delete(_key_cache_key(prefix))
    cache.delete(ALLOWED_ORIGINS_CACHE_KEY)


def api_key_authenticate(raw_key: str | None) -> AuthenticatedKey | None:
    """The active key matching `raw_key`, or None. Cached briefly so auth costs no query."""
    if not raw_key or not raw_key.startswith("ls_") or raw_key.count("_") < 2:
        return None
    prefix = raw_key.split("_", 2)[1]
    cache_key = _key_cache_key(prefix)
    now = time.monotonic()
    local = _local_keys.get(prefix)
    cached = local[1] if local is not None and local[0] > now else cache.get(cache_key)
    if cached is None:
        row = ApiKey.objects.filter(prefix=prefix, is_active=True).first()
        cached = (
            {"missing": True}
            if row is None
            else {
                "id": row.id,
                "name": row.name,
                "prefix": row.prefix,
                "hashed_key": row.hashed_key,
                "scopes": list(row.scopes),
                "allowed_origins": list(row.allowed_origins),
                "rate_limit": row.rate_limit,
            }
        )
        cache.set(cache_key, cached, KEY_CACHE_SECONDS)
    if local is None or local[0] <= now:
        if len(_local_keys) >= _KEY_LOCAL_MAX:
            _local_keys.clear()
        _local_keys[prefix] = (now + KEY_LOCAL_SECONDS, cached)
    if cached.get("missing") or not hmac.compare_digest(cached["hashed_key"], _hash(raw_key)):
        return None
    _touch_last_used(cached)
    return AuthenticatedKey(
        id=cached["id"],
        name=cached["name"],
        prefix=cached["prefix"],
        scopes=tuple(cached["scopes"]),
        allowed_origins=tuple(cached["allowed_origins"]),
        rate_limit=cached["rate_limit"],
    )


_last_touched: dict[int, float] = {}


def _touch_last_used(cached: dict) -> None:
    # Writing last_used_at on every request would cost an UPDATE per call; once a minute is plenty.
    # The shared cache decides which process writes (cache.add succeeds once a minute); the auth
    # entry itself is never re-written here, so a key revoked meanwhile is not re-cached as active.
    now = time.monotonic()
    if (
        now - _last_touched.get(cached["id"], -LAST_USED_RESOLUTION.total_seconds())
        < LAST_USED_RESOLUTION.total_seconds()
    ):
        return
    _last_touched[cached["id"]] = now
    if cache.add(f"apikey:v1:used:{cached['id']}", 1, int(LAST_USED_RESOLUTION.total_seconds())):
        ApiKey.objects.filter(id=cached["id"]).update(last_used_at=timezone.now())


def rate_limit_check(*, key: AuthenticatedKey, now: float | None = None) -> int | None:
    """Count one request against the key's per-minute limit.

    Returns None when allowed, or the seconds until the window resets when over the limit.
    A fixed one-minute window in the shared cache (atomic INCR on Redis): simple, shared by all
    web processes, and cheap. If the cache is down the request is allowed.
    """
    if key.rate_limit <= 0:
        return None
    now = time.time() if now is None else now
    window = int(now // 60)
    counter = f"ratelimit:{key.id}:{window}"
    cache.add(counter, 0, timeout=120)
    try:
        count = cache.incr(counter)
    except ValueError:  # expired between add and incr
        cache.add(counter, 1, timeout=120)
        count = 1
    if count is None:
        return None
    if count > key.rate_limit:
        return max(1, int((window + 1) * 60 - now) + 1)
    return None


ALLOWED_ORIGINS_CACHE_KEY = "apikey:v1:all-origins"


def allowed_origins_all() -> frozenset[str]:
    """Every origin some active key allows (used to answer CORS preflights, which carry no key)."""
    origins = cache.get(ALLOWED_ORIGINS_CACHE_KEY)
    if origins is None:
        origins = sorted(
            {o for row in ApiKey.objects.filter(is_active=True).values_list("allowed_origins", flat=True) for o in row}
        )
        cache.set(ALLOWED_ORIGINS_CACHE_KEY, origins, KEY_CACHE_SECONDS)
    return frozenset(origins)
