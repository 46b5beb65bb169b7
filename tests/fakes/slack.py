"""A local fake of Slack's Web API for tests (point SLACK_API_BASE_URL at `fake.base_url`).

    with FakeSlack() as fake:
        fake.enforce_rate(per_second=1, burst=3)      # 429 + Retry-After beyond that, per channel
        fake.fail_next("chat.postMessage", "ratelimited", retry_after=2)
        fake.fail_next("chat.postMessage", "http_500")
        fake.fail_next("chat.postMessage", "channel_not_found")   # any ok:false error
        fake.fail_next("chat.postMessage", "hang")                # never answers (until close)
        ...
        fake.messages()            # accepted chat.postMessage calls, in order
        fake.calls                 # every request, with its outcome

Implements chat.postMessage, chat.update and a response_url endpoint (POST /response/<id>).
Requests without `Authorization: Bearer <token>` get `invalid_auth`. Messages get increasing ts values.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Call:
    method: str
    body: dict[str, Any]
    at: float
    outcome: str = "pending"  # ok | ratelimited | http_500 | <error> | hang
    ts: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def channel(self) -> str:
        return str(self.body.get("channel", ""))

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))

    @property
    def thread_ts(self) -> str | None:
        return self.body.get("thread_ts")


class FakeSlack:
    def __init__(self, token: str = "xoxb-fake-token") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self._failures: dict[str, list[dict[str, Any]]] = {}
        self._rate: tuple[float, float] | None = None
        self._buckets: dict[str, tuple[float, float]] = {}
        self._ts_counter = 0
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

    def fail_next(self, method: str, kind: str, *, retry_after: int = 1, times: int = 1) -> None:
        with self.lock:
            self._failures.setdefault(method, []).extend(
                {"kind": kind, "retry_after": retry_after} for _ in range(times)
            )

    # --- what happened ---
    def messages(self, channel: str | None = None) -> list[Call]:
        with self.lock:
            return [
                c
                for c in self.calls
                if c.method == "chat.postMessage" and c.outcome == "ok" and (channel is None or c.channel == channel)
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
                    self._ts_counter += 1
                    call.ts = f"1700000000.{self._ts_counter:06d}"
                    return 200, {"ok": True, "channel": call.channel, "ts": call.ts, "message": {"text": call.text}}, {}
                call.ts = str(body.get("ts", ""))
                return 200, {"ok": True, "channel": call.channel, "ts": call.ts}, {}
            kind = failure["kind"]
            call.outcome = kind
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

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    body = json.loads(raw or b"{}")
                else:
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
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
