"""Notification hub services: record what we owe Slack, then deliver it exactly once.

Contract used by the other apps — keep the signature:

    notify(event_type=..., context={...}, key=..., lead_id=...)

records one Delivery per routed channel inside the caller's transaction (so it commits, or not,
together with what caused it) and hands sending to a Celery task after commit. `key` makes it
idempotent: the same key never produces a second message.

Delivery life: pending -> sending (a conditional UPDATE: only one worker wins) -> sent | failed
(transient; retried with backoff) | dead (permanent or out of attempts; an alert is raised).
A row stuck in `sending` longer than SLACK_SENDING_STALE_SECONDS (its worker died mid-post) is
put back to pending by the sweeper. That is the only window where a message could be posted twice:
if the worker died after Slack accepted the post but before we recorded the ts.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from leadsite.context import current_request_id, lead_id_var
from notifications import ratelimit, slack, templates
from notifications.models import Delivery, DeliveryStatus, EventType, Route, StaffProfile

logger = logging.getLogger(__name__)

# A reply waits for its lead's first message this long before giving up on the thread.
PARENT_WAIT_SECONDS = 600
PARENT_POLL_SECONDS = 2.0
# The sweeper leaves pending rows alone this long after their planned attempt (the task is queued).
SWEEP_GRACE_SECONDS = 60
# Posting within this much of our reserved slot counts as on time.
SLOT_SLACK_SECONDS = 0.05

_OPEN = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


# --- Recording ---------------------------------------------------------------------------------


# The routing table (event type -> channels) is read on every notify(), so it lives in the cache;
# saving or deleting a Route (admin, demo seed, shell) drops it (notifications.signals). The TTL
# bounds how long a reader that raced an edit could keep a stale table. QuerySet.update() on routes
# sends no signal: call routes_cache_clear() after one.
ROUTES_CACHE_KEY = "notifications:routes"
ROUTES_CACHE_SECONDS = 300


def _routing_table() -> dict[str, list[str]]:
    table = cache.get(ROUTES_CACHE_KEY)
    if table is None:
        table = {}
        rows = (
            Route.objects.filter(is_active=True).order_by("event_type", "channel").values_list("event_type", "channel")
        )
        for event_type, channel in rows:
            if channel not in table.setdefault(event_type, []):
                table[event_type].append(channel)
        cache.set(ROUTES_CACHE_KEY, table, ROUTES_CACHE_SECONDS)
    return table


def routes_cache_clear() -> None:
    """Forget the cached routing table now and again when the current transaction commits (a reader
    in between could have cached the table as it was before the change)."""
    cache.delete(ROUTES_CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(ROUTES_CACHE_KEY))


def route_channels(event_type: str) -> list[str]:
    return list(_routing_table().get(event_type) or [settings.SLACK_DEFAULT_CHANNEL])


def notify(
    *,
    event_type: str,
    context: dict[str, Any],
    key: str,
    lead_id: uuid.UUID | str | None = None,
) -> None:
    """Queue the `event_type` Slack message rendered from `context` to every routed channel.

    Runs inside the caller's transaction; sending starts after commit. Never raises for delivery
    problems (the broker may be down: the sweeper picks the rows up), only for an unknown event type.
    """
    if event_type not in EventType.values:
        raise ValueError(f"unknown notification event type {event_type!r}")
    deliveries_record(event_type=event_type, context=context, key=key, lead_id=lead_id)


def deliveries_record(
    *,
    event_type: str,
    context: dict[str, Any],
    key: str,
    lead_id: uuid.UUID | str | None = None,
    channels: list[str] | None = None,
) -> list[int]:
    """Insert one pending Delivery per channel (existing keys are left alone) and enqueue after commit."""
    channels = channels or route_channels(event_type)
    lead_uuid = uuid.UUID(str(lead_id)) if lead_id else None
    now = timezone.now()
    payload = dict(context or {})
    if lead_uuid and not payload.get("lead_id"):
        payload["lead_id"] = str(lead_uuid)
    rows = [
        Delivery(
            key=key[:200],
            channel=channel,
            event_type=event_type,
            lead_id=lead_uuid,
            payload=payload,
            request_id=current_request_id() or "",
            next_attempt_at=now,
        )
        for channel in channels
    ]
    # ON CONFLICT DO NOTHING: a repeated key is a no-op and never breaks the caller's transaction.
    Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    rows = list(
        Delivery.objects.filter(key=key[:200], channel__in=channels, status=DeliveryStatus.PENDING).values_list(
            "id", "next_attempt_at"
        )
    )
    # Only rows this call inserted (they carry its `now`) get a task: a repeated key's row has its own
    # task chain already, and a second chain would only burn rate-limit slots.
    new = [(delivery_id, at) for delivery_id, at in rows if at == now]
    if new:
        transaction.on_commit(lambda: deliveries_enqueue(new))
    return [delivery_id for delivery_id, _ in rows]


def deliveries_enqueue(rows: list[tuple[int, datetime | None]]) -> int:
    """Publish send tasks for (id, planned attempt) pairs; a broker outage is logged, never raised
    (the sweeper retries later). The planned attempt is the row's next_attempt_at: a task whose stamp
    no longer matches the row has been superseded and exits (see delivery_send)."""
    from notifications.tasks import send_delivery

    sent = 0
    for delivery_id, planned in rows:
        try:
            send_delivery.apply_async(args=[delivery_id], kwargs={"planned": planned.isoformat() if planned else None})
            sent += 1
        except Exception as exc:  # noqa: BLE001 - the request path must not fail on the broker
            logger.warning("could not queue Slack delivery %s (%s); the sweeper will retry it", delivery_id, exc)
            break  # the broker is down: don't pay the connect timeout once per row
    return sent


# --- Sending -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Later:
    """Run the task again in `countdown` seconds; `slot` is a reserved rate-limit slot (epoch),
    `planned` the row's next_attempt_at the next run must still find (its stamp), `retry` marks a
    failed attempt (as opposed to waiting for something)."""

    countdown: float
    slot: float | None = None
    planned: datetime | None = None
    retry: bool = False


def _backoff(attempts: int) -> float:
    # 2, 4, 8, ... capped at 5 minutes, with full jitter so retries of a burst spread out.
    base = min(300.0, 2.0 ** max(1, attempts))
    return base / 2 + random.uniform(0, base / 2)


def _thread_ts(delivery: Delivery) -> tuple[str | None, float | None]:
    """(thread ts, wait seconds): the lead's first message in this channel is the thread parent."""
    if delivery.event_type == EventType.NEW_LEAD or not delivery.lead_id:
        return None, None
    parent = (
        Delivery.objects.filter(lead_id=delivery.lead_id, channel=delivery.channel, event_type=EventType.NEW_LEAD)
        .only("status", "ts")
        .first()
    )
    if parent is None or parent.status == DeliveryStatus.DEAD:
        return None, None  # nothing to thread under: post on its own
    if parent.status == DeliveryStatus.SENT and parent.ts:
        return parent.ts, None
    if (timezone.now() - delivery.created_at).total_seconds() > PARENT_WAIT_SECONDS:
        return None, None  # the parent is badly late; better top-level than never
    return None, PARENT_POLL_SECONDS


