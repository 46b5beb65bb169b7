"""Notification hub services (the notifications issue fills these in).

Contract used by the other apps — keep the signature:

    notify(event_type=..., context={...}, lead_id=..., key=...)

records one delivery per routed channel inside the caller's transaction (so it commits, or not,
together with what caused it) and hands sending to a Celery task after commit. `key` makes it
idempotent: the same key never produces a second message.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

logger = logging.getLogger(__name__)


def notify(
    *,
    event_type: str,
    context: dict[str, Any],
    key: str,
    lead_id: uuid.UUID | str | None = None,
) -> None:
    """Queue the `event_type` Slack message (templates: new_lead, repeat_lead, payment, alert,
    valuation_ready, offer_graded, sla_breach, daily_digest) rendered from `context`."""
    # Placeholder until the notifications issue lands: nothing is recorded or sent yet.
    logger.info("notify %s for lead %s (key %s): notifications hub not built yet", event_type, lead_id, key)
