"""Lead services: every write to a lead lives here (intake itself is in leads.intake).

Timeline entries are written by the service that does the thing, in the same transaction.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from leads.models import OPEN_STATUSES, AssignmentCursor, Lead, LeadEvent, LeadStatus, LocationPrecision, TimelineKind
from leads.outbox import OutboxSpec, outbox_add
from leads.property_facts import FACT_FIELDS, property_facts_clean
from leadsite.context import current_request_id, lead_id_var, request_id_var
from notifications.services import notify

logger = logging.getLogger(__name__)

ACQUISITIONS_GROUP = "Acquisitions"
VALUATION_TASK = "valuation.value_lead"
SLA_BATCH = 500

S = LeadStatus
# Where a lead may go from each status. `lost` can be reopened (someone is talking to them again)
# but never becomes `new`; only a `new` lead can be marked spam, and a spam lead can be rescued to
# `new` (it then fans out like a fresh lead); `won` is final.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.CONTACTED, S.APPOINTMENT, S.OFFER_MADE, S.LOST, S.SPAM}),
    S.CONTACTED: frozenset({S.APPOINTMENT, S.OFFER_MADE, S.UNDER_CONTRACT, S.LOST}),
    S.APPOINTMENT: frozenset({S.CONTACTED, S.OFFER_MADE, S.UNDER_CONTRACT, S.LOST}),
    S.OFFER_MADE: frozenset({S.APPOINTMENT, S.UNDER_CONTRACT, S.WON, S.LOST}),
    S.UNDER_CONTRACT: frozenset({S.OFFER_MADE, S.WON, S.LOST}),
    S.WON: frozenset(),
    S.LOST: frozenset({S.CONTACTED}),
    S.SPAM: frozenset({S.NEW}),
}
# Reaching one of these means someone has talked to the seller: the speed-to-lead clock stops.
CONTACT_STATUSES = frozenset({S.CONTACTED, S.APPOINTMENT, S.OFFER_MADE, S.UNDER_CONTRACT, S.WON})


def lead_timeline_add(
    *,
    lead_id: uuid.UUID | str,
    kind: str,
    message: str,
    data: dict[str, Any] | None = None,
    actor: AbstractBaseUser | None = None,
) -> LeadEvent:
    """Append an entry to a lead's timeline (kind is a leads.models.TimelineKind value)."""
    return LeadEvent.objects.create(
        lead_id=lead_id,
        kind=kind,
        message=message[:500],
        data=data or {},
        actor=actor,
        request_id=current_request_id() or "",
    )


def user_display(user: AbstractBaseUser | None) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


def lead_notify_context(lead: Lead, **extra: Any) -> dict[str, Any]:
    """What every Slack message about a lead shows (templates tolerate missing keys), plus `extra`."""
    return {
        "lead_id": str(lead.id),
        "name": lead.name,
        "phone": lead.phone,
        "email": lead.email,
        "address": lead.address,
        "source": lead.source,
        **extra,
    }


def _user_context(user: AbstractBaseUser | None) -> dict[str, Any]:
    if user is None:
        return {"assignee": "", "assignee_id": None, "assignee_username": "", "assignee_email": ""}
    return {
        "assignee": user_display(user),
        "assignee_id": user.pk,
        "assignee_username": user.get_username(),
        "assignee_email": getattr(user, "email", "") or "",
    }


FAN_OUT_TASK = "leads.fan_out"


def lead_fan_out_event(*, lead_id: uuid.UUID | str) -> OutboxSpec:
    """The one outbox event a new lead's intake writes: run the journey (`leads.fan_out`) later."""
    return OutboxSpec(f"lead:{lead_id}:fan_out", FAN_OUT_TASK, {"lead_id": str(lead_id)}, lead_id)


def new_lead_key(lead_id: uuid.UUID | str) -> str:
    """The New Lead notification's key (one message per lead, however often the fan-out runs)."""
    return f"lead:{lead_id}:new_lead"


