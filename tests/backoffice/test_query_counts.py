"""The busy screens cost the same number of queries whatever the number of rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads.models import LeadEvent

pytestmark = pytest.mark.django_db


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


@pytest.fixture
def rita(client, make_staff):
    user = make_staff("rita", first_name="Rita")
    client.force_login(user)
    return user


def _leads(make_lead, make_staff, user, n: int, start: int) -> None:
    tom = make_staff(f"tom{start}") if start else user
    for i in range(n):
        make_lead(assigned_to=user if i % 2 else tom, follow_up_at=timezone.now() + dt.timedelta(hours=i))


@pytest.mark.parametrize("url", ["/admin/leads/lead/", "/admin/leads/lead/?queue=mine", "/admin/leads/lead/?q=555"])
def test_lead_lists_take_a_constant_number_of_queries(client, rita, make_lead, make_staff, url) -> None:
    _leads(make_lead, make_staff, rita, 3, 0)
    few = _queries(client, url)
    _leads(make_lead, make_staff, rita, 30, 1)
    assert _queries(client, url) == few


def test_the_lead_page_takes_a_constant_number_of_queries(client, rita, make_lead, make_staff) -> None:
    lead = make_lead(assigned_to=rita)
    for i in range(3):
        LeadEvent.objects.create(lead=lead, kind="note", message=f"note {i}", actor=rita)
    url = f"/admin/leads/lead/{lead.id}/change/"
    _queries(client, url)  # per-process caches (content types) filled: only the rows may change the count
    few = _queries(client, url)
    for i in range(30):
        LeadEvent.objects.create(lead=lead, kind="note", message=f"more {i}", actor=make_staff(f"u{i}"))
    assert _queries(client, url) == few


def test_the_lead_page_reads_each_panel_once(client, rita, make_lead) -> None:
    # unfold resolves a read-only field when it builds it and asks for its contents three times more.
    lead = make_lead(assigned_to=rita)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(f"/admin/leads/lead/{lead.id}/change/").status_code == 200
    tables = [q["sql"].split(" FROM ", 1)[1].split()[0] for q in ctx.captured_queries if " FROM " in q["sql"]]
    for table in ('"leads_leadevent"', '"valuation_valuation"', '"notifications_delivery"'):
        assert tables.count(table) == 1, (table, tables)
