"""Grading services: every write of an offer, its grades and status, and the grader's training.

The arithmetic lives in grading.rules (and grading.repairs); this module gathers its inputs (the
lead, its valuation, the settings, the learned model), stores the grade record with everything it
was computed from, and tells the lead's timeline and Slack thread in the same transaction.
"""

from __future__ import annotations

import logging
import pickle
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from grading import learning, rules
from grading.models import GraderModel, Offer, OfferGrade, OfferStatus, OfferStatusChange
from grading.repairs import RepairEstimate, estimate_repairs
from grading.selectors import grader_in_use, grader_memo_clear
from leads.models import Lead, TimelineKind
from leads.services import lead_notify_context, lead_timeline_add, user_display
from leadsite.context import lead_id_var
from notifications.services import notify
from valuation.selectors import lead_valuation

logger = logging.getLogger(__name__)

MAX_ARV_MULTIPLE = Decimal(3)
RATIO_MIN, RATIO_MAX = Decimal("0.5"), Decimal("0.9")
OUTCOME_STATUSES = (OfferStatus.ACCEPTED, OfferStatus.CLOSED, OfferStatus.REJECTED, OfferStatus.LOST)

S = OfferStatus
# Where an offer may go from each status. `accepted` may still close or fall through (lost);
# closed, rejected and lost are final (a new offer is a new row).
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.SENT, S.ACCEPTED, S.REJECTED, S.LOST}),
    S.SENT: frozenset({S.ACCEPTED, S.REJECTED, S.LOST}),
    S.ACCEPTED: frozenset({S.CLOSED, S.LOST}),
    S.REJECTED: frozenset(),
    S.CLOSED: frozenset(),
    S.LOST: frozenset(),
}

_URGENT = re.compile(r"asap|immediate|\bnow\b|30 days|1 month|one month|this month", re.I)


def deal_settings() -> dict[str, Any]:
    return {
        "ratio": settings.GRADING_RATIO,
        "costs": rules.Costs(
            resale=settings.GRADING_RESALE_COST,
            holding=settings.GRADING_HOLDING_COST,
            buyer_closing=settings.GRADING_BUYER_CLOSING_COST,
        ),
        "downside_repairs": settings.GRADING_DOWNSIDE_REPAIRS,
        "low_confidence": settings.GRADING_LOW_CONFIDENCE,
    }


@dataclass(frozen=True)
class OfferTerms:
    """What a rep sends; None means "work it out" (repairs estimated, ARV from the valuation)."""

    amount: Decimal
    repairs: Decimal | None = None
    arv: Decimal | None = None
    arv_low: Decimal | None = None
    arv_high: Decimal | None = None
    ratio: Decimal | None = None


@dataclass(frozen=True)
class ResolvedTerms:
    amount: Decimal
    repairs: Decimal
    repairs_estimate: RepairEstimate | None
    arv: Decimal
    arv_low: Decimal | None
    arv_high: Decimal | None
    arv_source: str
    spread_source: str
    confidence: Decimal | None
    ratio: Decimal | None
    valuation: dict[str, Any] | None


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _money(value: Decimal) -> str:
    return rules.dollars(value)


def _money_or_none(value: Decimal | None) -> Decimal | None:
    return None if value is None else rules.money(value)