def lead_fan_out(*, lead_id: uuid.UUID | str, post_now: bool = False) -> bool:
    """The new-lead journey, in one transaction: the `created` timeline entry, the New Lead Slack
    delivery, the valuation as an outbox event, and the round-robin assignment (no task of its own:
    one broker hop and one commit fewer per lead).

    `post_now`: the caller (the worker's `leads.fan_out` task) has recorded the New Lead delivery
    already with `lead_announce()` and posted it, so that is not done again here; if that post never
    happened (the worker died first) the task is redelivered and posts it, and the notifications
    sweeper is the backstop behind that. Otherwise (a staff action, a repair, the demo) the delivery
    is written here and a send task goes through the outbox.

    Idempotent: the lead row is locked, and each piece is written only if it is not there yet (the
    timeline entry by kind, the notification by its key, the outbox event by its own, the
    assignment if the lead has none), so a redelivered task changes nothing. A spam lead (or a
    missing one) does not fan out; returns whether it did.
    """
    lead_id_var.set(str(lead_id))
    with transaction.atomic():
        lead = Lead.objects.select_for_update().filter(id=lead_id).only(*_FAN_OUT_FIELDS).first()
        if lead is None or lead.status == S.SPAM:
            return False
        with _journey_request_id(lead):
            _fan_out_locked(lead=lead, new_lead=not post_now)
    return True


def lead_announce(*, lead_id: uuid.UUID | str) -> bool:
    """The worker's first step for a new lead: record its New Lead delivery in a short transaction
    of its own (no lock, one read and one idempotent insert), so the caller can post the message
    right after this commits, before the rest of the journey (`lead_fan_out(post_now=True)`): a
    lead's announcement waits for two statements, not for the timeline, the address parse, the
    valuation event and the assignment. Returns False for a spam or missing lead (nothing to say)."""
    lead_id_var.set(str(lead_id))
    lead = Lead.objects.filter(id=lead_id).only(*_ANNOUNCE_FIELDS).first()
    if lead is None or lead.status == S.SPAM:
        return False
    with _journey_request_id(lead):
        _new_lead_notify(lead, queue=False)
    return True


# What the fan-out reads of the lead row (of its ~50 columns).
_ANNOUNCE_FIELDS = (
    "id", "status", "name", "phone", "email", "address", "source", "message", "asking_price", "timeline",
    "condition", "request_id",
)  # fmt: skip
_FAN_OUT_FIELDS = _ANNOUNCE_FIELDS + (
    "street", "unit", "city", "state", "postal_code", "created_at", "assigned_to",
)  # fmt: skip


@contextmanager
def _journey_request_id(lead: Lead) -> Iterator[None]:
    """The journey carries the intake request's correlation id (a worker has it from the task's
    headers already; a direct call, e.g. from a shell, takes it from the lead)."""
    token = request_id_var.set(lead.request_id) if not current_request_id() and lead.request_id else None
    try:
        yield
    finally:
        if token is not None:
            request_id_var.reset(token)


def _new_lead_notify(lead: Lead, *, queue: bool) -> None:
    notify(
        event_type="new_lead",
        key=new_lead_key(lead.id),
        lead_id=lead.id,
        context=lead_notify_context(
            lead,
            message=lead.message,
            asking_price=str(lead.asking_price) if lead.asking_price is not None else None,
            timeline=lead.timeline,
            condition=lead.condition,
        ),
        queue=queue,
    )


def _fan_out_locked(*, lead: Lead, new_lead: bool) -> None:
    lead_fill_address_parts(lead)
    if not LeadEvent.objects.filter(lead_id=lead.id, kind=TimelineKind.CREATED).exists():
        LeadEvent.objects.create(
            lead_id=lead.id,
            kind=TimelineKind.CREATED,
            message=f"New lead from {lead.source or 'intake'}",
            data={"source": lead.source},
            # The entry is written by the task; the timeline shows when the lead came in.
            created_at=lead.created_at,
            request_id=lead.request_id,
        )
    if new_lead:
        _new_lead_notify(lead, queue=True)
    outbox_add(
        events=[OutboxSpec(f"lead:{lead.id}:valuation", VALUATION_TASK, {"lead_id": str(lead.id)}, lead.id)],
        skip_existing=True,
    )
    # Assignment in the same transaction (no task of its own: one broker hop and one commit fewer
    # per lead), last, so the rotation's cursor row stays locked only until the commit right after.
    if lead.assigned_to_id is None:
        _assign_next_locked(lead=lead)


