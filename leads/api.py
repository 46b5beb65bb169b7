"""Leads API: intake from web forms, and the staff pipeline (list, detail, update)."""

from __future__ import annotations

import datetime
import json
import uuid
from decimal import Decimal
from typing import Annotated, Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from pydantic import ConfigDict, StrictFloat, StrictInt, WithJsonSchema

from leads.intake import IdempotencyConflict, LeadIn, lead_intake
from leads.models import Lead, LeadStatus, PropertyType
from leads.property_facts import FACT_FIELDS
from leads.selectors import LeadFilter, lead_detail, lead_list, parse_lead_id, resolve_staff_user
from leads.services import lead_set_property, lead_update
from leadsite.auth import api_key, client_address, staff_or_key
from leadsite.context import lead_id_var
from leadsite.schemas import ErrorOut, UtcDatetime
from leadsite.storable import InvalidJson, parse_json_body

router = Router(tags=["leads"])


class LeadCreatedOut(Schema):
    id: uuid.UUID
    status: str
    duplicate: bool


class LeadDuplicateOut(Schema):
    """A repeat of a recent lead: its id, and nothing about its state (anyone who knows a phone and an
    address could otherwise read a lead's progress)."""

    id: uuid.UUID
    duplicate: bool


class UserOut(Schema):
    id: int
    username: str
    name: str


class LeadSummaryOut(Schema):
    id: uuid.UUID
    status: str
    name: str
    phone: str
    email: str
    address: str
    city: str
    state: str
    postal_code: str
    source: str
    assignee: UserOut | None
    created_at: datetime.datetime
    first_contacted_at: datetime.datetime | None
    sla_breached_at: datetime.datetime | None
    claimed_at: datetime.datetime | None


class LeadPageOut(Schema):
    items: list[LeadSummaryOut]
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page, or null on the last page")


class TimelineEntryOut(Schema):
    kind: str
    message: str
    data: dict[str, Any]
    actor: str | None
    request_id: str
    at: datetime.datetime


class LeadDetailOut(LeadSummaryOut):
    street: str
    unit: str
    latitude: float | None
    longitude: float | None
    location_precision: str = Field(
        description="how latitude/longitude place the house: manual, rooftop, interpolated, zip_centroid, or empty"
    )
    beds: int | None
    baths: Decimal | None
    living_area_sqft: int | None
    lot_sqft: int | None
    year_built: int | None
    property_type: str
    message: str
    asking_price: Decimal | None
    timeline: str = Field(description="the seller's answer to 'when do you want to sell?'")
    condition: str
    extra: dict[str, Any] = Field(description="the form's other answers, as sent")
    utm: dict[str, str]
    page_url: str
    request_id: str
    consent: dict[str, Any]
    updated_at: datetime.datetime
    events: list[TimelineEntryOut] = Field(description="the lead's timeline, oldest first")
    valuation: dict[str, Any] | None
    offers: list[dict[str, Any]]


class LeadWrittenOut(Schema):
    """What PATCH answers to a key that may write but not read leads."""

    id: uuid.UUID
    status: str
    assignee: UserOut | None
    updated_at: datetime.datetime


class LeadListQuery(Schema):
    status: LeadStatus | None = None
    source: str | None = None
    assignee: str | None = Field(None, description="user id, username, `me` or `none`")
    q: str | None = Field(None, max_length=200, description="text in name, phone, email or address")
    created_after: UtcDatetime | None = None
    created_before: UtcDatetime | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=100_000)


class LeadPatchIn(Schema):
    model_config = ConfigDict(extra="forbid")

    status: LeadStatus | None = None
    # StrictInt: pydantic would read `true` as user id 1.
    assignee: StrictInt | str | None = Field(None, description="user id or username of a staff user; null unassigns")
    note: str | None = Field(None, max_length=5000)
    # Location and property facts (lead_set_property validates them; null clears one). Setting any
    # of them re-queues the lead's valuation.
    latitude: StrictFloat | None = Field(None, description="with longitude; -90..90")
    longitude: StrictFloat | None = Field(None, description="with latitude; -180..180")
    beds: StrictInt | None = Field(None, description="0..50")
    baths: StrictFloat | None = Field(None, description="0..50")
    living_area_sqft: StrictInt | None = Field(None, description="100..100,000")
    lot_sqft: StrictInt | None = Field(None, description="1..100,000,000")
    year_built: StrictInt | None = Field(None, description="1700..this year")
    property_type: PropertyType | None = None


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


# Parsed by parse_lead_id (422 with the domain's message); published as a UUID.
LeadId = Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]


def _json_body(request: HttpRequest) -> Any:
    if request.content_type != "application/json":
        raise HttpError(415, f"Content-Type must be application/json, got {request.content_type or 'none'!r}")
    try:
        return parse_json_body(request.body, allow_nan=False)
    except InvalidJson as exc:
        raise HttpError(400, str(exc)) from None


