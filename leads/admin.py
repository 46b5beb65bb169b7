"""Lead screens. Edits go through leads.services (actions), so the timeline and notifications follow."""

from __future__ import annotations

import csv
import re
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.html import format_html, format_html_join

from grading.admin import OfferInline
from leads.models import Lead, LeadEvent, LeadStatus, OutboxEvent
from leads.services import lead_assign, lead_change_status
from logs.selectors import lead_journey_url
from valuation.selectors import lead_valuation


class LeadEventInline(admin.TabularInline):
    model = LeadEvent
    fields = ("created_at", "kind", "message", "actor", "request_id")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("created_at", "id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _status_action(status: str) -> Any:
    def action(modeladmin: LeadAdmin, request: HttpRequest, queryset: QuerySet[Lead]) -> None:
        changed, refused = 0, []
        for lead_id, name in queryset.values_list("id", "name"):
            try:
                lead_change_status(lead_id=lead_id, status=status, actor=request.user)
                changed += 1
            except ValidationError as exc:
                refused.append(f"{name}: {'; '.join(exc.message_dict.get('status', exc.messages))}")
        if changed:
            modeladmin.message_user(request, f"{changed} lead(s) marked {status}.", messages.SUCCESS)
        for reason in refused:
            modeladmin.message_user(request, reason, messages.WARNING)

    action.__name__ = f"mark_{status}"
    return admin.action(description=f"Change status to {LeadStatus(status).label.lower()}")(action)


EXPORT_FIELDS = (
    "id",
    "created_at",
    "status",
    "name",
    "phone",
    "email",
    "address",
    "city",
    "state",
    "postal_code",
    "source",
    "assigned_to__username",
    "asking_price",
    "timeline",
    "condition",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "first_contacted_at",
    "sla_breached_at",
)


_E164 = re.compile(r"^\+[0-9]{8,15}$")


def _csv_safe(value: object) -> object:
    # Form text opened in a spreadsheet: a leading = + - @ (or tab/CR) would run as a formula.
    # E.164 phones (+12065550123) are ours, normalised, and stay as they are.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _E164.match(value):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "phone", "email", "city", "source", "assigned_to", "created_at", "sla_flag")
    list_filter = ("status", "source", ("assigned_to", admin.RelatedOnlyFieldListFilter), "created_at")
    search_fields = ("name", "phone", "email", "address")
    date_hierarchy = "created_at"
    list_select_related = ("assigned_to",)
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) on a big table for every page is not worth it
    inlines = (LeadEventInline, OfferInline)
    actions = [
        "assign_to_me",
        _status_action(LeadStatus.CONTACTED),
        _status_action(LeadStatus.APPOINTMENT),
        _status_action(LeadStatus.OFFER_MADE),
        _status_action(LeadStatus.UNDER_CONTRACT),
        _status_action(LeadStatus.WON),
        _status_action(LeadStatus.LOST),
        _status_action(LeadStatus.SPAM),
        "export_csv",
    ]
    fieldsets = (
        (None, {"fields": ("id", "status", "assigned_to", "claimed_at", "created_at", "updated_at", "journey")}),
        ("Seller", {"fields": ("name", "phone", "email", "message", "asking_price", "timeline", "condition")}),
        (
            "Property",
            {
                "fields": (
                    "address",
                    ("street", "unit"),
                    ("city", "state", "postal_code"),
                    "address_key",
                    ("latitude", "longitude"),
                    ("beds", "baths", "living_area_sqft", "lot_sqft", "year_built", "property_type"),
                    "valuation_summary",
                )
            },
        ),
        ("Speed to lead", {"fields": ("first_contacted_at", "sla_breached_at")}),
        (
            "Source",
            {
                "fields": (
                    "source",
                    "api_key",
                    ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"),
                    "page_url",
                    "request_id",
                    "extra",
                )
            },
        ),
        ("Consent", {"fields": ("consent", "consent_text", "consent_at", "consent_ip", "consent_user_agent")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Lead | None = None) -> list[str]:
        # Changes go through the actions (services): status rules, timeline and notifications.
        return [f.name for f in Lead._meta.fields] + ["valuation_summary", "journey"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # leads come in through POST /api/leads

    @admin.display(description="SLA met", boolean=True)
    def sla_flag(self, obj: Lead) -> bool | None:
        # ✗ breached, ✓ contacted without a breach, "unknown" while the clock is still running.
        if obj.sla_breached_at is not None:
            return False
        return True if obj.first_contacted_at is not None else None

    @admin.display(description="journey")
    def journey(self, obj: Lead) -> str:
        return format_html('<a href="{}">Everything logged about this lead</a>', lead_journey_url(obj.pk))

    @admin.display(description="valuation")
    def valuation_summary(self, obj: Lead) -> str:
        valuation = lead_valuation(obj.id)
        if not valuation:
            return "—"
        return format_html_join(
            "", "<div><b>{}</b>: {}</div>", ((key, value) for key, value in valuation.items() if key != "comps")
        )

    @admin.action(description="Assign to me")
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Lead]) -> None:
        for lead_id in queryset.values_list("id", flat=True):
            lead_assign(lead_id=lead_id, user=request.user, actor=request.user)
        self.message_user(request, f"{queryset.count()} lead(s) assigned to you.", messages.SUCCESS)

    @admin.action(description="Export selected leads as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Lead]) -> HttpResponse:
        writer = csv.writer(_Echo())
        rows = queryset.order_by("-created_at").values_list(*EXPORT_FIELDS).iterator(chunk_size=1000)
        header = [f.replace("assigned_to__username", "assignee") for f in EXPORT_FIELDS]
        response = StreamingHttpResponse(
            (writer.writerow([_csv_safe(value) for value in row]) for row in _with_header(header, rows)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = 'attachment; filename="leads.csv"'
        return response


def _with_header(header: list[str], rows: Any) -> Any:
    yield header
    yield from rows


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("id", "task_name", "key", "published_at", "attempts", "last_error", "created_at")
    list_filter = (("published_at", admin.EmptyFieldListFilter), "task_name")
    search_fields = ("key", "=lead__id")
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
    actions = ["publish_pending_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Publish pending events now")
    def publish_pending_now(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        from datetime import timedelta

        from leads.outbox import outbox_relay

        published = outbox_relay(grace=timedelta(0))
        self.message_user(request, f"{published} pending event(s) published.", messages.SUCCESS)
