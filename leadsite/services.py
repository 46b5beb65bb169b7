"""API key services: creation, lookup (cached) and per-key rate limiting."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_redis import get_redis_connection
from django_redis.cache import RedisCache
from redis.exceptions import RedisError

from leadsite.models import ApiKey, Scope

KEY_CACHE_SECONDS = 60
# Each process also keeps keys it has just seen in memory for a second: auth then costs no network
# round trip on the hot path. A revoked or edited key stops working everywhere within this time:
# the shared entries are checked against a generation that every invalidation bumps (after commit).
KEY_LOCAL_SECONDS = 1
KEY_GENERATION_CACHE_KEY = "apikey:v1:generation"
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
    """Forget a changed or revoked key everywhere, once the change has committed.

    Inside a transaction (the admin's), invalidating at once would let a concurrent request re-cache
    the old row before the commit; so it runs on commit, and bumps the generation as well as deleting
    the entry: an entry a request cached from a read that began before the bump is stale by its
    generation even if it was written after the delete."""

    def invalidate() -> None:
        _local_keys.pop(prefix, None)
        cache.add(KEY_GENERATION_CACHE_KEY, 0, timeout=None)
        try:
            cache.incr(KEY_GENERATION_CACHE_KEY)
        except ValueError:  # evicted between add and incr
            cache.set(KEY_GENERATION_CACHE_KEY, 1, timeout=None)
        cache.delete_many([_key_cache_key(prefix), ALLOWED_ORIGINS_CACHE_KEY])

    transaction.on_commit(invalidate)


def api_key_revoke(*, prefix: str) -> int:
    """Deactivate a key; it stops authenticating in every process within about a second."""
    with transaction.atomic():
        updated = ApiKey.objects.filter(prefix=prefix).update(is_active=False)
        api_key_invalidate(prefix=prefix)
    return updated


def api_key_authenticate(raw_key: str | None) -> AuthenticatedKey | None:
    """The active key matching `raw_key`, or None. Cached briefly so auth costs no query."""
    if not raw_key or not raw_key.startswith("ls_") or raw_key.count("_") < 2:
        return None
    prefix = raw_key.split("_", 2)[1]
    cache_key = _key_cache_key(prefix)
    now = time.monotonic()
    local = _local_keys.get(prefix)
    generation = 0
    if local is not None and local[0] > now:
        cached = local[1]
    else:
        shared = cache.get_many([cache_key, KEY_GENERATION_CACHE_KEY])
        generation = shared.get(KEY_GENERATION_CACHE_KEY, 0)
        cached = shared.get(cache_key)
        if cached is not None and cached.get("generation") != generation:
            cached = None  # cached before a key was changed or revoked
    if cached is None:
        # `generation` was read before the row: if the key changes after this read, the bump makes
        # what we cache here stale.
        row = ApiKey.objects.filter(prefix=prefix, is_active=True).first()
        cached = (
            {"missing": True, "generation": generation}
            if row is None
            else {
                "generation": generation,
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


@dataclass(frozen=True)
class RateLimitTicket:
    """What a request counted, so a rejected one can be settled after the response (rate_limit_settle)."""

    key_id: int
    client: str
    window: int


_COUNTER_SECONDS = 120  # a one-minute window's counter outlives its minute


def _incr(counter: str) -> int | None:
    """INCR a one-minute counter (created at 0 if missing); None when the cache is down."""
    cache.add(counter, 0, timeout=_COUNTER_SECONDS)
    try:
        return cache.incr(counter)
    except ValueError:  # expired between add and incr
        cache.add(counter, 1, timeout=_COUNTER_SECONDS)
        return 1


def _client_limit(key: AuthenticatedKey) -> int:
    # A key with browser origins is public (it sits in a web page): no one address may use more than
    # a small share of it. A server-to-server key is a secret and its one client may use all of it.
    if key.allowed_origins:
        return min(key.rate_limit, settings.API_CLIENT_RATE_PER_MINUTE)
    return key.rate_limit


def rate_limit_check(
    *, key: AuthenticatedKey, client: str, now: float | None = None
) -> tuple[int | None, RateLimitTicket | None]:
    """Count one request from `client` (an address) against the key's per-minute limits.

    Returns (None, ticket) when allowed, or (seconds until the window resets, None) when not. Fixed
    one-minute windows in the shared cache (atomic INCR on Redis), three counters:
    - the client's rejected requests (RATE_LIMIT_REJECTED_PER_MINUTE, counted by rate_limit_settle):
      an address sending junk is stopped early, and only that address;
    - the client's requests to this key (all of the key's limit for a secret key, a share of it for a
      public one): one address cannot use up the key;
    - the key's requests from everyone: the key's own limit. A request that turns out rejected gives
      its slot back (rate_limit_settle), so junk can never starve valid leads.
    If the cache is down the request is allowed.
    """
    if key.rate_limit <= 0:
        return None, None
    now = time.time() if now is None else now
    window = int(now // 60)
    retry_after = max(1, int((window + 1) * 60 - now) + 1)
    counters = (
        f"ratelimit:{key.id}:rejected:{client}:{window}",
        f"ratelimit:{key.id}:client:{client}:{window}",
        f"ratelimit:{key.id}:{window}",
    )
    limits = (settings.RATE_LIMIT_REJECTED_PER_MINUTE, _client_limit(key), key.rate_limit)
    count = _count_on_redis if isinstance(caches["default"], RedisCache) else _count_in_cache
    if not count(counters, limits):
        return retry_after, None
    return None, RateLimitTicket(key_id=key.id, client=client, window=window)


def _count_in_cache(counters: tuple[str, str, str], limits: tuple[int, int, int]) -> bool:
    """The three counters, in order (any cache): False as soon as one is over its limit."""
    rejected_counter, client_counter, key_counter = counters
    rejected = cache.get(rejected_counter)
    if rejected is not None and rejected >= limits[0]:
        return False
    client_count = _incr(client_counter)
    if client_count is not None and client_count > limits[1]:
        return False
    count = _incr(key_counter)
    return count is None or count <= limits[2]


# _count_in_cache's three steps in one round trip to Redis instead of five (GET, then ADD and INCR
# per counter): ~0.5-0.9 ms of CPU a request with a rate-limited key (bench/profile_intake.py
# --rate-limited). The counters are the same keys and integers (django-redis stores ints as they
# are), so rate_limit_settle's DECR and INCR work on them unchanged.
_RATE_LIMIT_LUA = """
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then return 0 end
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
if n > tonumber(ARGV[2]) then return 0 end
n = redis.call('INCR', KEYS[3])
if n == 1 then redis.call('EXPIRE', KEYS[3], ARGV[4]) end
if n > tonumber(ARGV[3]) then return 0 end
return 1
"""
_scripts: dict[int, Any] = {}


def _count_on_redis(counters: tuple[str, str, str], limits: tuple[int, int, int]) -> bool:
    try:
        client = get_redis_connection("default")
        script = _scripts.get(id(client))
        if script is None:
            script = _scripts[id(client)] = client.register_script(_RATE_LIMIT_LUA)
        return bool(script(keys=[cache.make_key(c) for c in counters], args=[*limits, _COUNTER_SECONDS]))
    except RedisError:
        return True  # the cache is down: allowed, as everywhere else


def rate_limit_settle(*, ticket: RateLimitTicket, rejected: bool) -> None:
    """After the response: a rejected request (4xx) gives its slot in the key's budget back and counts
    against its client's rejected budget instead."""
    if not rejected:
        return
    try:
        cache.decr(f"ratelimit:{ticket.key_id}:{ticket.window}")
    except ValueError:  # the window's counter expired meanwhile: nothing to give back
        pass
    _incr(f"ratelimit:{ticket.key_id}:rejected:{ticket.client}:{ticket.window}")


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