def _resolve_mentions(delivery: Delivery, context: dict[str, Any]) -> dict[str, Any]:
    if delivery.event_type in (EventType.SLA_BREACH, EventType.FOLLOW_UP_DUE) and not context.get("assignee_slack_id"):
        user_id = context.get("assignee_id") or context.get("assigned_to_id")
        if user_id:
            slack_id = StaffProfile.objects.filter(user_id=user_id).values_list("slack_user_id", flat=True).first()
            if slack_id:
                context = {**context, "assignee_slack_id": slack_id}
    return context


def delivery_send(*, delivery_id: int, slot: float | None = None, planned: datetime | None = None) -> Later | None:
    """Post one delivery if it is still owed. Returns Later(...) when it must run again.

    `planned` is the next_attempt_at the task was scheduled for. If the row has been rescheduled
    since (the sweeper re-queued it, another chain moved it), this task is stale and exits before it
    reserves a rate-limit slot. None (tasks queued before stamps existed) skips the check.
    """
    delivery = Delivery.objects.filter(pk=delivery_id).first()
    if delivery is None or delivery.status not in _OPEN:
        return None  # sent, dead, or another worker is posting it right now
    if planned is not None and delivery.next_attempt_at != planned:
        return None  # superseded: the task carrying the row's current stamp does the work
    current = Q(pk=delivery.pk, status__in=_OPEN, next_attempt_at=delivery.next_attempt_at)
    if delivery.lead_id:
        lead_id_var.set(str(delivery.lead_id))

    thread_ts, wait = _thread_ts(delivery)
    if wait is not None:
        at = timezone.now() + timedelta(seconds=wait)
        if not Delivery.objects.filter(current).update(next_attempt_at=at):
            return None  # claimed or rescheduled by someone else meanwhile
        return Later(wait, planned=at)

    if slot is None or ratelimit.now() < slot - SLOT_SLACK_SECONDS:
        wait = ratelimit.reserve(delivery.channel) if slot is None else slot - ratelimit.now()
        if wait > SLOT_SLACK_SECONDS:
            slot_at = ratelimit.now() + wait
            at = timezone.now() + timedelta(seconds=wait)
            if not Delivery.objects.filter(current).update(next_attempt_at=at):
                return None  # claimed or rescheduled by someone else meanwhile
            return Later(wait, slot=slot_at, planned=at)

    now = timezone.now()
    claimed = Delivery.objects.filter(pk=delivery.pk, status__in=_OPEN).update(
        status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
    )
    if not claimed:
        return None  # someone else claimed it between our read and now
    delivery.refresh_from_db()

    try:
        context = _resolve_mentions(delivery, delivery.payload or {})
        text, blocks = templates.render(delivery.event_type, context)
    except Exception as exc:  # noqa: BLE001 - a template bug must not loop forever
        logger.exception("rendering delivery %s failed", delivery.pk)
        _mark_dead(delivery, f"render error: {exc}")
        return None

    try:
        posted = slack.post_message(channel=delivery.channel, text=text, blocks=blocks, thread_ts=thread_ts)
    except slack.SlackError as exc:
        return _record_failure(delivery, exc, text)

    Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.SENT,
        ts=posted.ts,
        thread_ts=thread_ts or "",
        text=text,
        sent_at=timezone.now(),
        last_error="",
        updated_at=timezone.now(),
    )
    logger.info("slack %s -> %s ts=%s (delivery %s)", delivery.event_type, delivery.channel, posted.ts, delivery.pk)
    return None


