"""Geocoders: an address -> a Location (latitude, longitude and how precise they are).

Pluggable behind `Geocoder`. The default online one is the free US Census Bureau geocoder
(`onelineaddress`, one HTTP GET, no key): its points are interpolated along the street's address
range, so their precision is `interpolated`. When it is off, down, slow or finds nothing, the
ZIP code's centroid from the `zipcodes` package (its data ships inside the wheel: no network) is
the fallback, precision `zip_centroid`, and the valuation widens its range for it.

Census answers are cached for 30 days and misses for a day, so a lead re-valued or a repeat address
never costs a second call; a failure marks the service down for a minute so a burst of leads during
an outage does not each wait for the timeout.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

HIT_SECONDS = 30 * 24 * 3600
MISS_SECONDS = 24 * 3600
DOWN_SECONDS = 60

ROOFTOP = "rooftop"
INTERPOLATED = "interpolated"
ZIP_CENTROID = "zip_centroid"
MANUAL = "manual"
PRECISIONS = (ROOFTOP, INTERPOLATED, ZIP_CENTROID, MANUAL)
# Precisions that place the house itself (its street block or better) rather than its area.
FINE_PRECISIONS = frozenset({ROOFTOP, INTERPOLATED, MANUAL})

_ZIP5 = re.compile(r"\b(\d{5})(?:-\d{4})?\b")


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    precision: str  # one of PRECISIONS
    source: str  # "census", "zip", "manual", ...


@dataclass(frozen=True)
class GeocodeResult:
    location: Location | None
    # Why the fallback was used ("geocoder_off", "geocoder_unavailable", "no_match"), or "".
    fallback_reason: str = ""


class GeocoderUnavailable(Exception):
    """The service could not answer (network error, timeout, 5xx, garbage): try the fallback."""


class Geocoder(Protocol):
    name: str

    def geocode(self, address: str) -> Location | None:
        """The address's location, None when the service answered that it has no match.

        Raises GeocoderUnavailable when the service could not answer."""
        ...


class CensusGeocoder:
    name = "census"

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    def _key(self, address: str) -> str:
        normalised = " ".join(address.lower().split())
        return "valuation:geocode:census:" + hashlib.sha256(normalised.encode()).hexdigest()[:32]

    def geocode(self, address: str) -> Location | None:
        key = self._key(address)
        cached = cache.get(key)
        if cached is not None:
            return Location(cached[0], cached[1], INTERPOLATED, self.name) if cached else None
        if cache.get(DOWN_KEY):
            raise GeocoderUnavailable("census geocoder marked down after a recent failure")
        query = urllib.parse.urlencode({"address": address, "benchmark": "Public_AR_Current", "format": "json"})
        try:
            with urllib.request.urlopen(f"{self.url}?{query}", timeout=self.timeout) as response:  # noqa: S310
                payload = json.load(response)
            matches = (payload.get("result") or {}).get("addressMatches")
            if not isinstance(matches, list):
                raise ValueError("no result.addressMatches in the answer")
            if matches:
                coords = matches[0]["coordinates"]
                point = (float(coords["y"]), float(coords["x"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # OSError covers URLError, HTTPError, connection refused and socket timeouts. Not cached
            # as a miss: the next valuation tries again once the service is back.
            logger.warning("census geocoder failed for %r: %s", address, exc)
            cache.set(DOWN_KEY, 1, timeout=DOWN_SECONDS)
            raise GeocoderUnavailable(str(exc)) from exc
        if not matches:
            cache.set(key, [], timeout=MISS_SECONDS)
            return None
        cache.set(key, list(point), timeout=HIT_SECONDS)
        return Location(point[0], point[1], INTERPOLATED, self.name)


DOWN_KEY = "valuation:geocode:census:down"


@functools.cache
def _zip_table() -> dict[str, tuple[float, float]]:
    """ZIP5 -> (lat, lon) for every US ZIP with a centroid, loaded once per process (~1 s)."""
    import zipcodes

    table: dict[str, tuple[float, float]] = {}
    for row in zipcodes.list_all():
        try:
            table[row["zip_code"]] = (float(row["lat"]), float(row["long"]))
        except (KeyError, TypeError, ValueError):
            continue
    return table


def zip_centroid(postal_code: str) -> Location | None:
    """The centroid of a US ZIP code (offline), or None for an unknown one."""
    match = _ZIP5.search(postal_code or "")
    if not match:
        return None
    point = _zip_table().get(match.group(1))
    if point is None:
        return None
    return Location(point[0], point[1], ZIP_CENTROID, "zip")


def nearest_zip_centroids(lat: object, lon: object) -> tuple[object, object]:
    """For arrays of points, the centroid of the nearest ZIP (the evaluation's stand-in for a
    sale's own ZIP, which the sales data does not have)."""
    import numpy as np
    from sklearn.neighbors import BallTree

    table = _zip_table()
    centroids = np.array(list(table.values()))
    lat_a, lon_a = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    box = (
        (centroids[:, 0] > lat_a.min() - 0.5)
        & (centroids[:, 0] < lat_a.max() + 0.5)
        & (centroids[:, 1] > lon_a.min() - 0.5)
        & (centroids[:, 1] < lon_a.max() + 0.5)
    )
    local = centroids[box]
    tree = BallTree(np.radians(local), metric="haversine")
    _, idx = tree.query(np.radians(np.column_stack([lat_a, lon_a])), k=1)
    nearest = local[idx[:, 0]]
    return nearest[:, 0], nearest[:, 1]


def get_geocoder() -> Geocoder | None:
    if settings.VALUATION_GEOCODER == "census":
        return CensusGeocoder(settings.VALUATION_GEOCODER_URL, float(settings.VALUATION_GEOCODER_TIMEOUT_SECONDS))
    return None


def geocode_address(address: str, postal_code: str = "") -> GeocodeResult:
    """The best location for an address: the online geocoder, else the ZIP centroid (flagged)."""
    geocoder = get_geocoder()
    reason = "geocoder_off"
    if geocoder is not None and address:
        try:
            location = geocoder.geocode(address)
        except GeocoderUnavailable:
            reason = "geocoder_unavailable"
        else:
            if location is not None:
                return GeocodeResult(location)
            reason = "no_match"
    return GeocodeResult(zip_centroid(postal_code), reason)
