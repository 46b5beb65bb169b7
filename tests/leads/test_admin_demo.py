from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model

from leads.demo import seed
from leads.models import Lead, LeadEvent, OutboxEvent
from leads.tasks import fan_out
from notifications.models import Delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456")
    client.force_login(user)
    client.user = user
    return client


def test_demo_seed_makes_group_and_leads_once(admin_client):
    get_user_model().objects.create_user("demo", is_staff=True)
    seed(io.StringIO())
    seed(io.StringIO())
    assert Lead.objects.filter(source="Demo website form").count() == 3
    assert get_user_model().objects.get(username="demo").groups.filter(name="Acquisitions").exists()
    assert Lead.objects.get(name="王小明").extra == {"how_did_you_hear": "a friend"}
    # The demo fans its leads out at once: each has its timeline entry and its Slack message.
    assert LeadEvent.objects.filter(kind="created").count() == 3
    assert Delivery.objects.filter(event_type="new_lead").count() == 3


def test_admin_list_detail_actions_and_csv(admin_client, post_lead):
    lead_id = post_lead().json()["id"]
    fan_out(lead_id)
    changelist = admin_client.get("/admin/leads/lead/?status__exact=new&q=Jane")
    assert changelist.status_code == 200 and "Jane Seller" in changelist.content.decode()
    detail = admin_client.get(f"/admin/leads/lead/{lead_id}/change/")
    assert detail.status_code == 200 and "New lead from Example form" in detail.content.decode()

    admin_client.post("/admin/leads/lead/", {"action": "assign_to_me", "_selected_action": [lead_id]})
    assert Lead.objects.get(id=lead_id).assigned_to == admin_client.user
    admin_client.post("/admin/leads/lead/", {"action": "mark_contacted", "_selected_action": [lead_id]})
    lead = Lead.objects.get(id=lead_id)
    assert lead.status == "contacted" and lead.first_contacted_at is not None
    refused = admin_client.post(
        "/admin/leads/lead/", {"action": "mark_spam", "_selected_action": [lead_id]}, follow=True
    )
    assert "a contacted lead cannot become spam" in refused.content.decode()
    assert list(LeadEvent.objects.filter(lead_id=lead_id).values_list("kind", flat=True)) == [
        "created",
        "assigned",
        "status",
    ]

    export = admin_client.post("/admin/leads/lead/", {"action": "export_csv", "_selected_action": [lead_id]})
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert lines[0].startswith("id,created_at,status,name,phone,email,address")
    assert lines[1].startswith(f"{lead_id},") and ",contacted,Jane Seller,+12065550123," in lines[1]


def test_outbox_admin_lists_events(admin_client, post_lead):
    post_lead()
    response = admin_client.get("/admin/leads/outboxevent/?published_at__isempty=1")
    assert response.status_code == 200
    assert list(OutboxEvent.objects.values_list("task_name", flat=True)) == ["leads.fan_out"]
