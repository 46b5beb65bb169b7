"""leadsite.unfold_speed computes once what unfold computes per row or per call: the HTML must be the same."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from django.utils import timezone

from leads.models import OutboxEvent
from leadsite import unfold_speed
from logs.models import LogEntry
from notifications.models import Delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-boss-123", first_name="Bo")
    client.force_login(user)
    return user


@pytest.fixture
def varied_rows(boss, make_lead, make_staff) -> None:
    """Rows that take every branch the lists have: empty and set values, a breached, a met and a running SLA,
    overdue and future follow-ups, unassigned leads, HTML in a name, booleans, foreign keys, auto ids."""
    now = timezone.now()
    rita = make_staff("rita", first_name="Rita")
    make_lead(name='<b>Ada</b> & "Co"', assigned_to=rita, follow_up_at=now - dt.timedelta(hours=2))
    make_lead(status="contacted", first_contacted_at=now, follow_up_at=now + dt.timedelta(days=1))
    make_lead(status="contacted", first_contacted_at=now, sla_breached_at=now, phone="")
    make_lead(status="spam", source="")
    make_lead(status="appointment", assigned_to=boss, follow_up_at=now + dt.timedelta(hours=3))
    OutboxEvent.objects.create(key="lead:x:assign", task_name="leads.assign", published_at=now)
    OutboxEvent.objects.create(key="lead:y:assign", task_name="leads.assign", last_error="<broker down>")
    Delivery.objects.create(key="k1", channel="#leads", event_type="new_lead", status="dead", last_error="<oops>")
    Delivery.objects.create(key="k2", channel="#leads", event_type="new_lead", status="sent")
    LogEntry.objects.create(time=now, level=logging.ERROR, level_name="ERROR", service="web", message="a <b>")


@pytest.mark.parametrize(
    "url",
    [
        "/admin/leads/lead/",
        "/admin/leads/lead/?queue=mine",
        "/admin/leads/lead/?status__exact=contacted&o=-3.2&q=Seller",
        "/admin/leads/lead/?_popup=1&_to_field=id",
        "/admin/leads/outboxevent/",
        "/admin/notifications/delivery/",
        "/admin/logs/logentry/",
        "/admin/auth/user/",
    ],
)
def test_planned_rows_are_the_cells_unfold_renders(client, varied_rows, url) -> None:
    response = client.get(url)
    assert response.status_code == 200
    cl = response.context["cl"]
    rows = list(cl.result_list)
    assert rows, url
    for row in rows:
        expected = list(unfold_speed._unfold_items_for_result(cl, row, None))
        assert list(unfold_speed.items_for_result_planned(cl, row, None)) == expected


def test_the_prerendered_checkbox_is_the_widget_unfold_renders() -> None:
    checkbox = unfold_speed.PrerenderedCheckbox(unfold_speed._UNFOLD_CHECKBOX)
    for pk in ("665072f7-bd45-29f0-4516-f6abb1294a9c", '7"<b>&x', "42"):
        expected = unfold_speed._UNFOLD_CHECKBOX.render("_selected_action", pk)
        assert checkbox.render("_selected_action", pk) == expected
        assert checkbox.render("_selected_action", pk) == expected  # and again, from the stored render


@pytest.mark.parametrize("value", [True, False, None, "", 1, 0, "yes"])
def test_a_stored_boolean_icon_is_the_one_unfold_renders(value) -> None:
    assert unfold_speed.boolean_icon_once(value) == unfold_speed._unfold_boolean_icon(value)
    assert unfold_speed.boolean_icon_once(value) == unfold_speed._unfold_boolean_icon(value)


@pytest.mark.parametrize("who", ["boss", "rep"])
def test_the_kept_sidebar_is_the_one_unfold_renders(rf, boss, make_staff, who) -> None:
    """The sidebar's links are kept per distinct set of links, permissions and active item: each page gets
    exactly what unfold's app_list.html renders for it, the active item and the permitted links included."""
    from django.contrib import admin
    from django.template import Context, engines

    user = boss if who == "boss" else make_staff("rita")
    engine = engines["django"].engine
    kept = engine.from_string("{% load leadsite_sidebar %}{% sidebar_app_list %}")
    unfolds = engine.from_string('{% include "unfold/helpers/app_list.html" with app_list=available_apps %}')
    pages = {}
    for url in (
        "/admin/logs/logentry/",
        "/admin/leads/lead/?queue=mine",
        "/admin/leads/lead/",
        "/admin/logs/logentry/",
    ):
        request = rf.get(url)
        request.user = user
        context = admin.site.each_context(request)
        expected = unfolds.render(Context(context))
        assert kept.render(Context(context)) == expected
        assert kept.render(Context(context)) == expected  # and again, kept
        pages[url] = expected
    assert len(set(pages.values())) == 3  # the active item differs
    active = re.compile(r'href="/admin/logs/logentry/" class="[^"]* active"')
    assert active.search(pages["/admin/logs/logentry/"]) and not active.search(pages["/admin/leads/lead/"])
    assert ("API keys" in pages["/admin/leads/lead/"]) == (who == "boss")  # a rep is not shown Settings
