"""POST /api/alerts (API key, alerts:create) and POST /api/webhooks/stripe (Stripe's signature)."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from leadsite.auth import api_key
from notifications.alerts import alert_raise
from notifications.payments import InvalidSignature, MalformedEvent, stripe_event_process, stripe_event_verify

router = Router(tags=["notifications"])


class AlertIn(Schema):
    message: str = Field(min_length=1, max_length=2000)
    severity: Literal["info", "warning", "critical"] = "warning"
    source: str = Field(default="", max_length=100)


class AlertOut(Schema):
    id: int
    count: int
    collapsed: bool


@router.post("/alerts", auth=api_key("alerts:create"), response={201: AlertOut, 200: AlertOut})
def alerts_create(request: HttpRequest, payload: AlertIn) -> Status:
    """Post an alert to Slack. Identical alerts (message, severity, source) within 10 minutes of the
    first are collapsed: 200 with the running count instead of another message."""
    alert, created = alert_raise(message=payload.message, severity=payload.severity, source=payload.source)
    return Status(201 if created else 200, {"id": alert.pk, "count": alert.count, "collapsed": not created})


class StripeAck(Schema):
    received: bool
    status: str


@router.post("/webhooks/stripe", auth=None, response={200: StripeAck})
def stripe_webhook(request: HttpRequest) -> dict:
    """Stripe's webhook endpoint. 400 for a bad or stale signature (nothing is stored); 200 for
    everything verified, including duplicates and event types we don't act on; 400 for a handled
    type whose object is malformed (nothing is stored)."""
    try:
        event = stripe_event_verify(body=request.body, signature_header=request.headers.get("Stripe-Signature"))
    except InvalidSignature as exc:
        raise HttpError(400, str(exc)) from exc
    try:
        status, _ = stripe_event_process(event=event)
    except MalformedEvent as exc:
        raise HttpError(400, f"malformed event: {exc}") from exc
    return {"received": True, "status": status}
