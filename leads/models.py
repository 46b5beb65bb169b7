"""Leads: a seller who filled a form, the pipeline they move through, and their timeline."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class LeadStatus(models.TextChoices):
    NEW = "new"
    CONTACTED = "contacted"
    APPOINTMENT = "appointment"
    OFFER_MADE = "offer_made"
    UNDER_CONTRACT = "under_contract"
    WON = "won"
    LOST = "lost"
    SPAM = "spam"


# Still being worked: what "My leads" and the follow-up reminders look at.
OPEN_STATUSES = (
    LeadStatus.NEW,
    LeadStatus.CONTACTED,
    LeadStatus.APPOINTMENT,
    LeadStatus.OFFER_MADE,
    LeadStatus.UNDER_CONTRACT,
)


class PropertyType(models.TextChoices):
    SFR = "sfr", "Single-family"
    TOWNHOUSE = "townhouse", "Townhouse"
    CONDO = "condo", "Condo"
    MULTI_FAMILY = "multi_family", "Multi-family"
    MOBILE = "mobile", "Mobile home"
    LAND = "land", "Land"
    OTHER = "other", "Other"


class LocationPrecision(models.TextChoices):
    ROOFTOP = "rooftop"
    INTERPOLATED = "interpolated"
    ZIP_CENTROID = "zip_centroid"
    MANUAL = "manual"


class Lead(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=20, choices=LeadStatus.choices, default=LeadStatus.NEW)

    # Who
    name = models.CharField(max_length=200)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164")
    email = models.EmailField(max_length=254, blank=True, help_text="lower-cased")

    # Where: the address as the form sent it, its parsed parts and a normalised key for matching.
    address = models.CharField(max_length=500, blank=True)
    street = models.CharField(max_length=200, blank=True)
    unit = models.CharField(max_length=50, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=50, blank=True)
    postal_code = models.CharField(max_length=10, blank=True)
    address_key = models.CharField(max_length=300, blank=True, help_text="normalised address for duplicate matching")
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    # How exactly latitude/longitude place the house: "manual" (staff or the form gave them),
    # "rooftop", "interpolated" (along the street's address range: the Census geocoder) or
    # "zip_centroid" (only the ZIP code's centre: the valuation widens its range).
    location_precision = models.CharField(max_length=20, choices=LocationPrecision.choices, blank=True)

    # Property facts the valuation uses.
    beds = models.PositiveSmallIntegerField(null=True, blank=True)
    baths = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    living_area_sqft = models.PositiveIntegerField(null=True, blank=True)
    lot_sqft = models.PositiveIntegerField(null=True, blank=True)
    year_built = models.PositiveSmallIntegerField(null=True, blank=True)
    property_type = models.CharField(max_length=20, choices=PropertyType.choices, blank=True)

    # What they told us
    message = models.TextField(blank=True)
    asking_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    timeline = models.CharField(max_length=100, blank=True)
    condition = models.CharField(max_length=100, blank=True)
    extra = models.JSONField(default=dict, blank=True, help_text="the form's other answers, kept as sent")

    # Where it came from
    source = models.CharField(max_length=100, blank=True, help_text="the API key / form that sent it")
    api_key = models.ForeignKey("leadsite.ApiKey", null=True, blank=True, on_delete=models.SET_NULL)
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    utm_term = models.CharField(max_length=200, blank=True)
    utm_content = models.CharField(max_length=200, blank=True)
    page_url = models.URLField(max_length=2000, blank=True)
    request_id = models.CharField(max_length=128, blank=True, help_text="correlation id of the intake request")

    # Consent proof (TCPA): what they agreed to, when, from where.
    consent = models.BooleanField(default=False)
    consent_text = models.TextField(blank=True)
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    consent_user_agent = models.CharField(max_length=500, blank=True)

    # Work on it
    # No index of its own: the (assigned_to, -created_at) index below serves lookups by assignee.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
        db_index=False,
    )
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="when someone took it with Slack's Claim")
    first_contacted_at = models.DateTimeField(null=True, blank=True)
    sla_breached_at = models.DateTimeField(null=True, blank=True)
    # Follow-up: the next thing to do and when; a reminder is posted in the lead's Slack thread once
    # per follow-up (follow_up_reminded_at is cleared whenever a new follow-up is set).
    follow_up_at = models.DateTimeField(null=True, blank=True, verbose_name="next action")
    follow_up_note = models.CharField(max_length=300, blank=True, verbose_name="next action note")
    follow_up_reminded_at = models.DateTimeField(null=True, blank=True)
    # Leads are archived, never deleted: the timeline and the consent proof are evidence.
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Effect-based repair (leads/repair.py): when every fan-out effect was seen in place, and the
    # repairs done while some were missing. Only leads without the marker are ever looked at again.
    fan_out_done_at = models.DateTimeField(null=True, blank=True, help_text="every fan-out effect seen in place")
    fan_out_repaired_at = models.DateTimeField(null=True, blank=True)
    fan_out_repairs = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "-created_at"]),
            models.Index(fields=["source", "-created_at"]),
            models.Index(fields=["assigned_to", "-created_at"]),
            # The duplicate check (leads.intake.sql): the leads with this phone or this email, then
            # their address key. One column each, so that these two are the only indexes its lookup
            # can use, whatever the statistics its cached plan was made with.
            models.Index(fields=["phone"], name="lead_phone_idx"),
            models.Index(fields=["email"], name="lead_email_idx"),
            models.Index(
                fields=["created_at"], name="lead_sla_open_idx", condition=Q(status="new", first_contacted_at=None)
            ),
            # The repair's candidates: a small index of the leads not yet seen complete, so the query
            # stays cheap however many leads there are.
            models.Index(
                fields=["created_at"],
                name="lead_fan_out_open_idx",
                condition=Q(fan_out_done_at=None) & ~Q(status="spam"),
            ),
            # "My leads" (assignee, follow-up due first) and the dashboard's overdue follow-ups.
            models.Index(fields=["assigned_to", "follow_up_at"], name="lead_my_follow_up_idx"),
            # The dashboard's "SLA breaches (30 days)" and the breached queue: an index-only count.
            models.Index(
                fields=["sla_breached_at"],
                name="lead_sla_breached_idx",
                condition=Q(sla_breached_at__isnull=False, archived_at=None) & ~Q(status="spam"),
            ),
            models.Index(
                fields=["follow_up_at"],
                name="lead_follow_up_due_idx",
                condition=Q(follow_up_at__isnull=False, follow_up_reminded_at=None),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} — {self.address or self.phone or self.email}"


class TimelineKind(models.TextChoices):
    CREATED = "created"
    REPEAT = "repeat"
    STATUS = "status"
    ASSIGNED = "assigned"
    NOTE = "note"
    NOTIFIED = "notified"
    VALUATION = "valuation"
    OFFER = "offer"
    SLA_BREACH = "sla_breach"
    CLAIMED = "claimed"
    PAYMENT = "payment"
    FOLLOW_UP = "follow_up"
    PROPERTY = "property"
    ARCHIVED = "archived"


class LeadEvent(models.Model):
    """One entry on a lead's timeline, written by the service that did the thing."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=TimelineKind.choices)
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    request_id = models.CharField(max_length=128, blank=True)
    # Not auto_now_add: the `created` entry, written later by the fan-out task, carries the lead's own time.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["lead", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message}"


