"""Done-when of issue 6: one search by the form post's request id shows the lead's whole journey."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from django.test import Client

from tests.leads.conftest import FORM

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _journey(client: Client, key: str, request_id: str) -> list[dict]:
    response = client.get("/api/logs", {"request_id": request_id, "order": "asc", "limit": 500}, HTTP_X_API_KEY=key)
    assert response.status_code == 200
    return response.json()["items"]


def _task_entries(entries: list[dict], task: str) -> list[dict]:
    return [e for e in entries if e["service"] == "worker" and f"Task {task}[" in e["message"]]


def test_a_search_by_request_id_shows_the_web_request_and_the_worker_tasks_in_order(
    web_server, start_worker, make_api_key
):
    start_worker()
    base = web_server()
    form_key = make_api_key("leads:create", name="Example form")
    read_key = make_api_key("logs:read")
    request_id = f"journey-{uuid.uuid4().hex}"

    response = requests.post(
        f"{base}/api/leads", json=FORM, headers={"X-Api-Key": form_key, "X-Request-ID": request_id}, timeout=10
    )
    assert response.status_code == 201, response.text
    lead_id = response.json()["id"]

    client = Client()
    deadline = time.monotonic() + 60
    while True:
        entries = _journey(client, read_key, request_id)
        done = (
            any(e["service"] == "web" for e in entries)
            and _task_entries(entries, "valuation.value_lead")
            and _task_entries(entries, "leads.fan_out")
        )
        if done:
            break
        assert time.monotonic() < deadline, (
            f"journey incomplete after 60 s: {[(e['service'], e['message']) for e in entries]}"
        )
        time.sleep(0.5)

    assert all(e["request_id"] == request_id for e in entries)
    times = [e["time"] for e in entries]
    assert times == sorted(times)
    web = [e for e in entries if e["service"] == "web" and e["event"] == "http.request"]
    assert [(e["context"]["method"], e["context"]["path"], e["context"]["status"]) for e in web] == [
        ("POST", "/api/leads", 201)
    ]
    assert web[0]["lead_id"] == lead_id
    # Worker entries of the fan-out (which posts the New Lead itself) and the valuation, each stamped
    # with the lead.
    for task in ("leads.fan_out", "valuation.value_lead"):
        task_entries = _task_entries(entries, task)
        assert any("succeeded" in e["message"] for e in task_entries), task_entries
        assert all(e["lead_id"] == lead_id for e in task_entries), task_entries
    # The web request came first.
    assert entries[0]["service"] == "web"

    # The same journey through the lead's id (entries stamped with it).
    by_lead = client.get("/api/logs", {"lead_id": lead_id, "limit": 500}, HTTP_X_API_KEY=read_key).json()["items"]
    assert {e["service"] for e in by_lead} >= {"web", "worker"}
