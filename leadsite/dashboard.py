"""The admin dashboard's numbers: one read per panel, cached briefly (staff refresh it all day).

Every number carries the link to the admin list it counts, so a click shows the rows behind it.
"""

from __future__ import annotations

import datetime
from collections import Counter
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

DASHBOARD_CACHE_KEY = "dashboard:v2"
DASHBOARD_CACHE_SECONDS = 30

FUNNEL = ("new", "contacted", "appointment", "offer_made", "under_contract", "won")
CHART_DAYS = 30
CHART_W, CHART_H, CHART_PAD = 600, 160, 18


def _leads_url(**params: str) -> str:
    return reverse("admin:leads_lead_changelist") + ("?" + urlencode(params) if params else "")


def _bars(rows: list[tuple[str, str, int, str]]) -> list[dict[str, Any]]:
    """(key, label, value, href) rows as bars: value and percent of the largest, for the CSS bar charts."""
    top = max((value for _, _, value, _ in rows), default=0) or 1
    return [
        {"key": key, "label": label or "(none)", "value": value, "pct": round(100 * value / top), "href": href}
        for key, label, value, href in rows
    ]


def _local_midnight(day: datetime.date) -> datetime.datetime:
    """The day's start in the site's time zone, with its offset (a bare date would be read as naive)."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _day_chart(per_day: dict[datetime.date, int], today: datetime.date, statuses: str) -> dict[str, Any]:
    """Leads per day as SVG geometry (server-rendered; nothing from a CDN)."""
    days = [today - datetime.timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]
    top = max((per_day.get(day, 0) for day in days), default=0) or 1
    slot = (CHART_W - CHART_PAD) / CHART_DAYS
    usable = CHART_H - 2 * CHART_PAD
    bars = []
    for i, day in enumerate(days):
        value = per_day.get(day, 0)
        height = round(usable * value / top, 1)
        bars.append(
            {
                "day": day,
                "value": value,
                "x": round(CHART_PAD + i * slot, 1),
                "y": round(CHART_H - CHART_PAD - height, 1),
                "w": round(slot * 0.75, 1),
                "h": height,
                "href": _leads_url(
                    created_at__gte=_local_midnight(day).isoformat(),
                    created_at__lt=_local_midnight(day + datetime.timedelta(days=1)).isoformat(),
                    status__in=statuses,
                ),
            }
        )
    return {
        "bars": bars,
        "max": top,
        "width": CHART_W,
        "height": CHART_H,
        "baseline": CHART_H - CHART_PAD,
        "first": days[0],
        "last": days[-1],
        "total": sum(b["value"] for b in bars),
    }


def _offers_by_grade(now: datetime.datetime) -> list[dict[str, Any]]:
    """Real offers graded this calendar month by grade, each bar a link to those offers."""
    from grading.selectors import offers_by_grade_this_month

    offers = reverse("admin:grading_offer_changelist")
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return _bars(
        [
            (
                grade,
                grade,
                n,
                offers
                + "?"
                + urlencode({"grade": grade, "synthetic__exact": 0, "created_at__gte": month_start.isoformat()}),
            )
            for grade, n in offers_by_grade_this_month(now)
        ]
    )


def _median_minutes_to_contact(contacted: QuerySet, n: int) -> float | None:
    """The median time from arrival to first contact of `n` contacted leads: the middle one or two rows
    of them sorted by that time (the database sorts; two rows come back)."""
    if not n:
        return None
    took = ExpressionWrapper(F("first_contacted_at") - F("created_at"), output_field=DurationField())
    middle = list(
        contacted.annotate(took=took).order_by("took").values_list("took", flat=True)[(n - 1) // 2 : n // 2 + 1]
    )
    return round(sum(t.total_seconds() for t in middle) / len(middle) / 60, 1) if middle else None


def dashboard_data(now: datetime.datetime | None = None) -> dict[str, Any]:
    from leads.models import OPEN_STATUSES, Lead, LeadStatus
    from logs.models import LogEntry
    from notifications.models import Delivery, DeliveryStatus, Payment

    now = now or timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    since_30 = now - datetime.timedelta(days=30)
    real = Lead.objects.exclude(status=LeadStatus.SPAM).filter(archived_at=None)
    not_spam = ",".join(s for s in LeadStatus.values if s != LeadStatus.SPAM)

    not_spam_q = ~Q(status=LeadStatus.SPAM)
    contacted_q = not_spam_q & Q(first_contacted_at__isnull=False)
    sla = settings.LEAD_SLA_MINUTES
    # The 30 days' leads are read in two passes: the counts, and one breakdown by status × source × day
    # that the funnel, the sources and the chart share (plus the median's sort, which returns two rows).
    month = Lead.objects.filter(created_at__gte=since_30, archived_at=None)
    counts = month.aggregate(
        today=Count("id", filter=not_spam_q & Q(created_at__gte=today)),
        week=Count("id", filter=not_spam_q & Q(created_at__gte=now - datetime.timedelta(days=7))),
        month=Count("id", filter=not_spam_q),
        spam_month=Count("id", filter=~not_spam_q),
        contacted=Count("id", filter=contacted_q),
        within_sla=Count(
            "id",
            filter=contacted_q & Q(first_contacted_at__lte=F("created_at") + datetime.timedelta(minutes=sla)),
        ),
    )
    contacted, within_sla = counts.pop("contacted"), counts.pop("within_sla")
    week_start = (now - datetime.timedelta(days=7)).isoformat()
    links = {
        "today": _leads_url(created_at__gte=today.isoformat(), status__in=not_spam),
        "week": _leads_url(created_at__gte=week_start, status__in=not_spam),
        "month": _leads_url(created_at__gte=since_30.isoformat(), status__in=not_spam),
        "spam_month": _leads_url(created_at__gte=since_30.isoformat(), status__exact=LeadStatus.SPAM),
    }
    status_counts: Counter[str] = Counter()
    source_counts: Counter[str] = Counter()
    per_day: Counter[datetime.date] = Counter()
    chart_start = (today - datetime.timedelta(days=CHART_DAYS - 1)).date()  # inside the 30 days
    breakdown = (
        month.exclude(status=LeadStatus.SPAM)
        .annotate(day=TruncDate("created_at"))
        .values_list("status", "source", "day")
        .annotate(n=Count("id"))
        .order_by()
    )
    for status, source, day, n in breakdown:
        status_counts[status] += n
        source_counts[source] += n
        if day >= chart_start:
            per_day[day] += n
    by_source = sorted(source_counts.items(), key=lambda item: (-item[1], item[0]))[:8]
    # Cumulative: every lead that got at least this far (won ⊂ under_contract ⊂ ... ⊂ new), so each
    # bar is the share of the month's leads that reached the stage.
    funnel = [
        (
            stage,
            LeadStatus(stage).label,
            sum(status_counts.get(s, 0) for s in FUNNEL[i:]),
            _leads_url(created_at__gte=since_30.isoformat(), status__in=",".join(FUNNEL[i:])),
        )
        for i, stage in enumerate(FUNNEL)
    ]
    speed = {
        "median_minutes": _median_minutes_to_contact(month.filter(contacted_q), contacted),
        "within_sla_pct": round(100 * within_sla / contacted) if contacted else None,
        "contacted": contacted,
        "waiting": real.filter(status=LeadStatus.NEW, first_contacted_at__isnull=True).count(),
        "waiting_href": _leads_url(queue="waiting"),
        "breached_month": real.filter(sla_breached_at__gte=since_30).count(),
        "breached_href": _leads_url(queue="breached"),
        "sla_minutes": sla,
    }
    overdue = real.filter(follow_up_at__lt=now, status__in=OPEN_STATUSES).count()

    month_start = today.replace(day=1)
    payments = Payment.objects.filter(created_at__gte=month_start).aggregate(n=Count("id"), total=Sum("amount"))
    failed = Delivery.objects.filter(status__in=[DeliveryStatus.FAILED, DeliveryStatus.DEAD])
    errors_since = now - datetime.timedelta(days=1)
    errors = LogEntry.objects.filter(level__gte=40, time__gte=errors_since)
    recent_errors = list(
        errors.order_by("-time").values("id", "time", "service", "level_name", "message", "request_id")[:8]
    )
    return {
        "counts": counts,
        "links": links,
        "by_source": _bars(
            [
                (s, s, n, _leads_url(source=s, created_at__gte=since_30.isoformat(), status__in=not_spam))
                for s, n in by_source
            ]
        ),
        "funnel": _bars(funnel),
        "per_day": _day_chart(per_day, today.date(), not_spam),
        "speed": speed,
        "follow_ups_overdue": overdue,
        "follow_ups_href": _leads_url(queue="overdue"),
        "offers_by_grade": _offers_by_grade(now),
        "payments": {
            "count": payments["n"],
            "total": payments["total"] or 0,
            "month": month_start,
            "href": reverse("admin:notifications_payment_changelist")
            + "?"
            + urlencode({"created_at__gte": month_start.isoformat()}),
        },
        "failed_deliveries": failed.count(),
        "failed_href": reverse("admin:notifications_delivery_changelist") + "?status__in=failed,dead",
        "failed_recent": list(failed.order_by("-updated_at").values("id", "event_type", "channel", "last_error")[:5]),
        "errors_24h": errors[:1000].count(),
        "errors_href": reverse("admin:logs_logentry_changelist")
        + "?"
        + urlencode({"level": 40, "time__gte": errors_since.isoformat(timespec="seconds")}),
        "recent_errors": recent_errors,
        "generated_at": now,
    }


def dashboard_data_cached() -> dict[str, Any]:
    """The dashboard from Redis when it was computed in the last DASHBOARD_CACHE_SECONDS."""
    data = cache.get(DASHBOARD_CACHE_KEY)
    if data is None:
        data = dashboard_data()
        cache.set(DASHBOARD_CACHE_KEY, data, DASHBOARD_CACHE_SECONDS)
    return data
