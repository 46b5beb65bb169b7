"""The admin dashboard's numbers: one read per panel, cached briefly (staff refresh it all day)."""

from __future__ import annotations

from datetime import timedelta
from statistics import median
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone

DASHBOARD_CACHE_KEY = "dashboard:v1"
DASHBOARD_CACHE_SECONDS = 30

FUNNEL = ("new", "contacted", "appointment", "offer_made", "under_contract", "won")


def _bars(rows: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Rows as bars for the server-rendered SVG/CSS charts: label, value, percent of the largest."""
    top = max((value for _, value in rows), default=0) or 1
    return [{"label": label or "(none)", "value": value, "pct": round(100 * value / top)} for label, value in rows]


def dashboard_data(now=None) -> dict[str, Any]:
    from grading.selectors import offers_by_grade_this_month
    from leads.models import Lead, LeadStatus
    from logs.models import LogEntry
    from notifications.models import Delivery, DeliveryStatus

    now = now or timezone.now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    since_30 = now - timedelta(days=30)
    real = Lead.objects.exclude(status=LeadStatus.SPAM)

    not_spam = ~Q(status=LeadStatus.SPAM)
    counts = Lead.objects.filter(created_at__gte=since_30).aggregate(
        today=Count("id", filter=not_spam & Q(created_at__gte=today)),
        week=Count("id", filter=not_spam & Q(created_at__gte=now - timedelta(days=7))),
        month=Count("id", filter=not_spam),
        spam_month=Count("id", filter=~not_spam),
    )
    by_source = list(
        real.filter(created_at__gte=since_30).values_list("source").annotate(n=Count("id")).order_by("-n")[:8]
    )
    status_counts = dict(real.filter(created_at__gte=since_30).values_list("status").annotate(n=Count("id")))
    # A funnel counts every lead that got at least this far (won ⊂ under_contract ⊂ ... ⊂ new).
    funnel = [(stage, sum(status_counts.get(s, 0) for s in FUNNEL[i:])) for i, stage in enumerate(FUNNEL)]

    contacted = list(
        real.filter(created_at__gte=since_30, first_contacted_at__isnull=False).values_list(
            "created_at", "first_contacted_at"
        )[:5000]
    )
    minutes = [(c - a).total_seconds() / 60 for a, c in contacted]
    sla = settings.LEAD_SLA_MINUTES
    speed = {
        "median_minutes": round(median(minutes), 1) if minutes else None,
        "within_sla_pct": round(100 * sum(m <= sla for m in minutes) / len(minutes)) if minutes else None,
        "contacted": len(minutes),
        "waiting": real.filter(status=LeadStatus.NEW, first_contacted_at__isnull=True).count(),
        "breached_month": real.filter(sla_breached_at__gte=since_30).count(),
        "sla_minutes": sla,
    }

    failed = Delivery.objects.filter(status__in=[DeliveryStatus.FAILED, DeliveryStatus.DEAD])
    recent_errors = list(
        LogEntry.objects.filter(level__gte=40, time__gte=now - timedelta(days=1))
        .order_by("-time")
        .values("id", "time", "service", "level_name", "message", "request_id")[:8]
    )
    return {
        "counts": counts,
        "by_source": _bars(by_source),
        "funnel": _bars(funnel),
        "speed": speed,
        "failed_deliveries": failed.count(),
        "failed_recent": list(failed.order_by("-updated_at").values("id", "event_type", "channel", "last_error")[:5]),
        "recent_errors": recent_errors,
        "offers_by_grade": _bars(offers_by_grade_this_month(now)),
        "generated_at": now,
    }


def dashboard_data_cached() -> dict[str, Any]:
    data = cache.get(DASHBOARD_CACHE_KEY)
    if data is None:
        data = dashboard_data()
        cache.set(DASHBOARD_CACHE_KEY, data, DASHBOARD_CACHE_SECONDS)
    return data
