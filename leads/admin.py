"""Lead screens: the list, "My leads", and the lead page staff work from.

Every change goes through leads.services (status rules, timeline entries, Slack, the valuation's
outbox event), exactly as the API's PATCH does; the admin never writes a lead's fields itself.
"""

from __future__ import annotations

import csv
import functools
import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from unfold.admin import ModelAdmin
from unfold.widgets import UnfoldAdminTextareaWidget

from grading.admin import OfferInline
from leads import admin_panels
from leads.models import OPEN_STATUSES, Lead, LeadStatus, OutboxEvent
from leads.selectors import lead_search_q, lead_timeline_recent
from leads.services import (
    ACQUISITIONS_GROUP,
    ALLOWED_TRANSITIONS,
    PROPERTY_FIELDS,
    lead_archive,
    lead_assign,
    lead_change_status,
    lead_set_follow_up,
    lead_set_property,
    lead_update,
)
from leadsite.models import ApiKey
from leadsite.templatetags.leadsite_format import dollars, phone_national
from logs.admin import CappedCountPaginator
from logs.selectors import lead_journey_url
from notifications.selectors import lead_slack_thread
from valuation.selectors import lead_valuation


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


def _once_per_lead(method: Any) -> Any:
    """A lead page panel (each a query) computed once per request: unfold resolves a read-only field when
    it builds the field and again when it renders it, and the lead object lives for one request."""
    key = f"_admin_{method.__name__}"

    @functools.wraps(method)
    def panel(self: LeadAdmin, obj: Lead) -> Any:
        if key not in obj.__dict__:
            obj.__dict__[key] = method(self, obj)
        return obj.__dict__[key]

    return panel


class _Echo:
    def write(self, value: str) -> str:
        return value


class QueueFilter(admin.SimpleListFilter):
    """Work queues. Archived leads are left out of every list unless this asks for them."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("mine", "My leads (open, follow-up due first)"),
            ("overdue", "Follow-up overdue"),
            ("waiting", "New, not contacted yet"),
            ("breached", "SLA breached (30 days)"),
            ("archived", "Archived"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Lead]) -> QuerySet[Lead]:
        value = self.value()
        if value == "archived":
            return queryset.filter(archived_at__isnull=False)
        queryset = queryset.filter(archived_at=None)
        now = timezone.now()
        if value == "mine":
            return queryset.filter(assigned_to=request.user, status__in=OPEN_STATUSES)
        if value == "overdue":
            return queryset.filter(follow_up_at__lt=now, status__in=OPEN_STATUSES).exclude(status=LeadStatus.SPAM)
        if value == "waiting":
            return queryset.filter(status=LeadStatus.NEW, first_contacted_at=None)
        if value == "breached":
            return queryset.filter(sla_breached_at__gte=now - timezone.timedelta(days=30)).exclude(
                status=LeadStatus.SPAM
            )
        return queryset


class AssigneeFilter(admin.SimpleListFilter):
    """The team, not every user who ever had a lead (that DISTINCT scans the whole table)."""

    title = "assignee"
    parameter_name = "assigned_to__id__exact"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        people = [(str(u.pk), u.get_full_name() or u.get_username()) for u in acquisitions_members()]
        return [("none", "Unassigned"), *people]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Lead]) -> QuerySet[Lead]:
        value = self.value()
        if value == "none":
            return queryset.filter(assigned_to=None)
        if value and value.isascii() and value.isdigit():
            return queryset.filter(assigned_to_id=int(value))
        return queryset


class SourceFilter(admin.SimpleListFilter):
    """A lead's source is the API key (form) that sent it: list the keys, not a DISTINCT over every lead."""

    title = "source"
    parameter_name = "source"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        names = list(ApiKey.objects.order_by("name").values_list("name", flat=True).distinct())
        if self.value() and self.value() not in names:
            names.append(self.value())
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Lead]) -> QuerySet[Lead]:
        return queryset.filter(source=self.value()) if self.value() else queryset


def acquisitions_members() -> QuerySet:
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True, groups__name=ACQUISITIONS_GROUP)
        .order_by("first_name", "username")
    )