class IdempotencyRecord(models.Model):
    """The first response to an `Idempotency-Key`, per API key, so a retried form post gets it again.

    The unique constraint is what makes two concurrent requests with the same key create one lead:
    the second INSERT waits for the first transaction and then fails, and the second request answers
    from the row the first one committed.
    """

    api_key = models.ForeignKey("leadsite.ApiKey", on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON body")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "key"], name="leads_idempotency_key_per_api_key")]

    def __str__(self) -> str:
        return f"{self.key} -> {self.response_status}"


class OutboxEvent(models.Model):
    """A Celery task to start, written in the same transaction as the change that causes it.

    Published by the workers' outbox pumps the moment it commits (an insert trigger NOTIFYs them;
    leads.outbox); `leads.relay_outbox` (beat) is the backstop. Consumers must be idempotent: a
    crash between publishing and marking the row means it goes out again.
    """

    key = models.CharField(max_length=200, help_text="e.g. lead:<id>:assign; one event per key")
    task_name = models.CharField(max_length=200)
    kwargs = models.JSONField(default=dict)
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="outbox_events")
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        # A constraint rather than unique=True: no second (LIKE) index to maintain on every insert.
        constraints = [models.UniqueConstraint(fields=["key"], name="leads_outbox_key_unique")]
        indexes = [
            models.Index(fields=["id"], name="leads_outbox_pending_idx", condition=Q(published_at=None)),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} {self.key} ({'published' if self.published_at else 'pending'})"


class AssignmentCursor(models.Model):
    """Where round-robin assignment is in its rotation; the row lock serialises assigners."""

    name = models.CharField(max_length=50, unique=True)
    last_user_id = models.IntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: after user {self.last_user_id}"
