"""Lead intake: what POST /api/leads does with a web form's submission.

One short transaction writes the lead and one outbox event (`leads.fan_out`, which later writes the
`created` timeline entry, the `new_lead` notification and the assignment and valuation events; see
leads.services.lead_fan_out), or the repeat touch on an existing lead, and the Idempotency-Key
record; nothing reaches the broker until that has committed (see leads.outbox).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import JSONField, Q
from django.utils import timezone
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema, field_validator
from pydantic import ValidationError as PydanticValidationError

from leads.models import (
    IdempotencyRecord,
    Lead,
    LeadEvent,
    LeadStatus,
    LocationPrecision,
    OutboxEvent,
    PropertyType,
    TimelineKind,
)
from leads.normalize import ParsedAddress, address_key, normalize_email, normalize_phone
from leads.outbox import outbox_add
from leads.services import lead_fan_out_event, lead_notify_context, lead_timeline_add
from leadsite.context import current_request_id, lead_id_var
from leadsite.services import AuthenticatedKey
from leadsite.storable import storable_json
from notifications.services import notify

DUPLICATE_WINDOW = datetime.timedelta(days=30)
REPEAT_NOTIFY_INTERVAL = datetime.timedelta(hours=1)
IDEMPOTENCY_KEY_MAX_LENGTH = 255


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different body (409)."""


def _blank_to_none(value: Any) -> Any:
    # HTML forms send "" for fields left empty; that means "not given", not "invalid number".
    return None if isinstance(value, str) and not value.strip() else value


def _none_to_blank(value: Any) -> Any:
    return "" if value is None else value


def _text(max_length: int) -> Any:
    return Annotated[
        str, BeforeValidator(_none_to_blank), StringConstraints(strip_whitespace=True, max_length=max_length)
    ]


def _phone_text(value: Any) -> Any:
    # Some forms send the phone as a JSON number.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else _none_to_blank(value)


def _not_a_bool(value: Any) -> Any:
    # pydantic reads true as 1; no form means `true` for a number of beds (and the schema says number).
    if isinstance(value, bool):
        raise ValueError("must be a number or empty, not true/false")
    return value


def _optional(tp: Any) -> Any:
    return Annotated[tp | None, BeforeValidator(_blank_to_none), BeforeValidator(_not_a_bool)]


# What HTML forms send for a checkbox, besides JSON booleans: exactly these, as published.
_CONSENT_TEXT = {
    "true": True,
    "on": True,
    "yes": True,
    "1": True,
    "false": False,
    "off": False,
    "no": False,
    "0": False,
}


def _consent(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value in _CONSENT_TEXT:
        return _CONSENT_TEXT[value]
    raise ValueError(f"must be true, false, 0, 1 or one of the strings {', '.join(_CONSENT_TEXT)}")


Consent = Annotated[
    bool,
    BeforeValidator(_consent),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "boolean"},
                {"type": "string", "enum": list(_CONSENT_TEXT)},
                {"type": "integer", "enum": [0, 1]},
            ],
            "default": False,
        }
    ),
]


