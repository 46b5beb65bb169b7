"""Valuation tasks: ids in, one service call."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from leadsite.context import lead_id_var
from valuation import services


@shared_task(
    name="valuation.value_lead",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def value_lead(lead_id: str) -> None:
    """Value a new lead (started by the leads outbox with kwargs {"lead_id": ...})."""
    token = lead_id_var.set(str(lead_id))
    try:
        services.lead_value(lead_id=lead_id)
    finally:
        lead_id_var.reset(token)


@shared_task(name="valuation.retrain_if_due")
def retrain_if_due() -> int | None:
    """Beat: retrain when enough new sales have arrived (VALUATION_RETRAIN_MIN_NEW_SALES)."""
    version = services.model_retrain_if_due()
    return version.id if version else None


@shared_task(name="valuation.train")
def train() -> int:
    return services.model_train().id
