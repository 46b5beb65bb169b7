"""The intake service: a web form's submission becomes a new lead (201), a repeat of a recent one
(200), or quietly stored spam (201), exactly once per Idempotency-Key.

One short transaction writes the lead and one outbox event (`leads.fan_out`, which later writes the
`created` timeline entry, the `new_lead` notification, the address's parts and the assignment and
valuation events; see leads.services.lead_fan_out), or the repeat touch on an existing lead, and
the Idempotency-Key record. A new lead that is not spam takes one round trip to PostgreSQL
(leads.intake.sql.insert_new_lead); the rest (spam, repeats, the embedded SQLite) take the general
path. Nothing here talks to the broker: the outbox row's commit wakes the workers' pumps.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from leads.intake.schemas import LeadIn, lead_intake_validate
from leads.intake.sql import insert_new_lead, lock_and_find_repeat
from leads.intake.wake import outbox_wake
from leads.models import IdempotencyRecord, Lead, LeadEvent, LeadStatus, LocationPrecision, TimelineKind
from leads.normalize import address_key
from leads.outbox import outbox_add
from leads.services import lead_fan_out_event, lead_notify_context, lead_timeline_add
from leadsite.context import current_request_id, lead_id_var
from leadsite.services import AuthenticatedKey
from notifications.services import notify

REPEAT_NOTIFY_INTERVAL = datetime.timedelta(hours=1)
IDEMPOTENCY_KEY_MAX_LENGTH = 255


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different body (409)."""


