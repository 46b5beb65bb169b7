from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse


class LeadsiteAdminSite(admin.AdminSite):
    site_header = "leadsite back office"
    site_title = "leadsite"
    index_title = "Today"
    index_template = "admin/leadsite_index.html"

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        from leadsite.dashboard import dashboard_data_cached

        return super().index(request, {**(extra_context or {}), "dashboard": dashboard_data_cached()})
