"""The one module that talks to Slack (and the only one importing slack_sdk).

Sends go through `post_message` / `update_message` / `respond`, which return plain values or raise
`SlackError(message, permanent=..., retry_after=...)`; no slack_sdk type escapes this module.
Block Kit is built with slack_sdk's block models (they validate lengths) and handed out as dicts.
Without SLACK_BOT_TOKEN a console backend prints what would be sent and returns a fake ts.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from django.conf import settings
from django.core.cache import cache
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
    """A failed Slack call. `permanent`: do not retry. `retry_after`: Slack said wait this long (429).
    `unknown_outcome`: the request reached Slack but no answer came back (a read timeout, a reset
    connection), so Slack may have acted on it: look before repeating a post."""

    def __init__(
        self, message: str, *, permanent: bool, retry_after: float | None = None, unknown_outcome: bool = False
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.unknown_outcome = unknown_outcome


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
    # Timeouts, refused connections, DNS, broken pipes: the network, not the message. urllib wraps
    # whatever fails while connecting or sending the request in URLError: Slack never got a whole
    # request. Anything after that (waiting for or reading the answer) may follow a done post.
    message = f"{type(exc).__name__}: {exc}"[:400]
    return SlackError(message, permanent=False, unknown_outcome=not isinstance(exc, URLError))


def _call(method: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = _client().api_call(method, json=kwargs)
        return dict(response.data) if isinstance(response.data, dict) else {}
    except (SlackApiError, SlackClientError, OSError, ValueError, HTTPException) as exc:
        raise _classify(exc) from exc


def _read(method: str, **params: Any) -> dict[str, Any]:
    """A read method: form parameters in a GET (Slack's read methods do not take JSON bodies)."""
    params = {k: (1 if v is True else v) for k, v in params.items() if v is not None}
    try:
        response = _client().api_call(method, http_verb="GET", params=params)
        return dict(response.data) if isinstance(response.data, dict) else {}
    except (SlackApiError, SlackClientError, OSError, ValueError, HTTPException) as exc:
        raise _classify(exc) from exc


# Every post carries message metadata naming its delivery, so a post whose answer was lost can be
# recognised in the channel's history instead of being posted again.
METADATA_EVENT_TYPE = "leadsite_delivery"


def delivery_metadata(delivery_id: int) -> dict[str, Any]:
    return {"event_type": METADATA_EVENT_TYPE, "event_payload": {"delivery_id": delivery_id}}


def post_message(
    *,
    channel: str,
    text: str,
    blocks: list[dict[str, Any]],
    thread_ts: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Posted:
    payload: dict[str, Any] = {"channel": channel, "text": text, "blocks": blocks, "unfurl_links": False}
    if thread_ts:
        payload["thread_ts"] = thread_ts
    if metadata:
        payload["metadata"] = metadata
    if is_console():
        return Posted(channel=channel, ts=_console("chat.postMessage", payload))
    data = _call("chat.postMessage", **payload)
    posted = Posted(channel=str(data.get("channel") or channel), ts=str(data.get("ts") or ""))
    if posted.channel != channel and _CHANNEL_ID.fullmatch(posted.channel):
        _remember_channel_id(channel, posted.channel)
    return posted


# --- Finding a message we may already have posted ----------------------------------------------

# conversations.history / .replies take a channel id, while routes may name a channel (#leads).
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
_CHANNEL_ID_CACHE = "notifications:slack-channel-id:{name}"
_CHANNEL_ID_SECONDS = 86400
HISTORY_PAGE = 200
# A search reads at most this many pages per method (an unknown outcome is rare, the window short).
HISTORY_MAX_PAGES = 10
CHANNEL_LIST_MAX_PAGES = 20


def _remember_channel_id(name: str, channel_id: str) -> None:
    try:
        cache.set(_CHANNEL_ID_CACHE.format(name=name.lstrip("#").lower()), channel_id, _CHANNEL_ID_SECONDS)
    except Exception:  # noqa: BLE001 - a cache outage only costs a conversations.list later
        logger.warning("could not cache the id of Slack channel %s", name)


def _channel_id(channel: str) -> str:
    if _CHANNEL_ID.fullmatch(channel):
        return channel
    name = channel.lstrip("#").lower()
    try:
        known = cache.get(_CHANNEL_ID_CACHE.format(name=name))
    except Exception:  # noqa: BLE001
        known = None
    if known:
        return str(known)
    cursor = None
    for _ in range(CHANNEL_LIST_MAX_PAGES):
        data = _read(
            "conversations.list",
            types="public_channel,private_channel",
            exclude_archived=True,
            limit=1000,
            cursor=cursor,
        )
        for item in data.get("channels") or []:
            if isinstance(item, dict) and str(item.get("name", "")).lower() == name and item.get("id"):
                _remember_channel_id(name, str(item["id"]))
                return str(item["id"])
        cursor = (data.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    raise SlackError("channel_not_found", permanent=True)


def _is_ours(message: Any, delivery_id: int) -> bool:
    if not isinstance(message, dict):
        return False
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, dict) and str(payload.get("delivery_id")) == str(delivery_id)


def _search(method: str, delivery_id: int, **params: Any) -> str | None:
    cursor = None
    for _ in range(HISTORY_MAX_PAGES):
        data = _read(method, include_all_metadata=True, inclusive=True, limit=HISTORY_PAGE, cursor=cursor, **params)
        for message in data.get("messages") or []:
            if _is_ours(message, delivery_id):
                return str(message.get("ts") or "")
        cursor = (data.get("response_metadata") or {}).get("next_cursor")
        if not cursor or not data.get("has_more", True):
            return None
    logger.warning("gave up looking for delivery %s after %s pages of %s", delivery_id, HISTORY_MAX_PAGES, method)
    return None


def find_message(
    *, channel: str, delivery_id: int, oldest: float, latest: float, thread_ts: str | None = None
) -> str | None:
    """The ts of a message posted for `delivery_id` between `oldest` and `latest` (epoch seconds),
    or None. Looks at the channel's top level and, for a reply, at the thread it belongs in.
    Raises SlackError like any call (e.g. missing_scope without channels:history)."""
    if is_console():
        return None  # nothing was really posted
    channel_id = _channel_id(channel)
    window = {"oldest": f"{oldest:.6f}", "latest": f"{latest:.6f}"}
    if thread_ts:
        found = _search("conversations.replies", delivery_id, channel=channel_id, ts=thread_ts, **window)
        if found:
            return found
    return _search("conversations.history", delivery_id, channel=channel_id, **window)


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
