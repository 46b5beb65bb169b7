"""Read-only screens for the central log: filters, full-text search, a lead's journey."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR
from django.core.exceptions import ValidationError
from django.core.paginator import InvalidPage, Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import escape
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from unfold.admin import ModelAdmin
from unfold.paginator import InfinitePage
from unfold.templatetags import unfold_list
from unfold.views import ChangeList

from leadsite.context import is_well_formed_request_id
from logs.models import Level, LogEntry
from logs.selectors import (
    LogFilters,
    decode_cursor,
    encode_cursor,
    gin_path,
    lead_journey_filter,
    log_entries_filter,
    nth_key,
    read_in_order,
    windowed_path,
    without_nul,
)

# For other big lists (the leads admin): 50 pages of 100, and a count that stays a read of 5,001 rows.
# The log list itself never counts (WindowPaginator).
COUNT_CAP = 5_000

# The log list's keyset cursors (logs.selectors.encode_cursor): "Next" carries the last row's, "Previous"
# the first row's. Not filters: ChangeList neither applies them as lookups nor keeps them in filter links.
AFTER_VAR, BEFORE_VAR = "after", "before"


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


class WindowPaginator(Paginator):
    """The log list's pages without COUNT, read through `logs.selectors.read_in_order` (time windows; a
    text or level search through the GIN index), knowing only whether a next page exists. "Previous /
    Next" paging whose links carry a keyset cursor (`?p=n&after=<time|id>` of the last row shown,
    `?p=n&before=<time|id>` of the first), so page 50 reached through "Next" reads its own 50 + 1 rows,
    as page 1 does. A page typed without a cursor (`?p=n`) first asks PostgreSQL for the key of the
    (n - 1) * per_page-th entry (`logs.selectors.nth_key`: the rows before it are skipped there, one key
    comes back per time window), at most MAX_PAGES pages deep (narrow the filters to go further back)."""

    template_name = "admin/logs/logentry/pagination.html"
    MAX_PAGES = 100

    def __init__(
        self,
        object_list: QuerySet[LogEntry],
        per_page: int,
        *,
        number: int,
        windowed: bool,
        gin: bool,
        since: datetime | None = None,
        until: datetime | None = None,
        after: tuple[datetime, int] | None = None,
        before: tuple[datetime, int] | None = None,
    ):
        super().__init__(object_list, per_page)
        self.rows: list[LogEntry] = []
        self.has_next = False
        self.count = 0  # shadows Paginator.count (a cached_property): what was read, never counted
        read = {"windowed": windowed, "gin": gin, "since": since, "until": until}
        if number < 1 or (number > self.MAX_PAGES and not (after or before)):
            return
        if before:
            # "Previous": the per_page entries just newer than the page it was followed from, read
            # oldest first from that page's first row; the page it came from is the next one.
            self.rows = read_in_order(object_list, limit=per_page, after=before, oldest_first=True, **read)[::-1]
            self.has_next = bool(self.rows)
        else:
            offset = 0 if after else (number - 1) * per_page
            if offset:
                after = nth_key(object_list, offset, **read)  # the key of the last row before the page
                if after is None:
                    return
            rows = read_in_order(object_list, limit=per_page + 1, after=after, **read)
            self.rows, self.has_next = rows[:per_page], len(rows) > per_page
        # num_pages is `number` + 1 while a next page exists, so Paginator.validate_number accepts `number`.
        self.count = (number - 1) * per_page + len(self.rows) + self.has_next

    def page(self, number: int | str) -> InfinitePage:
        number = self.validate_number(number)
        return InfinitePage(self.rows, number, self)


_CELL = " ".join(unfold_list.ROW_CLASSES)
_LINK = " ".join(unfold_list.LINK_CLASSES)
_FIELDS = ("time", "level", "service", "event", "short_message", "request_link", "lead_link")  # td classes
_LEVEL_COLOURS = {"WARNING": "#b58900", "ERROR": "#dc322f", "CRITICAL": "#d33682"}
_ROW = (
    '<tbody class="block relative lg:table-row-group{shade}"><tr class="data-row block border border-base-200 mb-3 '
    'relative rounded-default lg:table-row lg:border-none lg:mb-0 lg:rounded-none dark:border-base-800">{cells}</tr></tbody>'
)


class LogChangeList(ChangeList):
    """Shows the paginator's page (Django's would re-read the whole queryset when it fits one page), and
    renders its rows in one pass (`rows_html`, see the change_list.html of this model)."""

    column_titles = ("time", "level", "service", "event", "message", "request id", "lead")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Nor do the search and filter forms carry a cursor in their hidden fields: a new search starts at the top.
        for cursor in (AFTER_VAR, BEFORE_VAR):
            self.params.pop(cursor, None)
            self.filter_params.pop(cursor, None)

    def get_filters_params(self, params: dict | None = None) -> dict:
        lookup_params = super().get_filters_params(params)
        for cursor in (AFTER_VAR, BEFORE_VAR):
            lookup_params.pop(cursor, None)
        return lookup_params

    def get_query_string(self, new_params: dict | None = None, remove: list[str] | None = None) -> str:
        # A cursor belongs to the page it was made on: filter, search and paging links all drop it
        # (the paging links below then set their own).
        new_params = {AFTER_VAR: None, BEFORE_VAR: None, **(new_params or {})}
        return super().get_query_string(new_params, remove)

    def next_url(self) -> str | None:
        if not (self.paginator.has_next and self.result_list):
            return None
        return self.get_query_string({PAGE_VAR: self.page_num + 1, AFTER_VAR: encode_cursor(self.result_list[-1])})

    def previous_url(self) -> str | None:
        if self.page_num <= 1:
            return None
        if self.page_num == 2 or not self.result_list:
            return self.get_query_string({PAGE_VAR: self.page_num - 1})  # page 1 (or a typed page): no cursor
        return self.get_query_string({PAGE_VAR: self.page_num - 1, BEFORE_VAR: encode_cursor(self.result_list[0])})

    def get_results(self, request: HttpRequest) -> None:
        paginator = self.model_admin.get_paginator(request, self.queryset, self.list_per_page)
        try:
            self.result_list = paginator.page(self.page_num).object_list
        except InvalidPage:
            raise IncorrectLookupParameters from None
        self.paginator = paginator
        self.result_count = paginator.count
        self.full_result_count = None
        self.show_full_result_count = False
        self.show_admin_actions = False
        self.can_show_all = False
        self.multi_page = paginator.num_pages > 1

    def rows_html(self) -> str:
        """The page's rows: plain f-strings over escaped values, one `<td>` per column of `column_titles`."""
        change = reverse("admin:logs_logentry_change", args=[0]).removesuffix("0/change/")
        rows = []
        for index, entry in enumerate(self.result_list):
            cells = (
                f'<a class="{_LINK}" href="{change}{entry.pk}/change/">{entry.time:%Y-%m-%d %H:%M:%S}</a>',
                f'<strong style="color:{_LEVEL_COLOURS.get(entry.level_name, "inherit")}">{escape(entry.level_name)}</strong>',
                escape(entry.service),
                escape(entry.event),
                _message(entry),
                _link("request_id", entry.request_id, 12),
                _link("journey", entry.lead_id, 8),
            )
            rows.append(
                _ROW.format(
                    shade=" bg-base-50 dark:bg-white/[.02]" if index % 2 else "",
                    cells="".join(
                        f'<td class="field-{name} {_CELL}" data-label="{title}">{cell}</td>'
                        for name, title, cell in zip(_FIELDS, self.column_titles, cells, strict=True)
                    ),
                )
            )
        return mark_safe("".join(rows))  # every value above is escaped