def offer_terms_resolve(*, lead: Lead, terms: OfferTerms) -> ResolvedTerms:
    """Fill in ARV, its range and repairs, and check the whole offer; ValidationError (422) with a
    message per field for anything a rep must fix."""
    errors: dict[str, list[str]] = {}
    for name in ("amount", "arv"):
        value = getattr(terms, name)
        if value is not None and value <= 0:
            errors.setdefault(name, []).append("must be greater than 0")
    for name in ("repairs", "arv_low", "arv_high"):
        value = getattr(terms, name)
        if value is not None and value < 0:
            errors.setdefault(name, []).append("must not be negative")
    if terms.ratio is not None and not (RATIO_MIN <= terms.ratio <= RATIO_MAX):
        errors.setdefault("ratio", []).append(
            f"must be between {RATIO_MIN} and {RATIO_MAX} (e.g. 0.70), got {terms.ratio}"
        )
    if errors:
        raise ValidationError(errors)

    valuation = lead_valuation(lead.id)
    valued = valuation is not None and valuation.get("status") == "ok" and valuation.get("estimate")
    confidence: Decimal | None = None
    if terms.arv is not None:
        arv, source = terms.arv, "given"
        arv_low, arv_high = terms.arv_low, terms.arv_high
        spread_source = "given" if arv_low is not None else "none"
        if arv_low is None and valued:
            # The rep's own ARV, with the spread the valuation measured for this property.
            estimate = Decimal(str(valuation["estimate"]))
            arv_low = rules.money(arv * Decimal(str(valuation["low"])) / estimate)
            arv_high = rules.money(arv * Decimal(str(valuation["high"])) / estimate) if arv_high is None else arv_high
            spread_source = "valuation"
    elif valued:
        arv, source, spread_source = Decimal(str(valuation["estimate"])), "valuation", "valuation"
        arv_low = terms.arv_low if terms.arv_low is not None else _dec(valuation.get("low"))
        arv_high = terms.arv_high if terms.arv_high is not None else _dec(valuation.get("high"))
        confidence = _dec(valuation.get("confidence"))
    else:
        if valuation is None:
            why = "the lead has not been valued yet"
        else:
            why = f"the lead's valuation found no value ({valuation.get('detail') or 'insufficient data'})"
        raise ValidationError(
            {
                "arv": [
                    f"required: {why}. Send arv (the after-repair value, with arv_low/arv_high if you know "
                    "the range), or give the lead its coordinates and living area so it can be valued."
                ]
            }
        )

    if arv_low is not None and arv_low > arv:
        errors.setdefault("arv_low", []).append(f"{_money(arv_low)} is above the ARV {_money(arv)}")
    if arv_high is not None and arv_high < arv:
        errors.setdefault("arv_high", []).append(f"{_money(arv_high)} is below the ARV {_money(arv)}")

    estimate: RepairEstimate | None = None
    repairs = terms.repairs
    if repairs is None:
        if not lead.living_area_sqft:
            errors.setdefault("repairs", []).append(
                "not given, and it cannot be estimated: the lead has no living area (living_area_sqft). "
                "Send repairs, or add the lead's living area."
            )
        else:
            estimate = estimate_repairs(
                living_area_sqft=lead.living_area_sqft,
                condition=lead.condition,
                message=lead.message,
                year_built=lead.year_built,
                cost_per_sqft=settings.GRADING_REPAIR_COST_PER_SQFT,
            )
            repairs = estimate.amount
    if repairs is not None and repairs > arv:
        what = "estimated repairs" if estimate else "repairs"
        errors.setdefault("repairs", []).append(f"{what} {_money(repairs)} are more than the ARV {_money(arv)}")
    if terms.amount > MAX_ARV_MULTIPLE * arv:
        errors.setdefault("amount", []).append(
            f"{_money(terms.amount)} is more than 3x the ARV {_money(arv)}: check the amount and the ARV"
        )
    if errors:
        raise ValidationError(errors)
    assert repairs is not None
    return ResolvedTerms(
        amount=terms.amount,
        repairs=repairs,
        repairs_estimate=estimate,
        arv=arv,
        arv_low=arv_low,
        arv_high=arv_high,
        arv_source=source,
        spread_source=spread_source,
        confidence=confidence,
        ratio=terms.ratio,
        valuation=valuation,
    )


def acceptance_features(*, lead: Lead, amount: Decimal, arv: Decimal, numbers: dict[str, Any]) -> dict[str, float]:
    """What the learned model sees (grading.learning.FEATURES), as graded at the time."""
    asking = lead.asking_price
    confidence = numbers.get("confidence")
    return {
        "offer_to_arv": round(float(amount / arv), 4),
        "gap": float(numbers["gap"]),
        "all_in_ratio": float(numbers["all_in_ratio"]),
        "confidence": 0.5 if confidence is None else float(confidence),
        "offer_to_asking": round(float(amount / asking), 4) if asking else 1.0,
        "has_asking": 1.0 if asking else 0.0,
        "urgent": 1.0 if _URGENT.search(lead.timeline or "") else 0.0,
    }


