"""Valuation reads used by other apps (the valuation issue fills these in).

Contract: `lead_valuation(lead_id)` returns the lead's latest valuation as a JSON-ready dict
(estimate, low, high, confidence, comps, method, as_of, model_version) or None.
"""

from __future__ import annotations

import uuid
from typing import Any


def lead_valuation(lead_id: uuid.UUID | str) -> dict[str, Any] | None:
    return None
