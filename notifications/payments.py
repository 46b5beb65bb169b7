"""Stripe webhooks: verify the signature, record each Stripe event id once, announce each payment once.

Verification is stripe's own (`stripe.Webhook.construct_event`: HMAC-SHA256 over "{t}.{body}",
any of the header's v1 signatures, 300 s tolerance). STRIPE_WEBHOOK_SECRET may hold several
comma-separated secrets so a secret can be rotated without dropping events.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from leadsite.storable import InvalidJson, parse_json_body, storable_json
from notifications.models import EventType, Payment, StripeEvent
from notifications.services import notify

logger = logging.getLogger(__name__)

TOLERANCE_SECONDS = 300
HANDLED_TYPES = ("payment_intent.succeeded", "checkout.session.completed", "invoice.paid")
# Stripe amounts are in the currency's smallest unit; these currencies have none.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())


class InvalidSignature(Exception):
    pass


def _secrets() -> list[str]:
    return [s.strip() for s in (settings.STRIPE_WEBHOOK_SECRET or "").split(",") if s.strip()]


def stripe_event_verify(*, body: bytes, signature_header: str | None) -> dict[str, Any]:
    """The event as a dict if any configured secret signed it within the tolerance; else InvalidSignature."""
    if not signature_header:
        raise InvalidSignature("missing Stripe-Signature header")
    payload = body.decode("utf-8", errors="replace")
    for secret in _secrets():
        try:
            # Signature only: stripe's construct_event would also build an object from the body, and
            # fails with a 500 on a signed body that is not a JSON object ([], "x", null).
            stripe.WebhookSignature.verify_header(payload, signature_header, secret, tolerance=TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError:
            continue
        try:
            event = parse_json_body(body)
        except InvalidJson as exc:  # signed, but not JSON we accept
            raise InvalidSignature(f"invalid payload: {exc}") from exc
        if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event["id"]:
            raise InvalidSignature("not a Stripe event: the body must be an object with a string id")
        return event
    raise InvalidSignature("no valid signature for the configured secrets")


class MalformedEvent(ValueError):
    """A signed event of a handled type whose object is not shaped like Stripe's (400, nothing stored)."""


# Payment.amount is max_digits=14, decimal_places=2.
_MAX_AMOUNT = Decimal(10) ** 12


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedEvent(f"{key} must be a string")
    return value


def _object(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEvent(f"{key} must be an object")
    return value


def _amount(obj: dict[str, Any], keys: tuple[str, ...], currency: str) -> Decimal:
    """The first present amount field, in major units. A missing or non-integer amount is malformed,
    never $0.00."""
    minor = next((obj[k] for k in keys if obj.get(k) is not None), None)
    if not isinstance(minor, int) or isinstance(minor, bool) or minor < 0:
        raise MalformedEvent(f"{keys[0]} must be a non-negative integer")
    value = Decimal(minor)
    amount = value if currency in ZERO_DECIMAL else value / 100
    if amount >= _MAX_AMOUNT:  # checked before quantize, which fails on huge numbers
        raise MalformedEvent(f"{keys[0]} is out of range")
    return amount.quantize(Decimal("0.01"))


def _parse(event: dict[str, Any]) -> dict[str, Any] | None:
    """Payment fields from a handled event type, or None when the event is not a completed payment.
    MalformedEvent when a handled type's object has the wrong shape."""
    kind = event.get("type")
    if kind not in HANDLED_TYPES:
        return None
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEvent("data.object must be an object")
    obj = data["object"]
    currency = (_text(obj, "currency") or "usd").lower()[:3]
    fields: dict[str, Any] = {"currency": currency, "customer_id": _text(obj, "customer")[:100]}
    if kind == "payment_intent.succeeded":
        shipping = _object(obj, "shipping")
        fields |= {
            "amount": _amount(obj, ("amount_received", "amount"), currency),
            "customer": _text(_object(obj, "metadata"), "customer_name")
            or _text(shipping, "name")
            or _text(obj, "receipt_email"),
            "payment_intent_id": _text(obj, "id"),
        }
    elif kind == "checkout.session.completed":
        if obj.get("payment_status") not in ("paid", "no_payment_required"):
            return None  # async payment methods: the money has not arrived yet
        details = _object(obj, "customer_details")
        fields |= {
            "amount": _amount(obj, ("amount_total",), currency),
            "customer": _text(details, "name") or _text(details, "email") or _text(obj, "customer_email"),
            "checkout_session_id": _text(obj, "id"),
            "payment_intent_id": _text(obj, "payment_intent"),
        }
    else:  # invoice.paid
        fields |= {
            "amount": _amount(obj, ("amount_paid",), currency),
            "customer": _text(obj, "customer_name") or _text(obj, "customer_email"),
            "invoice_id": _text(obj, "id"),
            "payment_intent_id": _text(obj, "payment_intent"),
        }
    fields["customer"] = fields["customer"][:200]
    for key in ("payment_intent_id", "checkout_session_id", "invoice_id"):
        if key in fields:
            fields[key] = fields[key][:100]
    return fields


def _merge_into(payment: Payment, fields: dict[str, Any]) -> None:
    """A later event about a recorded payment fills in what the first one lacked (session, invoice, name)."""
    blanks = {k: v for k, v in fields.items() if k in ("customer", "customer_id", "checkout_session_id", "invoice_id")}
    blanks = {k: v for k, v in blanks.items() if v and not getattr(payment, k)}
    if blanks:
        Payment.objects.filter(pk=payment.pk).update(**blanks)


def stripe_event_process(*, event: dict[str, Any]) -> tuple[str, Payment | None]:
    """Record a verified event once, and its payment once. Returns ("recorded" | "duplicate" |
    "ignored", payment); "duplicate" is a redelivered event or another event about a recorded payment.
    Raises MalformedEvent for a handled type whose object is malformed (nothing is stored)."""
    event = storable_json(event)
    fields = _parse(event)
    if fields is None:
        return "ignored", None
    event_id = str(event["id"])[:100]
    kind = str(event.get("type"))
    intent_id = fields.get("payment_intent_id") or ""
    with transaction.atomic():
        try:
            with transaction.atomic():
                # The unique event id guards redeliveries: concurrent copies wait on the index, then fail here.
                logged = StripeEvent.objects.create(
                    stripe_event_id=event_id, type=kind, livemode=bool(event.get("livemode")), raw=event
                )
        except IntegrityError:
            return "duplicate", None
        try:
            with transaction.atomic():
                # One payment, several events (checkout/invoice + payment_intent.succeeded): the partial
                # unique index on payment_intent_id lets only the first one record and announce it.
                payment = Payment.objects.create(
                    stripe_event_id=event_id, type=kind, livemode=logged.livemode, raw=event, **fields
                )
        except IntegrityError:
            payment = Payment.objects.get(payment_intent_id=intent_id)
            _merge_into(payment, fields)
            StripeEvent.objects.filter(pk=logged.pk).update(payment=payment)
            return "duplicate", payment
        StripeEvent.objects.filter(pk=logged.pk).update(payment=payment)
        notify(
            event_type=EventType.PAYMENT,
            key=f"stripe:pi:{intent_id}" if intent_id else f"stripe:{event_id}",
            context={
                "customer": payment.customer or payment.customer_id or "A customer",
                "amount": str(payment.amount),
                "currency": payment.currency,
                "type": payment.type,
                "stripe_event_id": event_id,
            },
        )
    logger.info("stripe %s %s: %s %s", payment.type, event_id, payment.amount, payment.currency)
    return "recorded", payment