def _jsonable(numbers: dict[str, Decimal | None]) -> dict[str, str | None]:
    return {k: None if v is None else str(v) for k, v in numbers.items()}


@dataclass(frozen=True)
class Evaluation:
    result: rules.DealGrade
    version: str
    grader_id: int | None
    acceptance: dict[str, Any]
    inputs: dict[str, Any]


def offer_evaluate(*, lead: Lead, resolved: ResolvedTerms) -> Evaluation:
    """The grade of resolved terms (rules, then the learned chance when the grader is in use); writes nothing."""
    config = deal_settings()
    inputs = rules.DealInputs(
        amount=resolved.amount,
        repairs=resolved.repairs,
        arv=resolved.arv,
        ratio=resolved.ratio if resolved.ratio is not None else config["ratio"],
        arv_low=resolved.arv_low,
        arv_high=resolved.arv_high,
        confidence=resolved.confidence,
        costs=config["costs"],
        downside_repairs=config["downside_repairs"],
        low_confidence=config["low_confidence"],
    )
    first = rules.grade_deal(inputs)
    features = acceptance_features(lead=lead, amount=resolved.amount, arv=resolved.arv, numbers=first.numbers)
    grader = grader_in_use()
    acceptance: dict[str, Any]
    result = first
    version = rules.RULES_VERSION
    if grader.model is not None:
        chance = rules.fraction(Decimal(str(learning.predict(grader.model, features))), 3)
        result = rules.grade_deal(inputs, acceptance=chance)
        version = f"{rules.RULES_VERSION}+model-{grader.id}"
        acceptance = {"chance": str(chance), "model": grader.id, "detail": grader.reason}
        result.reasons.append(
            f"Chance the seller accepts: {rules.pct(chance)} (learned from {grader.n_outcomes} of our own outcomes)"
        )
    else:
        acceptance = {"chance": None, "model": None, "detail": f"the rules decide: {grader.reason}"}
    if resolved.repairs_estimate is not None:
        result.reasons.insert(1, resolved.repairs_estimate.how)
    return Evaluation(
        result=result,
        version=version,
        grader_id=grader.id if grader.model is not None else None,
        acceptance=acceptance,
        inputs={
            **inputs.as_dict(),
            "arv_source": resolved.arv_source,
            "spread_source": resolved.spread_source,
            "ratio_override": None if resolved.ratio is None else str(resolved.ratio),
            "valuation": None
            if resolved.valuation is None
            else {
                k: resolved.valuation.get(k)
                for k in ("status", "estimate", "low", "high", "confidence", "as_of", "model_version")
            },
            "features": features,
        },
    )


def _grade_record(
    *,
    offer: Offer,
    lead: Lead,
    resolved: ResolvedTerms,
    evaluation: Evaluation,
    actor: AbstractBaseUser | None,
    by: str,
) -> OfferGrade:
    """Store a grade record (the offer already carries its grade and score), then tell the lead's
    timeline and Slack thread."""
    result = evaluation.result
    grade = OfferGrade.objects.create(
        offer=offer,
        grader_version=evaluation.version,
        grader_model_id=evaluation.grader_id,
        grade=result.grade,
        score=result.score,
        recommendation=result.recommendation,
        counter_offer=_money_or_none(result.counter_offer),
        reasons=result.reasons,
        numbers=_jsonable(result.numbers),
        inputs=evaluation.inputs,
        acceptance=evaluation.acceptance,
        repairs_estimate=None if resolved.repairs_estimate is None else resolved.repairs_estimate.as_dict(),
    )
    if not offer.synthetic:
        lead_timeline_add(
            lead_id=lead.id,
            kind=TimelineKind.OFFER,
            message=(
                f"Offer {_money(offer.amount)} graded {result.grade} ({result.score}/100): {result.recommendation}"
                + (f", counter at {_money(result.counter_offer)}" if result.counter_offer is not None else "")
            ),
            data={"offer_id": offer.id, "grade_id": grade.id, "grade": result.grade, "score": result.score},
            actor=actor,
        )
        notify(
            event_type="offer_graded",
            key=f"offer:{offer.id}:grade:{grade.id}",
            lead_id=lead.id,
            context=lead_notify_context(
                lead,
                offer_id=offer.id,
                grade=result.grade,
                score=result.score,
                recommendation=result.recommendation,
                amount=str(offer.amount),
                mao=str(result.numbers["mao"]),
                counter_offer=None if result.counter_offer is None else str(result.counter_offer),
                reasons=result.reasons[:3],
                by=by or user_display(actor),
            ),
        )
    return grade