@dataclass(frozen=True)
class IntakeResult:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def _request_hash(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(*, api_key_id: int, key: str, request_hash: str) -> IntakeResult | None:
    record = IdempotencyRecord.objects.filter(api_key_id=api_key_id, key=key).first()
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise IdempotencyConflict("this Idempotency-Key was already used with a different request body")
    return IntakeResult(record.response_status, record.response_body, replayed=True)


def lead_intake(
    *,
    data: Any,
    api_key: AuthenticatedKey | None,
    idempotency_key: str | None = None,
    ip: str | None = None,
    user_agent: str = "",
) -> IntakeResult:
    """Take a web form's submission: a new lead (201), a repeat of a recent one (200), or spam (201, quietly).

    Raises ValidationError (422) and IdempotencyConflict (409).
    """
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValidationError({"Idempotency-Key": [f"must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters"]})
    use_idempotency = bool(idempotency_key) and api_key is not None
    request_hash = _request_hash(data) if use_idempotency else ""
    # No lookup of the Idempotency-Key first: the first submission (nearly all of them) would pay a
    # round trip for nothing. The key's record is inserted with the lead, in the same transaction;
    # a retry fails on its unique index, everything it wrote rolls back, and it replays the first
    # answer (or is a 409 with another body) below.
    payload = lead_intake_validate(data)
    # The duplicate key only: the address's parts (street, city, ZIP...) are the fan-out's to fill
    # in (leads.services.lead_fan_out), off the request's path.
    key = address_key(payload.address)
    try:
        # The common case, a new lead that is not spam, takes one round trip to PostgreSQL.
        result = _new_lead_in_one_statement(
            payload=payload,
            key=key,
            api_key=api_key,
            ip=ip,
            user_agent=user_agent,
            idempotency=(idempotency_key, request_hash) if use_idempotency else None,
        )
        if result is not None:
            return result
        with transaction.atomic():
            result, lead_id = _intake_in_transaction(
                payload=payload, key=key, api_key=api_key, ip=ip, user_agent=user_agent
            )
            if use_idempotency:
                # Inserted last, inside the same transaction: a concurrent request with the same key
                # blocks on the unique index until this commits, then fails and replays our answer.
                IdempotencyRecord.objects.create(
                    api_key_id=api_key.id,
                    key=idempotency_key,
                    request_hash=request_hash,
                    response_status=result.status_code,
                    response_body=result.body,
                    lead_id=lead_id,
                )
    except IntegrityError:
        if not use_idempotency:
            raise
        replay = _replay(api_key_id=api_key.id, key=idempotency_key, request_hash=request_hash)
        if replay is None:
            raise
        return replay
    return result


def _is_spam(payload: LeadIn) -> bool:
    return payload.website not in (None, "", False)


def _intake_in_transaction(
    *, payload: LeadIn, key: str, api_key: AuthenticatedKey | None, ip: str | None, user_agent: str
) -> tuple[IntakeResult, uuid.UUID]:
    source = api_key.name if api_key else ""
    is_spam = _is_spam(payload)

    if not is_spam:
        repeat_id = lock_and_find_repeat(phone=payload.phone, email=payload.email, address_key=key)
        if repeat_id is not None:
            existing = Lead.objects.only("id", "status", "name", "phone", "email", "address", "source").get(
                id=repeat_id
            )
            _record_repeat(lead=existing, payload=payload, source=source)
            # The id and nothing else: whoever knows a phone and an address must not learn the lead's status.
            return IntakeResult(200, {"id": str(existing.id), "duplicate": True}), existing.id

    lead = Lead(**_lead_values(payload=payload, key=key, api_key=api_key, ip=ip, user_agent=user_agent))
    lead_id_var.set(str(lead.id))
    # bulk_create: one INSERT without save()'s signal and per-field bookkeeping.
    Lead.objects.bulk_create([lead])
    if is_spam:
        lead_timeline_add(
            lead_id=lead.id,
            kind=TimelineKind.CREATED,
            message=f"Received from {source or 'intake'}; honeypot filled: spam",
        )
    else:
        # The rest of the journey (timeline, Slack, assignment, valuation) is the `leads.fan_out`
        # task's: one outbox row, committed with the lead and published after commit.
        outbox_add(events=[lead_fan_out_event(lead_id=lead.id)])
    # A honeypot hit looks like any other success to whoever filled it.
    return _created(lead.id), lead.id


def _created(lead_id: uuid.UUID) -> IntakeResult:
    return IntakeResult(201, {"id": str(lead_id), "status": LeadStatus.NEW.value, "duplicate": False})


def _lead_values(
    *, payload: LeadIn, key: str, api_key: AuthenticatedKey | None, ip: str | None, user_agent: str
) -> dict[str, Any]:
    """The new lead's field values (by attname; every other field takes its default): the ORM path
    builds a Lead from them, the one-round-trip path a row document."""
    now = timezone.now()
    consent = payload.consent
    return {
        "id": uuid.uuid4(),
        "status": LeadStatus.SPAM.value if _is_spam(payload) else LeadStatus.NEW.value,
        "name": payload.name,
        "phone": payload.phone,
        "email": payload.email,
        # As typed, and its duplicate key; the parts (street, city, ZIP...) are the fan-out's to fill.
        "address": payload.address,
        "address_key": key,
        "latitude": payload.latitude,
        "longitude": payload.longitude,
        # Coordinates the form sent are taken as given (the valuation geocodes the rest).
        "location_precision": LocationPrecision.MANUAL.value
        if payload.latitude is not None and payload.longitude is not None
        else "",
        "beds": payload.beds,
        "baths": payload.baths,
        "living_area_sqft": payload.living_area_sqft,
        "lot_sqft": payload.lot_sqft,
        "year_built": payload.year_built,
        "property_type": payload.property_type or "",
        "message": payload.message,
        "asking_price": payload.asking_price,
        "timeline": payload.timeline,
        "condition": payload.condition,
        "extra": payload.model_extra or {},
        "source": api_key.name if api_key else "",
        "api_key_id": api_key.id if api_key else None,
        "utm_source": payload.utm_source,
        "utm_medium": payload.utm_medium,
        "utm_campaign": payload.utm_campaign,
        "utm_term": payload.utm_term,
        "utm_content": payload.utm_content,
        "page_url": payload.page_url,
        "request_id": current_request_id() or "",
        "consent": consent,
        "consent_text": payload.consent_text if consent else "",
        "consent_at": now if consent else None,
        "consent_ip": ip if consent else None,
        "consent_user_agent": user_agent[:500] if consent else "",
        "created_at": now,
        "updated_at": now,
    }


def _new_lead_in_one_statement(
    *,
    payload: LeadIn,
    key: str,
    api_key: AuthenticatedKey | None,
    ip: str | None,
    user_agent: str,
    idempotency: tuple[str, str] | None,
) -> IntakeResult | None:
    """Store a new, non-spam lead in one round trip; None if this is not that case (the caller then
    runs the general path): spam, a repeat, or not PostgreSQL."""
    if connection.vendor != "postgresql" or _is_spam(payload):
        return None
    lead = _lead_values(payload=payload, key=key, api_key=api_key, ip=ip, user_agent=user_agent)
    lead_id = lead["id"]
    spec = lead_fan_out_event(lead_id=lead_id)
    outbox = {
        "key": spec.key,
        "task_name": spec.task_name,
        "kwargs": spec.kwargs,
        "lead_id": lead_id,
        "request_id": lead["request_id"],
    }
    result = _created(lead_id)
    record = None
    if idempotency is not None and api_key is not None:
        record = {
            "api_key_id": api_key.id,
            "key": idempotency[0],
            "request_hash": idempotency[1],
            "response_status": result.status_code,
            "response_body": result.body,
            "lead_id": lead_id,
        }
    if not insert_new_lead(lead=lead, outbox=outbox, idempotency=record):
        return None  # a repeat (nothing was written)
    lead_id_var.set(str(lead_id))
    # Committed (or on commit, inside a caller's transaction): the pumps publish the outbox row.
    outbox_wake()
    return result


def _record_repeat(*, lead: Lead, payload: LeadIn, source: str) -> None:
    lead_id_var.set(str(lead.id))
    touch = {
        "source": source,
        "name": payload.name,
        "phone": payload.phone,
        "email": payload.email,
        "message": payload.message,
        "page_url": payload.page_url,
        "utm_campaign": payload.utm_campaign,
    }
    event = lead_timeline_add(
        lead_id=lead.id,
        kind=TimelineKind.REPEAT,
        message=f"Submitted again from {source or 'intake'}",
        data={k: v for k, v in touch.items() if v},
    )
    # At most one Slack message per lead per REPEAT_NOTIFY_INTERVAL: anyone who knows a phone and an
    # address can resubmit at will; further repeats are on the timeline only. Repeats with the same
    # contact are serialised by lock_and_find_repeat's lock, so they cannot both see "none recent".
    recent = LeadEvent.objects.filter(
        lead_id=lead.id, kind=TimelineKind.REPEAT, created_at__gte=event.created_at - REPEAT_NOTIFY_INTERVAL
    ).exclude(id=event.id)
    if recent.filter(data__notified=True).exists():
        return
    LeadEvent.objects.filter(id=event.id).update(data={**event.data, "notified": True})
    notify(
        event_type="repeat_lead",
        key=f"lead:{lead.id}:repeat:{event.id}",
        lead_id=lead.id,
        context=lead_notify_context(lead, source=source, message=payload.message, status=lead.status),
    )


IDEMPOTENCY_RETENTION = datetime.timedelta(days=1)


def idempotency_records_purge(*, older_than: datetime.timedelta = IDEMPOTENCY_RETENTION) -> int:
    """Forget Idempotency-Keys after a day (a retry comes within minutes, not days)."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
