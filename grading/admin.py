"""Offer screens: the list (grade/status/synthetic filters, re-grade and status actions), each offer
with its grade history, the offers inline on the lead page, and the "grade an offer" form."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin, TabularInline

from grading.models import GraderModel, Offer, OfferGrade, OfferStatus, OfferStatusChange
from grading.services import OfferTerms, offer_create, offer_regrade, offer_set_status
from leads.models import Lead

GRADE_COLUMNS = ("created_at", "amount", "arv", "repairs", "grade", "score", "status", "synthetic_flag", "open")


@admin.display(description="synthetic")
def _synthetic(obj: Offer) -> str:
    return format_html('<b style="color:#b45309">{}</b>', "SYNTHETIC") if obj.synthetic else ""


class OfferInline(TabularInline):
    """On the lead page: its offers with their grades (read-only) and a link to grade a new one."""

    model = Offer
    fields = GRADE_COLUMNS
    readonly_fields = GRADE_COLUMNS
    extra = 0
    can_delete = False
    ordering = ("-created_at", "-id")
    template = "admin/grading/offer_inline.html"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="synthetic")
    def synthetic_flag(self, obj: Offer) -> str:
        return _synthetic(obj)

    @admin.display(description="")
    def open(self, obj: Offer) -> str:
        return format_html(
            '<a href="{}">reasons &amp; history</a>', reverse("admin:grading_offer_change", args=[obj.pk])
        )


class OfferGradeInline(TabularInline):
    model = OfferGrade
    fields = ("created_at", "grader_version", "grade", "score", "recommendation", "counter_offer", "reason_list")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-created_at", "-id")
    verbose_name_plural = "grade history (newest first)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="reasons")
    def reason_list(self, obj: OfferGrade) -> str:
        return format_html_join("", "<div>• {}</div>", ((r,) for r in obj.reasons))


class OfferStatusChangeInline(TabularInline):
    model = OfferStatusChange
    fields = ("at", "from_status", "to_status", "by")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _status_action(status: str) -> Any:
    def action(modeladmin: OfferAdmin, request: HttpRequest, queryset: QuerySet[Offer]) -> None:
        changed = 0
        for offer_id in queryset.values_list("id", flat=True):
            try:
                offer_set_status(offer_id=offer_id, status=status, actor=request.user)
                changed += 1
            except ValidationError as exc:
                modeladmin.message_user(request, f"offer {offer_id}: {'; '.join(exc.messages)}", messages.WARNING)
        if changed:
            modeladmin.message_user(request, f"{changed} offer(s) marked {status}.", messages.SUCCESS)

    action.__name__ = f"mark_{status}"
    return admin.action(description=f"Mark {status}")(action)


class GradeOfferForm(forms.Form):
    amount = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"), help_text="the cash offer")
    repairs = forms.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, required=False, help_text="empty: estimated from the lead"
    )
    arv = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text="empty: the lead's valuation",
    )
    arv_low = forms.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)
    arv_high = forms.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)
    ratio = forms.DecimalField(
        max_digits=4,
        decimal_places=3,
        min_value=Decimal("0.5"),
        max_value=Decimal("0.9"),
        required=False,
        help_text="empty: the default 70% rule",
    )


@admin.register(Offer)
class OfferAdmin(ModelAdmin):
    list_display = (
        "id",
        "lead",
        "amount",
        "grade",
        "score",
        "status",
        "synthetic_marker",
        "created_by_name",
        "created_at",
    )
    list_filter = ("grade", "status", "synthetic", "created_at")
    search_fields = ("=id", "lead__name", "=lead__id")
    list_select_related = ("lead",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = (OfferGradeInline, OfferStatusChangeInline)
    actions = [
        "regrade",
        *(
            _status_action(s)
            for s in (
                OfferStatus.SENT,
                OfferStatus.ACCEPTED,
                OfferStatus.REJECTED,
                OfferStatus.CLOSED,
                OfferStatus.LOST,
            )
        ),
    ]
    fields = (
        "lead",
        "synthetic_marker",
        ("amount", "repairs", "repairs_estimated"),
        ("arv", "arv_low", "arv_high", "arv_source"),
        "ratio",
        ("status", "status_changed_at", "accepted_at"),
        ("grade", "score"),
        "created_by_name",
        "created_at",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Offer | None = None) -> list[str]:
        # Changes go through the services (actions, the grade form, the API).
        return [f.name for f in Offer._meta.fields] + ["synthetic_marker"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # offers are graded from their lead's page ("Grade an offer") or POST /api/offers

    @admin.display(description="synthetic", ordering="synthetic")
    def synthetic_marker(self, obj: Offer) -> str:
        return _synthetic(obj)

    @admin.action(description="Re-grade (a new grade record; history is kept)")
    def regrade(self, request: HttpRequest, queryset: QuerySet[Offer]) -> None:
        done = 0
        for offer_id in queryset.values_list("id", flat=True):
            try:
                offer_regrade(offer_id=offer_id, actor=request.user)
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"offer {offer_id}: {'; '.join(exc.messages)}", messages.WARNING)
        if done:
            self.message_user(request, f"{done} offer(s) re-graded.", messages.SUCCESS)

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(self.grade_offer_view)
        return [path("grade/<uuid:lead_id>/", view, name="grading_offer_grade"), *super().get_urls()]

    def grade_offer_view(self, request: HttpRequest, lead_id: Any) -> HttpResponse:
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        lead = get_object_or_404(Lead, id=lead_id)
        form = GradeOfferForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                offer, grade = offer_create(
                    lead_id=lead.id,
                    terms=OfferTerms(
                        **{k: data.get(k) for k in ("amount", "repairs", "arv", "arv_low", "arv_high", "ratio")}
                    ),
                    actor=request.user,
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                self.message_user(
                    request,
                    f"Offer ${offer.amount:,.0f} graded {grade.grade} ({grade.score}/100): {grade.recommendation}.",
                )
                return HttpResponseRedirect(reverse("admin:grading_offer_change", args=[offer.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Grade an offer for {lead.name}",
            "opts": self.model._meta,
            "lead": lead,
            "form": form,
        }
        return TemplateResponse(request, "admin/grading/grade_offer.html", context)


@admin.register(GraderModel)
class GraderModelAdmin(ModelAdmin):
    list_display = ("id", "created_at", "adopted", "n_outcomes", "synthetic_outcomes", "n_train", "n_valid", "reason")
    list_filter = ("adopted",)
    exclude = ("blob",)

    def get_readonly_fields(self, request: HttpRequest, obj: GraderModel | None = None) -> list[str]:
        return [f.name for f in GraderModel._meta.fields if f.name != "blob"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # manage.py train_grader (or its nightly beat task)