def lead_fill_address_parts(lead: Lead) -> bool:
    """Intake stores the address as typed and its duplicate key; the parts (street, unit, city,
    state, ZIP) are parsed here, once, by the fan-out (or by whatever needs them first, e.g. the
    valuation's geocoder). Returns whether it filled them."""
    from leads.normalize import parse_address

    if not lead.address or lead.street or lead.city or lead.postal_code:
        return False
    parsed = parse_address(lead.address)
    for name in ADDRESS_PART_FIELDS:
        setattr(lead, name, getattr(parsed, name))
    Lead.objects.filter(id=lead.id).update(**{name: getattr(parsed, name) for name in ADDRESS_PART_FIELDS})
    return True


ADDRESS_PART_FIELDS = ("street", "unit", "city", "state", "postal_code")


# --- Assignment ---------------------------------------------------------------------------


def acquisitions_staff() -> list[int]:
    """Ids of the active staff in the Acquisitions group, in rotation order."""
    return list(
        get_user_model()
        .objects.filter(is_active=True, is_staff=True, groups__name=ACQUISITIONS_GROUP)
        .order_by("id")
        .values_list("id", flat=True)
    )


def lead_assign_round_robin(*, lead_id: uuid.UUID | str) -> AbstractBaseUser | None:
    """Give an unassigned lead to the next active acquisitions staff member.

    The fan-out assigns a new lead itself (in its transaction); this is the same step on its own,
    for `leads.assign_lead` tasks. Idempotent (a lead already assigned is left alone) and safe across
    workers: the lead row and the rotation's cursor row are locked for the decision.
    """
    lead_id_var.set(str(lead_id))
    with transaction.atomic():
        lead = Lead.objects.select_for_update().filter(id=lead_id).first()
        if lead is None or lead.assigned_to_id is not None or lead.status == S.SPAM:
            return None
        return _assign_next_locked(lead=lead)


def _assign_next_locked(*, lead: Lead) -> AbstractBaseUser | None:
    """Round-robin: the staff member after the cursor's last one (the caller holds the lead's lock)."""
    staff = acquisitions_staff()
    if not staff:
        logger.warning("lead %s not assigned: no active staff in the %s group", lead.id, ACQUISITIONS_GROUP)
        return None
    cursor = AssignmentCursor.objects.select_for_update().filter(name=ACQUISITIONS_GROUP).first()
    if cursor is None:
        # The rotation's first lead: create the row (a concurrent creator wins the unique name).
        AssignmentCursor.objects.bulk_create([AssignmentCursor(name=ACQUISITIONS_GROUP)], ignore_conflicts=True)
        cursor = AssignmentCursor.objects.select_for_update().get(name=ACQUISITIONS_GROUP)
    last = cursor.last_user_id
    user_id = next((uid for uid in staff if last is not None and uid > last), staff[0])
    AssignmentCursor.objects.filter(pk=cursor.pk).update(last_user_id=user_id)
    user = get_user_model().objects.get(pk=user_id)
    lead.assigned_to = user
    lead.save(update_fields=["assigned_to", "updated_at"])
    lead_timeline_add(
        lead_id=lead.id,
        kind=TimelineKind.ASSIGNED,
        message=f"Assigned to {user_display(user)} (round-robin)",
        data={"assignee_id": user.pk, "how": "round_robin"},
    )
    return user


def lead_assign(
    *, lead_id: uuid.UUID | str, user: AbstractBaseUser | None, actor: AbstractBaseUser | None = None, by: str = ""
) -> Lead:
    """Assign (or, with user=None, unassign) a lead by hand."""
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(id=lead_id)
        _assign_locked(lead=lead, user=user, actor=actor, by=by)
    return lead


