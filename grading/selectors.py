"""Grading reads: offers as the API shows them, the grader in use, counts for the dashboard and digest.

Contract for other apps: `lead_offers(lead_id)` (the lead detail's `offers`),
`offers_by_grade_this_month()` (the dashboard), `offers_graded_summary(start=, end=)` (the digest).
"""

from __future__ import annotations

import datetime
import pickle
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Prefetch
from django.utils import timezone

from grading import learning
from grading.models import GraderModel, Offer, OfferGrade, OfferStatusChange

# --- The grader in use (the newest training run decides) ----------------------------------------

GRADER_CHECK_SECONDS = 5.0  # how long a process trusts its memo of the newest run


@dataclass(frozen=True)
class GraderInUse:
    id: int | None
    model: Any  # the fitted classifier, or None: the rules decide
    reason: str
    n_outcomes: int


_memo: tuple[float, GraderInUse] | None = None
_memo_lock = threading.Lock()
NO_GRADER = GraderInUse(None, None, "no grader has been trained yet (manage.py train_grader)", 0)


def grader_in_use() -> GraderInUse:
    """The newest `train_grader` run, with its classifier unpickled once per process when adopted."""
    global _memo
    now = time.monotonic()
    memo = _memo
    if memo is not None and memo[0] > now:
        return memo[1]
    row = GraderModel.objects.order_by("-id").values("id", "adopted", "reason", "n_outcomes").first()
    if row is None:
        grader = NO_GRADER
    elif memo is not None and memo[1].id == row["id"]:
        grader = memo[1]
    elif row["adopted"]:
        blob = GraderModel.objects.values_list("blob", flat=True).get(id=row["id"])
        # Written only by grading.services.grader_train; predicted from its compact form (grading.learning).
        model = learning.compact(pickle.loads(bytes(blob)))
        grader = GraderInUse(row["id"], model, row["reason"], row["n_outcomes"])
    else:
        grader = GraderInUse(row["id"], None, row["reason"], row["n_outcomes"])
    with _memo_lock:
        _memo = (now + GRADER_CHECK_SECONDS, grader)
    return grader


def grader_memo_clear() -> None:
    global _memo
    with _memo_lock:
        _memo = None


# --- Offers ------------------------------------------------------------------------------------


def _latest_grade(offer: Offer) -> OfferGrade | None:
    grades = getattr(offer, "prefetched_grades", None)
    if grades is not None:
        return grades[0] if grades else None
    return offer.grades.order_by("-created_at", "-id").first()


def offer_out(offer: Offer, grade: OfferGrade | None = None) -> dict[str, Any]:
    """One offer as the API returns it: terms, status history, and its latest grade."""
    grade = grade or _latest_grade(offer)
    changes = getattr(offer, "prefetched_changes", None)
    if changes is None:
        changes = list(offer.status_changes.order_by("at", "id"))
    estimate = grade.repairs_estimate if grade is not None else None
    return {
        "id": offer.id,
        "lead_id": str(offer.lead_id),
        "status": offer.status,
        "status_changed_at": offer.status_changed_at,
        "status_history": [{"from": c.from_status or None, "to": c.to_status, "at": c.at, "by": c.by} for c in changes],
        "amount": offer.amount,
        "repairs": offer.repairs,
        "repairs_estimated": offer.repairs_estimated,
        "repairs_how": estimate.get("how") if estimate else None,
        "arv": offer.arv,
        "arv_low": offer.arv_low,
        "arv_high": offer.arv_high,
        "arv_source": offer.arv_source,
        "ratio": offer.ratio,
        "grade": grade.grade if grade else None,
        "score": grade.score if grade else None,
        "recommendation": grade.recommendation if grade else None,
        "counter_offer": grade.counter_offer if grade else None,
        "reasons": grade.reasons if grade else [],
        "numbers": grade.numbers if grade else {},
        "acceptance": grade.acceptance if grade else {"chance": None, "model": None, "detail": "not graded"},
        "grader_version": grade.grader_version if grade else None,
        "graded_at": grade.created_at if grade else None,
        "synthetic": offer.synthetic,
        "created_by": offer.created_by_name,
        "created_at": offer.created_at,
    }


def _with_history(qs: Any) -> Any:
    return qs.prefetch_related(
        Prefetch("grades", queryset=OfferGrade.objects.order_by("-created_at", "-id"), to_attr="prefetched_grades"),
        Prefetch(
            "status_changes", queryset=OfferStatusChange.objects.order_by("at", "id"), to_attr="prefetched_changes"
        ),
    )


def offer_detail(offer_id: int) -> dict[str, Any] | None:
    offer = _with_history(Offer.objects.filter(id=offer_id)).first()
    return None if offer is None else offer_out(offer)


def offer_grade_history(offer_id: int) -> list[OfferGrade]:
    return list(OfferGrade.objects.filter(offer_id=offer_id).order_by("-created_at", "-id"))


def offer_list(*, lead_id: uuid.UUID | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """A page of offers, newest first (optionally one lead's); `limit + 1` rows say whether there is more."""
    qs = Offer.objects.all()
    if lead_id is not None:
        qs = qs.filter(lead_id=lead_id)
    rows = list(_with_history(qs.order_by("-created_at", "-id"))[offset : offset + limit + 1])
    return {
        "items": [offer_out(o) for o in rows[:limit]],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(rows) > limit else None,
    }


def lead_offers(lead_id: uuid.UUID | str) -> list[dict[str, Any]]:
    """The lead detail's offers, newest first."""
    return [offer_out(o) for o in _with_history(Offer.objects.filter(lead_id=lead_id).order_by("-created_at", "-id"))]


# --- Counts ------------------------------------------------------------------------------------


def offers_by_grade_this_month(now: datetime.datetime | None = None) -> list[tuple[str, int]]:
    """(grade, offers made this calendar month) for A..F, real offers only (synthetic history is not work done)."""
    now = now or timezone.now()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    counts = dict(
        Offer.objects.filter(created_at__gte=start, synthetic=False)
        .exclude(grade="")
        .values_list("grade")
        .annotate(n=Count("id"))
    )
    return [(grade, counts.get(grade, 0)) for grade in "ABCDF"]


def offers_graded_summary(*, start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    """The daily digest's line: real offers graded in [start, end), and by grade."""
    rows = dict(
        OfferGrade.objects.filter(created_at__gte=start, created_at__lt=end, offer__synthetic=False)
        .values_list("grade")
        .annotate(n=Count("id"))
    )
    return {"count": sum(rows.values()), "by_grade": {g: rows[g] for g in "ABCDF" if g in rows}}