class LeadWorkForm(forms.ModelForm):
    """The editable part of the lead page. Saving it calls the services (see LeadAdmin.save_model)."""

    note = forms.CharField(
        required=False,
        max_length=500,
        label="Add a note",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 2, "placeholder": "Called, left a voicemail…"}),
    )

    class Meta:
        model = Lead
        fields = ("status", "assigned_to", "follow_up_at", "follow_up_note", *PROPERTY_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "status" in self.fields:
            # Only the moves the pipeline allows from here (leads.services.ALLOWED_TRANSITIONS).
            current = self.instance.status
            allowed = [current, *sorted(ALLOWED_TRANSITIONS[current], key=LeadStatus.values.index)]
            self.fields["status"].choices = [(s, LeadStatus(s).label) for s in allowed]
            self.fields["status"].help_text = "only the moves the pipeline allows from the current status"
        if "assigned_to" in self.fields:
            members = acquisitions_members()
            if self.instance.assigned_to_id:
                members = members | get_user_model().objects.filter(pk=self.instance.assigned_to_id)
            self.fields["assigned_to"].queryset = members.distinct()
            self.fields["assigned_to"].label_from_instance = lambda u: u.get_full_name() or u.get_username()
            self.fields["assigned_to"].help_text = "any member of Acquisitions"


@admin.register(Lead)
class LeadAdmin(ModelAdmin):
    form = LeadWorkForm
    list_display = (
        "name",
        "status_label",
        "phone_display",
        "city",
        "source",
        "assignee",
        "follow_up",
        "created",
        "sla_flag",
    )
    list_filter = (QueueFilter, "status", SourceFilter, AssigneeFilter, "created_at")
    search_fields = ("name", "phone", "email", "address")  # the box; get_search_results does the search
    search_help_text = "Name, email, address, or a phone in any format (206-555-0171, (206) 555-0171, 555-0171)."
    list_select_related = ("assigned_to",)
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) on a big table for every page is not worth it
    paginator = CappedCountPaginator  # the filtered count stops at 10,000 too
    # The timeline is a panel below; offers are inline with their grades.
    inlines = [OfferInline]
    actions = [
        "assign_to_me",
        _status_action(LeadStatus.CONTACTED),
        _status_action(LeadStatus.APPOINTMENT),
        _status_action(LeadStatus.OFFER_MADE),
        _status_action(LeadStatus.UNDER_CONTRACT),
        _status_action(LeadStatus.WON),
        _status_action(LeadStatus.LOST),
        _status_action(LeadStatus.SPAM),
        "archive_selected",
        "export_csv",
    ]
    fieldsets = (
        (
            "Work",
            {
                "fields": (
                    ("status", "assigned_to"),
                    "note",
                    ("follow_up_at", "follow_up_note"),
                    "contact",
                    ("slack_thread", "journey"),
                )
            },
        ),
        ("Timeline", {"fields": ("timeline_panel",)}),
        ("Valuation", {"fields": ("valuation_panel",)}),
        (
            "Property",
            {
                "fields": (
                    "address",
                    ("latitude", "longitude"),
                    ("beds", "baths", "living_area_sqft"),
                    ("lot_sqft", "year_built", "property_type"),
                ),
                "description": "Saving a change here re-queues the valuation.",
            },
        ),
        ("Seller", {"fields": ("name", "email", "message", "asking_price_display", "timeline", "condition")}),
        ("Speed to lead", {"fields": ("speed_panel",)}),
        ("Source", {"classes": ["collapse"], "fields": ("source_panel",)}),
        ("Consent", {"classes": ["collapse"], "fields": ("consent_panel",)}),
    )

    # --- lists -------------------------------------------------------------------------

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        if request.GET.get("queue") == "mine":
            # Follow-ups due first (soonest at the top), then the newest leads.
            return [F("follow_up_at").asc(nulls_last=True), "-created_at"]
        return ["-created_at"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Lead], search_term: str
    ) -> tuple[QuerySet[Lead], bool]:
        # The API's `q` (leads.selectors.lead_search_q): phones normalised the way intake does.
        if not search_term.strip():
            return queryset, False
        return queryset.filter(lead_search_q(search_term.replace("\x00", ""))), False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if request.GET.get("queue") == "mine":
            extra_context = {**(extra_context or {}), "title": "My leads"}
        return super().changelist_view(request, extra_context)

    @admin.display(description="status", ordering="status")
    def status_label(self, obj: Lead) -> str:
        return obj.get_status_display()

    @admin.display(description="phone", ordering="phone")
    def phone_display(self, obj: Lead) -> str:
        return phone_national(obj.phone)

    @admin.display(description="assignee", ordering="assigned_to")
    def assignee(self, obj: Lead) -> str:
        user = obj.assigned_to
        return (user.get_full_name() or user.get_username()) if user else "—"

    @admin.display(description="follow-up", ordering="follow_up_at")
    def follow_up(self, obj: Lead) -> str:
        if obj.follow_up_at is None:
            return "—"
        overdue = obj.follow_up_at < timezone.now()
        when = timezone.localtime(obj.follow_up_at).strftime("%b %d %H:%M")
        return format_html('<span style="{}">{}</span>', "color:#dc2626;font-weight:600" if overdue else "", when)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: Lead) -> str:
        return timezone.localtime(obj.created_at).strftime("%b %d %H:%M")

    @admin.display(description="SLA met", boolean=True)
    def sla_flag(self, obj: Lead) -> bool | None:
        # ✗ breached, ✓ contacted without a breach, "unknown" while the clock is still running.
        if obj.sla_breached_at is not None:
            return False
        return True if obj.first_contacted_at is not None else None

    # --- the lead page -------------------------------------------------------------------

    def get_readonly_fields(self, request: HttpRequest, obj: Lead | None = None) -> list[str]:
        editable = set(LeadWorkForm.Meta.fields) if self.has_change_permission(request, obj) else set()
        return [f.name for f in Lead._meta.fields if f.name not in editable] + [
            "contact",
            "slack_thread",
            "journey",
            "timeline_panel",
            "valuation_panel",
            "asking_price_display",
            "speed_panel",
            "source_panel",
            "consent_panel",
        ]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "assigned_to" and field is not None:
            # A plain choice among the team: no "add user" / "change user" shortcuts next to it.
            field.widget.can_add_related = field.widget.can_change_related = False
            field.widget.can_delete_related = field.widget.can_view_related = False
        return field

    def save_model(self, request: HttpRequest, obj: Lead, form: LeadWorkForm, change: bool) -> None:
        """Call the services for what changed; nothing else is written (see message_user)."""
        data, changed = form.cleaned_data, set(form.changed_data)
        done: list[str] = []
        try:
            update: dict[str, Any] = {}
            if "status" in changed:
                update["status"] = data["status"]
            if "assigned_to" in changed:
                update["assignee"] = data["assigned_to"]
            if data.get("note"):
                update["note"] = data["note"]
            if update:
                lead_update(lead_id=obj.pk, actor=request.user, **update)
                done += [{"status": "status", "assignee": "assignee", "note": "note"}[k] for k in update]
            if changed & {"follow_up_at", "follow_up_note"}:
                lead_set_follow_up(
                    lead_id=obj.pk, at=data["follow_up_at"], note=data["follow_up_note"], actor=request.user
                )
                done.append("follow-up")
            facts = {name: data[name] for name in PROPERTY_FIELDS if name in changed}
            if facts:
                lead_set_property(lead_id=obj.pk, facts=facts, actor=request.user)
                done.append("property facts (valuation re-queued)")
        except ValidationError as exc:
            # A race (someone moved the lead meanwhile): undo this save entirely and say why.
            transaction.set_rollback(True)
            request._lead_save_error = "; ".join(exc.messages)  # type: ignore[attr-defined]
            return
        request._lead_saved = done  # type: ignore[attr-defined]

    def message_user(
        self, request: HttpRequest, message: Any, level: int = messages.INFO, *args: Any, **kw: Any
    ) -> None:
        # Django's "was changed successfully" would be said even when nothing changed: say what happened.
        saved = getattr(request, "_lead_saved", None)
        error = getattr(request, "_lead_save_error", None)
        if level == messages.SUCCESS and error is not None:
            return super().message_user(request, f"Nothing was saved: {error}", messages.ERROR)
        if level == messages.SUCCESS and saved is not None:
            if not saved:
                return super().message_user(request, "No changes to save.", messages.INFO)
            return super().message_user(request, "Saved: " + ", ".join(saved) + ".", messages.SUCCESS)
        return super().message_user(request, message, level, *args, **kw)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if not getattr(request, "_lead_saved", None):
            return None  # nothing happened: no admin history entry claiming a change
        return super().log_change(request, obj, message)

    @admin.display(description="phone")
    def contact(self, obj: Lead) -> SafeString | str:
        parts = []
        if obj.phone:
            parts.append(
                format_html(
                    '<a href="tel:{}" class="font-semibold text-primary-600" id="lead-call">Call {}</a> · <a href="sms:{}" class="text-primary-600" id="lead-text">Text</a>',
                    obj.phone,
                    phone_national(obj.phone),
                    obj.phone,
                )
            )
        if obj.email:
            parts.append(format_html('<a href="mailto:{}" class="text-primary-600">Email {}</a>', obj.email, obj.email))
        return format_html_join(" · ", "{}", ((p,) for p in parts)) if parts else "—"

    @admin.display(description="Slack thread")
    @_once_per_lead
    def slack_thread(self, obj: Lead) -> SafeString | str:
        thread = lead_slack_thread(obj.pk)
        if thread is None:
            return "not posted"
        posted = (
            timezone.localtime(thread["sent_at"]).strftime("%b %d %H:%M") if thread["sent_at"] else thread["status"]
        )
        if thread["url"]:
            return format_html(
                '<a href="{}" target="_blank" rel="noopener">Open in Slack</a> ({}, {})',
                thread["url"],
                thread["channel"],
                posted,
            )
        return format_html("in {} ({})", thread["channel"], posted)

    @admin.display(description="logs")
    def journey(self, obj: Lead) -> str:
        return format_html('<a href="{}">Everything logged about this lead</a>', lead_journey_url(obj.pk))

    @admin.display(description="asking price")
    def asking_price_display(self, obj: Lead) -> str:
        return dollars(obj.asking_price)

    @admin.display(description="timeline (newest first)")
    @_once_per_lead
    def timeline_panel(self, obj: Lead) -> SafeString | str:
        events = lead_timeline_recent(obj.pk)
        if not events:
            return "—"
        rows = format_html_join(
            "",
            '<tr><td class="ls-nowrap">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    timezone.localtime(e.created_at).strftime("%b %d %H:%M"),
                    e.get_kind_display(),
                    (e.actor.get_full_name() or e.actor.get_username()) if e.actor else (e.data.get("by") or "system"),
                    e.message,
                )
                for e in events
            ),
        )
        return format_html(
            '<div class="ls-scroll"><table class="ls-table" id="lead-timeline"><thead><tr><th>when</th><th>what</th><th>who</th>'
            "<th>details</th></tr></thead><tbody>{}</tbody></table></div>",
            rows,
        )

    @admin.display(description="valuation")
    @_once_per_lead
    def valuation_panel(self, obj: Lead) -> SafeString | str:
        valuation = lead_valuation(obj.id)
        if not valuation:
            return "Not valued yet."
        if valuation.get("status") != "ok":
            return format_html("Not valued: {}", valuation.get("detail") or "insufficient data")
        confidence = valuation.get("confidence")
        head = format_html(
            '<div id="valuation" class="ls-val"><div><b class="ls-big">{}</b><span>estimate</span></div>'
            "<div><b>{} – {}</b><span>likely range</span></div><div><b>{}</b><span>confidence</span></div>"
            "<div><b>{}</b><span>as of</span></div></div>",
            dollars(valuation.get("estimate")),
            dollars(valuation.get("low")),
            dollars(valuation.get("high")),
            f"{confidence:.0%}" if isinstance(confidence, (int, float)) else "—",
            valuation.get("as_of") or "—",
        )
        comps = valuation.get("comps") or []
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} mi</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    c.get("sale_id"),
                    dollars(c.get("price")),
                    c.get("date"),
                    c.get("distance_miles"),
                    f"{c['living_area_sqft']:,} sqft" if c.get("living_area_sqft") else "—",
                    dollars(c.get("indicated_value")),
                    c.get("weight"),
                )
                for c in comps
            ),
        )
        table = format_html(
            '<div class="ls-scroll"><table class="ls-table" id="valuation-comps"><thead><tr><th>sale</th><th>price</th><th>date</th>'
            "<th>distance</th><th>living area</th><th>indicates</th><th>weight</th></tr></thead><tbody>{}</tbody></table></div>",
            rows,
        )
        return format_html("{}{}", head, table) if comps else head

    @admin.display(description="")
    def speed_panel(self, obj: Lead) -> SafeString:
        return admin_panels.speed_panel(obj)

    @admin.display(description="")
    def source_panel(self, obj: Lead) -> SafeString:
        return admin_panels.source_panel(obj)

    @admin.display(description="")
    def consent_panel(self, obj: Lead) -> SafeString:
        return admin_panels.consent_panel(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # leads come in through POST /api/leads

    def has_delete_permission(self, request: HttpRequest, obj: Lead | None = None) -> bool:
        return False  # evidence (timeline, consent): archive instead

    # --- actions -------------------------------------------------------------------------

    @admin.action(description="Assign to me", permissions=["change"])
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Lead]) -> None:
        for lead_id in queryset.values_list("id", flat=True):
            lead_assign(lead_id=lead_id, user=request.user, actor=request.user)
        self.message_user(request, f"{queryset.count()} lead(s) assigned to you.", messages.SUCCESS)

    @admin.action(description="Archive (hide from the lists; never deleted)", permissions=["change"])
    def archive_selected(self, request: HttpRequest, queryset: QuerySet[Lead]) -> None:
        archived = sum(
            lead_archive(lead_id=lead_id, actor=request.user) for lead_id in queryset.values_list("id", flat=True)
        )
        self.message_user(request, f"{archived} lead(s) archived.", messages.SUCCESS)

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

    class Media:
        css = {"all": ("leads/admin.css",)}


def _with_header(header: list[str], rows: Any) -> Any:
    yield header
    yield from rows


@admin.register(OutboxEvent)
class OutboxEventAdmin(ModelAdmin):
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
