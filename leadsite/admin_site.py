"""The back office: django-unfold's admin site with the dashboard, "My leads" and the sidebar."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, get_script_prefix, get_urlconf, path, reverse
from django.utils.functional import cached_property
from unfold.sites import UnfoldAdminSite

from leadsite import unfold_speed

unfold_speed.install()

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
    """UNFOLD["SIDEBAR"]["navigation"]: the work first, the plumbing after; each item shown to those allowed.
    Its links are reversed once per URL configuration and script prefix (unfold deep-copies the list before
    resolving each item's `active` and `permission` for the request)."""
    return _navigation(get_script_prefix(), get_urlconf())


@functools.cache
def _navigation(script_prefix: str, urlconf: str | None) -> list[dict[str, Any]]:

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


class LazyAppList(Sequence):
    """`available_apps` in every admin page's context, built on first use. Django builds it (a permission
    check and two URL reversals per model, ~1 ms) for every page; with unfold's sidebar navigation only a
    page that lists apps (the index, "All applications") reads it."""

    def __init__(self, site: LeadsiteAdminSite, request: HttpRequest) -> None:
        self._site, self._request = site, request

    @cached_property
    def _apps(self) -> list[dict[str, Any]]:
        return UnfoldAdminSite.get_app_list(self._site, self._request)

    def __getitem__(self, index: Any) -> Any:
        return self._apps[index]

    def __len__(self) -> int:
        return len(self._apps)


class LeadsiteAdminSite(UnfoldAdminSite):
    site_header = "leadsite back office"
    site_title = "leadsite"
    index_title = "Dashboard"
    # No public site behind the back office: "View site" is the back office's front page.
    site_url = "/admin/"

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        request._leadsite_lazy_apps = True  # Django's each_context asks get_app_list for available_apps
        try:
            return super().each_context(request)
        finally:
            del request._leadsite_lazy_apps

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        if app_label is None and getattr(request, "_leadsite_lazy_apps", False):
            return LazyAppList(self, request)  # type: ignore[return-value]  # a Sequence, read like the list
        return super().get_app_list(request, app_label)

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
