"""Celery entry points: ids in, one service call, the retry policy (countdown) here."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import shared_task

from notifications import services

logger = logging.getLogger(__name__)

# chat.update failures (not waits for the post) retried before the edit is given up.
UPDATE_MAX_RETRIES = 100


@shared_task(name="notifications.send_delivery", acks_late=True, ignore_result=True)
def send_delivery(delivery_id: int, slot: float | None = None, planned: str | None = None) -> None:
    _send(delivery_id, slot=slot, planned=datetime.fromisoformat(planned) if planned else None)


def deliveries_send_now(*, key: str) -> None:
    """From a worker: post the pending deliveries with this key right away (the fan-out's New Lead,
    for which no send task was queued). Never raises: if posting fails here (the database or the
    broker went away mid-way), send tasks are queued for what is still pending, and if even that
    fails the sweeper finds the rows overdue."""
    try:
        for delivery_id, _ in services.deliveries_pending_for_key(key):
            _send(delivery_id)
    except Exception:  # noqa: BLE001 - a task (or the sweeper) takes over
        logger.warning("sending %s now failed; queuing it", key, exc_info=True)
        try:
            services.deliveries_enqueue(services.deliveries_pending_for_key(key))
        except Exception:  # noqa: BLE001 - the database is away too: the sweeper repairs it later
            logger.warning("queuing %s failed too; the sweeper will send it", key, exc_info=True)


def _send(delivery_id: int, *, slot: float | None = None, planned: datetime | None = None) -> None:
    later = services.delivery_send(delivery_id=delivery_id, slot=slot, planned=planned)
    if later is not None:
        # Never sleep in a worker: come back when the slot / Retry-After / backoff is due, carrying
        # the row's new next_attempt_at so a superseded copy of this chain can tell it is stale.
        send_delivery.apply_async(
            args=[delivery_id],
            kwargs={"slot": later.slot, "planned": later.planned.isoformat() if later.planned else None},
            countdown=later.countdown,
        )


@shared_task(name="notifications.update_message", acks_late=True, ignore_result=True)
def update_message(delivery_id: int, extra_context: dict[str, Any], tries: int = 0) -> None:
    later = services.message_update(delivery_id=delivery_id, extra_context=extra_context)
    if later is None:
        return
    # Waiting for the post to finish costs nothing; only failed chat.update calls count.
    tries = tries + 1 if later.retry else tries
    if tries > UPDATE_MAX_RETRIES:
        logger.error("giving up on editing delivery %s after %s failed chat.update calls", delivery_id, tries - 1)
        return
    update_message.apply_async(args=[delivery_id, extra_context, tries], countdown=later.countdown)


@shared_task(name="notifications.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    return services.deliveries_sweep()


@shared_task(name="notifications.respond", ignore_result=True)
def respond(response_url: str, text: str) -> None:
    from notifications import slack

    try:
        slack.respond(response_url=response_url, text=text)
    except slack.SlackError as exc:
        # An ephemeral "it's yours" is not worth a retry loop: the message edit shows the claim anyway.
        import logging

        logging.getLogger(__name__).warning("slack response_url failed: %s", exc)


@shared_task(name="notifications.daily_digest", ignore_result=True)
def daily_digest() -> None:
    from notifications.digest import digest_send

    digest_send()
