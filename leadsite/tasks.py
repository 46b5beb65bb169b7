from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from leadsite.context import current_lead_id, current_request_id


@shared_task(name="leadsite.ping")
def ping(marker: str) -> None:
    """Proves a worker runs and sees the correlation id: writes it to the cache under `marker`."""
    cache.set(f"ping:{marker}", {"request_id": current_request_id(), "lead_id": current_lead_id()}, 300)
