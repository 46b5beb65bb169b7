"""The delivery engine, called directly in this process against the fake Slack."""

from __future__ import annotations

import datetime
import time

import pytest
from django.utils import timezone

from notifications.models import Alert, Delivery, DeliveryStatus
from notifications.services import Later, deliveries_sweep, delivery_send, message_update, notify
from notifications.tasks import send_delivery, update_message
from tests.notifications.conftest import new_lead_context

pytestmark = pytest.mark.django_db


def _notify_new_lead(lead) -> Delivery:
    notify(event_type="new_lead", context=new_lead_context(lead), key=f"lead:{lead.id}:new_lead", lead_id=lead.id)
    return Delivery.objects.get(key=f"lead:{lead.id}:new_lead")


def test_send_posts_once_and_a_redelivered_task_is_a_no_op(fake_slack, slack_settings, make_lead) -> None:
    lead = make_lead(name="Ann <!channel>")
    delivery = _notify_new_lead(lead)

    assert delivery_send(delivery_id=delivery.pk) is None
    assert delivery_send(delivery_id=delivery.pk) is None  # the same task again (redelivery)

    [message] = fake_slack.messages()
    assert message.channel == "#leads"
    assert message.text == "🔥 *New Lead!*\nAnn &lt;!channel&gt; · +12065550100\n1 Main St, Seattle, WA"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.ts, delivery.last_error) == ("sent", 1, message.ts, "")


def test_lead_events_reply_in_the_thread_of_the_first_message(fake_slack, slack_settings, make_lead) -> None:
    lead = make_lead()
    parent = _notify_new_lead(lead)
    notify(event_type="valuation_ready", context={"estimate": 500000}, key=f"lead:{lead.id}:val", lead_id=lead.id)
    reply = Delivery.objects.get(key=f"lead:{lead.id}:val")

    # The parent is not posted yet: the reply waits instead of going top-level.
    later = delivery_send(delivery_id=reply.pk)
    reply.refresh_from_db()
    assert later == Later(2.0, planned=reply.next_attempt_at)
    assert fake_slack.messages() == []

    delivery_send(delivery_id=parent.pk)
    delivery_send(delivery_id=reply.pk)
    first, second = fake_slack.messages()
    assert first.thread_ts is None
    assert second.thread_ts == first.ts
    assert second.text == "🏠 *Valuation ready*\n$500,000"
    reply.refresh_from_db()
    assert reply.thread_ts == first.ts


def test_429_reschedules_after_retry_after_without_counting_an_attempt(fake_slack, slack_settings, make_lead) -> None:
    delivery = _notify_new_lead(make_lead())
    fake_slack.fail_next("chat.postMessage", "ratelimited", retry_after=7)

    later = delivery_send(delivery_id=delivery.pk)

    assert later is not None and 7 <= later.countdown <= 7.5
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 0, "ratelimited")
    assert fake_slack.outcomes() == ["ratelimited"]


def test_transient_errors_back_off_then_go_dead_with_an_alert(fake_slack, slack_settings, make_lead) -> None:
    slack_settings.SLACK_MAX_ATTEMPTS = 2
    delivery = _notify_new_lead(make_lead())
    fake_slack.fail_next("chat.postMessage", "http_500", times=2)

    later = delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert later is not None and 1 <= later.countdown <= 4
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.last_error == "http_500"

    assert delivery_send(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 2)
    alert = Alert.objects.get()
    assert alert.severity == "critical"
    assert alert.message.startswith("Slack new_lead to #leads failed for good: http_500")
    assert list(Delivery.objects.filter(event_type="alert").values_list("channel", "status")) == [("#leads", "pending")]


