"""End to end with a real Celery worker posting to the fake Slack."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from notifications.models import Delivery
from notifications.services import deliveries_sweep, notify
from tests.notifications.conftest import new_lead_context

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


def _new_lead(make_lead, **fields):
    lead = make_lead(**fields)
    with transaction.atomic():
        notify(event_type="new_lead", context=new_lead_context(lead), key=f"lead:{lead.id}:new_lead", lead_id=lead.id)
    return lead


def test_new_lead_posts_once_and_later_events_reply_in_its_thread(slack_worker, fake_slack, make_lead) -> None:
    slack_worker()
    lead = make_lead(name="Ann Seller", phone="+12065550100")
    with transaction.atomic():
        notify(event_type="new_lead", context=new_lead_context(lead), key=f"lead:{lead.id}:new_lead", lead_id=lead.id)
        # Same transaction, queued together: the replies must wait for the parent, not go top-level.
        notify(
            event_type="valuation_ready",
            context={"estimate": 650000, "low": 600000, "high": 700000},
            key=f"lead:{lead.id}:valuation_ready",
            lead_id=lead.id,
        )
        notify(
            event_type="lead_claimed",
            context={"name": lead.name, "claimed_by": "Bob"},
            key=f"lead:{lead.id}:lead_claimed",
            lead_id=lead.id,
        )
        notify(event_type="new_lead", context=new_lead_context(lead), key=f"lead:{lead.id}:new_lead", lead_id=lead.id)

    assert fake_slack.wait_for(lambda: len(fake_slack.messages()) >= 3, timeout=30)
    time.sleep(1)  # anything extra would show up now
    messages = fake_slack.messages()
    new_lead_messages = [m for m in messages if m.text.startswith("🔥 *New Lead!*")]
    assert len(messages) == 3 and len(new_lead_messages) == 1
    parent = new_lead_messages[0]
    assert parent.text == "🔥 *New Lead!*\nAnn Seller · +12065550100\n1 Main St, Seattle, WA"
    assert parent.thread_ts is None
    replies = sorted(m.text.split("\n")[0] for m in messages if m is not parent)
    assert replies == ["🏠 *Valuation ready*", "🙋 *Claimed!* Bob took Ann Seller"]
    assert all(m.thread_ts == parent.ts for m in messages if m is not parent)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_thirty_leads_in_a_second_all_arrive_once_at_the_channel_rate(slack_worker, fake_slack, make_lead) -> None:
    fake_slack.enforce_rate(per_second=1, burst=3)
    slack_worker(concurrency=2)
    started = time.monotonic()
    leads = [_new_lead(make_lead, name=f"Lead {i:02d}") for i in range(30)]
    assert time.monotonic() - started < 1.5  # notify never waits for Slack

    assert fake_slack.wait_for(lambda: len(fake_slack.messages()) >= 30, timeout=60)
    elapsed = fake_slack.messages()[-1].at - started
    time.sleep(1.5)
    texts = [m.text.split("\n")[1].split(" · ")[0] for m in fake_slack.messages()]
    assert sorted(texts) == sorted(lead.name for lead in leads)  # all 30, none twice
    assert Delivery.objects.filter(status="sent").count() == 30
    # Our limiter (burst 2, then 1/s) allows the 30th message at ~28 s; Slack's (burst 3) at ~27 s.
    assert 26.5 <= elapsed <= 36, elapsed
    rejected = fake_slack.outcomes().count("ratelimited")
    print(f"30 messages: last one {elapsed:.1f}s after the first notify; Slack 429s: {rejected}")
    assert rejected <= 3, fake_slack.outcomes()


def test_worker_killed_mid_post_still_delivers_once(slack_worker, fake_slack, make_lead, slack_settings) -> None:
    first = slack_worker(SLACK_TIMEOUT_SECONDS="30")
    fake_slack.fail_next("chat.postMessage", "hang")
    lead = _new_lead(make_lead, name="Kim Killed")

    assert fake_slack.hung.wait(20), first.output()
    delivery = Delivery.objects.get()
    assert delivery.status == "sending"
    first.kill()  # SIGKILL while Slack has not answered

    slack_settings.SLACK_SENDING_STALE_SECONDS = 2
    slack_worker()
    time.sleep(2.2)
    assert deliveries_sweep() == {"stuck": 1, "requeued": 1}

    assert fake_slack.wait_for(lambda: len(fake_slack.messages()) >= 1, timeout=20)
    time.sleep(1)
    [message] = fake_slack.messages()
    assert message.text.startswith(f"🔥 *New Lead!*\n{lead.name}")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.ts) == ("sent", 2, message.ts)
    assert deliveries_sweep() == {"stuck": 0, "requeued": 0}
