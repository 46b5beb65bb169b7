"""Read-only screens for the central log: filters, full-text search, a lead's journey."""

from __future__ import annotations

import re

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.http import urlencode
from unfold.admin import ModelAdmin

from leadsite.context import is_well_formed_request_id
from logs.models import Level, LogEntry
from logs.selectors import lead_journey_filter, level_terms, text_filter, text_search_window_start, without_nul

# 50 pages of 100: enough to page through, and a count that stays an index-only read of 5,001 rows.
COUNT_CAP = 5_000


_DIGIT = re.compile(r"[0-9]")


def _looks_like_id(term: str) -> bool:
    """One well-formed token with digits in it, long enough not to be a word (uuid hex is 32)."""
    return len(term) >= 16 and is_well_formed_request_id(term) and bool(_DIGIT.search(term))


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows (`SELECT COUNT(*) FROM (... LIMIT n)`), so a list over millions of
    rows never scans them all; beyond the cap the admin shows "5001" results and the last pages are
    reached by narrowing the filters instead."""

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()


def _as_gin_term(request: HttpRequest, queryset: QuerySet[LogEntry]) -> bool:
    """With a text search on PostgreSQL, level and service go into its tsquery (logs.selectors.text_filter)
    instead of B-tree conditions that would make the planner bitmap every row of that level or service."""
    return bool(request.GET.get("q", "").strip()) and connections[queryset.db].vendor == "postgresql"


class MinimumLevelFilter(admin.SimpleListFilter):
    title = "level (at least)"
    parameter_name = "level"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(value), label) for value, label in Level.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> QuerySet[LogEntry]:
        value = self.value()
        if value and value.isascii() and value.isdigit():
            if _as_gin_term(request, queryset) and level_terms(int(value)):
                return queryset  # the text search carries it as a GIN term (get_search_results)
            return queryset.filter(level__gte=int(value))
        return queryset


class ServiceFilter(admin.SimpleListFilter):
    title = "service"
    parameter_name = "service"
    KNOWN = ("web", "worker", "beat", "cli")

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        # A fixed list: DISTINCT over millions of rows would cost more than the page itself.
        values = list(self.KNOWN)
        if self.value() and self.value() not in values:
            values.append(self.value())
        return [(value, value) for value in values]

    def queryset(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> QuerySet[LogEntry]:
        if not self.value() or _as_gin_term(request, queryset):
            return queryset  # with a text search the service is a GIN term of it (get_search_results)
        return queryset.filter(service=self.value())


class JourneyFilter(admin.SimpleListFilter):
    """`?journey=<lead id>`: entries stamped with the lead's id or its intake request id (the link on a
    lead's admin page, see logs.selectors.lead_journey_url)."""

    title = "lead journey"
    parameter_name = "journey"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        # Shown (and so applied) only when a journey link was followed.
        return [(self.value(), f"lead {self.value()}")] if self.value() else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> QuerySet[LogEntry]:
        return queryset.filter(lead_journey_filter(self.value())) if self.value() else queryset


@admin.register(LogEntry)
class LogEntryAdmin(ModelAdmin):
    list_display = ("time", "level_badge", "service", "logger", "event", "short_message", "request_link", "lead_link")
    list_filter = (JourneyFilter, MinimumLevelFilter, ServiceFilter, "time")
    search_fields = ("message",)  # shows the search box; get_search_results does the real search
    search_help_text = 'Paste a request id or lead id to follow it, or search the text of message and event (words, "a phrase", -exclude).'
    ordering = ("-time", "-id")
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    readonly_fields = [field.name for field in LogEntry._meta.fields]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # Every filter (?service=, ?request_id=, ?journey=, …) reaches PostgreSQL, which refuses NUL;
        # stored text never holds one, so filter values are compared without it.
        if any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()):
            cleaned = QueryDict(mutable=True)
            for key, values in request.GET.lists():
                cleaned.setlist(without_nul(key), [without_nul(value) for value in values])
            cleaned._mutable = False
            request.GET = cleaned
        return super().changelist_view(request, extra_context)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[LogEntry], search_term: str
    ) -> tuple[QuerySet[LogEntry], bool]:
        term = without_nul(search_term).strip()
        if _looks_like_id(term):
            # A pasted request id (or lead id) finds its entries: an indexed exact match, not full text.
            return queryset.filter(Q(request_id=term) | Q(lead_id=term)), False
        # The level and service list filters are already on `queryset`; the text condition repeats
        # them as GIN terms (see text_filter).
        level = request.GET.get(MinimumLevelFilter.parameter_name, "")
        matches = text_filter(
            queryset,
            search_term,
            service=request.GET.get(ServiceFilter.parameter_name, ""),
            level=int(level) if level.isascii() and level.isdigit() else None,
        )
        if matches is queryset or connections[queryset.db].vendor != "postgresql":
            return matches, False
        # The list pages by OFFSET and counts up to COUNT_CAP: only the newest span holding that many
        # matches can appear in it, so the count and the pages read only that span's partitions.
        start = text_search_window_start(matches, need=COUNT_CAP + 1)
        return (matches if start is None else matches.filter(time__gte=start)), False

    @admin.display(description="level", ordering="level")
    def level_badge(self, obj: LogEntry) -> str:
        colour = {"WARNING": "#b58900", "ERROR": "#dc322f", "CRITICAL": "#d33682"}.get(obj.level_name, "inherit")
        return format_html('<strong style="color:{}">{}</strong>', colour, obj.level_name)

    @admin.display(description="message")
    def short_message(self, obj: LogEntry) -> str:
        text = obj.message if len(obj.message) <= 200 else obj.message[:200] + "…"
        if obj.exception:
            return format_html("{}<details><summary>exception</summary><pre>{}</pre></details>", text, obj.exception)
        return text

    @admin.display(description="request id")
    def request_link(self, obj: LogEntry) -> str:
        if not obj.request_id:
            return "-"
        return format_html('<a href="?{}">{}</a>', urlencode({"request_id": obj.request_id}), obj.request_id[:12])

    @admin.display(description="lead")
    def lead_link(self, obj: LogEntry) -> str:
        if not obj.lead_id:
            return "-"
        return format_html('<a href="?{}">{}</a>', urlencode({"journey": obj.lead_id}), obj.lead_id[:8])

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LogEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: LogEntry | None = None) -> bool:
        return False  # retention (LOG_RETENTION_DAYS) is the only way entries go
