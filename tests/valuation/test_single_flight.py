"""The single-flight lock in front of valuations: a cache outage must not make every call wait, and a
caller only ever removes its own lock."""

from __future__ import annotations

import copy
import datetime as dt
import time

import pytest
from django.core.cache import cache

from tests.valuation.conftest import SUBJECT
from valuation import engine, services
from valuation.engine import PropertyFacts
from valuation.services import model_train, valuation_cache_key, valuation_get

AS_OF = dt.date(2015, 6, 5)


@pytest.fixture
def trained(make_sales):
    make_sales()
    return model_train()


def _lock_key(facts: PropertyFacts) -> str:
    return valuation_cache_key(facts.normalised(), AS_OF, engine.model_version_for(AS_OF)) + ":lock"


def test_with_the_cache_down_a_valuation_is_computed_at_once(trained, settings, redis_server) -> None:
    url, proc = redis_server()
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = url
    settings.CACHES = caches
    assert cache.add("probe", 1) is True  # the private Redis is up and is the cache now
    proc.kill()
    proc.wait()
    assert cache.add("probe-2", 1) is None  # down: django-redis ignores the error and answers None

    started = time.monotonic()
    result = valuation_get(facts=PropertyFacts(**SUBJECT), as_of=AS_OF)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0, f"valuation took {elapsed:.1f}s with the cache down (waited for a lock nobody holds)"
    assert result["status"] == "ok"
    assert result["model_version"] == trained.id
    assert result["low"] < result["estimate"] < result["high"]


def test_a_caller_that_did_not_get_the_lock_leaves_it_alone(trained, monkeypatch) -> None:
    monkeypatch.setattr(services, "LOCK_WAIT_SECONDS", 0.2)  # the holder never answers; don't wait 10 s
    facts = PropertyFacts(**SUBJECT)
    lock_key = _lock_key(facts)
    assert cache.add(lock_key, "another-computation", timeout=30) is True

    result = valuation_get(facts=facts, as_of=AS_OF)

    assert result["status"] == "ok"
    assert cache.get(lock_key) == "another-computation"  # not deleted by a caller that never held it


def test_the_lock_is_released_after_computing(trained) -> None:
    facts = PropertyFacts(**SUBJECT)
    valuation_get(facts=facts, as_of=AS_OF)
    assert cache.get(_lock_key(facts)) is None


def test_an_expired_lock_taken_by_another_computation_is_not_released(trained) -> None:
    lock_key = _lock_key(PropertyFacts(**SUBJECT))
    cache.set(lock_key, "someone-else", timeout=30)  # ours expired and another computation took it
    services._release(lock_key, "our-token")
    assert cache.get(lock_key) == "someone-else"
    services._release(lock_key, "someone-else")
    assert cache.get(lock_key) is None
