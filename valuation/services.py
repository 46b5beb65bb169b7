"""Valuation services: importing sales, training models, cached valuations, valuing leads."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import pickle
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from valuation import core, engine
from valuation.csvformat import read_sales_csv
from valuation.engine import PropertyFacts
from valuation.geocoding import FINE_PRECISIONS, ZIP_CENTROID, geocode_address, nearest_zip_centroids
from valuation.models import ModelVersion, Sale, Valuation, ValuationStatus

logger = logging.getLogger(__name__)

IMPORT_BATCH = 2000
MIN_TRAIN_SALES = 50
LOCK_SECONDS = 30  # a computation that takes longer than this loses its lock (never blocks forever)
LOCK_WAIT_SECONDS = 10.0
LOCK_POLL_SECONDS = 0.02
TRAIN_LOCK_KEY = "valuation:training"


class TrainingError(Exception):
    pass


# --- Import --------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def _upsert(batch: list[Sale]) -> None:
    update_fields = [f.name for f in Sale._meta.concrete_fields if f.name not in ("id", "sale_id", "imported_at")]
    with transaction.atomic():
        Sale.objects.bulk_create(batch, update_conflicts=True, unique_fields=["sale_id"], update_fields=update_fields)


def sales_import(*, path: str | Path, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Upsert the sales of a CSV file by sale_id (running it twice changes nothing).

    Bad rows are reported with their line numbers and skipped; good rows are kept. A sale_id
    repeated within the file keeps its first row and reports the others.
    """
    report = ImportReport()
    before = Sale.objects.count()
    seen: dict[str, int] = {}
    batch: list[Sale] = []
    for line, fields, error in read_sales_csv(path):
        report.rows += 1
        if progress:
            progress(1)
        if error is not None:
            report.errors.append((line, error))
            continue
        assert fields is not None
        first = seen.setdefault(fields["sale_id"], line)
        if first != line:
            report.errors.append((line, f"duplicate sale_id {fields['sale_id']} (first on line {first})"))
            continue
        batch.append(Sale(**fields))
        if len(batch) >= IMPORT_BATCH:
            _upsert(batch)
            batch = []
    if batch:
        _upsert(batch)
    report.created = Sale.objects.count() - before
    report.updated = len(seen) - report.created
    return report


# --- Training ------------------------------------------------------------------------------------


def model_train(*, progress: Callable[[str], None] | None = None) -> ModelVersion:
    """Train a model on every sale in the table and make it the active version."""
    started = time.monotonic()
    records = list(Sale.objects.values(*engine.SALE_FIELDS))
    if len(records) < MIN_TRAIN_SALES:
        raise TrainingError(f"need at least {MIN_TRAIN_SALES} sales to train, have {len(records)}")
    sales = core.arrays_from_records(records)
    if progress:
        progress(f"training on {len(records)} sales")
    model = core.fit_valuation_model(
        sales, progress=progress, zip_centroids=nearest_zip_centroids(sales.lat, sales.lon)
    )
    metrics = {k: round(v, 4) if isinstance(v, float) else v for k, v in model.calibration.metrics.items()}
    metrics["interval_log_width"] = [
        round(h - lo, 4) for lo, h in zip(model.calibration.q_low, model.calibration.q_high, strict=True)
    ]
    version = ModelVersion.objects.create(
        trained_from=core.day_to_date(model.trained_from),
        trained_to=core.day_to_date(model.trained_to),
        n_train=model.n_train,
        metrics=metrics,
        params={"model": model.model_params.__dict__, "comps": model.comp_params.__dict__},
        training_seconds=round(time.monotonic() - started, 2),
        blob=pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL),
    )
    # The new version is part of every cache key, so older answers are simply never read again.
    engine.forget_versions()
    return version


def model_retrain_if_due() -> ModelVersion | None:
    """Train when there is no model yet, or when enough sales newer than the model have arrived."""
    latest = ModelVersion.objects.filter(is_active=True).order_by("-id").first()
    if latest is None:
        due = Sale.objects.count() >= MIN_TRAIN_SALES
    else:
        due = Sale.objects.filter(sale_date__gt=latest.trained_to).count() >= settings.VALUATION_RETRAIN_MIN_NEW_SALES
    if not due:
        return None
    # One training at a time across all workers.
    if not cache.add(TRAIN_LOCK_KEY, timezone.now().isoformat(), timeout=settings.CELERY_TASK_TIME_LIMIT):
        return None
    try:
        return model_train()
    finally:
        cache.delete(TRAIN_LOCK_KEY)


# --- Valuing (cached, single-flight) --------------------------------------------------------------


def default_as_of() -> dt.date:
    if settings.VALUATION_DEFAULT_AS_OF:
        return dt.date.fromisoformat(settings.VALUATION_DEFAULT_AS_OF)
    return timezone.localdate()


