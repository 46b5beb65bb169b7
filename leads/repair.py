"""Effect-based repair of the new-lead fan-out: nothing accepted is ever silently dropped.

A lead's journey runs through the outbox and the broker, and an event counts as published once
the broker took it. If the task is lost after that (the broker's data flushed or evicted, a worker
host gone, retries exhausted during a long database outage, a bug), "published" was not "done".
So a beat job (`leads.repair_fan_out`, every minute) looks at the effects instead: a lead past
LEAD_REPAIR_GRACE_SECONDS without its `created` timeline entry, its New Lead delivery, its
assignment (when there is acquisitions staff) or a valuation attempt gets the idempotent steps
run again: `lead_fan_out` (the same path the worker takes) and the re-arming of the outbox events
whose effect is missing. A lead seen complete gets `fan_out_done_at` and is never looked at again,
so a run reads a small partial index (`lead_fan_out_open_idx`), not the whole table.

Spam leads fan out to nobody and are never candidates. Slack deliveries that exist but never went
out are the notification hub's sweeper's to repair, not this module's.
"""

from __future__ import annotations

import datetime
import logging
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from leads.models import Lead, LeadStatus, OutboxEvent
from leads.outbox import broker_queue_sizes, outbox_rearm
from leads.selectors import leads_fan_out_missing
from leads.services import acquisitions_staff, lead_fan_out
from leadsite.context import lead_id_var

logger = logging.getLogger(__name__)

REPAIR_BATCH = 500
# One run stops after this long; the next run (a minute later) continues where it left off.
REPAIR_TIME_BUDGET_SECONDS = 40.0
# A lead still incomplete after this many repairs is left alone (and logged as an error): something
# other than a lost message is wrong with it, and re-running it forever would only hide that.
REPAIR_MAX_ATTEMPTS = 10

# While the broker and the outbox hold more than this many waiting tasks the workers are behind, and
# what looks missing is most likely still queued: the run then only marks complete leads. Re-running
# the fan-out of a backlog would lengthen it (every re-armed event is one more message in line).
REPAIR_BACKLOG_LIMIT = 1000

# Which outbox event stands for which effect (their keys are written by leads.services).
_EVENT_FOR_EFFECT = {"assigned": "assign", "valuation": "valuation"}


@dataclass
class RepairReport:
    checked: int = 0
    complete: int = 0
    repaired: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    deferred: bool = False  # the broker had a backlog: nothing was re-run this time

    def as_dict(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "complete": self.complete,
            "repaired": self.repaired,
            "missing": self.missing,
            "deferred": self.deferred,
        }


def backlog() -> int | None:
    """Work waiting to be done: messages in the broker's queues plus outbox events not yet
    published (the pumps hold events back while a queue is full). None when the broker cannot tell."""
    sizes = broker_queue_sizes()
    if sizes is None:
        return None
    return sum(sizes.values()) + OutboxEvent.objects.filter(published_at=None).count()


def _due(now: datetime.datetime, grace: datetime.timedelta) -> Q:
    """Leads old enough to judge, not seen complete, not repaired within the grace period."""
    cutoff = now - grace
    return (
        Q(fan_out_done_at=None, created_at__lte=cutoff, fan_out_repairs__lt=REPAIR_MAX_ATTEMPTS)
        & ~Q(status=LeadStatus.SPAM)
        & (Q(fan_out_repaired_at=None) | Q(fan_out_repaired_at__lte=cutoff))
    )


def leads_fan_out_repair(
    *,
    now: datetime.datetime | None = None,
    grace: datetime.timedelta | None = None,
    batch: int = REPAIR_BATCH,
    time_budget: float = REPAIR_TIME_BUDGET_SECONDS,
) -> RepairReport:
    """Mark complete leads done and re-run the fan-out of incomplete ones; safe to run concurrently."""
    now = now or timezone.now()
    grace = grace if grace is not None else datetime.timedelta(seconds=settings.LEAD_REPAIR_GRACE_SECONDS)
    report = RepairReport()
    assignment_expected = bool(acquisitions_staff())
    waiting = backlog()
    report.deferred = waiting is not None and waiting > REPAIR_BACKLOG_LIMIT
    if report.deferred:
        logger.info("fan-out repair deferred: %s task(s) waiting in the broker and the outbox", waiting)
    started = time.monotonic()
    while time.monotonic() - started < time_budget:
        lead_ids = list(
            Lead.objects.filter(_due(now, grace)).order_by("created_at").values_list("id", flat=True)[:batch]
        )
        if not lead_ids:
            break
        missing = leads_fan_out_missing(lead_ids=lead_ids, assignment_expected=assignment_expected)
        complete = [lead_id for lead_id, effects in missing.items() if not effects]
        if complete:
            Lead.objects.filter(id__in=complete, fan_out_done_at=None).update(fan_out_done_at=now)
        report.checked += len(lead_ids)
        report.complete += len(complete)
        if report.deferred:
            break  # the incomplete leads stay first in line; the next run goes on
        for lead_id, effects in missing.items():
            if not effects:
                continue
            for effect in effects:
                report.missing[effect] = report.missing.get(effect, 0) + 1
            report.repaired += _lead_repair(lead_id=lead_id, missing=effects, now=now, grace=grace)
        if len(lead_ids) < batch:
            break
    if report.repaired:
        logger.warning("fan-out repair: %s", report.as_dict())
    return report


def _lead_repair(*, lead_id: uuid.UUID, missing: set[str], now: datetime.datetime, grace: datetime.timedelta) -> bool:
    token = lead_id_var.set(str(lead_id))
    try:
        with transaction.atomic():
            # The conditional UPDATE is the claim: a concurrent run (or a lead that meanwhile became
            # spam or complete) gets 0 rows and leaves it alone.
            claimed = Lead.objects.filter(_due(now, grace), id=lead_id).update(
                fan_out_repaired_at=now, fan_out_repairs=F("fan_out_repairs") + 1
            )
            if not claimed:
                return False
            attempts = Lead.objects.filter(id=lead_id).values_list("fan_out_repairs", flat=True).first()
            logger.warning(
                "lead %s: fan-out effects missing %s; repairing (attempt %s)", lead_id, sorted(missing), attempts
            )
            if attempts and attempts >= REPAIR_MAX_ATTEMPTS:
                logger.error(
                    "lead %s: fan-out repair %s is the last; if it fails too, look at this lead", lead_id, attempts
                )
            # The same idempotent journey the worker runs: writes what is missing of the timeline
            # entry, the New Lead delivery and the assignment/valuation events, nothing twice.
            lead_fan_out(lead_id=lead_id)
            keys = [f"lead:{lead_id}:{_EVENT_FOR_EFFECT[e]}" for e in sorted(missing) if e in _EVENT_FOR_EFFECT]
            if keys:
                outbox_rearm(keys=keys, reason=f"re-armed by repair: {', '.join(sorted(missing))} missing")
        return True
    finally:
        lead_id_var.reset(token)
