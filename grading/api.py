"""Offers API: record an offer on a lead and grade it, list and read offers, change their status.

Bodies are read with every JSON number as a Decimal (money never passes through a float), NaN and
Infinity refused, and validated field by field: 422 `{"detail": {"field": ["message", ...]}}`.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Annotated, Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from grading.models import Offer, OfferStatus
from grading.selectors import offer_detail, offer_list, offer_out
from grading.services import OfferTerms, offer_create, offer_set_status
from leads.models import Lead
from leadsite.auth import staff_or_key
from leadsite.context import lead_id_var
from leadsite.storable import InvalidJson, parse_json_body

router = Router(tags=["offers"])

Money = Annotated[Decimal, Field(max_digits=12, decimal_places=2, allow_inf_nan=False)]


class OfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead_id: Annotated[str, Field(min_length=1, max_length=64)]
    amount: Annotated[Money, Field(gt=0, description="the cash offer, dollars")]
    repairs: Annotated[Money, Field(ge=0)] | None = Field(
        None, description="repair budget; estimated from the lead (condition, size, age) when absent"
    )
    arv: Annotated[Money, Field(gt=0)] | None = Field(
        None, description="after-repair value; default: the lead's valuation"
    )
    arv_low: Annotated[Money, Field(ge=0)] | None = Field(None, description="low end of the ARV (~10th percentile)")
    arv_high: Annotated[Money, Field(ge=0)] | None = Field(None, description="high end of the ARV (~90th percentile)")
    ratio: Annotated[Decimal, Field(ge=Decimal("0.5"), le=Decimal("0.9"), max_digits=4, decimal_places=3)] | None = (
        Field(None, description="70%-rule ratio for this offer (0.5-0.9); default GRADING_RATIO")
    )


class OfferPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: OfferStatus


class ErrorOut(Schema):
    detail: Any


class StatusChangeOut(Schema):
    from_: str | None = Field(None, alias="from")
    to: str
    at: datetime.datetime
    by: str


class AcceptanceOut(Schema):
    chance: Decimal | None = Field(description="learned chance the seller accepts; null when the rules decide")
    model: int | None
    detail: str


class OfferOut(Schema):
    id: int
    lead_id: str
    status: str
    status_changed_at: datetime.datetime
    status_history: list[dict[str, Any]]
    amount: Decimal
    repairs: Decimal
    repairs_estimated: bool
    repairs_how: str | None
    arv: Decimal
    arv_low: Decimal | None
    arv_high: Decimal | None
    arv_source: str
    ratio: Decimal | None
    grade: str | None
    score: int | None
    recommendation: str | None
    counter_offer: Decimal | None
    reasons: list[str]
    numbers: dict[str, Any]
    acceptance: AcceptanceOut
    grader_version: str | None
    graded_at: datetime.datetime | None
    synthetic: bool
    created_by: str
    created_at: datetime.datetime


class OfferPageOut(Schema):
    items: list[OfferOut]
    limit: int
    offset: int
    next_offset: int | None


class OfferListQuery(Schema):
    lead_id: str | None = Field(None, max_length=64)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=100_000)


def _validated(request: HttpRequest, model: type[BaseModel]) -> Any:
    if request.content_type != "application/json":
        raise HttpError(415, f"Content-Type must be application/json, got {request.content_type or 'none'!r}")
    try:
        # Every number as an exact Decimal (money), strings storable, nesting bounded, NaN refused.
        data = parse_json_body(request.body, allow_nan=False, exact_numbers=True)
    except InvalidJson as exc:
        raise HttpError(400, str(exc)[:200]) from None
    if not isinstance(data, dict):
        raise ValidationError({"__all__": ["the body must be a JSON object"]})
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        errors: dict[str, list[str]] = {}
        for error in exc.errors(include_input=False, include_url=False):
            field = str(error["loc"][0]) if error["loc"] else "__all__"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "This field is required."
            elif error["type"] == "extra_forbidden":
                message = "unknown field"
            errors.setdefault(field, []).append(message)
        raise ValidationError(errors) from None


def _lead_uuid(value: str) -> Any:
    import uuid

    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError):
        raise ValidationError({"lead_id": ["not a valid lead id (a UUID)"]}) from None


def _me(request: HttpRequest) -> AbstractBaseUser | None:
    return request.auth if isinstance(request.auth, AbstractBaseUser) else None


def _by(request: HttpRequest) -> str:
    return "" if _me(request) else f"API key {request.auth.name}"


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


@router.post(
    "/offers",
    auth=staff_or_key("offers:write"),
    response={201: OfferOut, 400: ErrorOut, 404: ErrorOut, 415: ErrorOut, 422: ErrorOut},
    summary="Record an offer on a lead and grade it",
    description=(
        "Grade A-F, score 0-100, recommendation (accept / negotiate / decline), counter-offer for C/D, "
        "reasons with the numbers, and the learned chance of acceptance when the trained grader is in use. "
        "ARV defaults to the lead's valuation; repairs are estimated from the lead when absent."
    ),
    openapi_extra=_body_schema(OfferIn),
)
def offers_create(request: HttpRequest) -> Status:
    payload: OfferIn = _validated(request, OfferIn)
    lead_uuid = _lead_uuid(payload.lead_id)
    lead_id_var.set(str(lead_uuid))
    terms = OfferTerms(
        amount=payload.amount,
        repairs=payload.repairs,
        arv=payload.arv,
        arv_low=payload.arv_low,
        arv_high=payload.arv_high,
        ratio=payload.ratio,
    )
    try:
        offer, _ = offer_create(lead_id=lead_uuid, terms=terms, actor=_me(request), by=_by(request))
    except Lead.DoesNotExist:
        raise HttpError(404, "lead not found") from None
    return Status(201, offer_out(offer))


@router.get(
    "/offers",
    auth=staff_or_key("offers:write"),
    response={200: OfferPageOut, 422: ErrorOut},
    summary="List offers, newest first (one lead's with lead_id)",
)
def offers_list(request: HttpRequest, query: Query[OfferListQuery]) -> dict[str, Any]:
    lead_uuid = _lead_uuid(query.lead_id) if query.lead_id else None
    return offer_list(lead_id=lead_uuid, limit=query.limit, offset=query.offset)


@router.get(
    "/offers/{offer_id}",
    auth=staff_or_key("offers:write"),
    response={200: OfferOut, 404: ErrorOut, 422: ErrorOut},
    summary="One offer with its latest grade and status history",
)
def offers_get(request: HttpRequest, offer_id: int) -> dict[str, Any]:
    detail = offer_detail(offer_id) if 0 < offer_id < 2**63 else None
    if detail is None:
        raise HttpError(404, "offer not found")
    return detail


@router.patch(
    "/offers/{offer_id}",
    auth=staff_or_key("offers:write"),
    response={200: OfferOut, 400: ErrorOut, 404: ErrorOut, 415: ErrorOut, 422: ErrorOut},
    summary="Change an offer's status (sent, accepted, rejected, closed, lost)",
    openapi_extra=_body_schema(OfferPatchIn),
)
def offers_patch(request: HttpRequest, offer_id: int) -> dict[str, Any]:
    if not 0 < offer_id < 2**63:
        raise HttpError(404, "offer not found")
    payload: OfferPatchIn = _validated(request, OfferPatchIn)
    try:
        offer_set_status(offer_id=offer_id, status=payload.status.value, actor=_me(request), by=_by(request))
    except Offer.DoesNotExist:
        raise HttpError(404, "offer not found") from None
    return offer_detail(offer_id)
