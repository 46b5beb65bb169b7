"""The lead page's read-only evidence as compact tables: speed to lead, where the lead came from, the consent
proof. One panel instead of a read-only field per value: unfold renders each field through four templates
(~0.6 ms apiece), and these twenty values are read, never edited."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from leads.models import Lead

EMPTY = "—"


def _when(value: datetime.datetime | None) -> str:
    return timezone.localtime(value).strftime("%b %d %Y %H:%M:%S") if value else EMPTY


def _request_logs_url(request_id: str) -> str:
    return f"{reverse('admin:logs_logentry_changelist')}?{urlencode({'request_id': request_id})}"


def facts_table(table_id: str, rows: Iterable[tuple[str, Any]]) -> SafeString:
    body = format_html_join(
        "",
        "<tr><th>{}</th><td>{}</td></tr>",
        ((label, EMPTY if value in (None, "") else value) for label, value in rows),
    )
    return format_html('<table class="ls-table ls-facts" id="{}"><tbody>{}</tbody></table>', table_id, body)


def speed_panel(lead: Lead) -> SafeString:
    return facts_table(
        "lead-speed",
        [
            ("arrived", _when(lead.created_at)),
            ("first contact", _when(lead.first_contacted_at)),
            ("SLA breached", _when(lead.sla_breached_at)),
            ("claimed in Slack", _when(lead.claimed_at)),
            ("archived", _when(lead.archived_at)),
        ],
    )


def source_panel(lead: Lead) -> SafeString:
    request = (
        format_html('<a href="{}">{}</a>', _request_logs_url(lead.request_id), lead.request_id)
        if lead.request_id
        else ""
    )
    page = (
        format_html('<a href="{}" rel="noopener noreferrer">{}</a>', lead.page_url, lead.page_url)
        if lead.page_url
        else ""
    )
    extra = format_html("<pre>{}</pre>", json.dumps(lead.extra, indent=2, ensure_ascii=False)) if lead.extra else ""
    return facts_table(
        "lead-source",
        [
            ("source", lead.source),
            ("API key", lead.api_key.name if lead.api_key_id and lead.api_key else ""),
            ("utm_source", lead.utm_source),
            ("utm_medium", lead.utm_medium),
            ("utm_campaign", lead.utm_campaign),
            ("utm_term", lead.utm_term),
            ("utm_content", lead.utm_content),
            ("page", page),
            ("request id", request),
            ("other answers", extra),
        ],
    )


def consent_panel(lead: Lead) -> SafeString:
    return facts_table(
        "lead-consent",
        [
            ("consent given", "yes" if lead.consent else "no"),
            ("text agreed to", lead.consent_text),
            ("at", _when(lead.consent_at)),
            ("from address", lead.consent_ip),
            ("browser", lead.consent_user_agent),
        ],
    )
