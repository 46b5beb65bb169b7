from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from leads.models import Lead
from logs.models import LogEntry
from notifications.models import Delivery

pytestmark = pytest.mark.django_db


def test_admin_dashboard_shows_todays_numbers(client, django_user_model):
    admin = django_user_model.objects.create_superuser("boss", "b@example.com", "pw-boss-123")
    now = timezone.now()
    Lead.objects.create(name="A", phone="+12065550101", source="web", status="new")
    Lead.objects.create(
        name="B", phone="+12065550102", source="web", status="contacted", first_contacted_at=now + timedelta(minutes=3)
    )
    Lead.objects.create(
        name="C", phone="+12065550103", source="ppc", status="won", first_contacted_at=now + timedelta(minutes=9)
    )
    Lead.objects.create(name="Spam", phone="+12065550104", source="web", status="spam")
    old = Lead.objects.create(name="Old", phone="+12065550105", source="web")
    Lead.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=10))
    Delivery.objects.create(
        key="k1", channel="#leads", event_type="new_lead", status="dead", last_error="channel_not_found"
    )
    LogEntry.objects.create(time=now, level=40, level_name="ERROR", service="worker", message="valuation exploded")

    client.force_login(admin)
    response = client.get("/admin/")
    assert response.status_code == 200
    d = response.context["dashboard"]
    assert d["counts"] == {"today": 3, "week": 3, "month": 4, "spam_month": 1}
    assert [(b["label"], b["value"]) for b in d["by_source"]] == [("web", 3), ("ppc", 1)]
    assert dict((b["key"], b["value"]) for b in d["funnel"]) == {
        "new": 4,
        "contacted": 2,
        "appointment": 1,
        "offer_made": 1,
        "under_contract": 1,
        "won": 1,
    }
    assert d["speed"]["median_minutes"] == 6.0
    assert d["speed"]["within_sla_pct"] == 50  # 3 min is within the 5-minute SLA, 9 min is not
    assert d["speed"]["waiting"] == 2
    assert d["failed_deliveries"] == 1
    html = response.content.decode()
    assert re.search(r'id="kpi-today" href="[^"]+">3<', html)
    assert "valuation exploded" in html
    assert "channel_not_found" in html


def test_dashboard_is_for_staff_only(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
