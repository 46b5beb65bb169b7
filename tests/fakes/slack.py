"""A local fake of Slack's Web API for tests (point SLACK_API_BASE_URL at `fake.base_url`).

    with FakeSlack() as fake:
        fake.enforce_rate(per_second=1, burst=3)      # 429 + Retry-After beyond that, per channel
        fake.fail_next("chat.postMessage", "ratelimited", retry_after=2)
        fake.fail_next("chat.postMessage", "http_500")
        fake.fail_next("chat.postMessage", "channel_not_found")   # any ok:false error
        fake.fail_next("chat.postMessage", "hang")                # never answers (until close), stores nothing
        fake.fail_next("chat.postMessage", "accept_hang")         # stores the message, never answers
        fake.fail_next("chat.postMessage", "accept_late", delay=3)  # stores it, answers after 3 s
        ...
        fake.messages()            # chat.postMessage calls whose message Slack stored, in order
        fake.calls                 # every request, with its outcome

Implements chat.postMessage (with message metadata), chat.update, conversations.history and
conversations.replies (channel ids only, like Slack: `#name` is channel_not_found; newest first /
thread order, oldest/latest/inclusive, cursor pages, metadata only with include_all_metadata),
conversations.list, and a response_url endpoint (POST /response/<id>). `#leads` exists from the
start; any other channel posted to by name is created with an id (`fake.channel_id("#money")`). Requests without `Authorization: Bearer <token>` get
`invalid_auth`. Messages get increasing ts values from the wall clock, as Slack's do.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Call:
    method: str
    body: dict[str, Any]
    at: float
    outcome: str = "pending"  # ok | ratelimited | http_500 | <error> | hang | accept_hang | accept_late
    ts: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    stored: bool = False  # chat.postMessage: Slack kept the message (whether or not it answered)

    @property
    def channel(self) -> str:
        return str(self.body.get("channel", ""))

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))

    @property
    def thread_ts(self) -> str | None:
        return self.body.get("thread_ts")

    @property
    def metadata(self) -> dict[str, Any] | None:
        return self.body.get("metadata")


class FakeSlack:
    def __init__(self, token: str = "xoxb-fake-token", channels: tuple[str, ...] = ("#leads",)) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self._failures: dict[str, list[dict[str, Any]]] = {}
        self._rate: tuple[float, float] | None = None
        self._buckets: dict[str, tuple[float, float]] = {}
        self._last_ts = 0.0
        self._channel_ids: dict[str, str] = {}
        # channel id -> stored messages ({"ts", "text", "thread_ts", "metadata", "blocks"}) in post order
        self._history: dict[str, list[dict[str, Any]]] = {}
        for channel in channels:  # channels that exist in the workspace from the start
            self._resolve(channel)
        self._release = threading.Event()
        self.hung = threading.Event()  # set when a request starts hanging
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- control ---
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/response/{name}"

    def start(self) -> FakeSlack:
        self.thread.start()
        return self

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def enforce_rate(self, per_second: float = 1.0, burst: int = 3) -> None:
        self._rate = (per_second, float(burst))

    def fail_next(self, method: str, kind: str, *, retry_after: int = 1, times: int = 1, delay: float = 30.0) -> None:
        with self.lock:
            self._failures.setdefault(method, []).extend(
                {"kind": kind, "retry_after": retry_after, "delay": delay} for _ in range(times)
            )

    def channel_id(self, channel: str) -> str:
        """The id of a channel (created on first use): `#leads` and `leads` name the same one."""
        with self.lock:
            return self._resolve(channel)

    # --- what happened ---
    def messages(self, channel: str | None = None) -> list[Call]:
        with self.lock:
            return [
                c
                for c in self.calls
                if c.method == "chat.postMessage" and c.stored and (channel is None or c.channel == channel)
            ]

    def updates(self) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == "chat.update" and c.outcome == "ok"]

    def outcomes(self, method: str = "chat.postMessage") -> list[str]:
        with self.lock:
            return [c.outcome for c in self.calls if c.method == method]

    def wait_for(self, predicate, timeout: float = 20.0, interval: float = 0.05) -> bool:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return bool(predicate())

    # --- server ---
    def _resolve(self, channel: str) -> str:
        if channel in self._channel_ids.values():
            return channel
        name = channel.lstrip("#").lower()
        if name not in self._channel_ids:
            self._channel_ids[name] = f"CFAKE{len(self._channel_ids) + 1:04d}"
        return self._channel_ids[name]

    def _next_ts(self) -> str:
        # Wall-clock based and strictly increasing, like Slack's message timestamps.
        ts = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = ts
        return f"{ts:.6f}"

    def _store(self, call: Call) -> dict[str, Any]:
        channel_id = self._resolve(call.channel)
        call.ts = self._next_ts()
        call.stored = True
        self._history.setdefault(channel_id, []).append(
            {
                "type": "message",
                "ts": call.ts,
                "text": call.text,
                "blocks": call.body.get("blocks"),
                "thread_ts": call.thread_ts,
                "metadata": call.metadata,
            }
        )
        return {"ok": True, "channel": channel_id, "ts": call.ts, "message": {"text": call.text}}

    @staticmethod
    def _flag(value: Any) -> bool:
        return str(value).lower() in ("1", "true")

    def _public(self, message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
        out = {k: v for k, v in message.items() if v is not None and k != "metadata"}
        if with_metadata and message.get("metadata"):
            out["metadata"] = message["metadata"]
        return out

    def _page(self, items: list[dict[str, Any]], body: dict[str, Any], key: str) -> dict[str, Any]:
        start = int(str(body.get("cursor") or "0").removeprefix("next:") or 0)
        limit = max(1, min(1000, int(body.get("limit") or 100)))
        page = items[start : start + limit]
        more = start + limit < len(items)
        return {
            "ok": True,
            key: page,
            "has_more": more,
            "response_metadata": {"next_cursor": f"next:{start + limit}" if more else ""},
        }

    def _read(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "conversations.list":
            channels = [{"id": cid, "name": name} for name, cid in self._channel_ids.items()]
            return self._page(channels, body, "channels")
        channel = str(body.get("channel") or "")
        if channel not in self._channel_ids.values():
            return {"ok": False, "error": "channel_not_found"}
        inclusive = self._flag(body.get("inclusive"))
        oldest = float(body.get("oldest") or 0)
        latest = float(body.get("latest") or time.time() + 1e6)

        def in_window(message: dict[str, Any]) -> bool:
            ts = float(message["ts"])
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        with_metadata = self._flag(body.get("include_all_metadata"))
        history = self._history.get(channel, [])
        if method == "conversations.history":
            top = [m for m in reversed(history) if not m.get("thread_ts") and in_window(m)]
            return self._page([self._public(m, with_metadata) for m in top], body, "messages")
        # conversations.replies: the parent first, then its replies, oldest first.
        parent_ts = str(body.get("ts") or "")
        parent = next((m for m in history if m["ts"] == parent_ts), None)
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        replies = [m for m in history if m.get("thread_ts") == parent_ts and in_window(m)]
        return self._page([self._public(m, with_metadata) for m in [parent, *replies]], body, "messages")

    def _take_token(self, channel: str, now: float) -> float | None:
        """None if allowed, else seconds until a token is available."""
        if self._rate is None:
            return None
        rate, burst = self._rate
        tokens, last = self._buckets.get(channel, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens >= 1:
            self._buckets[channel] = (tokens - 1, now)
            return None
        self._buckets[channel] = (tokens, now)
        return (1 - tokens) / rate

    def _handle(self, method: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict | str, dict]:
        now = time.monotonic()
        call = Call(method=method, body=body, at=now, headers=headers)
        with self.lock:
            self.calls.append(call)
            if method.startswith("response/"):
                call.outcome = "ok"
                return 200, "ok", {}
            if headers.get("authorization") != f"Bearer {self.token}":
                call.outcome = "invalid_auth"
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            failure = (self._failures.get(method) or [None]).pop(0) if self._failures.get(method) else None
            if failure is None and method == "chat.postMessage":
                wait = self._take_token(call.channel, now)
                if wait is not None:
                    failure = {"kind": "ratelimited", "retry_after": max(1, int(wait + 0.999))}
            if failure is None:
                call.outcome = "ok"
                if method == "chat.postMessage":
                    return 200, self._store(call), {}
                if method.startswith("conversations."):
                    answer = self._read(method, body)
                    call.outcome = "ok" if answer.get("ok") else str(answer.get("error"))
                    return 200, answer, {}
                call.ts = str(body.get("ts", ""))
                return 200, {"ok": True, "channel": call.channel, "ts": call.ts}, {}
            kind = failure["kind"]
            call.outcome = kind
            if kind in ("accept_hang", "accept_late") and method == "chat.postMessage":
                answer = self._store(call)
        if kind in ("accept_hang", "accept_late"):
            # Slack kept the message, but the answer is lost or comes after the client gave up.
            self.hung.set()
            self._release.wait(failure["delay"] if kind == "accept_late" else 120)
            return 200, answer, {}
        if kind == "ratelimited":
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(failure["retry_after"])}
        if kind == "http_500":
            return 500, "Internal Server Error", {}
        if kind == "hang":
            self.hung.set()
            self._release.wait(120)
            return 500, "released", {}
        return 200, {"ok": False, "error": kind}, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._answer({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()})

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    body = json.loads(raw or b"{}")
                else:
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                body.update({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()})
                self._answer(body)

            def _answer(self, body: dict[str, Any]) -> None:
                path = self.path.split("?", 1)[0]
                method = path[len("/api/") :] if path.startswith("/api/") else path.lstrip("/")
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload, extra = fake._handle(method, body, headers)
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client went away (a killed worker)

        return Handler
