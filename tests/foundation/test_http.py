from __future__ import annotations

import json
import uuid

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.foundation.probe_urls")]


def test_request_id_is_made_when_absent(client):
    response = client.get("/api/health")
    assert len(response["X-Request-ID"]) == 32
    assert client.get("/api/health")["X-Request-ID"] != response["X-Request-ID"]


def test_well_formed_request_id_is_kept(client):
    rid = "form-" + uuid.uuid4().hex
    assert client.get("/api/health", HTTP_X_REQUEST_ID=rid)["X-Request-ID"] == rid


@pytest.mark.parametrize("bad", ["short", "has spaces in it ok", "x" * 200, "inject\r\nheader: 1"])
def test_malformed_request_id_is_replaced(client, bad):
    returned = client.get("/api/health", HTTP_X_REQUEST_ID=bad)["X-Request-ID"]
    assert returned != bad and len(returned) == 32


def test_request_id_is_on_error_responses_too(client):
    response = client.get("/api/_probe/key/leads:read", HTTP_X_REQUEST_ID="abcdefgh-1234")
    assert response.status_code == 401
    assert response["X-Request-ID"] == "abcdefgh-1234"


def test_body_over_64kb_is_413_json(client):
    body = json.dumps({"pad": "x" * (64 * 1024)})
    response = client.post("/api/_probe/echo", body, content_type="application/json")
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


def test_body_under_64kb_is_accepted(client):
    body = json.dumps({"pad": "x" * 60_000})
    response = client.post("/api/_probe/echo", body, content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {"bytes": len(body)}


def test_log_batches_may_be_up_to_1mb_but_not_more(client):
    from leadsite.middleware import body_limit_for

    assert body_limit_for("/api/logs") == 1024 * 1024
    assert body_limit_for("/api/leads") == 64 * 1024
    response = client.post("/api/logs", "x" * (1024 * 1024 + 1), content_type="application/json")
    assert response.status_code == 413


def test_unhandled_error_is_500_json_without_traceback(client, settings):
    settings.DEBUG = False
    response = client.get("/api/_probe/boom", HTTP_X_REQUEST_ID="trace-me-123")
    assert response.status_code == 500
    body = response.json()
    assert body == {"detail": "internal server error", "request_id": "trace-me-123"}
    assert "secret internal detail" not in response.content.decode()


def test_openapi_and_docs_are_served(client):
    schema = client.get("/api/openapi.json")
    assert schema.status_code == 200
    assert "/api/health" in schema.json()["paths"]
    assert client.get("/api/docs").status_code == 200


def test_nul_in_query_string_is_400_not_500(client, make_api_key):
    key = make_api_key("leads:read", "logs:read")
    for url in ("/api/leads?q=%00", "/api/leads?assignee=a%00b", "/api/logs?service=%00"):
        response = client.get(url, HTTP_X_API_KEY=key)
        assert response.status_code == 400, url
        assert "NUL" in response.json()["detail"]


def test_non_json_body_is_415(client, make_api_key):
    key = make_api_key("alerts:create")
    response = client.post("/api/alerts", "message=hi", content_type="text/plain", HTTP_X_API_KEY=key)
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


def test_nul_characters_in_json_bodies_are_dropped(client, make_api_key):
    from leads.models import Lead

    key = make_api_key("leads:create")
    body = '{"name": "Ada\\u0000 Seller", "phone": "206-555-0100", "address": "1 Main St\\u0000, Seattle, WA"}'
    response = client.post("/api/leads", body, content_type="application/json", HTTP_X_API_KEY=key)
    assert response.status_code == 201, response.content
    lead = Lead.objects.get(id=response.json()["id"])
    assert (lead.name, lead.address) == ("Ada Seller", "1 Main St, Seattle, WA")


@pytest.mark.parametrize("assignee", ["²", "9" * 40])
def test_odd_digit_strings_as_assignee_are_not_500(client, make_api_key, assignee):
    key = make_api_key("leads:read")
    response = client.get("/api/leads", {"assignee": assignee}, HTTP_X_API_KEY=key)
    assert response.status_code == 200
    assert response.json()["items"] == []