def _client_ip(request: HttpRequest) -> str | None:
    return client_address(request) or None


@router.post(
    "/leads",
    auth=api_key("leads:create"),
    response={200: LeadDuplicateOut, 201: LeadCreatedOut, 409: ErrorOut},
    summary="Take a seller lead from a web form",
    description=(
        "201 for a new lead; 200 with `duplicate: true` and the existing id when the same phone or email "
        "sent the same property within 30 days. Unknown fields are kept as the form's extra answers. "
        "`Idempotency-Key`: the same key and body return the first response again; another body is 409."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline_refs(LeadIn.model_json_schema())}},
        },
        "parameters": [
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "schema": {"type": "string", "maxLength": 255},
            }
        ],
    },
)
def create_lead(request: HttpRequest) -> HttpResponse:
    data = _json_body(request)
    try:
        result = lead_intake(
            data=data,
            api_key=request.auth,
            idempotency_key=request.headers.get("Idempotency-Key"),
            ip=_client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
    except IdempotencyConflict as exc:
        raise HttpError(409, str(exc)) from None
    lead_id_var.set(result.body["id"])
    # The answer as it is, not validated against the response schema again and rendered by ninja
    # (the schemas above still document it): ~0.1 ms of CPU on every form submission. Its few keys
    # are strings and booleans that lead_intake built.
    answer = HttpResponse(json.dumps(result.body), status=result.status_code, content_type="application/json")
    if result.replayed:
        answer["Idempotent-Replayed"] = "true"
    return answer


def _me(request: HttpRequest) -> AbstractBaseUser | None:
    return request.auth if isinstance(request.auth, AbstractBaseUser) else None


def _by(request: HttpRequest) -> str:
    return "" if _me(request) else f"API key {request.auth.name}"


@router.get("/leads", auth=staff_or_key("leads:read"), response=LeadPageOut, summary="List leads, newest first")
def list_leads(request: HttpRequest, filters: Query[LeadListQuery]) -> dict[str, Any]:
    return lead_list(
        LeadFilter(
            status=filters.status,
            source=filters.source,
            assignee=filters.assignee,
            q=filters.q,
            created_after=filters.created_after,
            created_before=filters.created_before,
        ),
        limit=filters.limit,
        offset=filters.offset,
        me=_me(request),
    )


@router.get(
    "/leads/{lead_id}",
    auth=staff_or_key("leads:read"),
    response={200: LeadDetailOut, 404: ErrorOut},
    summary="One lead with its timeline, valuation and offers",
)
def get_lead(request: HttpRequest, lead_id: LeadId) -> dict[str, Any]:
    lead_uuid = parse_lead_id(lead_id)
    detail = lead_detail(lead_uuid)
    if detail is None:
        raise HttpError(404, "lead not found")
    lead_id_var.set(str(lead_uuid))
    return detail


@router.patch(
    "/leads/{lead_id}",
    auth=staff_or_key("leads:write"),
    response={200: LeadDetailOut | LeadWrittenOut, 404: ErrorOut, 422: ErrorOut},
    summary="Change a lead's status or assignee, add a note, or set its location and property facts",
    description=(
        "Answers the whole lead to a staff session or a key that also holds `leads:read`; a key that "
        "may only write gets what it wrote (id, status, assignee, updated_at)."
    ),
)
def patch_lead(request: HttpRequest, lead_id: LeadId, payload: LeadPatchIn) -> dict[str, Any]:
    lead_uuid = parse_lead_id(lead_id)
    changes: dict[str, Any] = {}
    if payload.status is not None:
        changes["status"] = payload.status.value
    if "assignee" in payload.model_fields_set:
        if payload.assignee is None:
            changes["assignee"] = None
        else:
            user = resolve_staff_user(payload.assignee)
            if user is None:
                raise ValidationError({"assignee": [f"no staff user {payload.assignee!r}"]})
            changes["assignee"] = user
    if payload.note is not None and payload.note.strip():
        changes["note"] = payload.note.strip()
    facts = {name: getattr(payload, name) for name in FACT_FIELDS if name in payload.model_fields_set}
    if isinstance(facts.get("property_type"), PropertyType):
        facts["property_type"] = facts["property_type"].value
    try:
        # One transaction: a rejected status change must not leave the facts half-applied.
        with transaction.atomic():
            if facts:
                lead_set_property(lead_id=lead_uuid, facts=facts, actor=_me(request), by=_by(request))
            if changes or not facts:
                lead_update(lead_id=lead_uuid, actor=_me(request), by=_by(request), **changes)
    except Lead.DoesNotExist:
        raise HttpError(404, "lead not found") from None
    detail = lead_detail(lead_uuid)
    if _me(request) is None and not request.auth.has_scope("leads:read"):
        # A write-only key must not read the lead through PATCH {} (consent IP, user agent, ...).
        return {field: detail[field] for field in LeadWrittenOut.model_fields}
    return detail
