"""POST /api/leads through the WSGI application gunicorn serves: the lean middleware chain
(leadsite/lean.py) keeps every promise the full chain makes to a web form's submission."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.test import RequestFactory

from leads.models import Lead, OutboxEvent
from leadsite.lean import LEAN_MIDDLEWARE, LeanPathDispatcher
from logs.handler import stop_all
from logs.models import LogEntry

ORIGIN = "https://www.example.com"
BODY = {"name": "Jane Seller", "phone": "(206) 555-0123", "address": "4512 Maple Ave, Seattle, WA 98105"}


def _wsgi(method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, dict[str, str], bytes]:
    from leadsite.wsgi import application

    environ = RequestFactory().generic(method, path, body, content_type="application/json", **headers).environ
    started: list[Any] = []
    chunks = application(
        environ, lambda status, response_headers, exc_info=None: started.extend((status, response_headers))
    )
    try:
        content = b"".join(chunks)
    finally:
        chunks.close()
    return int(started[0].split()[0]), {name.lower(): value for name, value in started[1]}, content


def test_the_lean_chain_is_the_full_chain_minus_what_the_admin_needs() -> None:
    from leadsite.wsgi import application

    assert isinstance(application, LeanPathDispatcher)
    full = list(settings.MIDDLEWARE)
    assert [m for m in full if m in LEAN_MIDDLEWARE] == list(LEAN_MIDDLEWARE)


@pytest.mark.django_db(transaction=True)
def test_a_form_submission_through_the_lean_path_is_stored_logged_and_answered_with_every_header(
    make_api_key, client, settings
) -> None:
    settings.LOGS_TO_DATABASE = True
    key = make_api_key("leads:create", origins=[ORIGIN])
    headers = {"HTTP_X_API_KEY": key, "HTTP_ORIGIN": ORIGIN, "HTTP_X_REQUEST_ID": "lean-path-0001"}
    try:
        status, lean_headers, content = _wsgi("POST", "/api/leads", json.dumps(BODY).encode(), **headers)
    finally:
        stop_all()  # flushes the central log's queue
    assert status == 201, content
    lead = Lead.objects.get(id=json.loads(content)["id"])
    assert (lead.name, lead.phone, lead.address_key, lead.request_id) == (
        "Jane Seller",
        "+12065550123",
        "4512 maple ave|98105",
        "lean-path-0001",
    )
    assert OutboxEvent.objects.filter(lead_id=lead.id).count() == 1
    # The central log's request entry, with the request id, the lead and the key's name.
    [entry] = LogEntry.objects.filter(event="http.request")
    assert (entry.context["path"], entry.context["status"], entry.context["api_key"]) == ("/api/leads", 201, "test")
    assert (entry.request_id, entry.lead_id) == ("lean-path-0001", str(lead.id))
    assert lean_headers["x-request-id"] == "lean-path-0001"
    assert lean_headers["access-control-allow-origin"] == ORIGIN
    assert lean_headers["x-content-type-options"] == "nosniff"
    assert lean_headers["x-frame-options"] == "DENY"
    assert lean_headers["content-length"] == str(len(content))

    # The same submission (another person) through the full chain: the same headers.
    other = {**BODY, "phone": "(206) 555-0199"}
    full = client.post("/api/leads", json.dumps(other), content_type="application/json", **headers)
    assert full.status_code == 201
    assert set(lean_headers) == {name.lower() for name in full.headers}


@pytest.mark.django_db(transaction=True)
def test_the_lean_path_keeps_the_guards_and_the_json_errors(make_api_key) -> None:
    key = make_api_key("leads:create")
    status, _, content = _wsgi("POST", "/api/leads", b"{}", HTTP_X_API_KEY="ls_nope_nope")
    assert (status, json.loads(content)) == (401, {"detail": "Unauthorized"})
    status, _, content = _wsgi("POST", "/api/leads", b"x" * (65 * 1024), HTTP_X_API_KEY=key)
    assert status == 413 and "too large" in json.loads(content)["detail"]
    status, _, content = _wsgi("POST", "/api/leads", json.dumps({"name": "No Contact"}).encode(), HTTP_X_API_KEY=key)
    assert (status, json.loads(content)["detail"]["phone"]) == (422, ["a phone or an email is required"])
    assert not Lead.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_cors_preflight_for_the_form_is_answered_on_the_lean_path(make_api_key) -> None:
    make_api_key("leads:create", origins=[ORIGIN])
    status, headers, _ = _wsgi(
        "OPTIONS",
        "/api/leads",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-api-key,idempotency-key",
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == ORIGIN
    assert "x-api-key" in headers["access-control-allow-headers"].lower()