def offer_create(
    *,
    lead_id: uuid.UUID | str,
    terms: OfferTerms,
    actor: AbstractBaseUser | None = None,
    by: str = "",
    synthetic: bool = False,
    created_at: Any = None,
) -> tuple[Offer, OfferGrade]:
    """Record an offer on a lead and grade it. Lead.DoesNotExist for an unknown lead, ValidationError
    (422) for bad terms. The Slack reply is a delivery row in this transaction, sent after commit."""
    lead_id_var.set(str(lead_id))
    now = created_at or timezone.now()
    with transaction.atomic():
        lead = Lead.objects.get(id=lead_id)
        resolved = offer_terms_resolve(lead=lead, terms=terms)
        evaluation = offer_evaluate(lead=lead, resolved=resolved)
        offer = Offer.objects.create(
            lead=lead,
            # Rounded as the columns store them, so the in-memory offer answers like a re-read one.
            amount=rules.money(resolved.amount),
            repairs=rules.money(resolved.repairs),
            repairs_estimated=resolved.repairs_estimate is not None,
            arv=rules.money(resolved.arv),
            arv_low=_money_or_none(resolved.arv_low),
            arv_high=_money_or_none(resolved.arv_high),
            arv_source=resolved.arv_source,
            ratio=None if resolved.ratio is None else rules.fraction(resolved.ratio, 3),
            status=OfferStatus.DRAFT,
            status_changed_at=now,
            grade=evaluation.result.grade,
            score=evaluation.result.score,
            created_by=actor,
            created_by_name=by or user_display(actor),
            synthetic=synthetic,
            created_at=now,
        )
        change = OfferStatusChange.objects.create(
            offer=offer, to_status=OfferStatus.DRAFT, at=now, actor=actor, by=offer.created_by_name
        )
        grade = _grade_record(offer=offer, lead=lead, resolved=resolved, evaluation=evaluation, actor=actor, by=by)
    # What grading.selectors.offer_out reads, as just written: the response needs no second read.
    offer.prefetched_grades, offer.prefetched_changes = [grade], [change]
    return offer, grade


def offer_regrade(*, offer_id: int, actor: AbstractBaseUser | None = None, by: str = "") -> OfferGrade:
    """Grade an offer again with today's rules, valuation and model: a new grade record (history stays).

    The rep's own numbers stay as given; what was worked out (ARV from the valuation, estimated
    repairs) is worked out again.
    """
    with transaction.atomic():
        offer = Offer.objects.select_for_update().select_related("lead").get(id=offer_id)
        lead_id_var.set(str(offer.lead_id))
        given_arv = offer.arv_source == "given"
        terms = OfferTerms(
            amount=offer.amount,
            repairs=None if offer.repairs_estimated else offer.repairs,
            arv=offer.arv if given_arv else None,
            arv_low=offer.arv_low if given_arv else None,
            arv_high=offer.arv_high if given_arv else None,
            ratio=offer.ratio,
        )
        resolved = offer_terms_resolve(lead=offer.lead, terms=terms)
        evaluation = offer_evaluate(lead=offer.lead, resolved=resolved)
        for name in ("repairs", "arv", "arv_low", "arv_high"):
            setattr(offer, name, getattr(resolved, name))
        offer.grade, offer.score = evaluation.result.grade, evaluation.result.score
        offer.save(update_fields=["repairs", "arv", "arv_low", "arv_high", "grade", "score", "updated_at"])
        return _grade_record(offer=offer, lead=offer.lead, resolved=resolved, evaluation=evaluation, actor=actor, by=by)


