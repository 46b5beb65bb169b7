from __future__ import annotations

import uuid

import pytest

from leads.models import OutboxEvent
from notifications.models import Delivery, DeliveryStatus, Route
from notifications.services import notify


@pytest.mark.django_db
def test_notify_records_one_pending_delivery_per_routed_channel(settings) -> None:
    settings.SLACK_DEFAULT_CHANNEL = "#default"
    Route.objects.create(event_type="payment", channel="#money")
    Route.objects.create(event_type="payment", channel="#ops")
    notify(event_type="payment", context={"customer": "Jo", "amount": "10"}, key="stripe:evt_1")
    notify(event_type="payment", context={"customer": "Jo", "amount": "10"}, key="stripe:evt_1")
    rows = list(Delivery.objects.order_by("channel").values_list("key", "channel", "event_type", "status"))
    assert rows == [
        ("stripe:evt_1", "#money", "payment", DeliveryStatus.PENDING),
        ("stripe:evt_1", "#ops", "payment", DeliveryStatus.PENDING),
    ]
    # One send task per row the first call inserted, in the outbox; the repeated key starts no second chain.
    sends = OutboxEvent.objects.filter(task_name="notifications.send_delivery")
    assert sorted(e.kwargs["delivery_id"] for e in sends) == sorted(Delivery.objects.values_list("id", flat=True))


@pytest.mark.django_db
def test_notify_without_route_uses_default_channel_and_keeps_lead_id(settings) -> None:
    settings.SLACK_DEFAULT_CHANNEL = "#default"
    lead_id = uuid.uuid4()
    notify(event_type="new_lead", context={"name": "Ann"}, key=f"lead:{lead_id}:new", lead_id=lead_id)
    delivery = Delivery.objects.get()
    assert (delivery.channel, delivery.lead_id, delivery.payload) == (
        "#default",
        lead_id,
        {"name": "Ann", "lead_id": str(lead_id)},
    )


@pytest.mark.django_db
def test_notify_rejects_unknown_event_type() -> None:
    with pytest.raises(ValueError, match="unknown notification event type"):
        notify(event_type="nope", context={}, key="k")
    assert Delivery.objects.count() == 0