def _message(entry: LogEntry) -> str:
    text = escape(entry.message if len(entry.message) <= 200 else entry.message[:200] + "…")
    if entry.exception:
        return f"{text}<details><summary>exception</summary><pre>{escape(entry.exception)}</pre></details>"
    return text


def _link(parameter: str, value: str, shown: int) -> str:
    if not value:
        return "-"
    return f'<a href="?{escape(urlencode({parameter: value}))}">{escape(value[:shown])}</a>'


def _filters(request: HttpRequest) -> LogFilters:
    """The list's level, service, time range, request id, lead id and text, as the API's search takes them."""
    level = request.GET.get(MinimumLevelFilter.parameter_name, "")
    return LogFilters(
        q=request.GET.get("q", ""),
        level=int(level) if level.isascii() and level.isdigit() else None,
        service=request.GET.get(ServiceFilter.parameter_name, ""),
        since=_time_bound(request, "time__gte"),
        until=_time_bound(request, "time__lt"),
        request_id=request.GET.get("request_id", ""),
        lead_id=request.GET.get("lead_id", ""),
    )


def _time_bound(request: HttpRequest, parameter: str) -> datetime | None:
    """A bound of the "time" filter ("Past 7 days": `time__gte=<day>&time__lt=<tomorrow>`), parsed as the
    filter itself parses it, so that the paginator's windows start and stop inside it. (A bad value never
    gets here: the filter has already answered it with the admin's "?e=1" redirect.)"""
    value = without_nul(request.GET.get(parameter, ""))
    if not value:
        return None
    try:
        bound = LogEntry._meta.get_field("time").to_python(value)
    except ValidationError:
        return None
    return timezone.make_aware(bound) if timezone.is_naive(bound) else bound


