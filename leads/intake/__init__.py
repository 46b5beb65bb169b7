"""Lead intake: what POST /api/leads does with a web form's submission.

- `schemas`: the form's fields, what each one accepts, and validation (no database);
- `service`: `lead_intake` — a new lead, a repeat of a recent one, or spam; Idempotency-Keys;
- `sql`: the duplicate-lead rule (defined once) and the new lead's one round trip to PostgreSQL.
"""

from leads.intake.schemas import LeadIn, lead_intake_validate
from leads.intake.service import (
    IdempotencyConflict,
    IntakeResult,
    idempotency_records_purge,
    lead_intake,
)
from leads.intake.sql import DUPLICATE_WINDOW

__all__ = [
    "DUPLICATE_WINDOW",
    "IdempotencyConflict",
    "IntakeResult",
    "LeadIn",
    "idempotency_records_purge",
    "lead_intake",
    "lead_intake_validate",
]
