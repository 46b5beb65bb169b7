"""The one module that talks to Slack (and the only one importing slack_sdk).

Sends go through `post_message` / `update_message` / `respond`, which return plain values or raise
`SlackError(message, permanent=..., retry_after=...)`; no slack_sdk type escapes this module.
Block Kit is built with slack_sdk's block models (they validate lengths) and handed out as dicts.
Without SLACK_BOT_TOKEN a console backend prints what would be sent and returns a fake ts.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

logger = logging.getLogger(__name__)

# ok:false errors that retrying cannot fix: the channel, the token or the message is wrong.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "org_login_required",
        "ekm_access_denied",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "team_access_not_granted",
        "cannot_reply_to_message",
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_blocks_format",
        "too_many_attachments",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "invalid_arguments",
        "invalid_arg_name",
        "invalid_charset",
        "invalid_form_data",
        "invalid_post_type",
        "missing_post_type",
        "team_added_to_org",
        "channel_is_archived",
        "duplicate_channel_not_found",
    }
)
# ok:false errors Slack itself calls temporary.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "timeout"}
)


class SlackError(Exception):
    """A failed Slack call. `permanent`: do not retry. `retry_after`: Slack said wait this long (429)."""

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str


# --- Block Kit helpers (return dicts; slack_sdk validates sizes on to_dict()) ------------------


def header(text: str) -> dict[str, Any]:
    return HeaderBlock(text=PlainTextObject(text=text[:150], emoji=True)).to_dict()


def section(markdown: str, fields: list[str] | None = None) -> dict[str, Any]:
    block = SectionBlock(
        text=MarkdownTextObject(text=markdown[:3000]) if markdown else None,
        fields=[MarkdownTextObject(text=f[:2000]) for f in (fields or [])[:10]] or None,
    )
    return block.to_dict()


def context(*markdown: str) -> dict[str, Any]:
    return ContextBlock(elements=[MarkdownTextObject(text=m[:3000]) for m in markdown[:10] if m]).to_dict()


def divider() -> dict[str, Any]:
    return DividerBlock().to_dict()


def actions(block_id: str, *buttons: dict[str, Any]) -> dict[str, Any]:
    return ActionsBlock(block_id=block_id, elements=[ButtonElement(**b) for b in buttons]).to_dict()


def button(*, text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    return {"text": text, "action_id": action_id, "value": value, "style": style}


def escape(text: Any) -> str:
    """Slack's escaping for user text: &, < and > only, so `<!channel>` or `<@U1>` pings nobody."""
    return str(text if text is not None else "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(slack_user_id: str) -> str:
    return f"<@{slack_user_id}>"


# --- Transport -------------------------------------------------------------------------------

_local = threading.local()


def _client() -> WebClient:
    # One client per thread and configuration: WebClient is cheap but keeps no shared state we want to race on.
    config = (settings.SLACK_BOT_TOKEN, settings.SLACK_API_BASE_URL, settings.SLACK_TIMEOUT_SECONDS)
    cached = getattr(_local, "client", None)
    if cached is None or cached[0] != config:
        client = WebClient(
            token=config[0],
            base_url=config[1],
            timeout=config[2],
            # No built-in retries: a blind retry of chat.postMessage can post twice. Our task retries
            # after recording the outcome, with the per-channel limiter in front.
            retry_handlers=[],
        )
        _local.client = (config, client)
        return client
    return cached[1]


def is_console() -> bool:
    return not settings.SLACK_BOT_TOKEN


def _console(method: str, payload: Mapping[str, Any]) -> str:
    ts = f"{time.time():.6f}"
    print(
        f"[slack console] {method} {json.dumps(payload, ensure_ascii=False, default=str)} -> ts {ts}",
        file=sys.stdout,
        flush=True,
    )
    return ts


def _classify(exc: Exception) -> SlackError:
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", 0) or 0
        data = response.data if isinstance(getattr(response, "data", None), dict) else {}
        error = str(data.get("error") or f"http_{status}")
        if status == 429 or error == "ratelimited":
            headers = getattr(response, "headers", {}) or {}
            raw = headers.get("Retry-After") or headers.get("retry-after") or "1"
            try:
                retry_after = max(0.0, float(raw[0] if isinstance(raw, list) else raw))
            except ValueError:
                retry_after = 1.0
            return SlackError("ratelimited", permanent=False, retry_after=retry_after)
        if status >= 500:
            return SlackError(f"http_{status}" + (f" {error}" if error in TRANSIENT_ERRORS else ""), permanent=False)
        if error in TRANSIENT_ERRORS:
            return SlackError(error, permanent=False)
        if error in PERMANENT_ERRORS or 400 <= status < 500:
            return SlackError(error, permanent=True)
        # Unknown ok:false error with HTTP 200: Slack rejected this request as it is; retrying the
        # same request will not change the answer.
        return SlackError(error, permanent=True)
    # Timeouts, refused connections, DNS, broken pipes: the network, not the message.
    return SlackError(f"{type(exc).__name__}: {exc}"[:400], permanent=False)


def _call(method: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = _client().api_call(method, json=kwargs)
        return dict(response.data) if isinstance(response.data, dict) else {}
    except (SlackApiError, SlackClientError, OSError, ValueError) as exc:
        raise _classify(exc) from exc


def post_message(*, channel: str, text: str, blocks: list[dict[str, Any]], thread_ts: str | None = None) -> Posted:
    payload: dict[str, Any] = {"channel": channel, "text": text, "blocks": blocks, "unfurl_links": False}
    if thread_ts:
        payload["thread_ts"] = thread_ts
    if is_console():
        return Posted(channel=channel, ts=_console("chat.postMessage", payload))
    data = _call("chat.postMessage", **payload)
    return Posted(channel=str(data.get("channel") or channel), ts=str(data.get("ts") or ""))


def update_message(*, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
    payload = {"channel": channel, "ts": ts, "text": text, "blocks": blocks}
    if is_console():
        _console("chat.update", payload)
        return
    _call("chat.update", **payload)


def respond(*, response_url: str, text: str, replace_original: bool = False) -> None:
    """An ephemeral answer to an interaction, through the interaction's response_url."""
    if is_console():
        _console("response_url", {"text": text})
        return
    try:
        response = WebhookClient(response_url, timeout=settings.SLACK_TIMEOUT_SECONDS).send(
            text=text, response_type="ephemeral", replace_original=replace_original
        )
    except (SlackClientError, OSError, ValueError) as exc:
        raise _classify(exc) from exc
    if response.status_code >= 400:
        raise SlackError(f"response_url HTTP {response.status_code}", permanent=response.status_code < 500)


def verify_request(*, body: bytes, headers: Mapping[str, str]) -> bool:
    """Slack's request signature (v0 HMAC over "v0:{timestamp}:{body}", 5 minutes of tolerance)."""
    secret = settings.SLACK_SIGNING_SECRET
    if not secret:
        return False
    # slack_sdk int()s the timestamp header unchecked: "abc", "1.5" or "" would be a 500, not a 401.
    timestamp = headers.get("X-Slack-Request-Timestamp") or ""
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    return SignatureVerifier(signing_secret=secret).is_valid_request(body, dict(headers))
