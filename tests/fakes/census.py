"""A fake US Census geocoder (`/geocoder/locations/onelineaddress`) for tests: never the real one.

`FakeCensus.start()` serves on a free port; set `mode` to "match", "no_match", "error" (HTTP 500)
or "slow" (answers after `delay` seconds). Every request's `address` parameter is recorded.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeCensus:
    def __init__(self) -> None:
        self.mode = "match"
        self.point = (47.621, -122.331)  # (lat, lon) answered for every address
        self.delay = 3.0
        self.addresses: list[str] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                with fake._lock:
                    fake.addresses.append(query.get("address", [""])[0])
                mode = fake.mode
                if mode == "slow":
                    time.sleep(fake.delay)
                if mode == "error":
                    self._send(500, {"errors": ["internal"]})
                    return
                matches = []
                if mode in ("match", "slow"):
                    lat, lon = fake.point
                    matches = [{"matchedAddress": "X", "coordinates": {"x": lon, "y": lat}}]
                self._send(200, {"result": {"input": {}, "addressMatches": matches}})

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): that is the point of "slow"

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/geocoder/locations/onelineaddress"

    def start(self) -> FakeCensus:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