def _record_failure(delivery: Delivery, exc: slack.SlackError, text: str) -> Later | None:
    error = str(exc)[:500]
    now = timezone.now()
    if exc.retry_after is not None:
        # 429: not the message's fault. Hold the whole channel back and try again after Retry-After.
        ratelimit.push_back(delivery.channel, exc.retry_after)
        wait = exc.retry_after + random.uniform(0, 0.5)
        at = now + timedelta(seconds=wait)
        Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(
            status=DeliveryStatus.PENDING,
            attempts=F("attempts") - 1,
            last_error=error,
            next_attempt_at=at,
            updated_at=now,
        )
        logger.info("slack 429 on %s; delivery %s again in %.1fs", delivery.channel, delivery.pk, wait)
        return Later(wait, planned=at)
    if exc.permanent or delivery.attempts >= settings.SLACK_MAX_ATTEMPTS:
        _mark_dead(delivery, error, text=text)
        return None
    wait = _backoff(delivery.attempts)
    at = now + timedelta(seconds=wait)
    Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.FAILED, last_error=error, next_attempt_at=at, updated_at=now
    )
    logger.warning(
        "slack delivery %s failed (%s); attempt %s, retry in %.1fs", delivery.pk, error, delivery.attempts, wait
    )
    return Later(wait, planned=at)


def _mark_dead(delivery: Delivery, error: str, *, text: str = "") -> None:
    updated = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.DEAD, last_error=error[:500], text=text, updated_at=timezone.now()
    )
    logger.error("slack delivery %s (%s -> %s) is dead: %s", delivery.pk, delivery.event_type, delivery.channel, error)
    if not updated or delivery.event_type == EventType.ALERT:
        return  # an alert about a failed alert would only fail the same way
    from notifications.alerts import alert_raise

    alert_raise(
        message=f"Slack {delivery.event_type} to {delivery.channel} failed for good: {error}",
        severity="critical",
        source="notifications",
        channel=settings.SLACK_DEFAULT_CHANNEL,
    )


