"""The back office: django-unfold's admin site with the dashboard, "My leads" and the sidebar."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import translation
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from unfold import admin as unfold_admin
from unfold import utils as unfold_utils
from unfold.fields import UnfoldAdminReadonlyField
from unfold.sites import UnfoldAdminSite
from unfold.templatetags import unfold_list


def _result_headers_once(cl: Any) -> Any:
    """unfold 0.91 recomputes every column header (sort links, query strings) for every row of a list
    (unfold_list.items_for_result): ~1/3 of a 50-row page's time. The headers depend only on the
    ChangeList, so they are computed once per list and read from then on (the callers only read them)."""
    headers = getattr(cl, "_leadsite_result_headers", None)
    if headers is None:
        headers = cl._leadsite_result_headers = list(_unfold_result_headers(cl))
    return iter(headers)


_unfold_result_headers = unfold_list.result_headers
unfold_list.result_headers = _result_headers_once

# Two more per-row costs of unfold 0.91 lists, each a full template render per row for output that
# depends on (almost) nothing: the row's action checkbox (a widget template; only the pk changes) and
# a boolean column's icon (three possible outputs). Together ~40% of a 50-row leads list's time.
# Both are rendered by unfold's own templates once per process and language, then reused; the HTML is
# byte-for-byte what unfold renders (tests/backoffice/test_list_rendering.py).
_PK_SLOT = "leadsite-pk-slot"


class _PrerenderedCheckbox:
    """unfold.admin.checkbox (the rows' action checkbox), rendered once per name and language."""

    def __init__(self, widget: Any) -> None:
        self.widget = widget
        self.rendered: dict[tuple[str, str | None], str] = {}

    def render(self, name: str, value: Any, attrs: dict | None = None, renderer: Any = None) -> SafeString:
        if attrs is not None or renderer is not None or not isinstance(value, str):
            return self.widget.render(name, value, attrs, renderer)
        key = (name, translation.get_language())
        html = self.rendered.get(key)
        if html is None:
            html = self.rendered[key] = str(self.widget.render(name, _PK_SLOT))
        return mark_safe(html.replace(_PK_SLOT, conditional_escape(value)))  # noqa: S308 - value escaped


_unfold_boolean_icon = unfold_utils._boolean_icon
_boolean_icons: dict[tuple[str, str | None], str] = {}


def _boolean_icon_once(value: Any) -> str:
    # unfold/helpers/boolean.html knows three states: unknown ('' or None), true, false.
    state = "unknown" if value == "" or value is None else ("true" if value else "false")
    key = (state, translation.get_language())
    html = _boolean_icons.get(key)
    if html is None:
        html = _boolean_icons[key] = _unfold_boolean_icon({"unknown": None, "true": True, "false": False}[state])
    return html


unfold_admin.checkbox = _PrerenderedCheckbox(unfold_admin.checkbox)
unfold_utils._boolean_icon = _boolean_icon_once

# A read-only field on a change page: unfold's field_readonly_value.html asks for `field.contents` three
# times (`{% elif field.contents %}`, `== "None"`, `{{ field.contents }}`), and each call recomputes it
# (for a ModelAdmin method, calls it again). The field object lives for one render of one form, so its
# contents are computed once and kept.
_unfold_readonly_contents = UnfoldAdminReadonlyField.contents


def _readonly_contents_once(self: UnfoldAdminReadonlyField) -> SafeString:
    contents = self.__dict__.get("_leadsite_contents")
    if contents is None:
        contents = self.__dict__["_leadsite_contents"] = _unfold_readonly_contents(self)
    return contents


UnfoldAdminReadonlyField.contents = _readonly_contents_once

MANAGERS_GROUP = "Managers"


def my_leads_url() -> str:
    return reverse("admin:leads_lead_changelist") + "?queue=mine"


def is_rep(user: AbstractBaseUser) -> bool:
    """A rep works leads all day and lands on "My leads"; superusers and Managers land on the dashboard."""
    if user.is_superuser:
        return False
    names = {group.name for group in user.groups.all()}
    return "Acquisitions" in names and MANAGERS_GROUP not in names


def _can(perm: str) -> Any:
    def check(request: HttpRequest) -> bool:
        return request.user.has_perm(perm)

    return check


def sidebar_navigation(request: HttpRequest) -> list[dict[str, Any]]:
    """UNFOLD["SIDEBAR"]["navigation"]: the work first, the plumbing after; each item shown to those allowed."""

    def link(title: str, icon: str, url: str, perm: str | None = None) -> dict[str, Any]:
        item: dict[str, Any] = {"title": title, "icon": icon, "link": url}
        if perm:
            item["permission"] = _can(perm)
        return item

    leads = reverse("admin:leads_lead_changelist")
    return [
        {
            "title": "Work",
            "items": [
                {**link("My leads", "person_pin", my_leads_url(), "leads.view_lead"), "active": _mine_active},
                link("Dashboard", "monitoring", reverse("admin:dashboard")),
                {**link("All leads", "home_work", leads, "leads.view_lead"), "active": _all_leads_active},
                link("Offers", "request_quote", reverse("admin:grading_offer_changelist"), "grading.view_offer"),
                link(
                    "Valuations",
                    "price_check",
                    reverse("admin:valuation_valuation_changelist"),
                    "valuation.view_valuation",
                ),
            ],
        },
        {
            "title": "Messages and logs",
            "items": [
                link("Log entries", "receipt_long", reverse("admin:logs_logentry_changelist"), "logs.view_logentry"),
                link(
                    "Slack deliveries",
                    "send",
                    reverse("admin:notifications_delivery_changelist"),
                    "notifications.view_delivery",
                ),
                link(
                    "Alerts",
                    "notifications",
                    reverse("admin:notifications_alert_changelist"),
                    "notifications.view_alert",
                ),
                link(
                    "Payments",
                    "payments",
                    reverse("admin:notifications_payment_changelist"),
                    "notifications.view_payment",
                ),
                link(
                    "Stripe events",
                    "receipt",
                    reverse("admin:notifications_stripeevent_changelist"),
                    "notifications.view_stripeevent",
                ),
            ],
        },
        {
            "title": "Settings",
            "items": [
                link(
                    "Slack routes",
                    "alt_route",
                    reverse("admin:notifications_route_changelist"),
                    "notifications.view_route",
                ),
                link(
                    "Staff profiles",
                    "badge",
                    reverse("admin:notifications_staffprofile_changelist"),
                    "notifications.view_staffprofile",
                ),
                link("API keys", "key", reverse("admin:leadsite_apikey_changelist"), "leadsite.view_apikey"),
                link(
                    "Outbox events", "outbox", reverse("admin:leads_outboxevent_changelist"), "leads.view_outboxevent"
                ),
                link("Sales", "sell", reverse("admin:valuation_sale_changelist"), "valuation.view_sale"),
                link(
                    "Valuation models",
                    "model_training",
                    reverse("admin:valuation_modelversion_changelist"),
                    "valuation.view_modelversion",
                ),
                link(
                    "Offer grader models",
                    "psychology",
                    reverse("admin:grading_gradermodel_changelist"),
                    "grading.view_gradermodel",
                ),
                link("Users", "person", reverse("admin:auth_user_changelist"), "auth.view_user"),
                link("Groups", "group", reverse("admin:auth_group_changelist"), "auth.view_group"),
            ],
        },
    ]


def _mine_active(request: HttpRequest) -> bool:
    return request.path == reverse("admin:leads_lead_changelist") and request.GET.get("queue") == "mine"


def _all_leads_active(request: HttpRequest) -> bool:
    return request.path.startswith(reverse("admin:leads_lead_changelist")) and request.GET.get("queue") != "mine"


class LeadsiteAdminSite(UnfoldAdminSite):
    site_header = "leadsite back office"
    site_title = "leadsite"
    index_title = "Dashboard"
    # No public site behind the back office: "View site" is the back office's front page.
    site_url = "/admin/"

    def get_urls(self) -> list[URLPattern]:
        return [path("dashboard/", self.admin_view(self.dashboard), name="dashboard"), *super().get_urls()]

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # Reps land on their queue; the dashboard is one click away in the sidebar.
        if is_rep(request.user):
            return HttpResponseRedirect(my_leads_url())
        return self.dashboard(request)

    def dashboard(self, request: HttpRequest) -> HttpResponse:
        from leadsite.dashboard import dashboard_data_cached

        context = {
            **self.each_context(request),
            "title": "Dashboard",
            "subtitle": None,
            "dashboard": dashboard_data_cached(),
        }
        request.current_app = self.name
        return TemplateResponse(request, "admin/leadsite_dashboard.html", context)
