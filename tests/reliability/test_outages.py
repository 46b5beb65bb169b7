"""PostgreSQL unreachable: every endpoint says so at once (503 + Retry-After), never a 500."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import urlencode

import pytest
import requests

from tests.conftest import free_port

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "slack-signing-secret"


def timed(method: str, url: str, **kwargs: object) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.request(method, url, timeout=10, **kwargs)
    return response, time.monotonic() - started


def test_every_kind_of_endpoint_answers_503_fast_when_the_database_is_unreachable(web_server):
    base = web_server(DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/gone", SLACK_SIGNING_SECRET=SECRET)
    requests.get(f"{base}/api/health", timeout=60)  # the worker has booted (imports done) before timing
    key = "ls_0123abcd_" + "x" * 43  # well-formed, so it is looked up (in the database)
    claim = {
        "type": "block_actions",
        "user": {"id": "U1"},
        "channel": {"id": "C1"},
        "message": {"ts": "1700000000.000001"},
        "response_url": "http://127.0.0.1:9/response",
        "actions": [{"action_id": "lead_claim", "value": str(uuid.uuid4()), "type": "button"}],
    }
    body = urlencode({"payload": json.dumps(claim)})
    ts = str(int(time.time()))
    signature = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    cases = {
        "intake": timed(
            "POST", f"{base}/api/leads", json={"name": "A", "phone": "2065550100"}, headers={"X-Api-Key": key}
        ),
        "alerts": timed("POST", f"{base}/api/alerts", json={"message": "m"}, headers={"X-Api-Key": key}),
        "leads list": timed("GET", f"{base}/api/leads", headers={"X-Api-Key": key}),
        "slack interactions": timed(
            "POST",
            f"{base}/slack/interactions",
            data=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": signature,
            },
        ),
    }
    for name, (response, seconds) in cases.items():
        assert response.status_code == 503, (name, response.status_code, response.text[:300])
        assert response.json() == {"detail": "the database is unavailable; retry shortly"}, name
        assert response.headers["Retry-After"] == "5", name
        assert seconds < 2.0, (name, seconds)

    health, seconds = timed("GET", f"{base}/api/health")
    assert (health.status_code, health.headers["Retry-After"], seconds < 2.0) == (503, "5", True)
    assert health.json()["database"].startswith("down") and health.json()["status"] == "down"