# --- Repair and admin --------------------------------------------------------------------------


def deliveries_sweep() -> dict[str, int]:
    """Re-queue what fell through: rows whose worker died mid-post, and rows whose task was lost.

    Each re-queued row gets a fresh next_attempt_at and its task carries that stamp, so if the old
    task was only late (not lost) it finds a different stamp and exits: one task chain per row.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SLACK_SENDING_STALE_SECONDS)
    stuck_ids = list(
        Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=stale).values_list("id", flat=True)
    )
    reset = 0
    for delivery_id in stuck_ids:
        reset += Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING, claimed_at__lt=stale).update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            last_error="worker lost while sending; re-queued",
            updated_at=now,
        )
    overdue = now - timedelta(seconds=SWEEP_GRACE_SECONDS)
    is_lost = Q(status__in=_OPEN) & (Q(next_attempt_at__lt=overdue) | Q(next_attempt_at=None, created_at__lt=overdue))
    lost_ids = list(Delivery.objects.filter(is_lost).values_list("id", flat=True)[:1000])
    if lost_ids:
        Delivery.objects.filter(is_lost, pk__in=lost_ids).update(next_attempt_at=now, updated_at=now)
    ids = list(
        Delivery.objects.filter(pk__in=stuck_ids + lost_ids, status__in=_OPEN, next_attempt_at=now).values_list(
            "id", flat=True
        )
    )
    queued = deliveries_enqueue([(delivery_id, now) for delivery_id in ids]) if ids else 0
    return {"stuck": reset, "requeued": queued}


def delivery_resend(*, delivery_id: int) -> bool:
    """Admin "resend": a dead or failed delivery gets a fresh set of attempts. Sent ones are left alone."""
    now = timezone.now()
    with transaction.atomic():
        updated = Delivery.objects.filter(
            pk=delivery_id, status__in=[DeliveryStatus.DEAD, DeliveryStatus.FAILED, DeliveryStatus.PENDING]
        ).update(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, last_error="", updated_at=now)
        if updated:
            transaction.on_commit(lambda: deliveries_enqueue([(delivery_id, now)]))
    return bool(updated)


def test_message_send(*, channel: str, user: str = "") -> int:
    """Admin "send test message" to one channel (an info alert, rendered by the alert template)."""
    key = f"test:{uuid.uuid4().hex}"
    with transaction.atomic():
        ids = deliveries_record(
            event_type=EventType.ALERT,
            context={"message": f"Test message from leadsite{f' ({user})' if user else ''}", "severity": "info"},
            key=key,
            channels=[channel],
        )
    return ids[0]


def message_update(*, delivery_id: int, extra_context: dict[str, Any]) -> Later | None:
    """Put extra context (claimed by, alert count) on a message, whatever state it is in.

    Not posted yet (pending/failed): merged into the payload under the row lock, so the post
    includes it. Being posted (sending): try again shortly; the sweeper puts a dead worker's row
    back to pending. Posted: re-render and chat.update. An edit is never dropped for waiting.
    """
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None or delivery.status == DeliveryStatus.DEAD:
            return None
        if delivery.status == DeliveryStatus.SENDING or (delivery.status == DeliveryStatus.SENT and not delivery.ts):
            return Later(PARENT_POLL_SECONDS)  # the post is in flight; the update follows it
        context = {**(delivery.payload or {}), **extra_context}
        Delivery.objects.filter(pk=delivery.pk).update(payload=context, updated_at=timezone.now())
    if delivery.status in _OPEN:
        return None  # not posted yet: it will post with this context
    text, blocks = templates.render(delivery.event_type, context)
    try:
        slack.update_message(channel=delivery.channel, ts=delivery.ts, text=text, blocks=blocks)
    except slack.SlackError as exc:
        if exc.permanent:
            logger.error("chat.update of delivery %s failed: %s", delivery.pk, exc)
            return None
        return Later(exc.retry_after if exc.retry_after is not None else _backoff(2), retry=True)
    return None
