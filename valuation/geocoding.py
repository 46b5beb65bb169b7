"""Geocoders: an address line -> (latitude, longitude). Pluggable; off unless VALUATION_GEOCODER is set.

`census`: the free US Census Bureau geocoder (one HTTP GET, no key). Answers are cached for 30
days, misses for a day, so a lead re-valued or a repeat address never costs a second call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Protocol

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

HIT_SECONDS = 30 * 24 * 3600
MISS_SECONDS = 24 * 3600
HTTP_TIMEOUT = 5.0


class Geocoder(Protocol):
    def geocode(self, address: str) -> tuple[float, float] | None: ...


class CensusGeocoder:
    def __init__(self, url: str) -> None:
        self.url = url

    def geocode(self, address: str) -> tuple[float, float] | None:
        normalised = " ".join(address.lower().split())
        key = "valuation:geocode:census:" + hashlib.sha256(normalised.encode()).hexdigest()[:32]
        cached = cache.get(key)
        if cached is not None:
            return tuple(cached) if cached else None
        query = urllib.parse.urlencode({"address": address, "benchmark": "Public_AR_Current", "format": "json"})
        try:
            with urllib.request.urlopen(f"{self.url}?{query}", timeout=HTTP_TIMEOUT) as response:  # noqa: S310
                payload = json.load(response)
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            # Transient: not cached, the next valuation tries again.
            logger.warning("census geocoder failed for %r: %s", address, exc)
            return None
        matches = (payload.get("result") or {}).get("addressMatches") or []
        if not matches:
            cache.set(key, [], timeout=MISS_SECONDS)
            return None
        coords = matches[0]["coordinates"]
        point = (float(coords["y"]), float(coords["x"]))
        cache.set(key, list(point), timeout=HIT_SECONDS)
        return point


def get_geocoder() -> Geocoder | None:
    if settings.VALUATION_GEOCODER == "census":
        return CensusGeocoder(settings.VALUATION_GEOCODER_URL)
    return None
