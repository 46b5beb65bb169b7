"""No duplicate Slack posts: an attempt whose outcome is unknown is looked up before posting again.

The delivery engine is called in this process against the fake Slack (tests/fakes/slack.py), which
keeps every stored message with its metadata and answers conversations.history / .replies.
"""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from notifications.models import Delivery
from notifications.services import deliveries_sweep, delivery_send, notify
from tests.notifications.conftest import new_lead_context

pytestmark = pytest.mark.django_db


@pytest.fixture
def quick_slack(slack_settings):
    # The client gives up after 1 s; "accept_late" answers after 2 s, i.e. after the client timed out.
    slack_settings.SLACK_TIMEOUT_SECONDS = 1
    return slack_settings


def _notify_new_lead(lead) -> Delivery:
    notify(event_type="new_lead", context=new_lead_context(lead), key=f"lead:{lead.id}:new_lead", lead_id=lead.id)
    return Delivery.objects.get(key=f"lead:{lead.id}:new_lead")


def _history_calls(fake_slack) -> list[str]:
    return [c.method for c in fake_slack.calls if c.method.startswith("conversations.")]


def test_every_post_carries_its_delivery_id_as_message_metadata(fake_slack, slack_settings, make_lead) -> None:
    delivery = _notify_new_lead(make_lead())

    delivery_send(delivery_id=delivery.pk)

    [message] = fake_slack.messages()
    assert message.metadata == {"event_type": "leadsite_delivery", "event_payload": {"delivery_id": delivery.pk}}
    assert _history_calls(fake_slack) == []  # a clean first attempt never reads the history


def test_a_post_accepted_then_timed_out_is_adopted_not_posted_again(fake_slack, quick_slack, make_lead) -> None:
    delivery = _notify_new_lead(make_lead(name="Ann Seller"))
    fake_slack.fail_next("chat.postMessage", "accept_late", delay=2)

    later = delivery_send(delivery_id=delivery.pk)

    assert later is not None  # a transient failure as far as the worker can tell...
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.unknown_since == delivery.claimed_at  # ...whose outcome is unknown
    [stored] = fake_slack.messages()  # Slack did keep it

    assert delivery_send(delivery_id=delivery.pk) is None

    assert fake_slack.messages() == [stored]  # no second post
    assert fake_slack.outcomes() == ["accept_late"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.ts, delivery.attempts, delivery.unknown_since) == ("sent", stored.ts, 2, None)
    # The channel was named (#leads): its id was learnt from Slack, then its history read once.
    assert _history_calls(fake_slack) == ["conversations.list", "conversations.history"]


def test_a_hang_that_stored_nothing_is_looked_up_then_posted_once(fake_slack, quick_slack, make_lead) -> None:
    delivery = _notify_new_lead(make_lead(name="Ann Seller"))
    fake_slack.fail_next("chat.postMessage", "hang")

    assert delivery_send(delivery_id=delivery.pk) is not None
    assert fake_slack.messages() == []
    assert delivery_send(delivery_id=delivery.pk) is None

    [message] = fake_slack.messages()
    assert message.text.startswith("🔥 *New Lead!*\nAnn Seller")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.ts) == ("sent", message.ts)
    assert _history_calls(fake_slack) == ["conversations.list", "conversations.history"]


@pytest.mark.parametrize("failure", ["http_500", "ratelimited", "internal_error"])
def test_a_known_failure_posts_again_without_reading_the_history(
    fake_slack, quick_slack, make_lead, failure: str
) -> None:
    delivery = _notify_new_lead(make_lead())
    fake_slack.fail_next("chat.postMessage", failure)

    assert delivery_send(delivery_id=delivery.pk) is not None
    delivery.refresh_from_db()
    assert delivery.unknown_since is None
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    ratelimit_free = delivery_send(delivery_id=delivery.pk, slot=0.0)

    assert ratelimit_free is None
    assert len(fake_slack.messages()) == 1
    assert _history_calls(fake_slack) == []


def test_a_row_left_sending_after_its_post_is_adopted_by_the_sweeper(fake_slack, slack_settings, make_lead) -> None:
    """The worker posted, then the database failed while marking it sent: the row stays `sending`."""
    slack_settings.SLACK_SENDING_STALE_SECONDS = 60
    delivery = _notify_new_lead(make_lead(name="Ann Seller"))
    delivery_send(delivery_id=delivery.pk)
    [posted] = fake_slack.messages()
    long_ago = timezone.now() - datetime.timedelta(seconds=61)
    Delivery.objects.filter(pk=delivery.pk).update(status="sending", ts="", sent_at=None, claimed_at=long_ago)

    assert deliveries_sweep() == {"stuck": 1, "requeued": 1}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.unknown_since) == ("pending", long_ago)
    assert delivery_send(delivery_id=delivery.pk) is None

    assert fake_slack.messages() == [posted]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.ts) == ("sent", posted.ts)


def test_the_history_search_is_bounded_by_the_uncertain_attempts_window(fake_slack, slack_settings, make_lead) -> None:
    delivery = _notify_new_lead(make_lead())
    delivery_send(delivery_id=delivery.pk)
    [posted] = fake_slack.messages()
    # As if the uncertain attempt had started an hour after this message: it cannot be that attempt's.
    later = timezone.now() + datetime.timedelta(hours=1)
    Delivery.objects.filter(pk=delivery.pk).update(status="failed", ts="", unknown_since=later)

    delivery_send(delivery_id=delivery.pk)

    [history] = [c for c in fake_slack.calls if c.method == "conversations.history"]
    assert float(history.body["oldest"]) == pytest.approx(later.timestamp() - 60, abs=0.01)
    assert history.body["include_all_metadata"] == "1"
    assert len(fake_slack.messages()) == 2  # outside the window: not adopted


def test_a_reply_is_looked_up_in_its_thread(fake_slack, quick_slack, make_lead) -> None:
    lead = make_lead()
    parent = _notify_new_lead(lead)
    delivery_send(delivery_id=parent.pk)
    notify(event_type="valuation_ready", context={"estimate": 500000}, key=f"lead:{lead.id}:val", lead_id=lead.id)
    reply = Delivery.objects.get(key=f"lead:{lead.id}:val")
    fake_slack.fail_next("chat.postMessage", "accept_late", delay=2)

    assert delivery_send(delivery_id=reply.pk) is not None
    assert delivery_send(delivery_id=reply.pk) is None

    first, second = fake_slack.messages()
    reply.refresh_from_db()
    assert (reply.status, reply.ts, second.thread_ts) == ("sent", second.ts, first.ts)
    replies = [c for c in fake_slack.calls if c.method == "conversations.replies"]
    assert [c.body["ts"] for c in replies] == [first.ts]
    assert "conversations.history" not in _history_calls(fake_slack)


def test_a_failing_history_lookup_is_retried_and_a_missing_scope_posts_anyway(
    fake_slack, quick_slack, make_lead
) -> None:
    delivery = _notify_new_lead(make_lead())
    Delivery.objects.filter(pk=delivery.pk).update(unknown_since=timezone.now())
    fake_slack.fail_next("conversations.list", "http_500")

    assert delivery_send(delivery_id=delivery.pk) is not None  # could not look: try again later, no post
    delivery.refresh_from_db()
    assert (delivery.status, len(fake_slack.messages())) == ("failed", 0)
    assert delivery.unknown_since is not None

    fake_slack.fail_next("conversations.list", "missing_scope")
    assert delivery_send(delivery_id=delivery.pk) is None  # cannot look at all: a post beats a lost message
    delivery.refresh_from_db()
    assert (delivery.status, len(fake_slack.messages())) == ("sent", 1)
