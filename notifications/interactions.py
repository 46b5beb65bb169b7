"""Slack interactivity: the "Claim" button on a new-lead message.

The request is verified and answered inside Slack's 3 seconds: the claim is one conditional UPDATE
(leads.services.lead_claim); editing the original message and the ephemeral answer via
response_url happen in tasks started through the outbox after commit, so a stalled broker never
holds the answer up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from leadsite.storable import parse_json_body
from notifications.models import Delivery, EventType, StaffProfile
from notifications.templates import CLAIM_ACTION_ID

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    text: str
    claimed: bool = False


def _display(user: Any) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "someone"


class _User(BaseModel):
    id: str = ""


class _Action(BaseModel):
    action_id: str = ""
    value: str = ""


class _Message(BaseModel):
    ts: str = ""


class _Container(BaseModel):
    message_ts: str = ""


class _BlockActions(BaseModel):
    """The parts of a block_actions payload we read; other fields are ignored, wrong shapes refused."""

    user: _User = _User()
    actions: list[_Action] = []
    message: _Message | None = None
    container: _Container | None = None
    response_url: str = ""


UNREADABLE = "Sorry, I couldn't read that action."


def interaction_handle(*, payload: dict[str, Any]) -> Reply | None:
    """Act on one interaction payload; returns the ephemeral answer for the clicking user (or None)."""
    if payload.get("type") != "block_actions":
        return None
    try:
        parsed = _BlockActions.model_validate(payload)
    except PydanticValidationError:
        logger.warning("unreadable Slack block_actions payload")
        return Reply(UNREADABLE)
    action = next((a for a in parsed.actions if a.action_id == CLAIM_ACTION_ID), None)
    if action is None:
        return None
    slack_user_id = parsed.user.id
    lead_id = action.value
    response_url = parsed.response_url
    message_ts = (parsed.message.ts if parsed.message else "") or (
        parsed.container.message_ts if parsed.container else ""
    )
    profile = StaffProfile.objects.select_related("user").filter(slack_user_id=slack_user_id).first()
    if profile is None or not profile.user.is_active:
        reply = Reply(
            f"Sorry, I don't know who you are in leadsite yet. Ask an admin to add your Slack user id "
            f"({slack_user_id or 'unknown'}) to your staff profile, then claim again."
        )
        _respond_later(response_url, reply.text)
        return reply
    return _claim(lead_id=lead_id, user=profile.user, message_ts=message_ts, response_url=response_url)


def _claim(*, lead_id: str, user: Any, message_ts: str, response_url: str) -> Reply:
    from django.core.exceptions import ObjectDoesNotExist, ValidationError

    from leads.services import lead_claim

    try:
        with transaction.atomic():
            claimed, owner = lead_claim(lead_id=lead_id, user=user)
            if claimed:
                _update_original_later(lead_id=lead_id, message_ts=message_ts, claimed_by=_display(user))
    except (ObjectDoesNotExist, ValidationError, ValueError):
        reply = Reply("That lead no longer exists.")
        _respond_later(response_url, reply.text)
        return reply
    if claimed:
        reply = Reply("✅ It's yours — you claimed this lead.", claimed=True)
    elif owner is not None and owner.pk == user.pk:
        reply = Reply("You already claimed this lead.")
    else:
        reply = Reply(f"Too late: this lead is already taken by {_display(owner)}.")
    _respond_later(response_url, reply.text)
    return reply


def _update_original_later(*, lead_id: str, message_ts: str, claimed_by: str) -> None:
    from notifications.services import message_update_on_commit

    deliveries = Delivery.objects.filter(lead_id=lead_id, event_type=EventType.NEW_LEAD)
    if message_ts:
        deliveries = deliveries.filter(ts=message_ts) or deliveries
    for delivery_id in deliveries.values_list("id", flat=True):
        message_update_on_commit(delivery_id=delivery_id, extra_context={"claimed_by": claimed_by})


def _respond_later(response_url: str, text: str) -> None:
    if not response_url:
        return
    from notifications.services import interaction_respond_on_commit

    # Its own transaction when called outside one (an unknown user), so the outbox row commits now.
    with transaction.atomic():
        interaction_respond_on_commit(response_url=response_url, text=text)


def parse_form_payload(raw: str) -> dict[str, Any]:
    # InvalidJson is a ValueError: bad, too deep or NaN-laden JSON is the view's 400 like any other.
    data = parse_json_body(raw.encode("utf-8", "surrogatepass"), allow_nan=False)
    if not isinstance(data, dict):
        raise ValueError("payload is not an object")
    return data
