"""Lead reads for the staff API and the admin."""

from __future__ import annotations

import datetime
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from grading.selectors import lead_offers
from leads.models import Lead, LeadEvent, LeadStatus, TimelineKind
from leads.normalize import normalize_phone
from valuation.selectors import lead_valuation

_DIGITS = re.compile(r"\d")


@dataclass(frozen=True)
class LeadFilter:
    status: str | None = None
    source: str | None = None
    assignee: str | None = None  # a user id, a username, "me" or "none"
    q: str | None = None
    created_after: datetime.datetime | None = None
    created_before: datetime.datetime | None = None


def _is_id(value: str) -> bool:
    # ASCII digits only ("²".isdigit() is true but int() rejects it), and small enough for bigint.
    return value.isascii() and value.isdigit() and len(value) <= 18


def resolve_staff_user(value: str | int) -> AbstractBaseUser | None:
    """A staff user by id or username (None if there is no such user)."""
    users = get_user_model().objects.filter(is_staff=True)
    if isinstance(value, int) or _is_id(str(value)):
        return users.filter(pk=int(value)).first()
    return users.filter(username=value).first()


def lead_queryset(filters: LeadFilter, *, me: AbstractBaseUser | None = None) -> QuerySet[Lead]:
    qs = Lead.objects.all()
    if filters.status:
        if filters.status not in LeadStatus.values:
            raise ValidationError({"status": [f"one of {', '.join(LeadStatus.values)}"]})
        qs = qs.filter(status=filters.status)
    if filters.source:
        qs = qs.filter(source=filters.source)
    if filters.assignee:
        if filters.assignee == "none":
            qs = qs.filter(assigned_to=None)
        elif filters.assignee == "me":
            if me is None:
                raise ValidationError({"assignee": ["'me' needs a staff session"]})
            qs = qs.filter(assigned_to=me)
        elif _is_id(filters.assignee):
            qs = qs.filter(assigned_to_id=int(filters.assignee))
        else:
            qs = qs.filter(assigned_to__username=filters.assignee)
    if filters.created_after:
        qs = qs.filter(created_at__gte=filters.created_after)
    if filters.created_before:
        qs = qs.filter(created_at__lt=filters.created_before)
    if filters.q:
        qs = qs.filter(lead_search_q(filters.q))
    return qs


def lead_search_q(text: str) -> Q:
    """What a search box finds: name, email, address, or a phone typed in any format.

    A whole phone number is normalised the way intake normalises it (E.164, an indexed exact match);
    a part of one ("555-0171") matches the stored digits. The LIKE matches use the trigram indexes of
    migration 0007 on PostgreSQL.
    """
    text = text.strip()
    try:
        # A whole phone number is a phone search (no name, email or address looks like one).
        return Q(phone=normalize_phone(text))
    except ValueError:
        pass
    match = Q(name__icontains=text) | Q(email__icontains=text) | Q(address__icontains=text)
    digits = "".join(_DIGITS.findall(text))
    # Phones are stored as E.164; "(206) 555-01" should still find +12065550123.
    # Phones hold only digits (and the leading +): fewer than 3 digits in the query cannot pick one out.
    return match | Q(phone__contains=digits) if len(digits) >= 3 else match


def _user_out(user: AbstractBaseUser | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.get_username(), "name": user.get_full_name()}


def lead_summary(lead: Lead) -> dict[str, Any]:
    return {
        "id": str(lead.id),
        "status": lead.status,
        "name": lead.name,
        "phone": lead.phone,
        "email": lead.email,
        "address": lead.address,
        "city": lead.city,
        "state": lead.state,
        "postal_code": lead.postal_code,
        "source": lead.source,
        "assignee": _user_out(lead.assigned_to),
        "created_at": lead.created_at,
        "first_contacted_at": lead.first_contacted_at,
        "sla_breached_at": lead.sla_breached_at,
        "claimed_at": lead.claimed_at,
    }


def lead_list(
    filters: LeadFilter, *, limit: int = 50, offset: int = 0, me: AbstractBaseUser | None = None
) -> dict[str, Any]:
    """A page of leads, newest first. No COUNT(*): one query for `limit + 1` rows tells whether there is more."""
    rows = list(
        lead_queryset(filters, me=me)
        .select_related("assigned_to")
        .order_by("-created_at", "-id")[offset : offset + limit + 1]
    )
    has_more = len(rows) > limit
    return {
        "items": [lead_summary(lead) for lead in rows[:limit]],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if has_more else None,
    }


