"""Demo data: default routes (make run -> seed_demo)."""

from __future__ import annotations

from typing import TextIO

from django.conf import settings

from notifications.models import Route

DEMO_ROUTES = [
    ("new_lead", "#leads"),
    ("repeat_lead", "#leads"),
    ("payment", "#payments"),
    ("alert", "#alerts"),
    ("daily_digest", "#leads"),
]


def seed(stdout: TextIO) -> None:
    created = 0
    for event_type, channel in DEMO_ROUTES:
        _, was_created = Route.objects.get_or_create(event_type=event_type, channel=channel)
        created += was_created
    stdout.write(
        f"notifications: {created} route(s) added; other events go to {settings.SLACK_DEFAULT_CHANNEL}"
        + ("" if settings.SLACK_BOT_TOKEN else " (no SLACK_BOT_TOKEN: messages are printed by the worker)")
        + "\n"
    )
