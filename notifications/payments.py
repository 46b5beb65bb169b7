"""Stripe webhooks: verify the signature, record each Stripe event id once, announce the payment.

Verification is stripe's own (`stripe.Webhook.construct_event`: HMAC-SHA256 over "{t}.{body}",
any of the header's v1 signatures, 300 s tolerance). STRIPE_WEBHOOK_SECRET may hold several
comma-separated secrets so a secret can be rotated without dropping events.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from notifications.models import EventType, Payment
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
            stripe.Webhook.construct_event(payload, signature_header, secret, tolerance=TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError:
            continue
        except ValueError as exc:  # signed, but not JSON
            raise InvalidSignature(f"invalid payload: {exc}") from exc
        event = json.loads(payload)
        if not isinstance(event, dict) or not event.get("id"):
            raise InvalidSignature("not a Stripe event")
        return event
    raise InvalidSignature("no valid signature for the configured secrets")


def _amount(minor: Any, currency: str) -> Decimal:
    value = Decimal(int(minor or 0))
    return value if currency.lower() in ZERO_DECIMAL else (value / 100).quantize(Decimal("0.01"))


def _parse(event: dict[str, Any]) -> dict[str, Any] | None:
    """Payment fields from a handled event type, or None when the event is not a completed payment."""
    obj = (event.get("data") or {}).get("object") or {}
    kind = event.get("type")
    currency = str(obj.get("currency") or "usd").lower()
    fields: dict[str, Any] = {"currency": currency[:3], "customer_id": str(obj.get("customer") or "")[:100]}
    if kind == "payment_intent.succeeded":
        shipping = obj.get("shipping") or {}
        fields |= {
            "amount": _amount(obj.get("amount_received") or obj.get("amount"), currency),
            "customer": (obj.get("metadata") or {}).get("customer_name")
            or shipping.get("name")
            or obj.get("receipt_email")
            or "",
            "payment_intent_id": obj.get("id") or "",
        }
    elif kind == "checkout.session.completed":
        if obj.get("payment_status") not in ("paid", "no_payment_required"):
            return None  # async payment methods: the money has not arrived yet
        details = obj.get("customer_details") or {}
        fields |= {
            "amount": _amount(obj.get("amount_total"), currency),
            "customer": details.get("name") or details.get("email") or obj.get("customer_email") or "",
            "checkout_session_id": obj.get("id") or "",
            "payment_intent_id": obj.get("payment_intent") or "",
        }
    elif kind == "invoice.paid":
        fields |= {
            "amount": _amount(obj.get("amount_paid"), currency),
            "customer": obj.get("customer_name") or obj.get("customer_email") or "",
            "invoice_id": obj.get("id") or "",
            "payment_intent_id": obj.get("payment_intent") or "",
        }
    else:
        return None
    fields["customer"] = str(fields["customer"])[:200]
    return fields


def stripe_event_process(*, event: dict[str, Any]) -> tuple[str, Payment | None]:
    """Record a verified event once. Returns ("recorded" | "duplicate" | "ignored", payment)."""
    fields = _parse(event)
    if fields is None:
        return "ignored", None
    event_id = str(event["id"])[:100]
    try:
        with transaction.atomic():
            # The unique event id is the idempotency guard: concurrent redeliveries wait on the
            # index and then fail here, so only one row and one notify() ever exist.
            payment = Payment.objects.create(
                stripe_event_id=event_id,
                type=str(event.get("type")),
                livemode=bool(event.get("livemode")),
                raw=event,
                **fields,
            )
            notify(
                event_type=EventType.PAYMENT,
                key=f"stripe:{event_id}",
                context={
                    "customer": payment.customer or payment.customer_id or "A customer",
                    "amount": str(payment.amount),
                    "currency": payment.currency,
                    "type": payment.type,
                    "stripe_event_id": event_id,
                },
            )
    except IntegrityError:
        return "duplicate", None
    logger.info("stripe %s %s: %s %s", payment.type, event_id, payment.amount, payment.currency)
    return "recorded", payment
