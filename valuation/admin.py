from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html_join
from unfold.admin import ModelAdmin

from leadsite.templatetags.leadsite_format import dollars
from valuation.models import ModelVersion, Sale, Valuation


@admin.register(Sale)
class SaleAdmin(ModelAdmin):
    list_display = (
        "sale_id",
        "pinx",
        "sale_date",
        "price",
        "use_type",
        "living_area_sqft",
        "beds",
        "baths",
        "bldg_grade",
        "area",
    )
    list_filter = ("use_type", "waterfront", "bldg_grade", "area", ("sale_date", admin.DateFieldListFilter))
    search_fields = ("sale_id", "pinx")
    date_hierarchy = "sale_date"
    show_full_result_count = False


@admin.register(ModelVersion)
class ModelVersionAdmin(ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "trained_from",
        "trained_to",
        "n_train",
        "median_ape",
        "within_10",
        "training_seconds",
        "is_active",
    )
    list_filter = ("is_active",)
    exclude = ("blob",)
    readonly_fields = ("created_at", "trained_from", "trained_to", "n_train", "metrics", "params", "training_seconds")

    @admin.display(description="median abs. error")
    def median_ape(self, obj: ModelVersion) -> str:
        value = obj.metrics.get("median_ape")
        return "-" if value is None else f"{value:.1%}"

    @admin.display(description="within 10%")
    def within_10(self, obj: ModelVersion) -> str:
        value = obj.metrics.get("within_10")
        return "-" if value is None else f"{value:.1%}"

    def get_queryset(self, request):  # noqa: ANN001, ANN201
        return super().get_queryset(request).defer("blob")


@admin.register(Valuation)
class ValuationAdmin(ModelAdmin):
    list_display = (
        "lead",
        "status",
        "estimate_usd",
        "range_usd",
        "confidence_pct",
        "as_of",
        "model_version",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("lead__name", "lead__address")
    list_select_related = ("lead", "model_version")
    readonly_fields = (
        "lead",
        "status",
        "estimate",
        "low",
        "high",
        "confidence",
        "as_of",
        "model_version",
        "comps_table",
        "result",
        "created_at",
        "updated_at",
    )
    exclude = ("comps",)

    @admin.display(description="estimate", ordering="estimate")
    def estimate_usd(self, obj: Valuation) -> str:
        return dollars(obj.estimate)

    @admin.display(description="range")
    def range_usd(self, obj: Valuation) -> str:
        return f"{dollars(obj.low)} – {dollars(obj.high)}" if obj.low is not None else "—"

    @admin.display(description="confidence", ordering="confidence")
    def confidence_pct(self, obj: Valuation) -> str:
        return "—" if obj.confidence is None else f"{obj.confidence:.0%}"

    @admin.display(description="comparable sales")
    def comps_table(self, obj: Valuation) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>${}</td><td>{}</td><td>{} mi</td><td>{} sqft</td><td>${}</td><td>{}</td></tr>",
            (
                (
                    c["sale_id"],
                    f"{c['price']:,}",
                    c["date"],
                    c["distance_miles"],
                    c["living_area_sqft"],
                    f"{c['indicated_value']:,}",
                    c["weight"],
                )
                for c in obj.comps
            ),
        )
        head = "<tr><th>sale</th><th>price</th><th>date</th><th>distance</th><th>living area</th><th>indicated value</th><th>weight</th></tr>"
        return _table(head, rows) if obj.comps else "-"


def _table(head: str, rows: str) -> str:
    from django.utils.safestring import mark_safe

    return mark_safe(f"<table>{head}{rows}</table>")  # noqa: S308 - rows are escaped by format_html_join