def offer_set_status(
    *, offer_id: int, status: str, actor: AbstractBaseUser | None = None, by: str = "", at: Any = None
) -> Offer:
    """Move an offer along (draft -> sent -> accepted/rejected, accepted -> closed/lost), with the time
    of the change. Outcomes feed the learned grader's history."""
    if status not in S.values:
        raise ValidationError({"status": [f"unknown status {status!r}; one of {', '.join(S.values)}"]})
    with transaction.atomic():
        offer = Offer.objects.select_for_update().get(id=offer_id)
        lead_id_var.set(str(offer.lead_id))
        old = offer.status
        if status == old:
            return offer
        if status not in ALLOWED_TRANSITIONS[old]:
            allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[old])) or "none"
            raise ValidationError({"status": [f"a {old} offer cannot become {status} (allowed: {allowed})"]})
        now = at or timezone.now()
        offer.status, offer.status_changed_at = status, now
        fields = ["status", "status_changed_at", "updated_at"]
        if status == S.ACCEPTED:
            offer.accepted_at = now
            fields.append("accepted_at")
        offer.save(update_fields=fields)
        who = by or user_display(actor)
        OfferStatusChange.objects.create(offer=offer, from_status=old, to_status=status, at=now, actor=actor, by=who)
        if not offer.synthetic:
            lead_timeline_add(
                lead_id=offer.lead_id,
                kind=TimelineKind.OFFER,
                message=f"Offer {_money(offer.amount)} {old} → {status}" + (f" by {who}" if who else ""),
                data={"offer_id": offer.id, "from": old, "to": status},
                actor=actor,
            )
    return offer


# --- The learned part --------------------------------------------------------------------------


def training_examples() -> tuple[list[learning.Example], int]:
    """Every offer with a known outcome, as graded when it was made (its first grade's features).

    Accepted = the seller said yes (status accepted or closed, or accepted then lost); rejected or
    lost without ever being accepted = no. Returns (examples, how many are synthetic)."""
    offers = (
        Offer.objects.filter(status__in=OUTCOME_STATUSES)
        .order_by("status_changed_at", "id")
        .values("id", "status", "accepted_at", "status_changed_at", "synthetic")
    )
    offers = list(offers)
    first_grades: dict[int, tuple[str, int, dict]] = {}
    for offer_id, grade, score, inputs in (
        OfferGrade.objects.filter(offer_id__in=[o["id"] for o in offers])
        .order_by("offer_id", "created_at", "id")
        .values_list("offer_id", "grade", "score", "inputs")
    ):
        first_grades.setdefault(offer_id, (grade, score, inputs.get("features") or {}))
    examples, synthetic = [], 0
    for o in offers:
        if o["id"] not in first_grades:
            continue
        grade, score, features = first_grades[o["id"]]
        accepted = o["accepted_at"] is not None or o["status"] in (S.ACCEPTED, S.CLOSED)
        # The outcome is known at acceptance, or at the final rejection/loss.
        at = o["accepted_at"] or o["status_changed_at"]
        examples.append(learning.Example(at=at, grade=grade, score=score, features=features, accepted=accepted))
        synthetic += o["synthetic"]
    return examples, synthetic


def grader_train(*, min_outcomes: int | None = None) -> GraderModel:
    """Fit the acceptance model on our outcomes and record the run; adopted only if it beats the
    rules-only baseline on the later offers (grading.learning.train)."""
    examples, synthetic = training_examples()
    result = learning.train(examples, min_outcomes=min_outcomes or settings.GRADING_MIN_OUTCOMES)
    row = GraderModel.objects.create(
        adopted=result.adopted,
        reason=result.reason[:500],
        n_outcomes=result.n_outcomes,
        n_train=result.n_train,
        n_valid=result.n_valid,
        train_until=result.train_until,
        valid_from=result.valid_from,
        metrics=result.metrics,
        features=list(learning.FEATURES),
        synthetic_outcomes=synthetic,
        blob=pickle.dumps(result.model, protocol=pickle.HIGHEST_PROTOCOL) if result.adopted else None,
    )
    grader_memo_clear()
    return row
