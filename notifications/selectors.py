"""Notification reads used by other apps' screens."""

from __future__ import annotations

import uuid
from typing import Any

from notifications.models import Delivery, DeliveryStatus, EventType


def lead_slack_thread(lead_id: uuid.UUID | str) -> dict[str, Any] | None:
    """The lead's "New Lead" message (the thread every later event replies in): channel, ts, a link.

    The link is Slack's archive URL when the channel is a channel id (C…/G…); a channel name has no
    stable URL, so then there is none and the screen names the channel instead.
    """
    row = (
        Delivery.objects.filter(lead_id=lead_id, event_type=EventType.NEW_LEAD)
        .order_by("created_at")
        .values("channel", "ts", "status", "sent_at")
        .first()
    )
    if row is None:
        return None
    url = None
    if row["status"] == DeliveryStatus.SENT and row["ts"] and row["channel"][:1] in ("C", "G"):
        url = f"https://slack.com/archives/{row['channel']}/p{row['ts'].replace('.', '')}"
    return {**row, "url": url}
