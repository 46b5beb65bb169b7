from __future__ import annotations

import datetime

import pytest
from django.db.models import F
from django.utils import timezone

from notifications.models import Alert, Delivery
from notifications.services import delivery_send
from notifications.tasks import update_message

pytestmark = pytest.mark.django_db


def _post(client, key: str, **body):
    return client.post("/api/alerts", data=body, content_type="application/json", HTTP_X_API_KEY=key)


def test_alert_requires_the_scope(client, make_api_key, slack_settings) -> None:
    assert _post(client, "nope", message="x").status_code == 401
    assert _post(client, make_api_key("leads:create"), message="x").status_code == 403
    assert _post(client, make_api_key("alerts:create"), message="x", severity="loud").status_code == 422


def test_identical_alerts_collapse_into_one_message_with_a_count(
    client, make_api_key, slack_settings, fake_slack
) -> None:
    key = make_api_key("alerts:create")
    first = _post(client, key, message="Valuation model <stale>", severity="critical", source="valuation")
    assert first.status_code == 201
    assert first.json() == {"id": first.json()["id"], "count": 1, "collapsed": False}
    [delivery] = Delivery.objects.filter(event_type="alert")
    delivery_send(delivery_id=delivery.pk)
    [message] = fake_slack.messages()
    assert message.text == "🚨 *Alert!* Valuation model &lt;stale&gt;\n🔴 critical · source valuation"

    second = _post(client, key, message="Valuation model <stale>", severity="critical", source="valuation")
    third = _post(client, key, message="Valuation model <stale>", severity="critical", source="valuation")
    assert (second.status_code, second.json()["count"], third.json()["count"]) == (200, 2, 3)
    assert Delivery.objects.filter(event_type="alert").count() == 1
    update_message(delivery.pk, {"count": 3})
    [update] = fake_slack.updates()
    assert "seen 3×" in update.text and update.body["ts"] == message.ts

    # A different severity is a different alert; so is the same one after the window.
    assert _post(client, key, message="Valuation model <stale>", severity="info", source="valuation").status_code == 201
    # (as if the first came 11 minutes ago: its window bucket is an earlier one too)
    Alert.objects.update(first_seen=timezone.now() - datetime.timedelta(minutes=11), window=F("window") - 2)
    assert (
        _post(client, key, message="Valuation model <stale>", severity="critical", source="valuation").status_code
        == 201
    )
    assert Delivery.objects.filter(event_type="alert").count() == 3


def test_repeat_before_the_first_is_posted_posts_with_the_count(
    client, make_api_key, slack_settings, fake_slack
) -> None:
    key = make_api_key("alerts:create")
    for _ in range(4):
        _post(client, key, message="queue backlog", severity="warning")
    [delivery] = Delivery.objects.all()
    delivery_send(delivery_id=delivery.pk)
    assert "seen 4×" in fake_slack.messages()[0].text


def test_nul_bytes_in_an_alert_are_stripped_and_a_lone_nul_is_422(client, make_api_key, slack_settings) -> None:
    key = make_api_key("alerts:create")
    response = _post(client, key, message="disk\u0000 full", source="ops\u0000")
    assert response.status_code == 201
    assert list(Alert.objects.values_list("message", "source")) == [("disk full", "ops")]
    assert Delivery.objects.get().payload["message"] == "disk full"

    lone = _post(client, key, message="\u0000")
    assert lone.status_code == 422
    assert Alert.objects.count() == 1
