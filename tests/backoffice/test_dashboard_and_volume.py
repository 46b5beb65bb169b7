"""The dashboard's numbers lead to the rows behind them; seed_volume makes the bench's volume."""

from __future__ import annotations

import datetime as dt
import io
import logging

import pytest
from django.core.management import call_command
from django.utils import timezone

from leadsite.dashboard import dashboard_data
from logs.models import LogEntry
from notifications.models import Delivery

pytestmark = pytest.mark.django_db


def _count(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    return len(response.context["cl"].result_list)


def test_every_dashboard_number_links_to_a_list_with_that_many_rows(client, django_user_model, make_lead) -> None:
    client.force_login(django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-boss-123"))
    now = timezone.now()
    make_lead(status="new")
    make_lead(status="contacted", first_contacted_at=now, follow_up_at=now - dt.timedelta(hours=1))
    make_lead(status="won", first_contacted_at=now)
    make_lead(status="spam")
    old = make_lead(status="lost")
    type(old).objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(days=10))
    Delivery.objects.create(key="k1", channel="#leads", event_type="new_lead", status="dead", last_error="x")
    LogEntry.objects.create(time=now, level=logging.ERROR, level_name="ERROR", service="web", message="boom")
    d = dashboard_data()

    assert d["counts"] == {"today": 3, "week": 3, "month": 4, "spam_month": 1}
    for name, value in d["counts"].items():
        assert _count(client, d["links"][name]) == value, name
    for bar in d["funnel"] + d["by_source"]:
        assert _count(client, bar["href"]) == bar["value"], bar["label"]
    today = d["per_day"]["bars"][-1]
    assert today["value"] == 3 and _count(client, today["href"]) == 3
    assert d["per_day"]["bars"][-11]["value"] == 1 and len(d["per_day"]["bars"]) == 30
    assert _count(client, d["speed"]["waiting_href"]) == d["speed"]["waiting"] == 1
    assert _count(client, d["follow_ups_href"]) == d["follow_ups_overdue"] == 1
    assert _count(client, d["failed_href"]) == d["failed_deliveries"] == 1
    assert _count(client, d["errors_href"]) == d["errors_24h"] == 1
    assert client.get(d["payments"]["href"]).status_code == 200
    funnel = {bar["key"]: bar["label"] for bar in d["funnel"]}
    assert funnel["offer_made"] == "Offer Made"  # human labels, not raw values


@pytest.mark.django_db(transaction=True)  # it ends with VACUUM, which cannot run inside a transaction
def test_seed_volume_makes_leads_with_timelines_valuations_deliveries_and_logs() -> None:
    from leads.models import Lead, LeadEvent
    from valuation.models import Valuation

    call_command("seed_volume", leads=300, logs=2000, stdout=io.StringIO())
    call_command("seed_volume", leads=300, logs=2000, stdout=io.StringIO())  # again: replaces
    leads = Lead.objects.filter(source="seed-volume")
    assert leads.count() == 300
    assert LeadEvent.objects.filter(lead__source="seed-volume", kind="created").count() == 300
    assert LeadEvent.objects.filter(lead__source="seed-volume").count() > 900
    assert 150 < Valuation.objects.filter(lead__source="seed-volume").count() < 300
    assert Delivery.objects.filter(key__startswith="seed:").count() == 300
    assert LogEntry.objects.filter(logger="seed_volume").count() == 2000
    assert len(set(leads.exclude(assigned_to=None).values_list("assigned_to", flat=True))) == 10
    # The log indexes dropped for the load are back, valid, on the table and on every partition of it.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, count(*), bool_and(i.indisvalid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "WHERE c.relname = 'logs_logentry' OR c.oid IN "
            "(SELECT inhrelid FROM pg_inherits WHERE inhparent = 'logs_logentry'::regclass) GROUP BY c.relname"
        )
        tables = {name: (n, valid) for name, n, valid in cursor.fetchall()}
        # Vacuumed as autovacuum would (the trigram indexes' pending lists merged, visibility maps set).
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL AND relname IN "
            "('leads_lead', 'leads_leadevent', 'valuation_valuation', 'notifications_delivery')"
        )
        vacuumed = {name for (name,) in cursor.fetchall()}
    assert tables["logs_logentry"][0] >= 6 and len(tables) > 1
    assert set(tables.values()) == {(tables["logs_logentry"][0], True)}, tables
    assert vacuumed == {"leads_lead", "leads_leadevent", "valuation_valuation", "notifications_delivery"}
