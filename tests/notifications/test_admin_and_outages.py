from __future__ import annotations

import datetime
import json
import time
import urllib.request

import pytest
from django.utils import timezone

from notifications.models import Delivery, Payment, Route
from notifications.services import deliveries_sweep, notify
from tests.conftest import free_port
from tests.notifications.test_stripe_webhook import _event, _sign


@pytest.fixture
def admin_client(client, db):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.login(username="root", password="pw-root-123")
    return client


@pytest.mark.django_db
def test_admin_resend_gives_a_dead_delivery_fresh_attempts_and_leaves_sent_ones(admin_client, settings) -> None:
    notify(event_type="alert", context={"message": "a"}, key="k1")
    notify(event_type="alert", context={"message": "b"}, key="k2")
    dead, sent = Delivery.objects.order_by("key")
    Delivery.objects.filter(pk=dead.pk).update(status="dead", attempts=8, last_error="channel_not_found")
    Delivery.objects.filter(pk=sent.pk).update(status="sent", attempts=1, ts="1.2")

    response = admin_client.post(
        "/admin/notifications/delivery/",
        {"action": "resend", "_selected_action": [dead.pk, sent.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert list(Delivery.objects.order_by("key").values_list("status", "attempts", "last_error")) == [
        ("pending", 0, ""),
        ("sent", 1, ""),
    ]


@pytest.mark.django_db
def test_admin_send_test_message_queues_one_delivery_per_channel(admin_client) -> None:
    route = Route.objects.create(event_type="payment", channel="#money")
    response = admin_client.post(
        "/admin/notifications/route/", {"action": "send_test_message", "_selected_action": [route.pk]}, follow=True
    )
    assert response.status_code == 200
    [delivery] = Delivery.objects.all()
    assert (delivery.channel, delivery.event_type, delivery.status) == ("#money", "alert", "pending")
    assert delivery.payload["message"] == "Test message from leadsite (root)"


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_webhook_answers_fast_with_the_broker_down_and_the_sweeper_sends_later(web_server) -> None:
    base = web_server(CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0", STRIPE_WEBHOOK_SECRET="whsec_current")
    body = _event("evt_outage")
    # Warm the worker up (the first request imports the app and stripe's lazy modules); an
    # ignored event type stores nothing.
    ignored = _event("evt_warm", "customer.created")
    warm = urllib.request.Request(
        f"{base}/api/webhooks/stripe",
        data=ignored,
        headers={"Content-Type": "application/json", "Stripe-Signature": _sign(ignored)},
        method="POST",
    )
    with urllib.request.urlopen(warm, timeout=20) as response:
        assert json.loads(response.read())["status"] == "ignored"
    request = urllib.request.Request(
        f"{base}/api/webhooks/stripe",
        data=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": _sign(body)},
        method="POST",
    )
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=10) as response:
        assert (response.status, json.loads(response.read())["status"]) == (200, "recorded")
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, elapsed
    assert Payment.objects.get().stripe_event_id == "evt_outage"
    delivery = Delivery.objects.get()
    assert delivery.status == "pending"

    # Later, with the broker back, the periodic sweep picks up what was never queued.
    Delivery.objects.update(next_attempt_at=timezone.now() - datetime.timedelta(minutes=2))
    assert deliveries_sweep() == {"stuck": 0, "requeued": 1}