class LeadIn(BaseModel):
    """POST /api/leads body. Fields not listed here are kept as the form's extra answers."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    phone: Annotated[str, BeforeValidator(_phone_text), StringConstraints(strip_whitespace=True, max_length=40)] = ""
    email: _text(254) = ""
    address: _text(500) = ""
    message: _text(10_000) = ""
    asking_price: _optional(Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]) = None
    timeline: _text(100) = ""
    condition: _text(100) = ""
    utm_source: _text(200) = ""
    utm_medium: _text(200) = ""
    utm_campaign: _text(200) = ""
    utm_term: _text(200) = ""
    utm_content: _text(200) = ""
    page_url: _text(2000) = ""
    consent: Consent = False
    consent_text: _text(5_000) = ""
    latitude: _optional(Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]) = None
    longitude: _optional(Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]) = None
    beds: _optional(Annotated[int, Field(ge=0, le=100)]) = None
    baths: _optional(Annotated[Decimal, Field(ge=0, max_digits=4, decimal_places=2)]) = None
    living_area_sqft: _optional(Annotated[int, Field(ge=1, le=1_000_000)]) = None
    lot_sqft: _optional(Annotated[int, Field(ge=0, le=2_000_000_000)]) = None
    year_built: _optional(Annotated[int, Field(ge=1600, le=2100)]) = None
    property_type: _optional(PropertyType) = None
    website: Any = Field(default=None, description="honeypot: leave empty (hidden from humans)")

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return normalize_phone(value) if value else ""

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not value:
            return ""
        value = normalize_email(value)
        try:
            validate_email(value)
        except ValidationError as exc:
            raise ValueError("not a valid email address") from exc
        return value

    @field_validator("page_url")
    @classmethod
    def _page_url(cls, value: str) -> str:
        if value:
            try:
                URLValidator(schemes=["http", "https"])(value)
            except ValidationError as exc:
                raise ValueError("not a valid http(s) URL") from exc
        return value


def lead_intake_validate(data: Any) -> LeadIn:
    """Validate a form body; ValidationError with a message per field (the API's 422)."""
    if not isinstance(data, dict):
        raise ValidationError({"__all__": ["the body must be a JSON object"]})
    # NUL, lone surrogates and non-finite numbers anywhere (the extra answers are free-form JSON).
    data = storable_json(data)
    try:
        payload = LeadIn.model_validate(data)
    except PydanticValidationError as exc:
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "__all__"
            message = error["msg"].removeprefix("Value error, ")
            errors.setdefault(field, []).append("This field is required." if error["type"] == "missing" else message)
        raise ValidationError(errors) from None
    if not payload.phone and not payload.email:
        raise ValidationError(
            {"phone": ["a phone or an email is required"], "email": ["a phone or an email is required"]}
        )
    return payload


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
    if use_idempotency:
        replay = _replay(api_key_id=api_key.id, key=idempotency_key, request_hash=request_hash)
        if replay is not None:
            return replay

    payload = lead_intake_validate(data)
    # The duplicate key only: the address's parts (street, city, ZIP...) are the fan-out's to fill
    # in (leads.services.lead_fan_out), off the request's path.
    address = ParsedAddress(key=address_key(payload.address))
    try:
        # The common case, a new lead that is not spam, takes one round trip to PostgreSQL.
        result = _new_lead_in_one_statement(
            payload=payload,
            address=address,
            api_key=api_key,
            ip=ip,
            user_agent=user_agent,
            idempotency=(idempotency_key, request_hash) if use_idempotency else None,
        )
        if result is not None:
            return result
        with transaction.atomic():
            result, lead_id = _intake_in_transaction(
                payload=payload, address=address, api_key=api_key, ip=ip, user_agent=user_agent
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


# Lock, then look: two submissions of the same person and property at the same moment (a double
# click without an Idempotency-Key) must not both become new leads, so the contact keys are locked
# (transaction-scoped advisory locks, taken in sorted order) before the repeat lookup. Two
# statements, because in READ COMMITTED the lookup needs a snapshot taken after the lock is granted,
# sent in one round trip (Django's psycopg cursor binds client-side and uses the simple protocol).
_LOCK_AND_FIND_REPEAT_SQL = """
SELECT count(pg_advisory_xact_lock(hashtext(k))) FROM unnest(%(keys)s::text[]) AS k;
SELECT id FROM leads_lead
WHERE (phone = %(phone)s OR email = %(email)s)
  AND address_key = %(address_key)s
  AND created_at >= %(since)s
  AND status <> %(spam)s
ORDER BY created_at DESC
LIMIT 1
"""


def _lock_and_find_repeat(*, phone: str, email: str, address_key: str) -> Lead | None:
    """The lead this submission repeats, or None; serialised per contact and property."""
    since = timezone.now() - DUPLICATE_WINDOW
    repeat_id = None
    if connection.vendor == "postgresql":
        params = {
            "keys": sorted(f"lead-contact:{c}|{address_key}" for c in (phone, email) if c),
            # NULL never matches: a lead without an email must not match every other one without.
            "phone": phone or None,
            "email": email or None,
            "address_key": address_key,
            "since": since,
            "spam": LeadStatus.SPAM.value,
        }
        with connection.cursor() as cursor:
            cursor.execute(_LOCK_AND_FIND_REPEAT_SQL, params)
            cursor.nextset()
            row = cursor.fetchone()
            repeat_id = row[0] if row else None
    else:
        contact = Q(phone=phone) if phone else Q(pk__in=[])
        if email:
            contact |= Q(email=email)
        repeat_id = (
            Lead.objects.filter(contact, address_key=address_key, created_at__gte=since)
            .exclude(status=LeadStatus.SPAM)
            .order_by("-created_at")
            .values_list("id", flat=True)
            .first()
        )
    if repeat_id is None:
        return None
    return Lead.objects.only("id", "status", "name", "phone", "email", "address", "source").get(id=repeat_id)


def _is_spam(payload: LeadIn) -> bool:
    return payload.website not in (None, "", False)


def _intake_in_transaction(
    *, payload: LeadIn, address: ParsedAddress, api_key: AuthenticatedKey | None, ip: str | None, user_agent: str
) -> tuple[IntakeResult, uuid.UUID]:
    source = api_key.name if api_key else ""
    is_spam = _is_spam(payload)

    if not is_spam:
        existing = _lock_and_find_repeat(phone=payload.phone, email=payload.email, address_key=address.key)
        if existing is not None:
            _record_repeat(lead=existing, payload=payload, source=source)
            # The id and nothing else: whoever knows a phone and an address must not learn the lead's status.
            return IntakeResult(200, {"id": str(existing.id), "duplicate": True}), existing.id

    lead = _lead_from_payload(payload=payload, address=address, api_key=api_key, ip=ip, user_agent=user_agent)
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


def _lead_from_payload(
    *, payload: LeadIn, address: ParsedAddress, api_key: AuthenticatedKey | None, ip: str | None, user_agent: str
) -> Lead:
    source = api_key.name if api_key else ""
    now = timezone.now()
    return Lead(
        id=uuid.uuid4(),
        status=LeadStatus.SPAM if _is_spam(payload) else LeadStatus.NEW,
        name=payload.name,
        phone=payload.phone,
        email=payload.email,
        address=payload.address,
        street=address.street,
        unit=address.unit,
        city=address.city,
        state=address.state,
        postal_code=address.postal_code,
        address_key=address.key,
        latitude=payload.latitude,
        longitude=payload.longitude,
        # Coordinates the form sent are taken as given (the valuation geocodes the rest).
        location_precision=LocationPrecision.MANUAL
        if payload.latitude is not None and payload.longitude is not None
        else "",
        beds=payload.beds,
        baths=payload.baths,
        living_area_sqft=payload.living_area_sqft,
        lot_sqft=payload.lot_sqft,
        year_built=payload.year_built,
        property_type=payload.property_type or "",
        message=payload.message,
        asking_price=payload.asking_price,
        timeline=payload.timeline,
        condition=payload.condition,
        extra=payload.model_extra or {},
        source=source,
        api_key_id=api_key.id if api_key else None,
        utm_source=payload.utm_source,
        utm_medium=payload.utm_medium,
        utm_campaign=payload.utm_campaign,
        utm_term=payload.utm_term,
        utm_content=payload.utm_content,
        page_url=payload.page_url,
        request_id=current_request_id() or "",
        consent=payload.consent,
        consent_text=payload.consent_text if payload.consent else "",
        consent_at=now if payload.consent else None,
        consent_ip=ip if payload.consent else None,
        consent_user_agent=user_agent[:500] if payload.consent else "",
    )


# The new-lead fast path: lock, repeat lookup, and the conditional inserts of the lead, its one
# outbox event and (with an Idempotency-Key) the idempotency record, sent as one simple-protocol
# query. Outside a transaction PostgreSQL runs such a multi-statement query as one implicit
# transaction: no BEGIN and COMMIT round trips, and the advisory locks are held until it ends. The
# lookup and the inserts are one statement, so nothing is written when a repeat is found (the
# caller then takes the general path). Each row is one JSON parameter, typed by jsonb_populate_record.
_FAST_SQL = """
SELECT count(pg_advisory_xact_lock(hashtext(k))) FROM unnest(%(keys)s::text[]) AS k;
WITH repeat AS (
  SELECT id FROM leads_lead
  WHERE (phone = %(phone)s OR email = %(email)s)
    AND address_key = %(address_key)s
    AND created_at >= %(since)s
    AND status <> %(spam)s
  ORDER BY created_at DESC
  LIMIT 1
), new_lead AS (
  {lead_insert} WHERE NOT EXISTS (SELECT 1 FROM repeat) RETURNING 1
), outbox AS (
  {outbox_insert}, new_lead RETURNING id
){idempotency_cte}
SELECT (SELECT id FROM repeat), (SELECT id FROM outbox)
"""
_IDEMPOTENCY_CTE = """, idempotency AS (
  {idempotency_insert}, new_lead RETURNING 1
)"""


@functools.cache
def _insert_select_sql(model: type[Any], param: str) -> tuple[str, tuple[Any, ...]]:
    """`INSERT INTO <table> (<columns>) SELECT <columns> FROM jsonb_populate_record(...)` for a model
    (no RETURNING; the caller appends a FROM item), and the fields it takes from the row's JSON
    document %(<param>)s. One parameter per row keeps the statement within psycopg's query cache."""
    meta = model._meta
    fields = tuple(f for f in meta.local_concrete_fields if not (f.primary_key and f.db_returning))
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    row = f"jsonb_populate_record(NULL::{quote(meta.db_table)}, %({param})s::jsonb)"
    values = ", ".join(f"r.{quote(f.column)}" for f in fields)
    return f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {values} FROM {row} AS r", fields


def _json_value(field: Any, value: Any) -> Any:
    # JSON columns take the value itself; everything else its text form (uuid, timestamp, numeric, inet).
    if value is None or isinstance(field, JSONField):
        return value
    value = field.get_prep_value(value)
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _insert_select(obj: Any, param: str, params: dict[str, Any]) -> str:
    sql, fields = _insert_select_sql(type(obj), param)
    params[param] = json.dumps(
        {f.column: _json_value(f, f.pre_save(obj, True)) for f in fields}, ensure_ascii=False, allow_nan=False
    )
    return sql


def _new_lead_in_one_statement(
    *,
    payload: LeadIn,
    address: ParsedAddress,
    api_key: AuthenticatedKey | None,
    ip: str | None,
    user_agent: str,
    idempotency: tuple[str, str] | None,
) -> IntakeResult | None:
    """Store a new, non-spam lead in one round trip; None if this is not that case (the caller then
    runs the general path): spam, a repeat, or not PostgreSQL."""
    if connection.vendor != "postgresql" or _is_spam(payload):
        return None
    lead = _lead_from_payload(payload=payload, address=address, api_key=api_key, ip=ip, user_agent=user_agent)
    spec = lead_fan_out_event(lead_id=lead.id)
    outbox = OutboxEvent(
        key=spec.key,
        task_name=spec.task_name,
        kwargs=spec.kwargs,
        lead_id=lead.id,
        request_id=current_request_id() or "",
    )
    result = _created(lead.id)
    params: dict[str, Any] = {
        "keys": sorted(f"lead-contact:{c}|{address.key}" for c in (lead.phone, lead.email) if c),
        "phone": lead.phone or None,
        "email": lead.email or None,
        "address_key": address.key,
        "since": timezone.now() - DUPLICATE_WINDOW,
        "spam": LeadStatus.SPAM.value,
    }
    idempotency_cte = ""
    if idempotency is not None and api_key is not None:
        record = IdempotencyRecord(
            api_key_id=api_key.id,
            key=idempotency[0],
            request_hash=idempotency[1],
            response_status=result.status_code,
            response_body=result.body,
            lead_id=lead.id,
        )
        idempotency_cte = _IDEMPOTENCY_CTE.format(idempotency_insert=_insert_select(record, "idempotency", params))
    sql = _FAST_SQL.format(
        lead_insert=_insert_select(lead, "lead", params),
        outbox_insert=_insert_select(outbox, "outbox", params),
        idempotency_cte=idempotency_cte,
    )
    # Inside a transaction (tests, a caller's atomic block) a savepoint keeps an IntegrityError local.
    with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.nextset()
            repeat_id, outbox_id = cursor.fetchone()
    if outbox_id is None:
        return None  # a repeat (nothing was written)
    lead_id_var.set(str(lead.id))
    # The outbox insert's trigger wakes the workers' outbox pumps when this commits.
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
    # contact are serialised by _lock_and_find_repeat's lock, so they cannot both see "none recent".
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
