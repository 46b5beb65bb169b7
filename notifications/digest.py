"""The daily digest: yesterday's leads by source and status, payments, offers graded, failed deliveries."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from notifications.models import Delivery, DeliveryStatus, EventType, Payment
from notifications.services import notify


def _offers_graded(start: datetime.datetime, end: datetime.datetime) -> dict[str, Any] | None:
    """Hook for the grading app: counts offers graded in [start, end) once it offers a selector."""
    try:
        from grading.selectors import offers_graded_summary  # type: ignore[attr-defined]
    except ImportError:
        return None
    return offers_graded_summary(start=start, end=end)


def digest_context(*, day: datetime.date) -> dict[str, Any]:
    from leads.models import Lead

    start = datetime.datetime.combine(day, datetime.time.min, tzinfo=datetime.UTC)
    end = start + datetime.timedelta(days=1)
    leads = Lead.objects.filter(created_at__gte=start, created_at__lt=end)
    by_source = {
        row["source"] or "unknown": row["n"]
        for row in leads.values("source").annotate(n=Count("id")).order_by("-n", "source")
    }
    by_status = {row["status"]: row["n"] for row in leads.values("status").annotate(n=Count("id")).order_by("status")}
    payments = Payment.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        count=Count("id"), total=Sum("amount")
    )
    dead = Delivery.objects.filter(status=DeliveryStatus.DEAD, updated_at__gte=start, updated_at__lt=end).count()
    context: dict[str, Any] = {
        "date": day.isoformat(),
        "leads": {"total": sum(by_source.values()), "by_source": by_source, "by_status": by_status},
        "payments": {"count": payments["count"], "total": str(payments["total"] or "0.00")},
        "deliveries": {"dead": dead},
    }
    offers = _offers_graded(start, end)
    if offers is not None:
        context["offers"] = offers
    return context


def digest_send(*, day: datetime.date | None = None) -> None:
    """Queue the digest for `day` (yesterday by default); once per day thanks to the key."""
    day = day or (timezone.now() - datetime.timedelta(days=1)).date()
    with transaction.atomic():
        notify(event_type=EventType.DAILY_DIGEST, context=digest_context(day=day), key=f"digest:{day.isoformat()}")
