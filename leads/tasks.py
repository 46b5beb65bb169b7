"""Thin Celery tasks: ids in, one service call. Each is safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from leads.intake import idempotency_records_purge
from leads.outbox import outbox_relay
from leads.repair import leads_fan_out_repair
from leads.services import (
    lead_announce,
    lead_assign_round_robin,
    lead_fan_out,
    lead_follow_up_reminders_send,
    lead_sla_breaches_raise,
    new_lead_key,
)
from leadsite.context import lead_id_var
from notifications.tasks import deliveries_send_now


@shared_task(
    name="leads.fan_out",
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
)
def fan_out(lead_id: str) -> bool:
    """Outbox consumer: a new lead's journey (timeline, Slack, assignment and valuation events)."""
    lead_id_var.set(lead_id)
    # The New Lead message first: recorded, committed and posted from this worker (no send task is
    # queued for it), then the rest of the journey. A redelivered task skips what is done already.
    if not lead_announce(lead_id=lead_id):
        return False
    deliveries_send_now(key=new_lead_key(lead_id))
    return lead_fan_out(lead_id=lead_id, post_now=True)


@shared_task(
    name="leads.assign_lead",
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
)
def assign_lead(lead_id: str) -> int | None:
    """Round-robin assignment of a lead (no-op if it is already assigned). The fan-out assigns new
    leads itself now; this consumes `lead:<id>:assign` outbox events written before it did."""
    lead_id_var.set(lead_id)
    user = lead_assign_round_robin(lead_id=lead_id)
    return user.pk if user else None


@shared_task(name="leads.relay_outbox")
def relay_outbox() -> int:
    """Beat: publish outbox events that were not published after their commit (broker was down)."""
    return outbox_relay()


@shared_task(name="leads.check_sla")
def check_sla() -> int:
    """Beat: one `sla_breach` notification per lead left uncontacted past LEAD_SLA_MINUTES."""
    return lead_sla_breaches_raise()


@shared_task(name="leads.purge_idempotency_records")
def purge_idempotency_records() -> int:
    return idempotency_records_purge()


@shared_task(name="leads.repair_fan_out")
def repair_fan_out() -> dict[str, object]:
    """Beat: re-run the fan-out of leads whose effects are missing past the grace period (leads/repair.py)."""
    return leads_fan_out_repair().as_dict()


@shared_task(name="leads.remind_follow_ups")
def remind_follow_ups() -> int:
    """Beat: one `follow_up_due` reminder in the lead's Slack thread per follow-up coming due."""
    return lead_follow_up_reminders_send()