def _assign_locked(*, lead: Lead, user: AbstractBaseUser | None, actor: AbstractBaseUser | None, by: str) -> None:
    if user is not None and not (user.is_active and user.is_staff):
        raise ValidationError({"assignee": ["must be an active staff user"]})
    if lead.assigned_to_id == (user.pk if user else None):
        return
    lead.assigned_to = user
    lead.save(update_fields=["assigned_to", "updated_at"])
    who = by or user_display(actor)
    lead_timeline_add(
        lead_id=lead.id,
        kind=TimelineKind.ASSIGNED,
        message=f"Assigned to {user_display(user)}" if user else "Unassigned",
        data={"assignee_id": user.pk if user else None, "how": "manual", "by": who},
        actor=actor,
    )


def lead_claim(*, lead_id: uuid.UUID | str, user: AbstractBaseUser) -> tuple[bool, AbstractBaseUser | None]:
    """Slack's Claim button: (True, user) if `user` claimed the lead now, else (False, current owner)."""
    lead_id_var.set(str(lead_id))
    with transaction.atomic():
        now = timezone.now()
        claimed = Lead.objects.filter(id=lead_id, claimed_at=None).update(
            claimed_at=now, assigned_to=user, updated_at=now
        )
        if not claimed:
            lead = Lead.objects.select_related("assigned_to").get(id=lead_id)
            return False, lead.assigned_to
        lead = Lead.objects.only("id", "name", "phone", "email", "address", "source").get(id=lead_id)
        lead_timeline_add(
            lead_id=lead_id,
            kind=TimelineKind.CLAIMED,
            message=f"Claimed by {user_display(user)} from Slack",
            data={"user_id": user.pk},
            actor=user,
        )
        notify(
            event_type="lead_claimed",
            key=f"lead:{lead_id}:lead_claimed",
            lead_id=lead_id,
            context=lead_notify_context(lead, claimed_by=user_display(user), **_user_context(user)),
        )
    return True, user


# --- Pipeline -----------------------------------------------------------------------------

_UNCHANGED: Any = object()


def lead_update(
    *,
    lead_id: uuid.UUID | str,
    status: str | None = None,
    assignee: AbstractBaseUser | None = _UNCHANGED,
    note: str | None = None,
    actor: AbstractBaseUser | None = None,
    by: str = "",
) -> Lead:
    """Staff changes to a lead: status (validated transition), assignee, a note. One transaction.

    `actor` is the staff user (None for an API key, named in `by`).
    """
    lead_id_var.set(str(lead_id))
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(id=lead_id)
        if status is not None and status != lead.status:
            _change_status_locked(lead=lead, status=status, actor=actor, by=by)
        if assignee is not _UNCHANGED:
            _assign_locked(lead=lead, user=assignee, actor=actor, by=by)
        if note:
            lead_timeline_add(
                lead_id=lead.id,
                kind=TimelineKind.NOTE,
                message=note,
                data={"by": by or user_display(actor)},
                actor=actor,
            )
    return lead


def lead_change_status(
    *, lead_id: uuid.UUID | str, status: str, actor: AbstractBaseUser | None = None, by: str = ""
) -> Lead:
    return lead_update(lead_id=lead_id, status=status, actor=actor, by=by)


def _change_status_locked(*, lead: Lead, status: str, actor: AbstractBaseUser | None, by: str) -> None:
    if status not in S.values:
        raise ValidationError({"status": [f"unknown status {status!r}; one of {', '.join(S.values)}"]})
    old = lead.status
    if status not in ALLOWED_TRANSITIONS[old]:
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[old])) or "none"
        raise ValidationError({"status": [f"a {old} lead cannot become {status} (allowed: {allowed})"]})
    now = timezone.now()
    lead.status = status
    fields = ["status", "updated_at"]
    if status in CONTACT_STATUSES and lead.first_contacted_at is None:
        lead.first_contacted_at = now
        fields.append("first_contacted_at")
    lead.save(update_fields=fields)
    who = by or user_display(actor)
    event = lead_timeline_add(
        lead_id=lead.id,
        kind=TimelineKind.STATUS,
        message=f"Status {old} → {status}" + (f" by {who}" if who else ""),
        data={"from": old, "to": status, "by": who},
        actor=actor,
    )
    if old == S.SPAM and status == S.NEW:
        # Rescued from spam: it never fanned out, so it does now (as a fresh lead would have), in
        # this transaction (a staff action, not the intake path).
        lead_fan_out(lead_id=lead.id)
        return
    notify(
        event_type="lead_status",
        key=f"lead:{lead.id}:status:{event.id}",
        lead_id=lead.id,
        context=lead_notify_context(lead, **{"from": old, "to": status, "by": who}),
    )


