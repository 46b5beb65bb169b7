"""Lead services: every write to a lead lives here."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from leads.models import LeadEvent
from leadsite.context import current_request_id


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
