from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

import pytest
from django.db import connection
from django.test import Client

from leads.models import OutboxEvent
from notifications.models import Delivery, Payment, StripeEvent
from notifications.services import delivery_send

URL = "/api/webhooks/stripe"
SECRET = "whsec_current"


def _sign(body: bytes, secret: str = SECRET, at: int | None = None, extra_v1: str | None = None) -> str:
    t = int(time.time()) if at is None else at
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t}," + (f"v1={extra_v1}," if extra_v1 else "") + f"v1={sig}"


def _event(event_id: str = "evt_1", type_: str = "payment_intent.succeeded", **obj) -> bytes:
    data = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 125000,
        "amount_received": 125000,
        "currency": "usd",
        "customer": "cus_1",
        "receipt_email": "jane@example.com",
        "metadata": {"customer_name": "Jane Doe"},
        **obj,
    }
    return json.dumps(
        {"id": event_id, "object": "event", "type": type_, "livemode": False, "data": {"object": data}}
    ).encode()


def _post(client: Client, body: bytes, signature: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return client.post(URL, data=body, content_type="application/json", **headers)


@pytest.fixture
def stripe_settings(slack_settings):
    slack_settings.STRIPE_WEBHOOK_SECRET = SECRET
    return slack_settings


@pytest.mark.django_db
def test_valid_payment_is_recorded_and_announced_once(client, stripe_settings, fake_slack) -> None:
    body = _event()
    response = _post(client, body, _sign(body))
    assert response.status_code == 200
    assert response.json() == {"received": True, "status": "recorded"}
    # One send task, in the outbox (a worker's pump publishes it).
    assert list(OutboxEvent.objects.values_list("task_name", flat=True)) == ["notifications.send_delivery"]
    payment = Payment.objects.get()
    assert (
        payment.stripe_event_id,
        payment.customer,
        str(payment.amount),
        payment.currency,
        payment.payment_intent_id,
    ) == (
        "evt_1",
        "Jane Doe",
        "1250.00",
        "usd",
        "pi_1",
    )
    delivery = Delivery.objects.get()
    delivery_send(delivery_id=delivery.pk)
    assert fake_slack.messages()[0].text == "💰 *Payment!* Jane Doe paid $1,250.00"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "make_signature",
    [
        pytest.param(lambda body: _sign(body + b" "), id="tampered"),
        pytest.param(lambda body: _sign(body, secret="whsec_other"), id="wrong-secret"),
        pytest.param(lambda body: _sign(body, at=int(time.time()) - 301), id="stale"),
        pytest.param(lambda body: "t=1,v1=deadbeef", id="garbage"),
        pytest.param(lambda body: None, id="missing"),
    ],
)
def test_bad_or_stale_signature_is_400_and_stores_nothing(
    client, stripe_settings, make_signature, django_assert_num_queries
) -> None:
    body = _event()
    with django_assert_num_queries(0):
        response = _post(client, body, make_signature(body))
    assert response.status_code == 400
    assert "detail" in response.json()
    assert Payment.objects.count() == 0 and Delivery.objects.count() == 0


@pytest.mark.django_db
def test_rotated_secret_and_several_v1_signatures_are_accepted(client, stripe_settings) -> None:
    stripe_settings.STRIPE_WEBHOOK_SECRET = "whsec_new, whsec_old"
    body = _event("evt_rot")
    # Signed with the old secret, with an unrelated v1 first (as Stripe does during its own rotation).
    response = _post(client, body, _sign(body, secret="whsec_old", extra_v1="0" * 64))
    assert response.status_code == 200
    assert Payment.objects.get().stripe_event_id == "evt_rot"


@pytest.mark.django_db
def test_checkout_and_invoice_events_and_others_acknowledged(client, stripe_settings) -> None:
    checkout = _event(
        "evt_cs",
        "checkout.session.completed",
        id="cs_1",
        object="checkout.session",
        amount_total=9900,
        payment_status="paid",
        payment_intent="pi_9",
        customer_details={"name": "Cal Buyer", "email": "cal@example.com"},
    )
    invoice = _event("evt_in", "invoice.paid", id="in_1", object="invoice", amount_paid=5000, customer_name="Ivy")
    other = _event("evt_other", "customer.created")
    statuses = [_post(client, b, _sign(b)).json()["status"] for b in (checkout, invoice, other)]
    assert statuses == ["recorded", "recorded", "ignored"]
    rows = list(
        Payment.objects.order_by("stripe_event_id").values_list(
            "stripe_event_id", "customer", "amount", "checkout_session_id", "invoice_id"
        )
    )
    assert [(r[0], r[1], str(r[2]), r[3], r[4]) for r in rows] == [
        ("evt_cs", "Cal Buyer", "99.00", "cs_1", ""),
        ("evt_in", "Ivy", "50.00", "", "in_1"),
    ]


