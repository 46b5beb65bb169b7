"""Follow-ups: a reminder in the lead's Slack thread, mentioning the assignee, once per follow-up."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leads.models import LeadEvent
from leads.services import lead_follow_up_reminders_send, lead_set_follow_up
from notifications.models import Delivery, StaffProfile
from notifications.services import delivery_send, notify

pytestmark = pytest.mark.django_db


def test_a_follow_up_coming_due_posts_one_reminder_in_the_thread_mentioning_the_assignee(
    fake_slack, slack_settings, make_staff, make_lead, django_capture_on_commit_callbacks
) -> None:
    rita = make_staff("rita", first_name="Rita", last_name="Rep")
    StaffProfile.objects.create(user=rita, slack_user_id="U0RITA")
    lead = make_lead(name="Ada Seller", assigned_to=rita)
    notify(event_type="new_lead", key=f"lead:{lead.id}:new_lead", lead_id=lead.id, context={"name": lead.name})
    delivery_send(delivery_id=Delivery.objects.get(key=f"lead:{lead.id}:new_lead").pk)
    thread = fake_slack.messages()[0].ts
    now = timezone.now()
    lead_set_follow_up(lead_id=lead.id, at=now + dt.timedelta(minutes=10), note="Send the offer letter", actor=rita)

    assert lead_follow_up_reminders_send(now=now) == 1
    assert lead_follow_up_reminders_send(now=now + dt.timedelta(minutes=1)) == 0  # once per follow-up

    reminder = Delivery.objects.get(event_type="follow_up_due")
    delivery_send(delivery_id=reminder.pk)
    posted = fake_slack.messages()[-1]
    assert posted.thread_ts == thread
    assert "<@U0RITA>" in posted.text
    assert posted.text.startswith("📆 *Follow-up due:* Ada Seller")
    assert "Send the offer letter" in posted.text
    assert len(fake_slack.messages()) == 2


def test_a_new_follow_up_date_gets_its_own_reminder_and_far_or_closed_ones_none(make_staff, make_lead) -> None:
    rita = make_staff("rita")
    now = timezone.now()
    lead = make_lead(assigned_to=rita)
    far = make_lead(assigned_to=rita)
    won = make_lead(assigned_to=rita, status="won")
    lead_set_follow_up(lead_id=lead.id, at=now + dt.timedelta(minutes=5))
    lead_set_follow_up(lead_id=far.id, at=now + dt.timedelta(days=2))
    lead_set_follow_up(lead_id=won.id, at=now - dt.timedelta(minutes=5))

    assert lead_follow_up_reminders_send(now=now) == 1
    lead_set_follow_up(lead_id=lead.id, at=now + dt.timedelta(minutes=14))  # moved: a new follow-up
    assert lead_follow_up_reminders_send(now=now) == 1
    keys = sorted(Delivery.objects.filter(event_type="follow_up_due").values_list("key", flat=True).distinct())
    assert len(keys) == 2 and all(key.startswith(f"lead:{lead.id}:follow_up:") for key in keys)
    assert LeadEvent.objects.filter(lead=lead, kind="follow_up").count() == 2


def test_setting_the_same_follow_up_again_writes_nothing(make_lead) -> None:
    lead = make_lead()
    at = timezone.now() + dt.timedelta(days=1)
    lead_set_follow_up(lead_id=lead.id, at=at, note="call back")
    lead_set_follow_up(lead_id=lead.id, at=at, note="call back")
    assert LeadEvent.objects.filter(lead=lead, kind="follow_up").count() == 1
