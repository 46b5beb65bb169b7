from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.django_db


def test_health_ok_when_everything_is_up(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["cache"], body["broker"]) == ("ok", "ok", "ok", "ok")


def _health(base_url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{base_url}/api/health", timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_health_503_naming_every_part_that_is_down(web_server, worker_env):
    dead = free_port()
    base = web_server(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{dead}/nothing",
        REDIS_URL=f"redis://127.0.0.1:{dead}/0",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{dead}/1",
    )
    status, body = _health(base)
    assert status == 503
    assert body["status"] == "down"
    assert body["database"].startswith("down: ")
    assert body["cache"].startswith("down")
    assert body["broker"].startswith("down")
    assert body["duration_ms"] < 10_000


def test_health_degraded_but_200_when_only_redis_is_down(web_server):
    dead = free_port()
    base = web_server(REDIS_URL=f"redis://127.0.0.1:{dead}/0", CELERY_BROKER_URL=f"redis://127.0.0.1:{dead}/1")
    status, body = _health(base)
    assert status == 200
    assert (body["status"], body["database"]) == ("degraded", "ok")
    assert body["cache"].startswith("down") and body["broker"].startswith("down")
