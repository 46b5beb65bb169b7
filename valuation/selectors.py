"""Valuation reads used by other apps.

Contract: `lead_valuation(lead_id)` returns the lead's latest valuation as a JSON-ready dict
(status, estimate, low, high, confidence, comps, method, as_of, model_version, ...) or None when
the lead has not been valued yet. `status` is "ok" or "insufficient_data" (then estimate/low/high
are None and `detail` says why).
"""

from __future__ import annotations

import uuid
from typing import Any

from valuation.models import Valuation


def lead_valuation(lead_id: uuid.UUID | str) -> dict[str, Any] | None:
    result = Valuation.objects.filter(lead_id=lead_id).values_list("result", flat=True).first()
    return dict(result) if result is not None else None
