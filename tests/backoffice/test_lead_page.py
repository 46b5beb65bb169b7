"""The lead page and lists as staff use them, through the admin's real views (Django test client)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.admin.models import LogEntry as AdminLogEntry
from django.utils import timezone

from leads.models import Lead, LeadEvent, OutboxEvent
from notifications.models import Delivery

pytestmark = pytest.mark.django_db


def _form(lead: Lead, **changes: object) -> dict[str, object]:
    """The change form as the browser posts it, unchanged unless told otherwise."""
    data: dict[str, object] = {
        "status": lead.status,
        "assigned_to": lead.assigned_to_id or "",
        "note": "",
        "follow_up_at_0": "",
        "follow_up_at_1": "",
        "follow_up_note": lead.follow_up_note,
        "latitude": "" if lead.latitude is None else lead.latitude,
        "longitude": "" if lead.longitude is None else lead.longitude,
        "beds": lead.beds if lead.beds is not None else "",
        "baths": lead.baths if lead.baths is not None else "",
        "living_area_sqft": lead.living_area_sqft or "",
        "lot_sqft": lead.lot_sqft or "",
        "year_built": lead.year_built or "",
        "property_type": lead.property_type,
        "_continue": "1",
        # The offers inline's management form (read-only rows; a browser posts these too).
        "offers-TOTAL_FORMS": "0",
        "offers-INITIAL_FORMS": "0",
        "offers-MIN_NUM_FORMS": "0",
        "offers-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture
def rita(client, make_staff):
    user = make_staff("rita", first_name="Rita", last_name="Rep")
    client.force_login(user)
    return user


def test_save_and_continue_without_a_change_says_so_and_writes_nothing(client, rita, make_lead) -> None:
    lead = make_lead(assigned_to=rita)
    url = f"/admin/leads/lead/{lead.id}/change/"
    response = client.post(url, _form(lead), follow=True)
    assert response.status_code == 200
    assert _messages(response) == ["No changes to save."]
    assert not LeadEvent.objects.filter(lead=lead).exists()
    assert not AdminLogEntry.objects.exists()
    assert "changed successfully" not in response.content.decode()


def test_the_lead_page_changes_go_through_the_services(client, rita, make_staff, make_lead) -> None:
    tom = make_staff("tom", first_name="Tom", last_name="Teammate")
    lead = make_lead(assigned_to=rita, latitude=None, longitude=None)
    url = f"/admin/leads/lead/{lead.id}/change/"
    response = client.post(
        url,
        _form(
            lead,
            status="contacted",
            assigned_to=tom.pk,
            note="Left a voicemail",
            follow_up_at_0="2030-01-02",
            follow_up_at_1="09:30",
            follow_up_note="Call again",
            latitude="47.621",
            longitude="-122.331",
        ),
        follow=True,
    )
    assert _messages(response) == ["Saved: status, assignee, note, follow-up, property facts (valuation re-queued)."]
    lead.refresh_from_db()
    assert (lead.status, lead.assigned_to_id, lead.latitude, lead.longitude) == ("contacted", tom.pk, 47.621, -122.331)
    assert lead.first_contacted_at is not None
    assert lead.follow_up_at == dt.datetime(2030, 1, 2, 9, 30, tzinfo=dt.UTC)
    events = {e.kind: e for e in LeadEvent.objects.filter(lead=lead)}
    assert set(events) == {"status", "assigned", "note", "follow_up", "property"}
    assert all(e.actor_id == rita.pk for e in events.values())
    assert events["note"].message == "Left a voicemail"
    assert events["status"].message == "Status new → contacted by Rita Rep"
    # The same side effects as the API: a Slack status reply and a valuation through the outbox.
    assert Delivery.objects.filter(event_type="lead_status", lead_id=lead.id).exists()
    assert OutboxEvent.objects.filter(
        key=f"lead:{lead.id}:valuation:facts:{events['property'].id}", task_name="valuation.value_lead"
    ).exists()


def test_a_move_the_pipeline_forbids_is_a_form_error_and_nothing_is_written(client, rita, make_lead) -> None:
    lead = make_lead(assigned_to=rita)
    response = client.post(f"/admin/leads/lead/{lead.id}/change/", _form(lead, status="won", note="done!"))
    assert response.status_code == 200
    assert "Select a valid choice" in str(response.context["adminform"].form.errors["status"])
    lead.refresh_from_db()
    assert lead.status == "new"
    assert not LeadEvent.objects.filter(lead=lead).exists()


def test_only_members_of_acquisitions_can_be_assigned(client, rita, make_staff, make_lead) -> None:
    outsider = make_staff("olga", group=None)
    manager = make_staff("max", group="Managers")
    lead = make_lead(assigned_to=rita)
    page = client.get(f"/admin/leads/lead/{lead.id}/change/")
    choices = [label for value, label in page.context["adminform"].form.fields["assigned_to"].choices if value]
    assert choices == ["Rita Rep"]
    for user in (outsider, manager):
        response = client.post(f"/admin/leads/lead/{lead.id}/change/", _form(lead, assigned_to=user.pk))
        assert "assigned_to" in response.context["adminform"].form.errors
    assert Lead.objects.get(pk=lead.pk).assigned_to_id == rita.pk


def test_bad_property_facts_are_form_errors(client, rita, make_lead) -> None:
    lead = make_lead(assigned_to=rita)
    response = client.post(f"/admin/leads/lead/{lead.id}/change/", _form(lead, beds="-2", latitude="north"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"beds", "latitude"}
    assert not LeadEvent.objects.filter(lead=lead).exists()


def test_the_lead_page_shows_phone_links_money_and_the_timeline_newest_first(client, rita, make_lead) -> None:
    from valuation.models import Valuation

    lead = make_lead(phone="+12065550171", assigned_to=rita, asking_price="1249999.60")
    old = LeadEvent.objects.create(lead=lead, kind="created", message="New lead from website")
    LeadEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=2))
    LeadEvent.objects.create(lead=lead, kind="note", message="Called back", actor=rita)
    result = {
        "status": "ok",
        "estimate": 1420000,
        "low": 1300000,
        "high": 1550000,
        "confidence": 0.72,
        "as_of": "2015-06-05",
        "comps": [
            {
                "sale_id": "s1",
                "price": 1399000,
                "date": "2015-05-01",
                "distance_miles": 0.2,
                "living_area_sqft": 2100,
                "indicated_value": 1415000,
                "weight": 0.4,
            },
        ],
    }
    Valuation.objects.create(
        lead=lead,
        status="ok",
        estimate=1420000,
        low=1300000,
        high=1550000,
        confidence=0.72,
        as_of=dt.date(2015, 6, 5),
        result=result,
        comps=result["comps"],
    )
    html = client.get(f"/admin/leads/lead/{lead.id}/change/").content.decode()
    assert '<a href="tel:+12065550171"' in html and "Call (206) 555-0171" in html
    assert 'href="sms:+12065550171"' in html
    assert "$1,420,000" in html and "$1,300,000 – $1,550,000" in html and "72%" in html
    assert "$1,399,000" in html and "1420000" not in html.split('id="valuation"')[1]
    timeline = html.split('id="lead-timeline"')[1]
    assert timeline.index("Called back") < timeline.index("New lead from website")
    assert "Rita Rep" in timeline
    assert "$1,250,000" in html and "1249999" not in html  # whole dollars with separators


@pytest.mark.parametrize(
    "query", ["206-555-0171", "(206) 555-0171", "555-0171", "+1 206 555 0171", "ADA@example.com", "ada sel", "12 Elm"]
)
def test_search_finds_a_lead_by_phone_in_any_format_email_name_or_address(client, rita, make_lead, query) -> None:
    make_lead(name="Ada Seller", phone="+12065550171", email="ada@example.com", address="12 Elm St, Seattle, WA")
    make_lead(name="Bo Other", phone="+12535550172", email="bo@example.com", address="9 Oak St, Tacoma, WA")
    response = client.get("/admin/leads/lead/", {"q": query})
    assert [lead.name for lead in response.context["cl"].result_list] == ["Ada Seller"]


def test_leads_are_archived_never_deleted(client, make_staff, make_lead, django_user_model) -> None:
    boss = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(boss)
    lead, other = make_lead(name="Old Lead"), make_lead(name="Live Lead")
    listing = client.get("/admin/leads/lead/")
    assert "delete_selected" not in listing.context["cl"].model_admin.get_actions(listing.wsgi_request)
    assert client.get(f"/admin/leads/lead/{lead.id}/delete/").status_code == 403
    response = client.post(
        "/admin/leads/lead/", {"action": "archive_selected", "_selected_action": [str(lead.id)]}, follow=True
    )
    assert _messages(response) == ["1 lead(s) archived."]
    names = [x.name for x in client.get("/admin/leads/lead/").context["cl"].result_list]
    assert names == ["Live Lead"]
    archived = [x.name for x in client.get("/admin/leads/lead/", {"queue": "archived"}).context["cl"].result_list]
    assert archived == ["Old Lead"]
    assert Lead.objects.filter(pk=lead.pk).exists() and other.pk
    assert LeadEvent.objects.get(lead=lead, kind="archived").actor_id == boss.pk


def test_a_rep_lands_on_my_leads_open_and_follow_up_due_first(client, rita, make_lead, make_staff) -> None:
    now = timezone.now()
    make_lead(name="No follow-up", assigned_to=rita)
    make_lead(name="Due later", assigned_to=rita, follow_up_at=now + dt.timedelta(days=2))
    make_lead(name="Overdue", assigned_to=rita, follow_up_at=now - dt.timedelta(hours=3))
    make_lead(name="Won already", assigned_to=rita, status="won")
    make_lead(name="Someone else's", assigned_to=make_staff("tom"))
    landing = client.get("/admin/")
    assert landing.status_code == 302 and landing["Location"] == "/admin/leads/lead/?queue=mine"
    response = client.get(landing["Location"])
    assert [lead.name for lead in response.context["cl"].result_list] == ["Overdue", "Due later", "No follow-up"]
    assert response.context["title"] == "My leads"


def test_managers_and_superusers_land_on_the_dashboard_and_view_site_stays_in_the_back_office(
    client, make_staff
) -> None:
    client.force_login(make_staff("max", group="Managers"))
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "dashboard" in response.context
    assert response.context["site_url"] == "/admin/"
    assert re.search(r'href="/admin/"', response.content.decode())