@pytest.mark.django_db(transaction=True)
def test_same_event_three_times_concurrently_is_one_row_and_one_message(stripe_settings, fake_slack) -> None:
    body = _event("evt_dup")
    signature = _sign(body)
    statuses: list[int] = []
    results: list[str] = []
    barrier = threading.Barrier(3)

    def deliver() -> None:
        try:
            barrier.wait(5)
            response = _post(Client(), body, signature)
            statuses.append(response.status_code)
            results.append(response.json()["status"])
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)

    assert statuses == [200, 200, 200]
    assert sorted(results) == ["duplicate", "duplicate", "recorded"]
    assert Payment.objects.count() == 1
    [delivery] = Delivery.objects.all()
    delivery_send(delivery_id=delivery.pk)
    delivery_send(delivery_id=delivery.pk)
    assert [m.text for m in fake_slack.messages()] == ["💰 *Payment!* Jane Doe paid $1,250.00"]


def _checkout(event_id: str, intent: str) -> bytes:
    return _event(
        event_id,
        "checkout.session.completed",
        id="cs_7",
        object="checkout.session",
        amount_total=9900,
        payment_status="paid",
        payment_intent=intent,
        customer_details={"name": "Cal Buyer", "email": "cal@example.com"},
        metadata={},
    )


@pytest.mark.django_db
def test_checkout_and_its_payment_intent_are_one_payment_and_one_message(client, stripe_settings, fake_slack) -> None:
    checkout = _checkout("evt_cs7", "pi_7")
    intent = _event("evt_pi7", id="pi_7", amount=9900, amount_received=9900, metadata={}, receipt_email=None)
    statuses = [_post(client, b, _sign(b)).json()["status"] for b in (checkout, intent, intent)]

    assert statuses == ["recorded", "duplicate", "duplicate"]
    payment = Payment.objects.get()
    assert (payment.stripe_event_id, payment.payment_intent_id, payment.checkout_session_id, str(payment.amount)) == (
        "evt_cs7",
        "pi_7",
        "cs_7",
        "99.00",
    )
    # Every event id is logged once, all pointing at the one payment.
    assert sorted(StripeEvent.objects.values_list("stripe_event_id", "payment_id")) == [
        ("evt_cs7", payment.pk),
        ("evt_pi7", payment.pk),
    ]
    [delivery] = Delivery.objects.all()
    assert delivery.key == "stripe:pi:pi_7"
    delivery_send(delivery_id=delivery.pk)
    assert [m.text for m in fake_slack.messages()] == ["💰 *Payment!* Cal Buyer paid $99.00"]


@pytest.mark.django_db
def test_invoice_after_its_payment_intent_is_a_duplicate_that_fills_in_the_invoice(client, stripe_settings) -> None:
    intent = _event("evt_pi8", id="pi_8", amount=5000, amount_received=5000)
    invoice = _event(
        "evt_in8", "invoice.paid", id="in_8", object="invoice", amount_paid=5000, payment_intent="pi_8", metadata={}
    )
    statuses = [_post(client, b, _sign(b)).json()["status"] for b in (intent, invoice)]

    assert statuses == ["recorded", "duplicate"]
    assert list(Payment.objects.values_list("stripe_event_id", "payment_intent_id", "invoice_id")) == [
        ("evt_pi8", "pi_8", "in_8")
    ]
    assert Delivery.objects.count() == 1 and StripeEvent.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"data": {"object": {"id": "pi_x", "amount": "abc", "currency": "usd"}}}, id="amount-text"),
        pytest.param({"data": {"object": {"id": "pi_x", "amount_received": 10**30}}}, id="amount-overflow"),
        pytest.param({"data": {"object": {"id": "pi_x", "amount_received": True}}}, id="amount-bool"),
        pytest.param({"data": {"object": {"id": "pi_x"}}}, id="amount-missing"),
        pytest.param({"data": []}, id="data-list"),
        pytest.param({"data": {"object": "pi_x"}}, id="object-string"),
        pytest.param({"data": {"object": {"id": "pi_x", "amount": 100, "metadata": "x"}}}, id="metadata-string"),
        pytest.param({"data": {"object": {"id": 5, "amount": 100}}}, id="id-number"),
    ],
)
def test_malformed_payment_objects_are_400_and_store_nothing(client, stripe_settings, event) -> None:
    body = json.dumps({"id": "evt_bad", "object": "event", "type": "payment_intent.succeeded", **event}).encode()
    response = _post(client, body, _sign(body))
    assert response.status_code == 400
    assert response.json()["detail"].startswith("malformed event: ")
    assert (Payment.objects.count(), StripeEvent.objects.count(), Delivery.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_nul_bytes_in_stripe_text_are_stripped(client, stripe_settings) -> None:
    body = _event("evt_nul\u0000", metadata={"customer_name": "Jane\u0000 Doe"}, description="a\u0000b")
    response = _post(client, body, _sign(body))
    assert (response.status_code, response.json()["status"]) == (200, "recorded")
    payment = Payment.objects.get()
    assert (payment.stripe_event_id, payment.customer) == ("evt_nul", "Jane Doe")
    assert payment.raw["data"]["object"]["description"] == "ab"