# --- Speed-to-lead ------------------------------------------------------------------------


def lead_sla_breaches_raise(*, now: datetime.datetime | None = None) -> int:
    """Raise one `sla_breach` per lead still new and uncontacted after LEAD_SLA_MINUTES; returns how many."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(minutes=settings.LEAD_SLA_MINUTES)
    lead_ids = list(
        Lead.objects.filter(status=S.NEW, first_contacted_at=None, sla_breached_at=None, created_at__lte=cutoff)
        .order_by("created_at")
        .values_list("id", flat=True)[:SLA_BATCH]
    )
    return sum(_lead_sla_breach(lead_id=lead_id, now=now) for lead_id in lead_ids)


def _lead_sla_breach(*, lead_id: uuid.UUID, now: datetime.datetime) -> bool:
    token = lead_id_var.set(str(lead_id))
    try:
        with transaction.atomic():
            # The conditional UPDATE is the claim: a second beat, or a lead contacted meanwhile, gets 0 rows.
            if not Lead.objects.filter(id=lead_id, status=S.NEW, first_contacted_at=None, sla_breached_at=None).update(
                sla_breached_at=now
            ):
                return False
            lead = Lead.objects.select_related("assigned_to").get(id=lead_id)
            minutes = int((now - lead.created_at).total_seconds() // 60)
            assignee = lead.assigned_to
            lead_timeline_add(
                lead_id=lead_id,
                kind=TimelineKind.SLA_BREACH,
                message=f"Not contacted within {settings.LEAD_SLA_MINUTES} min"
                + (f"; assigned to {user_display(assignee)}" if assignee else "; unassigned"),
                data={"sla_minutes": settings.LEAD_SLA_MINUTES, "assignee_id": assignee.pk if assignee else None},
            )
            notify(
                event_type="sla_breach",
                key=f"lead:{lead_id}:sla_breach",
                lead_id=lead_id,
                context=lead_notify_context(
                    lead,
                    sla_minutes=settings.LEAD_SLA_MINUTES,
                    minutes_waiting=minutes,
                    **_user_context(assignee),
                ),
            )
        return True
    finally:
        lead_id_var.reset(token)


# --- Recorded history -----------------------------------------------------------------------


def lead_create_historical(*, created_at: datetime.datetime, status: str, source: str, **fields: Any) -> Lead:
    """A lead recorded after the fact (e.g. grading's synthetic offer history): no intake, no
    fan-out, no Slack, no timeline; its own `created_at` is kept."""
    if status not in S.values:
        raise ValidationError({"status": [f"unknown status {status!r}"]})
    lead = Lead.objects.create(status=status, source=source, **fields)
    # created_at is auto_now_add: set the historical time with a plain UPDATE.
    Lead.objects.filter(id=lead.id).update(created_at=created_at, updated_at=created_at)
    lead.created_at = lead.updated_at = created_at
    return lead


# --- Property facts and location ----------------------------------------------------------


def lead_set_property(
    *, lead_id: uuid.UUID | str, facts: dict[str, Any], actor: AbstractBaseUser | None = None, by: str = "api"
) -> Lead:
    """Staff (admin page, `PATCH /api/leads/{id}`) set a lead's location and property facts.

    `facts` may hold latitude/longitude (together), beds, baths, living_area_sqft, lot_sqft,
    year_built, property_type; None clears one. Invalid values: ValidationError (the API's 422),
    nothing written. Changed values are written with one `property` timeline entry ("property facts
    updated") and one `valuation.value_lead` outbox event, so the valuation is re-queued. Idempotent
    per change: the same facts again change nothing and queue nothing.
    """
    cleaned = property_facts_clean(facts)
    lead_id_var.set(str(lead_id))
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(id=lead_id)
        changed: dict[str, dict[str, Any]] = {}
        for name, value in cleaned.items():
            old = getattr(lead, name)
            if name == "property_type":
                value = value or ""
            if old != value:
                changed[name] = {"from": _jsonable(old), "to": _jsonable(value)}
                setattr(lead, name, value)
        if not changed:
            return lead
        fields = [*changed, "updated_at"]
        if "latitude" in changed or "longitude" in changed:
            # Coordinates a person typed outrank any geocoder's guess.
            lead.location_precision = LocationPrecision.MANUAL if lead.latitude is not None else ""
            fields.append("location_precision")
        lead.save(update_fields=fields)
        who = by or user_display(actor)
        event = lead_timeline_add(
            lead_id=lead.id,
            kind=TimelineKind.PROPERTY,
            message="property facts updated: "
            + ", ".join(
                f"{name} {c['from'] if c['from'] not in (None, '') else '—'} → {c['to'] if c['to'] not in (None, '') else '—'}"
                for name, c in changed.items()
            )
            + (f" by {who}" if who else ""),
            data={"changed": changed, "by": who},
            actor=actor,
        )
        # One event per change (the timeline entry's id), so each change re-values once.
        outbox_add(
            events=[
                OutboxSpec(
                    f"lead:{lead.id}:valuation:facts:{event.id}", VALUATION_TASK, {"lead_id": str(lead.id)}, lead.id
                )
            ],
        )
    return lead


def _jsonable(value: Any) -> Any:
    # Baths are Decimals on the model; the timeline's data is JSON.
    return float(value) if isinstance(value, Decimal) else value


def lead_set_location(
    *, lead_id: uuid.UUID | str, latitude: float, longitude: float, precision: str, source: str
) -> bool:
    """The valuation's geocoder places a lead (no re-valuation: the caller is valuing it).

    Never overwrites coordinates a person set (precision `manual`) nor a finer location than the
    new one; returns whether it wrote.
    """
    finer = {
        LocationPrecision.MANUAL: 3,
        LocationPrecision.ROOFTOP: 2,
        LocationPrecision.INTERPOLATED: 1,
        LocationPrecision.ZIP_CENTROID: 0,
    }
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(id=lead_id)
        if lead.latitude is not None and finer.get(lead.location_precision or "manual", 3) >= finer[precision]:
            return False
        lead.latitude, lead.longitude, lead.location_precision = latitude, longitude, precision
        lead.save(update_fields=["latitude", "longitude", "location_precision", "updated_at"])
        lead_timeline_add(
            lead_id=lead.id,
            kind=TimelineKind.PROPERTY,
            message=f"Located from its address ({precision.replace('_', ' ')}, {source})",
            data={"latitude": latitude, "longitude": longitude, "precision": precision, "source": source},
        )
    return True


def lead_address_keys_recompute(*, batch_size: int = 1000) -> int:
    """Recompute every lead's duplicate key with today's address normalisation (after it changed,
    e.g. to USPS Publication 28 forms); returns how many keys changed. Safe to run at any time and
    more than once."""
    from leads.normalize import parse_address

    changed = 0
    last_id = None
    while True:
        page = Lead.objects.order_by("id").only("id", "address", "address_key")
        if last_id is not None:
            page = page.filter(id__gt=last_id)
        leads = list(page[:batch_size])
        if not leads:
            return changed
        last_id = leads[-1].id
        stale = []
        for lead in leads:
            key = parse_address(lead.address).key
            if key != lead.address_key:
                lead.address_key = key
                stale.append(lead)
        if stale:
            with transaction.atomic():
                Lead.objects.bulk_update(stale, ["address_key"])
            changed += len(stale)


# --- Follow-ups and archive (the back office) ------------------------------------------------

# Facts staff may set on a lead (the valuation's inputs), as leads.property_facts defines them.
PROPERTY_FIELDS = FACT_FIELDS


def lead_set_follow_up(
    *,
    lead_id: uuid.UUID | str,
    at: datetime.datetime | None,
    note: str = "",
    actor: AbstractBaseUser | None = None,
    by: str = "",
) -> Lead:
    """Set (or with at=None clear) a lead's next action; a new date gets its own reminder."""
    lead_id_var.set(str(lead_id))
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(id=lead_id)
        note = (note or "").strip()[:300]
        if lead.follow_up_at == at and lead.follow_up_note == note:
            return lead
        fields = ["follow_up_note", "updated_at"]
        if lead.follow_up_at != at:
            lead.follow_up_at = at
            lead.follow_up_reminded_at = None
            fields += ["follow_up_at", "follow_up_reminded_at"]
        lead.follow_up_note = note
        lead.save(update_fields=fields)
        who = by or user_display(actor)
        when = timezone.localtime(at).strftime("%Y-%m-%d %H:%M") if at else None
        lead_timeline_add(
            lead_id=lead.id,
            kind=TimelineKind.FOLLOW_UP,
            message=(f"Follow-up {when}" + (f": {note}" if note else "")) if at else "Follow-up cleared",
            data={"at": at.isoformat() if at else None, "note": note, "by": who},
            actor=actor,
        )
    return lead


def lead_archive(*, lead_id: uuid.UUID | str, actor: AbstractBaseUser | None = None, by: str = "") -> bool:
    """Take a lead out of the working lists (never delete it: its timeline and consent are evidence).

    Returns whether it was archived now (False if it already was).
    """
    lead_id_var.set(str(lead_id))
    with transaction.atomic():
        now = timezone.now()
        if not Lead.objects.filter(id=lead_id, archived_at=None).update(archived_at=now, updated_at=now):
            return False
        who = by or user_display(actor)
        lead_timeline_add(
            lead_id=lead_id,
            kind=TimelineKind.ARCHIVED,
            message="Archived" + (f" by {who}" if who else ""),
            data={"by": who},
            actor=actor,
        )
    return True


FOLLOW_UP_LEAD_MINUTES = 15  # a reminder goes out this long before the follow-up is due


def lead_follow_up_reminders_send(*, now: datetime.datetime | None = None) -> int:
    """Post one `follow_up_due` reminder per follow-up coming due (beat); returns how many."""
    now = now or timezone.now()
    horizon = now + datetime.timedelta(minutes=FOLLOW_UP_LEAD_MINUTES)
    lead_ids = list(
        Lead.objects.filter(
            follow_up_at__isnull=False,
            follow_up_at__lte=horizon,
            follow_up_reminded_at=None,
            archived_at=None,
            status__in=OPEN_STATUSES,
        )
        .order_by("follow_up_at")
        .values_list("id", flat=True)[:SLA_BATCH]
    )
    return sum(_lead_follow_up_remind(lead_id=lead_id, now=now) for lead_id in lead_ids)


def _lead_follow_up_remind(*, lead_id: uuid.UUID, now: datetime.datetime) -> bool:
    token = lead_id_var.set(str(lead_id))
    try:
        with transaction.atomic():
            lead = Lead.objects.select_for_update(of=("self",)).select_related("assigned_to").filter(id=lead_id).first()
            # Re-checked under the lock: the follow-up may have been changed, cleared or reminded meanwhile.
            if lead is None or lead.follow_up_at is None or lead.follow_up_reminded_at is not None:
                return False
            lead.follow_up_reminded_at = now
            lead.save(update_fields=["follow_up_reminded_at"])
            assignee = lead.assigned_to
            notify(
                event_type="follow_up_due",
                # One per follow-up: a new date is a new key.
                key=f"lead:{lead.id}:follow_up:{lead.follow_up_at.isoformat()}",
                lead_id=lead.id,
                context=lead_notify_context(
                    lead,
                    follow_up_at=lead.follow_up_at.isoformat(),
                    follow_up_note=lead.follow_up_note,
                    **_user_context(assignee),
                ),
            )
        return True
    finally:
        lead_id_var.reset(token)
