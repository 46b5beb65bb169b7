"""Celery entry points: ids in, one service call, the retry policy (countdown) here."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from notifications import services


@shared_task(name="notifications.send_delivery", acks_late=True, ignore_result=True)
def send_delivery(delivery_id: int, slot: float | None = None) -> None:
    later = services.delivery_send(delivery_id=delivery_id, slot=slot)
    if later is not None:
        # Never sleep in a worker: come back when the slot / Retry-After / backoff is due.
        send_delivery.apply_async(args=[delivery_id], kwargs={"slot": later.slot}, countdown=later.countdown)


@shared_task(name="notifications.update_message", acks_late=True, ignore_result=True)
def update_message(delivery_id: int, extra_context: dict[str, Any], tries: int = 0) -> None:
    later = services.message_update(delivery_id=delivery_id, extra_context=extra_context)
    if later is not None and tries < 100:
        update_message.apply_async(args=[delivery_id, extra_context, tries + 1], countdown=later.countdown)


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