def parse_lead_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError):
        raise ValidationError({"id": ["not a valid lead id (a UUID)"]}) from None


def lead_timeline(lead_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        {
            "kind": event.kind,
            "message": event.message,
            "data": event.data,
            "actor": event.actor.get_username() if event.actor else None,
            "request_id": event.request_id,
            "at": event.created_at,
        }
        for event in LeadEvent.objects.filter(lead_id=lead_id).select_related("actor").order_by("created_at", "id")
    ]


def lead_detail(lead_id: uuid.UUID) -> dict[str, Any] | None:
    lead = Lead.objects.select_related("assigned_to").filter(id=lead_id).first()
    if lead is None:
        return None
    return {
        **lead_summary(lead),
        "street": lead.street,
        "unit": lead.unit,
        "latitude": lead.latitude,
        "longitude": lead.longitude,
        "location_precision": lead.location_precision,
        "beds": lead.beds,
        "baths": lead.baths,
        "living_area_sqft": lead.living_area_sqft,
        "lot_sqft": lead.lot_sqft,
        "year_built": lead.year_built,
        "property_type": lead.property_type,
        "message": lead.message,
        "asking_price": lead.asking_price,
        "timeline": lead.timeline,
        "condition": lead.condition,
        "extra": lead.extra,
        "utm": {
            "source": lead.utm_source,
            "medium": lead.utm_medium,
            "campaign": lead.utm_campaign,
            "term": lead.utm_term,
            "content": lead.utm_content,
        },
        "page_url": lead.page_url,
        "request_id": lead.request_id,
        "consent": {
            "given": lead.consent,
            "text": lead.consent_text,
            "at": lead.consent_at,
            "ip": lead.consent_ip,
            "user_agent": lead.consent_user_agent,
        },
        "updated_at": lead.updated_at,
        "events": lead_timeline(lead.id),
        "valuation": lead_valuation(lead.id),
        "offers": lead_offers(lead.id),
    }


# --- Fan-out effects (for the effect-based repair, leads/repair.py) --------------------------------

FAN_OUT_EFFECTS = ("created", "new_lead", "assigned", "valuation")


def leads_fan_out_missing(*, lead_ids: list[uuid.UUID], assignment_expected: bool) -> dict[uuid.UUID, set[str]]:
    """For each lead, which fan-out effects are not there (an empty set: all of them are).

    Judged by the effect, never by "the task was published": the `created` timeline entry, the
    New Lead delivery row, an assignment (only when there is acquisitions staff to assign to; a
    lead assigned or unassigned by hand counts), and a valuation attempt (its `valuation` timeline
    entry, written whether or not a value came out). Four indexed queries for the whole batch.
    """
    from notifications.models import Delivery

    if not lead_ids:
        return {}
    kinds = [TimelineKind.CREATED, TimelineKind.VALUATION] + ([TimelineKind.ASSIGNED] if assignment_expected else [])
    seen: dict[uuid.UUID, set[str]] = {lead_id: set() for lead_id in lead_ids}
    for lead_id, kind in LeadEvent.objects.filter(lead_id__in=lead_ids, kind__in=kinds).values_list("lead_id", "kind"):
        seen[lead_id].add(kind)
    keys = {f"lead:{lead_id}:new_lead": lead_id for lead_id in lead_ids}
    for key in Delivery.objects.filter(key__in=list(keys)).values_list("key", flat=True):
        seen[keys[key]].add("new_lead")
    if assignment_expected:
        for lead_id in Lead.objects.filter(id__in=lead_ids, assigned_to__isnull=False).values_list("id", flat=True):
            seen[lead_id].add("assigned")
    expected = set(FAN_OUT_EFFECTS) if assignment_expected else set(FAN_OUT_EFFECTS) - {"assigned"}
    return {lead_id: expected - effects for lead_id, effects in seen.items()}


TIMELINE_PAGE = 200


def lead_timeline_recent(lead_id: uuid.UUID, *, limit: int = TIMELINE_PAGE) -> list[LeadEvent]:
    """A lead's timeline newest first, with who did each thing (one query)."""
    return list(
        LeadEvent.objects.filter(lead_id=lead_id).select_related("actor").order_by("-created_at", "-id")[:limit]
    )
