"""Notification hub services: record what we owe Slack, then deliver it exactly once.

Contract used by the other apps — keep the signature:

    notify(event_type=..., context={...}, key=..., lead_id=...)

records one Delivery per routed channel inside the caller's transaction (so it commits, or not,
together with what caused it) and hands sending to a Celery task after commit. `key` makes it
idempotent: the same key never produces a second message.

Delivery life: pending -> sending (a conditional UPDATE: only one worker wins) -> sent | failed
(transient; retried with backoff) | dead (permanent or out of attempts; an alert is raised).
A row stuck in `sending` longer than SLACK_SENDING_STALE_SECONDS (its worker died mid-post) is
put back to pending by the sweeper.

Exactly once: every post carries message metadata naming its delivery. When an attempt's outcome
is unknown (Slack timed out or reset the connection after getting the post, the worker died mid-post,
the database failed while marking it sent) the row remembers when that attempt started
(`unknown_since`), and the next attempt first looks for the message in the channel's history from
then on; if it is there, its ts is adopted instead of posting again. Known failures (a refused
connection, 5xx, 429, ok:false) post again without looking.

Publishing: from a request (notify, resend, alerts, interactions) send tasks go through the
transactional outbox (leads.outbox), which never waits on the broker; the sweeper, in a worker,
publishes directly.
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
from django.db.models.functions import Coalesce
from django.utils import timezone

from leads.outbox import OutboxSpec, outbox_add, queue_full
from leadsite.context import current_request_id, lead_id_var
from notifications import ratelimit, slack, templates
from notifications.models import Delivery, DeliveryStatus, EventType, Route, StaffProfile

logger = logging.getLogger(__name__)

# A reply waits for its lead's first message this long before giving up on the thread.
PARENT_WAIT_SECONDS = 600
PARENT_POLL_SECONDS = 2.0
SEND_TASK = "notifications.send_delivery"
# At most this many rows re-queued per sweep: a backlog is not made longer by a flood of extra tasks.
SWEEP_BATCH = 500
# The history search starts this long before the uncertain attempt began (our clock against Slack's).
HISTORY_MARGIN_SECONDS = 60
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
    queue: bool = True,
) -> None:
    """Queue the `event_type` Slack message rendered from `context` to every routed channel.

    Runs inside the caller's transaction; sending starts after commit, through the outbox. Never
    raises for delivery problems (the broker may be down: the outbox relay and the sweeper pick the
    rows up), only for an unknown event type. `queue=False` is for a worker that posts the message
    itself right after its commit (notifications.tasks.deliveries_send_now): no send task is
    queued, and if that post never happens the sweeper sends the pending row.
    """
    if event_type not in EventType.values:
        raise ValueError(f"unknown notification event type {event_type!r}")
    deliveries_record(event_type=event_type, context=context, key=key, lead_id=lead_id, queue=queue)


def deliveries_record(
    *,
    event_type: str,
    context: dict[str, Any],
    key: str,
    lead_id: uuid.UUID | str | None = None,
    channels: list[str] | None = None,
    queue: bool = True,
) -> list[int]:
    """Insert one pending Delivery per channel (existing keys are left alone) and, with `queue`,
    enqueue their send tasks after commit. Returns the key's pending delivery ids (with `queue`;
    without it nothing is looked up and the list is empty)."""
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
    if not queue:
        return []
    rows = deliveries_pending_for_key(key[:200], channels=channels)
    # Only rows this call inserted (they carry its `now`) get a task: a repeated key's row has its own
    # task chain already, and a second chain would only burn rate-limit slots.
    new = [(delivery_id, at) for delivery_id, at in rows if at == now]
    if new:
        deliveries_enqueue_on_commit(new)
    return [delivery_id for delivery_id, _ in rows]


def deliveries_pending_for_key(key: str, *, channels: list[str] | None = None) -> list[tuple[int, datetime]]:
    """(id, next_attempt_at) of the key's pending deliveries (in `channels`, if given).

    Looked up by the key alone (its unique index) and the status checked here: with the status in
    the WHERE clause, a young table's plan took the pending-status index and read every pending
    delivery for each new one, which during a Slack outage are thousands.
    """
    rows = Delivery.objects.filter(key=key)
    if channels is not None:
        rows = rows.filter(channel__in=channels)
    return [
        (delivery_id, at)
        for delivery_id, at, status in rows.values_list("id", "next_attempt_at", "status")
        if status == DeliveryStatus.PENDING
    ]


def deliveries_enqueue_on_commit(rows: list[tuple[int, datetime]]) -> None:
    """Start send tasks for (id, planned attempt) pairs when the caller's transaction commits,
    through the outbox: the request never waits on the broker, and if the broker is down the relay
    publishes them when it is back."""
    outbox_add(
        events=[
            OutboxSpec(
                key=f"notifications.send_delivery:{delivery_id}:{planned.isoformat()}",
                task_name=SEND_TASK,
                kwargs={"delivery_id": delivery_id, "planned": planned.isoformat()},
            )
            for delivery_id, planned in rows
        ]
    )


def deliveries_enqueue(rows: list[tuple[int, datetime | None]]) -> int:
    """Publish send tasks for (id, planned attempt) pairs now, from a worker (the sweeper); returns
    how many went out, in order. A broker outage is logged, never raised (the next sweep retries).
    The planned attempt is the row's next_attempt_at: a task whose stamp no longer matches the row
    has been superseded and exits (see delivery_send)."""
    from notifications.tasks import send_delivery

    sent = 0
    for delivery_id, planned in rows:
        try:
            send_delivery.apply_async(args=[delivery_id], kwargs={"planned": planned.isoformat() if planned else None})
            sent += 1
        except Exception as exc:  # noqa: BLE001 - the request path must not fail on the broker
            logger.warning("could not queue Slack delivery %s (%s); the next sweep retries it", delivery_id, exc)
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
    if delivery is not None and delivery.lead_id:
        # The task's log entries carry the lead, even when it finds there is nothing left to do.
        lead_id_var.set(str(delivery.lead_id))
    if delivery is None or delivery.status not in _OPEN:
        return None  # sent, dead, or another worker is posting it right now
    if planned is not None and delivery.next_attempt_at != planned:
        return None  # superseded: the task carrying the row's current stamp does the work
    current = Q(pk=delivery.pk, status__in=_OPEN, next_attempt_at=delivery.next_attempt_at)

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

    if delivery.unknown_since is not None:
        # An earlier attempt may have posted it: look before posting again.
        try:
            found = slack.find_message(
                channel=delivery.channel,
                delivery_id=delivery.pk,
                oldest=delivery.unknown_since.timestamp() - HISTORY_MARGIN_SECONDS,
                latest=timezone.now().timestamp() + HISTORY_MARGIN_SECONDS,
                thread_ts=thread_ts,
            )
        except slack.SlackError as exc:
            if not exc.permanent:
                return _record_failure(delivery, exc, text)
            # We cannot look (e.g. no channels:history scope): a possible duplicate beats a lost message.
            logger.error("cannot check Slack history for delivery %s (%s); posting it again", delivery.pk, exc)
            found = None
        if found:
            _mark_sent(delivery, ts=found, thread_ts=thread_ts, text=text)
            logger.info("slack delivery %s was already posted (ts=%s); adopted, not posted again", delivery.pk, found)
            return None

    try:
        posted = slack.post_message(
            channel=delivery.channel,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            metadata=slack.delivery_metadata(delivery.pk),
        )
    except slack.SlackError as exc:
        return _record_failure(delivery, exc, text)

    _mark_sent(delivery, ts=posted.ts, thread_ts=thread_ts, text=text)
    logger.info("slack %s -> %s ts=%s (delivery %s)", delivery.event_type, delivery.channel, posted.ts, delivery.pk)
    return None


def _mark_sent(delivery: Delivery, *, ts: str, thread_ts: str | None, text: str) -> None:
    # If this fails (the database is away) the row stays `sending`; the sweeper then re-queues it as
    # an unknown outcome and the next attempt finds the message in the history instead of reposting.
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.SENT,
        ts=ts,
        thread_ts=thread_ts or "",
        text=text,
        sent_at=now,
        last_error="",
        unknown_since=None,
        updated_at=now,
    )


def _record_failure(delivery: Delivery, exc: slack.SlackError, text: str) -> Later | None:
    error = str(exc)[:500]
    now = timezone.now()
    if exc.unknown_outcome and delivery.unknown_since is None:
        # Slack may have posted it: every later attempt (and an admin resend) looks from this one's start.
        Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(unknown_since=delivery.claimed_at)
        delivery.unknown_since = delivery.claimed_at
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


def deliveries_sweep(*, batch: int = SWEEP_BATCH) -> dict[str, int]:
    """Repair deliveries by their effect, at most `batch` rows of each kind per run.

    - `stuck`: rows `sending` longer than SLACK_SENDING_STALE_SECONDS (the worker died mid-post, or
      marking it sent failed) go back to pending with a fresh stamp and a new task. Their last
      outcome is unknown, so that task looks for the message in the channel before posting.
    - `requeued`: open rows overdue by SLACK_SWEEP_GRACE_SECONDS whose task may be lost (the broker's
      data flushed, a publish that failed) get one extra task carrying the row's *current* stamp, at
      most once per SLACK_REQUEUE_SECONDS. The stamp is not changed, so a task that is only late (a
      backed-up queue) still does the work when it runs: whichever copy claims the row first posts,
      the other finds it claimed or sent and exits. Re-queuing never starves a backlog.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SLACK_SENDING_STALE_SECONDS)
    is_stuck = Q(status=DeliveryStatus.SENDING, claimed_at__lt=stale)
    stuck_ids = list(Delivery.objects.filter(is_stuck).order_by("claimed_at").values_list("id", flat=True)[:batch])
    reset = 0
    if stuck_ids:
        reset = Delivery.objects.filter(is_stuck, pk__in=stuck_ids).update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            unknown_since=Coalesce("unknown_since", "claimed_at"),
            last_error="worker lost while sending; re-queued",
            updated_at=now,
        )
    reset_rows = list(
        Delivery.objects.filter(pk__in=stuck_ids, status=DeliveryStatus.PENDING, next_attempt_at=now).values_list(
            "id", "next_attempt_at"
        )
    )

    overdue = now - timedelta(seconds=settings.SLACK_SWEEP_GRACE_SECONDS)
    not_recently = now - timedelta(seconds=settings.SLACK_REQUEUE_SECONDS)
    is_lost = (
        Q(status__in=_OPEN)
        & (Q(next_attempt_at__lt=overdue) | Q(next_attempt_at=None, created_at__lt=overdue))
        & (Q(requeued_at=None) | Q(requeued_at__lt=not_recently))
    )
    # While the send tasks' queue is full the overdue rows' tasks are in line (in the broker or held
    # back in the outbox): extra copies would only lengthen the line.
    lost_rows = (
        []
        if queue_full(SEND_TASK)
        else list(
            Delivery.objects.filter(is_lost)
            .order_by(F("next_attempt_at").asc(nulls_first=True))
            .values_list("id", "next_attempt_at")[:batch]
        )
    )
    rows = reset_rows + lost_rows
    queued = deliveries_enqueue(rows)
    # Only rows whose task really went out wait SLACK_REQUEUE_SECONDS for the next extra one; the
    # rest (the broker refused) are tried again by the next sweep.
    if queued:
        Delivery.objects.filter(pk__in=[delivery_id for delivery_id, _ in rows[:queued]]).update(requeued_at=now)
    return {"stuck": reset, "requeued": queued}


