"""Alerts: identical alerts collapse into one Slack message with a count.

"Identical" = same severity, source and message. The first one posts; repeats within
ALERT_COLLAPSE_SECONDS of that first one bump the Alert's count and edit the posted message
("seen N× since ...") instead of posting again. After the window a new message starts a new count.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from notifications.models import Alert, AlertSeverity, Delivery, EventType


def _fingerprint(*, message: str, severity: str, source: str) -> str:
    return hashlib.sha256(f"{severity}\x00{source}\x00{message}".encode()).hexdigest()


def _key(alert: Alert) -> str:
    return f"alert:{alert.pk}"


def _context(alert: Alert) -> dict:
    return {
        "message": alert.message,
        "severity": alert.severity,
        "source": alert.source,
        "count": alert.count,
        "first_seen": alert.first_seen.strftime("%H:%M UTC"),
        "alert_id": alert.pk,
    }


def alert_raise(
    *, message: str, severity: str = AlertSeverity.WARNING, source: str = "", channel: str | None = None
) -> tuple[Alert, bool]:
    """Record an alert and queue its Slack message, or count it on the open one. Returns (alert, created)."""
    from notifications.services import deliveries_record

    if severity not in AlertSeverity.values:
        raise ValueError(f"unknown severity {severity!r}")
    # NUL bytes cannot be stored in PostgreSQL text (internal callers pass error strings from elsewhere).
    message = message.replace("\x00", "").strip()[:2000]
    source = source.replace("\x00", "").strip()[:100]
    fingerprint = _fingerprint(message=message, severity=severity, source=source)
    window = settings.ALERT_COLLAPSE_SECONDS
    now = timezone.now()
    with transaction.atomic():
        open_alert = (
            Alert.objects.select_for_update()
            .filter(fingerprint=fingerprint, first_seen__gte=now - timedelta(seconds=window))
            .order_by("-first_seen")
            .first()
        )
        if open_alert is None:
            try:
                with transaction.atomic():
                    alert = Alert.objects.create(
                        fingerprint=fingerprint,
                        window=int(now.timestamp()) // window,
                        message=message,
                        severity=severity,
                        source=source,
                        first_seen=now,
                        last_seen=now,
                    )
            except IntegrityError:
                # A concurrent twin created it a moment ago: count on that one.
                open_alert = Alert.objects.select_for_update().get(
                    fingerprint=fingerprint, window=int(now.timestamp()) // window
                )
            else:
                deliveries_record(
                    event_type=EventType.ALERT,
                    context=_context(alert),
                    key=_key(alert),
                    channels=[channel] if channel else None,
                )
                return alert, True
        Alert.objects.filter(pk=open_alert.pk).update(count=F("count") + 1, last_seen=now)
        open_alert.refresh_from_db()
        _refresh_message(open_alert)
        return open_alert, False


def _refresh_message(alert: Alert) -> None:
    """Put the new count on the alert's message: in the payload if not yet posted, by chat.update if posted."""
    from notifications.services import message_update_on_commit

    context = _context(alert)
    deliveries = list(Delivery.objects.filter(key=_key(alert)).values_list("id", "status"))
    for delivery_id, status in deliveries:
        if status in ("pending", "failed"):
            # Not posted yet: it will post with the current count.
            Delivery.objects.filter(pk=delivery_id, status=status).update(payload=context)
        if status in ("sending", "sent"):
            message_update_on_commit(delivery_id=delivery_id, extra_context={"count": alert.count})
