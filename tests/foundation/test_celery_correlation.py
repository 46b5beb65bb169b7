from __future__ import annotations

import time
import uuid

import pytest
from django.core.cache import cache

from leadsite.context import lead_id_var, request_id_var
from leadsite.tasks import ping


def _wait_for(key: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cache.get(key)
        if value is not None:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{key} never appeared")


@pytest.mark.worker
def test_request_id_travels_into_a_real_worker_task(start_worker):
    worker = start_worker()
    marker = uuid.uuid4().hex
    token, lead_token = request_id_var.set("req-roundtrip-0001"), lead_id_var.set("lead-42")
    try:
        ping.delay(marker)
    finally:
        request_id_var.reset(token)
        lead_id_var.reset(lead_token)
    assert _wait_for(f"ping:{marker}") == {"request_id": "req-roundtrip-0001", "lead_id": "lead-42"}
    assert "leadsite.ping" in worker.output()


@pytest.mark.worker
def test_task_started_outside_a_request_gets_its_own_id(start_worker):
    start_worker()
    marker = uuid.uuid4().hex
    ping.delay(marker)
    seen = _wait_for(f"ping:{marker}")
    assert seen["lead_id"] is None
    assert len(seen["request_id"]) == 32


def test_publishing_to_a_dead_broker_fails_fast_instead_of_hanging(settings):
    from leadsite.celery import app
    from tests.conftest import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    with app.connection_for_write(dead) as conn:
        started = time.perf_counter()
        with pytest.raises(Exception) as excinfo:
            ping.apply_async(("never",), connection=conn)
        elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"publish hung for {elapsed:.2f}s"
    assert "Connection refused" in str(excinfo.value) or "Error" in type(excinfo.value).__name__
