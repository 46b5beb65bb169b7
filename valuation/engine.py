"""Valuing one property: facts -> candidates from the Sale table -> core.estimate_one -> a JSON answer.

Uncached; `valuation.services.valuation_get` puts the cache and single-flight in front of it.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import pickle
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Q

from valuation import core
from valuation.geocoding import ZIP_CENTROID
from valuation.models import ModelVersion, Sale

logger = logging.getLogger(__name__)

REQUIRED_FACTS = ("latitude", "longitude", "living_area_sqft")
SUPPORTED_TYPES = ("sfr", "townhouse")
METHOD = "comps+model"
SALE_FIELDS = (
    "sale_id",
    "price",
    "sale_date",
    "latitude",
    "longitude",
    "living_area_sqft",
    "lot_sqft",
    "bldg_grade",
    "beds",
    "baths",
    "year_built",
    "waterfront",
    "use_type",
    "eff_age",
    "area",
    "pinx",
)


@dataclass(frozen=True)
class PropertyFacts:
    """What we know about a property. Only latitude, longitude and living area are required;
    other missing facts are filled from the nearest similar sales (and reported as `imputed`)."""

    latitude: float | None = None
    longitude: float | None = None
    living_area_sqft: int | None = None
    beds: int | None = None
    baths: float | None = None
    year_built: int | None = None
    lot_sqft: int | None = None
    property_type: str | None = None
    building_grade: int | None = None
    waterfront: bool | None = None
    # How exactly latitude/longitude place the house (valuation.geocoding.PRECISIONS); None = as given.
    location_precision: str | None = None

    def normalised(self) -> PropertyFacts:
        """Rounded so that the same house typed twice is the same cache key (~1 m, 0.25 bath)."""
        return PropertyFacts(
            latitude=None if self.latitude is None else round(float(self.latitude), 5),
            longitude=None if self.longitude is None else round(float(self.longitude), 5),
            living_area_sqft=None if self.living_area_sqft is None else int(self.living_area_sqft),
            beds=None if self.beds is None else int(self.beds),
            baths=None if self.baths is None else round(float(self.baths) * 4) / 4,
            year_built=None if self.year_built is None else int(self.year_built),
            lot_sqft=None if self.lot_sqft is None else int(self.lot_sqft),
            property_type=(self.property_type or None) and str(self.property_type).lower(),
            building_grade=None if self.building_grade is None else int(self.building_grade),
            waterfront=None if self.waterfront is None else bool(self.waterfront),
            # Only a coarse location changes the answer; every finer one is "as given".
            location_precision=ZIP_CENTROID if self.location_precision == ZIP_CENTROID else None,
        )

    def as_dict(self) -> dict[str, Any]:
        # Every field is a plain value, so a shallow copy equals dataclasses.asdict (which deep-copies
        # and costs ~40 µs on the cached request path).
        return dict(vars(self))


# --- Model versions: which model values an as-of date, loaded once per process -------------------

_lock = threading.Lock()
_versions: tuple[float, list[tuple[int, dt.date]]] = (0.0, [])
_loaded: dict[int, core.ValuationModel] = {}


def forget_versions() -> None:
    """Drop the memo of model versions (training calls this; other processes notice within
    VALUATION_MODEL_CHECK_SECONDS)."""
    global _versions
    with _lock:
        _versions = (0.0, [])


def model_versions() -> list[tuple[int, dt.date]]:
    """Active versions, newest first, as (id, trained_to); memoised for a few seconds per process."""
    global _versions
    expires, versions = _versions
    now = time.monotonic()
    if now < expires:
        return versions
    versions = list(ModelVersion.objects.filter(is_active=True).order_by("-id").values_list("id", "trained_to"))
    with _lock:
        _versions = (now + settings.VALUATION_MODEL_CHECK_SECONDS, versions)
    return versions


def model_version_for(as_of: dt.date) -> int | None:
    """The newest model trained only on sales strictly before `as_of` (no peeking at later sales)."""
    for version_id, trained_to in model_versions():
        if trained_to < as_of:
            return version_id
    return None


def load_model(version_id: int) -> core.ValuationModel:
    model = _loaded.get(version_id)
    if model is None:
        blob = ModelVersion.objects.values_list("blob", flat=True).get(id=version_id)
        model = pickle.loads(bytes(blob))  # our own training wrote it (see ModelVersion)
        with _lock:
            if len(_loaded) >= 3:
                _loaded.pop(min(_loaded))
            _loaded[version_id] = model
    return model


# --- Valuing ---------------------------------------------------------------------------------


def insufficient(detail: str, *, as_of: dt.date, model_version: int | None, missing: list[str] | None = None) -> dict:
    return {
        "status": "insufficient_data",
        "detail": detail,
        "missing": missing or [],
        "estimate": None,
        "low": None,
        "high": None,
        "confidence": None,
        "comps": [],
        "method": METHOD,
        "as_of": as_of.isoformat(),
        "model_version": model_version,
    }


def _box(facts: PropertyFacts, miles: float) -> Q:
    dlat = miles / 69.0
    dlon = miles / (69.0 * max(0.05, math.cos(math.radians(facts.latitude))))
    return Q(
        latitude__range=(facts.latitude - dlat, facts.latitude + dlat),
        longitude__range=(facts.longitude - dlon, facts.longitude + dlon),
    )


def candidate_sales(facts: PropertyFacts, as_of: dt.date, comp_params: core.CompParams) -> list[dict[str, Any]]:
    """Sales strictly before `as_of` in a box around the property: inside the comp window, or
    earlier sales at the property's own point (its parcel's, which count for longer)."""
    recent = _box(facts, core.COMP_RADIUS_MILES) & Q(sale_date__gte=as_of - dt.timedelta(days=core.COMP_WINDOW_DAYS))
    own_point = _box(facts, core.SAME_PARCEL_MILES) & Q(
        sale_date__gte=as_of - dt.timedelta(days=comp_params.parcel_window_days)
    )
    return list(Sale.objects.filter(recent | own_point, sale_date__lt=as_of).values(*SALE_FIELDS))


# API names of the facts core.impute_subject may fill.
_IMPUTED_NAMES = {
    "grade": "building_grade",
    "lot": "lot_sqft",
    "year_built": "year_built",
    "beds": "beds",
    "baths": "baths",
    "townhouse": "property_type",
}


def _subject(facts: PropertyFacts, as_of: dt.date) -> core.SaleArrays:
    def col(value: Any) -> np.ndarray:
        return np.array([np.nan if value is None else float(value)])

    return core.SaleArrays(
        ids=np.array(["subject"], dtype=object),
        day=np.array([core.to_day(as_of)]),
        price=np.array([np.nan]),
        lat=col(facts.latitude),
        lon=col(facts.longitude),
        living=col(facts.living_area_sqft),
        lot=col(facts.lot_sqft),
        grade=col(facts.building_grade),
        beds=col(facts.beds),
        baths=col(facts.baths),
        year_built=col(facts.year_built),
        # Unknown waterfront is valued as not waterfront (leads rarely are; the range is measured so).
        waterfront=col(bool(facts.waterfront)),
        townhouse=col(None if facts.property_type is None else facts.property_type == "townhouse"),
        eff_age=col(None),  # remodel unknown for a lead or an API caller
        area=col(None),  # the assessor area of the nearest sale
        parcel=np.array([""], dtype=object),  # an address is not a parcel id: matched by point and size
    )


def _imputed_for_api(imputed: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column, value in imputed.items():
        if column not in _IMPUTED_NAMES:
            continue  # the assessor area follows from the location: not a fact anyone is asked for
        name = _IMPUTED_NAMES[column]
        if name == "property_type":
            out[name] = "townhouse" if value else "sfr"
        else:
            out[name] = value if column == "baths" else int(value)
    return out


# The calibrated ranges were measured on sales valued within days of the newest sale known. Past
# STALE_GRACE_DAYS, the market may have moved since the newest sale used: Seattle's monthly index
# moved ~1% a month (sd) in 2010-2015, so each month adds that much uncertainty in quadrature
# (80% range: z = 1.2816), and confidence falls by the same share the range grows.
STALE_GRACE_DAYS = 31
STALE_MONTHLY_SD = 0.012
Z80 = 1.2816


def stale_widened(
    estimate: float, low: float, high: float, confidence: float, stale_days: int
) -> tuple[float, float, float]:
    """(low, high, confidence) widened for `stale_days` between the newest sale used and as-of."""
    months = max(0, stale_days - STALE_GRACE_DAYS) / 30.44
    if months <= 0:
        return low, high, confidence
    extra = Z80 * STALE_MONTHLY_SD * months
    down = math.log(estimate / low)
    up = math.log(high / estimate)
    new_down, new_up = math.hypot(down, extra), math.hypot(up, extra)
    growth = (new_down + new_up) / max(down + up, 1e-9)
    return estimate / math.exp(new_down), estimate * math.exp(new_up), round(confidence / growth, 2)


COMPUTATIONS = 0  # how many valuations this process computed (the cache tests and ops read it)


def value_property(facts: PropertyFacts, as_of: dt.date, version_id: int | None) -> dict[str, Any]:
    """The valuation of `facts` as of `as_of` with model `version_id` (uncached)."""
    global COMPUTATIONS
    COMPUTATIONS += 1
    missing = [name for name in REQUIRED_FACTS if getattr(facts, name) is None]
    if missing:
        return insufficient(
            f"need at least latitude, longitude and living_area_sqft; missing: {', '.join(missing)}",
            as_of=as_of,
            model_version=version_id,
            missing=missing,
        )
    if facts.property_type is not None and facts.property_type not in SUPPORTED_TYPES:
        return insufficient(
            f"only single-family homes and townhouses can be valued, not {facts.property_type!r}",
            as_of=as_of,
            model_version=version_id,
        )
    if version_id is None:
        return insufficient(
            f"no valuation model trained on sales before {as_of.isoformat()}", as_of=as_of, model_version=None
        )
    model = load_model(version_id)
    records = candidate_sales(facts, as_of, model.comp_params)
    too_few = insufficient(
        f"fewer than {core.COMP_MIN} comparable sales within {core.COMP_RADIUS_MILES:g} mile in the "
        f"{core.COMP_WINDOW_DAYS // 365} years before {as_of.isoformat()}",
        as_of=as_of,
        model_version=version_id,
    )
    if len(records) < core.COMP_MIN:
        return too_few
    cand = core.arrays_from_records(records)
    subject, imputed_columns = core.impute_subject(_subject(facts, as_of), cand)
    imputed = _imputed_for_api(imputed_columns)
    coarse = facts.location_precision == ZIP_CENTROID
    # Without the assessor's grade the estimate is a lead-facts estimate: its measured, wider range.
    newest_day = max(model.trained_to, int(cand.day.max()))
    est = core.estimate_one(
        model,
        subject,
        cand,
        coarse=coarse,
        lead_facts=facts.building_grade is None,
        support_day=min(core.to_day(as_of), newest_day + STALE_GRACE_DAYS),
    )
    if est is None:
        return too_few
    base_log = math.log(est.model_value)
    comps = []
    for pos, weight, dist, residual in zip(
        est.comps.idx, est.comps.weight, est.comps.distance, est.comps.residual, strict=True
    ):
        record = records[pos]
        comps.append(
            {
                "sale_id": record["sale_id"],
                "price": record["price"],
                "date": record["sale_date"].isoformat(),
                "distance_miles": round(float(dist), 2),
                "living_area_sqft": record["living_area_sqft"],
                "beds": record["beds"],
                "baths": record["baths"],
                "year_built": record["year_built"],
                # What this sale says the subject is worth, after time and feature adjustment.
                "indicated_value": int(round(math.exp(base_log + residual), -2)),
                "weight": round(float(weight / est.comps.support), 3),
            }
        )
    newest = max([core.day_to_date(model.trained_to)] + [records[pos]["sale_date"] for pos in est.comps.idx])
    stale_days = (as_of - newest).days
    low, high, confidence = stale_widened(est.estimate, est.low, est.high, est.confidence, stale_days)
    return {
        "status": "ok",
        "detail": None,
        "missing": [],
        "estimate": int(round(est.estimate, -3)),
        "low": int(round(low, -3)),
        "high": int(round(high, -3)),
        "confidence": confidence,
        "location_precision": facts.location_precision or "as_given",
        "newest_sale_date": newest.isoformat(),
        "stale_days": stale_days,
        "comps": comps,
        "method": METHOD,
        "as_of": as_of.isoformat(),
        "model_version": version_id,
        "model_value": int(round(est.model_value, -3)),
        "imputed": imputed,
    }
