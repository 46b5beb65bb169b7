"""Grading tasks: thin wrappers around one service call each."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from grading import services


@shared_task(name="grading.train_grader", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def train_grader() -> int:
    """Beat (nightly): refit the acceptance model on the outcomes so far; the rules decide unless it wins."""
    return services.grader_train().id


@shared_task(name="grading.regrade_offer", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def regrade_offer(offer_id: int) -> int:
    """Grade an offer again (e.g. after its lead was re-valued): a new grade record and Slack reply."""
    return services.offer_regrade(offer_id=offer_id, by="re-grade task").id