def valuation_cache_key(facts: PropertyFacts, as_of: dt.date, version_id: int | None) -> str:
    canonical = json.dumps(facts.normalised().as_dict(), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    return f"valuation:v{version_id or 0}:{as_of.isoformat()}:{digest}"


def valuation_get(*, facts: PropertyFacts, as_of: dt.date | None = None) -> dict[str, Any]:
    """The valuation of `facts` as of `as_of` (default today), from the cache when possible.

    Concurrent requests for the same property compute once: the first takes a short lock
    (cache.add), the others poll for its answer and compute themselves only if it never comes.
    """
    as_of = as_of or default_as_of()
    facts = facts.normalised()
    version_id = engine.model_version_for(as_of)
    key = valuation_cache_key(facts, as_of, version_id)
    cached = cache.get(key)
    if cached is not None:
        return cached
    lock_key = f"{key}:lock"
    token = uuid.uuid4().hex
    # True: ours; False: someone else computes it; None: the cache is down (django-redis with
    # IGNORE_EXCEPTIONS), so there is no one to wait for and nowhere to share the answer: compute now.
    acquired = cache.add(lock_key, token, timeout=LOCK_SECONDS)
    if acquired is False:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(LOCK_POLL_SECONDS)
            cached = cache.get(key)
            if cached is not None:
                return cached
        logger.warning("valuation lock %s not released in %.0fs; computing anyway", lock_key, LOCK_WAIT_SECONDS)
    try:
        result = engine.value_property(facts, as_of, version_id)
        cache.set(key, result, timeout=settings.VALUATION_CACHE_SECONDS)
    finally:
        if acquired:
            _release(lock_key, token)
    return result


def _release(lock_key: str, token: str) -> None:
    """Delete the lock only while it is still ours: after LOCK_SECONDS it may have expired and been
    taken by another computation, whose lock must stay."""
    if cache.get(lock_key) == token:
        cache.delete(lock_key)


# A small per-process memory in front of Redis for the API's hottest answers, kept as the JSON
# bytes the API returns. Safe because a key's answer never changes: the key holds the facts, the
# as-of date and the model version, and a retrain makes new keys.
_L1_MAX = 2048
_l1: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
_l1_lock = threading.Lock()


def valuation_json(*, facts: PropertyFacts, as_of: dt.date | None = None) -> bytes:
    """`valuation_get` as JSON bytes, served from process memory when this process has seen it."""
    as_of = as_of or default_as_of()
    facts = facts.normalised()
    key = valuation_cache_key(facts, as_of, engine.model_version_for(as_of))
    now = time.monotonic()
    hit = _l1.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    payload = json.dumps(valuation_get(facts=facts, as_of=as_of), separators=(",", ":")).encode()
    with _l1_lock:
        _l1[key] = (now + min(settings.VALUATION_CACHE_SECONDS, 300), payload)
        while len(_l1) > _L1_MAX:
            _l1.popitem(last=False)
    return payload


def valuation_memory_clear() -> None:
    with _l1_lock:
        _l1.clear()


# --- Leads -----------------------------------------------------------------------------------------


def lead_facts(lead: Any) -> PropertyFacts:
    return PropertyFacts(
        latitude=lead.latitude,
        longitude=lead.longitude,
        living_area_sqft=lead.living_area_sqft,
        beds=lead.beds,
        baths=None if lead.baths is None else float(lead.baths),
        year_built=lead.year_built,
        lot_sqft=lead.lot_sqft,
        property_type=lead.property_type or None,
        location_precision=lead.location_precision or None,
    )


def _lead_locate(lead: Any) -> str:
    """Place a lead from its address when it has no location (or only its ZIP's): the online
    geocoder, else the ZIP centroid. Runs in the valuation task, never in the intake request.

    Returns the fallback reason when the ZIP centroid was used ("" otherwise)."""
    from leads.services import lead_fill_address_parts, lead_set_location

    lead_fill_address_parts(lead)  # normally done by the fan-out already; the ZIP comes from it
    if lead.latitude is not None and lead.location_precision in FINE_PRECISIONS:
        return ""
    if lead.latitude is not None and not lead.location_precision:
        return ""  # coordinates from before precision was recorded: the form's own
    if not (lead.address or lead.postal_code):
        return ""
    result = geocode_address(lead.address, lead.postal_code)
    location = result.location
    if location is None:
        return result.fallback_reason
    if lead_set_location(
        lead_id=lead.id,
        latitude=location.latitude,
        longitude=location.longitude,
        precision=location.precision,
        source=location.source,
    ):
        lead.latitude, lead.longitude, lead.location_precision = (
            location.latitude,
            location.longitude,
            location.precision,
        )
    return result.fallback_reason if location.precision == ZIP_CENTROID else ""


def _money(value: int) -> str:
    return f"${value:,}"


def facts_digest(facts: PropertyFacts) -> str:
    """What a valuation was computed from: a lead whose facts changed is valued again."""
    canonical = json.dumps(facts.normalised().as_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


_PRECISION_WORDS = {ZIP_CENTROID: "located only by its ZIP code's centre (wider range)"}


def _notes(result: dict[str, Any]) -> tuple[str, str]:
    """(location note, staleness note) for the timeline and Slack; "" when there is nothing to say."""
    location = _PRECISION_WORDS.get(result.get("location_precision") or "", "")
    stale_days = result.get("stale_days") or 0
    stale = ""
    if stale_days > engine.STALE_GRACE_DAYS:
        stale = f"newest sale used {result['newest_sale_date']}, {stale_days} days before (range widened)"
    return location, stale


def lead_value(*, lead_id: uuid.UUID | str, as_of: dt.date | None = None) -> Valuation | None:
    """Value a lead, store it, put it on the timeline and post `valuation_ready`.

    Idempotent by its inputs: a lead already valued from the same facts keeps its valuation (no
    second timeline entry or message); a lead whose facts changed since (staff set them, the
    geocoder placed it) is valued again and its valuation replaced.
    """
    from leads.models import Lead
    from leads.services import lead_timeline_add
    from notifications.services import notify

    lead = Lead.objects.filter(id=lead_id).first()
    if lead is None:
        logger.warning("lead %s not found; nothing to value", lead_id)
        return None
    existing = Valuation.objects.filter(lead_id=lead.id).first()
    unchanged = existing is not None and existing.result.get("inputs_digest") == facts_digest(lead_facts(lead))
    if unchanged and existing.status == ValuationStatus.OK:
        return existing
    fallback = _lead_locate(lead)
    facts = lead_facts(lead)
    digest = facts_digest(facts)
    result = {**valuation_get(facts=facts, as_of=as_of), "inputs_digest": digest}
    if fallback:
        result["geocoder_fallback"] = fallback
    ok = result["status"] == "ok"
    with transaction.atomic():
        # The lead row lock serialises two workers valuing the same lead.
        Lead.objects.select_for_update().filter(id=lead.id).first()
        existing = Valuation.objects.filter(lead_id=lead.id).first()
        # Same inputs: keep what is stored (another worker was first, or it still cannot be valued).
        if existing is not None and existing.result.get("inputs_digest") == digest:
            if existing.status == ValuationStatus.OK or not ok:
                return existing
        first_ok = not (existing is not None and existing.status == ValuationStatus.OK)
        valuation, _ = Valuation.objects.update_or_create(
            lead_id=lead.id,
            defaults={
                "status": result["status"],
                "estimate": result["estimate"],
                "low": result["low"],
                "high": result["high"],
                "confidence": result["confidence"],
                "as_of": dt.date.fromisoformat(result["as_of"]),
                "model_version_id": result["model_version"],
                "location_precision": facts.location_precision or "",
                "result": result,
                "comps": result["comps"],
            },
        )
        summary = {k: result[k] for k in ("status", "estimate", "low", "high", "confidence", "as_of", "model_version")}
        summary["location_precision"] = facts.location_precision or ""
        if ok:
            location_note, stale_note = _notes(result)
            message = (
                f"Valued at {_money(result['estimate'])} ({_money(result['low'])}–{_money(result['high'])}) "
                f"as of {result['as_of']}, confidence {result['confidence']:.0%}, {len(result['comps'])} comps"
            )
            message += "".join(f"; {note}" for note in (location_note, stale_note) if note)
            lead_timeline_add(lead_id=lead.id, kind="valuation", message=message, data=summary)
            notify(
                event_type="valuation_ready",
                context={
                    "lead_id": str(lead.id),
                    "address": lead.address,
                    "estimate": result["estimate"],
                    "low": result["low"],
                    "high": result["high"],
                    "confidence": result["confidence"],
                    "as_of": result["as_of"],
                    "comps": len(result["comps"]),
                    "comparables_count": len(result["comps"]),
                    "method": result["method"],
                    "location_precision": facts.location_precision or "",
                    "location_note": location_note,
                    "stale_note": stale_note,
                },
                # The first estimate has the lead's one key; a re-valuation after new facts its own.
                key=f"lead:{lead.id}:valuation_ready" + ("" if first_ok else f":{digest}"),
                lead_id=lead.id,
            )
        else:
            lead_timeline_add(
                lead_id=lead.id,
                kind="valuation",
                message=f"Not valued: {result['detail']}"[:500],
                data={**summary, "detail": result["detail"], "missing": result["missing"]},
            )
    return valuation