class MinimumLevelFilter(admin.SimpleListFilter):
    title = "level (at least)"
    parameter_name = "level"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(value), label) for value, label in Level.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> QuerySet[LogEntry]:
        return queryset  # applied with the search, as the API applies it (LogEntryAdmin.get_search_results)


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
        return queryset  # applied with the search, as the API applies it (LogEntryAdmin.get_search_results)


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
    # The rows are rendered by LogChangeList.rows_html (change_list_template); list_display names its columns.
    change_list_template = "admin/logs/logentry/change_list.html"
    list_display = ("time", "level", "service", "event", "message", "request_id", "lead_id")
    list_filter = (JourneyFilter, MinimumLevelFilter, ServiceFilter, "time")
    search_fields = ("message",)  # shows the search box; get_search_results does the real search
    search_help_text = 'Paste a request id or lead id to follow it, or search the text of message and event (words, "a phrase", -exclude).'
    ordering = ("-time", "-id")
    sortable_by = ()  # pages are read newest first in time windows (WindowPaginator)
    actions = None
    show_full_result_count = False
    list_per_page = 50
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

    def get_changelist(self, request: HttpRequest, **kwargs: object) -> type[ChangeList]:
        return LogChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[LogEntry], search_term: str
    ) -> tuple[QuerySet[LogEntry], bool]:
        """Level, service and text as the API applies them (logs.selectors.log_entries_filter): with text
        or a level of WARNING and above they are one GIN tsquery, read in time windows by the paginator."""
        filters = _filters(request)
        term = without_nul(search_term).strip()
        if _looks_like_id(term):
            # A pasted request id (or lead id) finds its entries: an indexed exact match, not full text.
            queryset = queryset.filter(Q(request_id=term) | Q(lead_id=term))
            filters = replace(filters, q="")
        return log_entries_filter(filters, queryset), False

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet[LogEntry],
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> WindowPaginator:
        filters = _filters(request)
        if _looks_like_id(without_nul(filters.q).strip()):
            filters = replace(filters, q="", request_id=filters.q)  # read like a request id: no windows
        try:
            number = int(request.GET.get(PAGE_VAR, 1))
        except ValueError:
            number = 1
        try:
            after, before = (
                decode_cursor(without_nul(request.GET[name])) if request.GET.get(name) else None
                for name in (AFTER_VAR, BEFORE_VAR)
            )
        except ValidationError:
            raise IncorrectLookupParameters from None  # the admin's "?e=1" redirect, as for a bad filter
        return WindowPaginator(
            queryset,
            per_page,
            number=number,
            since=filters.since,
            until=filters.until,
            after=after,
            before=before,
            windowed=windowed_path(filters, queryset.db) and not request.GET.get(JourneyFilter.parameter_name),
            gin=gin_path(filters, queryset.db),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LogEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: LogEntry | None = None) -> bool:
        return False  # retention (LOG_RETENTION_DAYS) is the only way entries go
