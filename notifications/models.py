"""Notification hub: where each event goes (Route), every Slack message we owe (Delivery),
payments Stripe told us about, collapsed alerts, and who is who in Slack (StaffProfile)."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q


class EventType(models.TextChoices):
    NEW_LEAD = "new_lead", "New lead"
    REPEAT_LEAD = "repeat_lead", "Repeat lead"
    LEAD_STATUS = "lead_status", "Lead status changed"
    LEAD_CLAIMED = "lead_claimed", "Lead claimed"
    VALUATION_READY = "valuation_ready", "Valuation ready"
    OFFER_GRADED = "offer_graded", "Offer graded"
    SLA_BREACH = "sla_breach", "SLA breach"
    PAYMENT = "payment", "Payment"
    ALERT = "alert", "Alert"
    DAILY_DIGEST = "daily_digest", "Daily digest"
    FOLLOW_UP_DUE = "follow_up_due", "Follow-up due"


class Route(models.Model):
    """Event type -> Slack channel. Several routes per event type post to several channels;
    an event type without an active route goes to settings.SLACK_DEFAULT_CHANNEL."""

    event_type = models.CharField(max_length=30, choices=EventType.choices)
    channel = models.CharField(max_length=80, help_text="#name or a channel id (C0123…)")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["event_type", "channel"]
        constraints = [models.UniqueConstraint(fields=["event_type", "channel"], name="notif_route_unique")]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.channel}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # waiting for a worker (or for its next attempt / rate-limit slot)
    SENDING = "sending"  # claimed by a worker, the post is in flight
    SENT = "sent"
    FAILED = "failed"  # a transient error; another attempt is scheduled
    DEAD = "dead"  # gave up (permanent error or out of attempts); an alert was raised


class Delivery(models.Model):
    """One Slack message we owe: one row per (event key, channel). The unique key makes notify()
    idempotent, and the conditional pending->sending claim makes a redelivered task harmless."""

    key = models.CharField(max_length=200, help_text="the event's idempotency key (notify's `key`)")
    channel = models.CharField(max_length=80)
    event_type = models.CharField(max_length=30, choices=EventType.choices)
    lead_id = models.UUIDField(null=True, blank=True)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder, help_text="the context the template renders")
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0, help_text="posts tried (a 429 does not count)")
    last_error = models.CharField(max_length=500, blank=True)
    text = models.TextField(blank=True, help_text="the fallback text as sent")
    ts = models.CharField(max_length=40, blank=True, help_text="Slack message ts")
    thread_ts = models.CharField(max_length=40, blank=True, help_text="ts of the lead's first message")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="when a worker took it (status sending)")
    unknown_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="start of the first attempt whose outcome is unknown (timeout after sending, worker lost): "
        "the channel's history is checked for the message before it is posted again",
    )
    requeued_at = models.DateTimeField(
        null=True, blank=True, help_text="when the sweeper last queued an extra task for it (its task looked lost)"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["key", "channel"], name="notif_delivery_key_channel")]
        indexes = [
            models.Index(fields=["lead_id", "channel", "event_type"]),
            models.Index(
                fields=["status", "next_attempt_at"],
                name="notif_delivery_open_idx",
                condition=Q(status__in=["pending", "sending", "failed"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.channel} ({self.status})"


class StripeEvent(models.Model):
    """Every handled Stripe event, once per event id (a redelivered webhook is a no-op). One payment
    can arrive as several events (checkout.session.completed or invoice.paid, and the
    payment_intent.succeeded behind it): they all point at the same Payment."""

    stripe_event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=60)
    livemode = models.BooleanField(default=False)
    payment = models.ForeignKey("Payment", null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    raw = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_event_id}"


class Payment(models.Model):
    """A payment Stripe told us about, once per payment intent (when the event names one) and once
    per event id: the first event about a payment records and announces it."""

    stripe_event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=60)
    customer = models.CharField(max_length=200, blank=True, help_text="name or email as Stripe knows it")
    customer_id = models.CharField(max_length=100, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="usd")
    payment_intent_id = models.CharField(max_length=100, blank=True)
    checkout_session_id = models.CharField(max_length=100, blank=True)
    invoice_id = models.CharField(max_length=100, blank=True)
    livemode = models.BooleanField(default=False)
    raw = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["payment_intent_id"], condition=~Q(payment_intent_id=""), name="notif_payment_intent_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer or self.customer_id} {self.amount} {self.currency.upper()}"


class AlertSeverity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(models.Model):
    """Identical alerts (same severity, source and message) within ALERT_COLLAPSE_SECONDS of the
    first one are one Alert with a count: the first posts, repeats bump `count` and edit that message."""

    fingerprint = models.CharField(max_length=64)
    window = models.BigIntegerField(help_text="first_seen // collapse window; guards concurrent creation")
    message = models.TextField()
    severity = models.CharField(max_length=10, choices=AlertSeverity.choices, default=AlertSeverity.WARNING)
    source = models.CharField(max_length=100, blank=True)
    count = models.PositiveIntegerField(default=1)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen"]
        constraints = [models.UniqueConstraint(fields=["fingerprint", "window"], name="notif_alert_window")]
        indexes = [models.Index(fields=["fingerprint", "-first_seen"])]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.message[:60]} ×{self.count}"


class StaffProfile(models.Model):
    """Maps a Slack user to a staff account (Claim buttons, @-mentions)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile")
    slack_user_id = models.CharField(max_length=30, unique=True, help_text="U0123ABCD")

    def __str__(self) -> str:
        return f"{self.user} ↔ {self.slack_user_id}"
