"""The per-key and per-client rate limits count the same on Redis (one Lua round trip) as on any
other cache (the embedded one of `make run`), and settle on the same counters."""

from __future__ import annotations

import pytest
from django.core.cache import caches

from leadsite.services import AuthenticatedKey, rate_limit_check, rate_limit_settle

NOW = 1_800_000_000.0  # the start of a minute: one window for the whole test

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "rate-limit-test"}}


def _key(*, origins: tuple[str, ...]) -> AuthenticatedKey:
    return AuthenticatedKey(id=42, name="form", prefix="abcd", scopes=(), allowed_origins=origins, rate_limit=5)


def _answers(settings) -> list[str]:
    """A public key (5/min, 3/min per address here): what each request gets, in order."""
    settings.API_CLIENT_RATE_PER_MINUTE = 3
    settings.RATE_LIMIT_REJECTED_PER_MINUTE = 2
    key = _key(origins=("https://www.example.com",))
    out = []
    for client, rejected in [("1.1.1.1", False)] * 4 + [("2.2.2.2", True)] * 3 + [("3.3.3.3", False)] * 3:
        retry_after, ticket = rate_limit_check(key=key, client=client, now=NOW)
        out.append(f"{client}:{'429' if retry_after else 'ok'}")
        if ticket is not None:
            rate_limit_settle(ticket=ticket, rejected=rejected)
    return out


# 1.1.1.1: 3 allowed, the 4th over its share; 2.2.2.2: two rejected requests (given back to the
# key's budget), then refused; 3.3.3.3: the key's remaining 2 of 5, then refused.
EXPECTED = (
    ["1.1.1.1:ok"] * 3 + ["1.1.1.1:429"] + ["2.2.2.2:ok"] * 2 + ["2.2.2.2:429"] + ["3.3.3.3:ok"] * 2 + ["3.3.3.3:429"]
)


def test_counting_on_redis(settings) -> None:
    from django_redis.cache import RedisCache

    assert isinstance(caches["default"], RedisCache)
    caches["default"].clear()
    assert _answers(settings) == EXPECTED


@pytest.mark.parametrize("cache_settings", [LOCMEM])
def test_counting_on_another_cache(settings, cache_settings) -> None:
    settings.CACHES = cache_settings
    caches["default"].clear()
    assert _answers(settings) == EXPECTED