def test_permanent_error_is_dead_at_once_and_alert_failures_do_not_recurse(
    fake_slack, slack_settings, make_lead
) -> None:
    delivery = _notify_new_lead(make_lead())
    fake_slack.fail_next("chat.postMessage", "channel_not_found", times=2)

    assert delivery_send(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("dead", 1, "channel_not_found")

    alert_delivery = Delivery.objects.get(event_type="alert")
    assert delivery_send(delivery_id=alert_delivery.pk) is None
    alert_delivery.refresh_from_db()
    assert alert_delivery.status == "dead"
    assert Alert.objects.count() == 1  # no alert about the failed alert
    assert fake_slack.outcomes() == ["channel_not_found", "channel_not_found"]


def test_sweeper_requeues_rows_stuck_in_sending(fake_slack, slack_settings, make_lead) -> None:
    slack_settings.SLACK_SENDING_STALE_SECONDS = 60
    stuck = _notify_new_lead(make_lead())
    fresh = _notify_new_lead(make_lead())
    long_ago = timezone.now() - datetime.timedelta(seconds=61)
    Delivery.objects.filter(pk=stuck.pk).update(status="sending", claimed_at=long_ago, next_attempt_at=long_ago)
    Delivery.objects.filter(pk=fresh.pk).update(status="sending", claimed_at=timezone.now())

    result = deliveries_sweep()

    assert result == {"stuck": 1, "requeued": 1}
    assert dict(Delivery.objects.values_list("pk", "status")) == {stuck.pk: "pending", fresh.pk: "sending"}
    # A task for the in-flight row does nothing; the re-queued one posts.
    assert delivery_send(delivery_id=fresh.pk) is None
    delivery_send(delivery_id=stuck.pk)
    assert len(fake_slack.messages()) == 1


def test_rate_limiter_spreads_a_burst_into_reserved_slots(fake_slack, slack_settings, make_lead) -> None:
    slack_settings.SLACK_CHANNEL_BURST = 2
    deliveries = [_notify_new_lead(make_lead()) for _ in range(4)]

    before = time.time()
    results = [delivery_send(delivery_id=d.pk) for d in deliveries]
    after = time.time()

    assert results[:2] == [None, None]
    # Two go at once, then one a second, counted from the first reservation (somewhere between
    # `before` and `after`; on a loaded machine the calls themselves take a while).
    assert before + 0.95 <= results[2].slot <= after + 1.05
    assert results[3].slot - results[2].slot == pytest.approx(1.0, abs=0.05)
    assert 0 < results[2].countdown <= 1.05 and results[2].countdown < results[3].countdown <= 2.05
    assert len(fake_slack.messages()) == 2
    assert DeliveryStatus.PENDING == Delivery.objects.get(pk=deliveries[3].pk).status


def test_console_backend_without_token_records_sent(settings, make_lead, capsys) -> None:
    settings.SLACK_BOT_TOKEN = ""
    delivery = _notify_new_lead(make_lead(name="Con Sole"))

    delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.ts
    out = capsys.readouterr().out
    assert "[slack console] chat.postMessage" in out and "Con Sole" in out


def test_sweeper_adds_a_task_for_an_overdue_row_without_superseding_its_late_one(
    fake_slack, slack_settings, make_lead
) -> None:
    slack_settings.SLACK_CHANNEL_BURST = 1
    delivery = _notify_new_lead(make_lead(name="Ann Seller"))
    # Its task is late (a backed-up queue) or lost: the row looks overdue to the sweeper.
    late = timezone.now() - datetime.timedelta(minutes=5)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=late)

    assert deliveries_sweep() == {"stuck": 0, "requeued": 1}
    delivery.refresh_from_db()
    # The stamp stays: the queued task is still valid, the sweeper's is an extra copy of it.
    assert delivery.next_attempt_at == late and delivery.requeued_at is not None
    # Not again while SLACK_REQUEUE_SECONDS has not passed: a backlog is not lengthened every sweep.
    assert deliveries_sweep() == {"stuck": 0, "requeued": 0}

    # The late task finally runs and posts; the sweeper's copy then finds it sent.
    send_delivery(delivery.pk, planned=late.isoformat())
    send_delivery(delivery.pk, planned=late.isoformat())
    assert [m.text.split("\n")[1] for m in fake_slack.messages()] == ["Ann Seller · +12065550100"]
    assert Delivery.objects.get(pk=delivery.pk).status == "sent"


def test_sweeper_requeues_a_backlog_in_bounded_batches_oldest_first(fake_slack, slack_settings, make_lead) -> None:
    slack_settings.SLACK_REQUEUE_SECONDS = 300
    deliveries = [_notify_new_lead(make_lead()) for _ in range(5)]
    for minutes, delivery in enumerate(deliveries):
        late = timezone.now() - datetime.timedelta(minutes=10 - minutes)
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=late)

    assert deliveries_sweep(batch=3) == {"stuck": 0, "requeued": 3}
    requeued = set(Delivery.objects.exclude(requeued_at=None).values_list("pk", flat=True))
    assert requeued == {d.pk for d in deliveries[:3]}
    assert deliveries_sweep(batch=3) == {"stuck": 0, "requeued": 2}
    assert deliveries_sweep(batch=3) == {"stuck": 0, "requeued": 0}
    # Still not posted after SLACK_REQUEUE_SECONDS: its extra task may be lost too, so another one.
    Delivery.objects.filter(pk=deliveries[0].pk).update(requeued_at=timezone.now() - datetime.timedelta(seconds=301))
    assert deliveries_sweep(batch=3) == {"stuck": 0, "requeued": 1}


def test_an_edit_before_the_post_goes_into_the_post_however_long_it_waited(
    fake_slack, slack_settings, make_lead
) -> None:
    delivery = _notify_new_lead(make_lead(name="Ann Seller"))

    update_message(delivery.pk, {"claimed_by": "Bob"}, tries=100)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.payload["claimed_by"]) == ("pending", "Bob")
    delivery_send(delivery_id=delivery.pk)
    [message] = fake_slack.messages()
    assert message.text.endswith("Claimed by Bob")
    assert fake_slack.updates() == []


def test_an_edit_while_the_post_is_in_flight_waits_for_it(fake_slack, slack_settings, make_lead) -> None:
    delivery = _notify_new_lead(make_lead())
    Delivery.objects.filter(pk=delivery.pk).update(status="sending", claimed_at=timezone.now())

    assert message_update(delivery_id=delivery.pk, extra_context={"claimed_by": "Bob"}) == Later(2.0)
    assert "claimed_by" not in Delivery.objects.get(pk=delivery.pk).payload