def delivery_resend(*, delivery_id: int) -> bool:
    """Admin "resend": a dead or failed delivery gets a fresh set of attempts. Sent ones are left alone."""
    now = timezone.now()
    with transaction.atomic():
        updated = Delivery.objects.filter(
            pk=delivery_id, status__in=[DeliveryStatus.DEAD, DeliveryStatus.FAILED, DeliveryStatus.PENDING]
        ).update(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, last_error="", updated_at=now)
        if updated:
            deliveries_enqueue_on_commit([(delivery_id, now)])
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


def message_update_on_commit(*, delivery_id: int, extra_context: dict[str, Any]) -> None:
    """Edit a delivery's message with extra context once the caller's transaction commits (through
    the outbox: a request never waits on the broker). The task is message_update below."""
    outbox_add(
        events=[
            OutboxSpec(
                key=f"notifications.update_message:{delivery_id}:{uuid.uuid4().hex}",
                task_name="notifications.update_message",
                kwargs={"delivery_id": delivery_id, "extra_context": extra_context},
            )
        ]
    )


def interaction_respond_on_commit(*, response_url: str, text: str) -> None:
    """An ephemeral answer through an interaction's response_url, sent by a task after commit
    (through the outbox, like every publish from a request)."""
    outbox_add(
        events=[
            OutboxSpec(
                key=f"notifications.respond:{uuid.uuid4().hex}",
                task_name="notifications.respond",
                kwargs={"response_url": response_url, "text": text},
            )
        ]
    )


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
