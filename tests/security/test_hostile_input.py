"""One regression test per class of hostile input that used to end in a 500 (or an HTML page).

Each asserts the exact answer (a 4xx JSON `{"detail": ...}` or a success) and what was stored.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

import pytest

from leads.models import Lead
from logs.models import LogEntry
from logs.services import LogRow, log_entries_write
from notifications.models import Payment, StripeEvent
from tests.security.conftest import LEAD, slack_signature, stripe_signature

pytestmark = pytest.mark.django_db


def _post(client, path: str, body: str | bytes, key: str, **headers: str):
    return client.post(path, body, content_type="application/json", HTTP_X_API_KEY=key, **headers)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("path", ["/api/leads", "/api/alerts", "/api/valuations", "/api/logs"])
def test_deeply_nested_json_is_400_with_a_clear_message(client, all_key, path) -> None:
    body = f'{{"name": "x", "phone": "2065550123", "entries": {_nested(2)}, "deep": {_nested(5000)}}}'
    response = _post(client, path, body, all_key)
    assert response.status_code == 400
    assert response.json() == {"detail": "the body nests deeper than 20 levels"}
    assert not Lead.objects.exists()


def test_nesting_within_the_limit_is_kept_in_the_extra_answers(client, all_key) -> None:
    body = json.dumps({**LEAD, "answers": json.loads(_nested(18))})
    response = _post(client, "/api/leads", body, all_key)
    assert response.status_code == 201
    assert Lead.objects.get().extra == {"answers": json.loads(_nested(18))}


def test_non_finite_numbers_lone_surrogates_and_nul_in_extra_answers_are_stored(client, all_key) -> None:
    body = (
        '{"name": "Jane", "phone": "2065550123", "huge": 1e309, "tiny": -1e309, '
        '"lonely": "a\\ud800b", "\\udc00key": 1, "nul\\u0000key": "x\\u0000y", "emoji": "\\ud83d\\ude00"}'
    )
    response = _post(client, "/api/leads", body, all_key)
    assert response.status_code == 201, response.content
    assert Lead.objects.get().extra == {
        "huge": "1e309",
        "tiny": "-1e309",
        "lonely": "a?b",
        "?key": 1,
        "nulkey": "xy",
        "emoji": "\U0001f600",
    }


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_not_json(client, all_key, constant) -> None:
    response = _post(client, "/api/leads", f'{{"name": "x", "phone": "2065550123", "v": {constant}}}', all_key)
    assert response.status_code == 400
    assert response.json() == {"detail": f"{constant} is not valid JSON"}


@pytest.mark.parametrize(
    "path", ["/api/leads?created_after=", "/api/leads?created_before=", "/api/logs?since=", "/api/logs?until="]
)
@pytest.mark.parametrize(
    "stamp", ["2024-01-01T00:00:00+20:00", "2024-01-01T00:00:00-23:59", "2024-01-01T00:00:00+15:59"]
)
def test_offsets_postgresql_cannot_store_are_converted_to_utc(client, all_key, path, stamp) -> None:
    response = client.get(path + quote(stamp), HTTP_X_API_KEY=all_key)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("path", ["/api/leads?created_after=", "/api/logs?until="])
@pytest.mark.parametrize(
    "stamp", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "0000-01-01T00:00:00", "10000-01-01T00:00:00"]
)
def test_instants_outside_years_1_to_9999_are_422(client, all_key, path, stamp) -> None:
    response = client.get(path + quote(stamp), HTTP_X_API_KEY=all_key)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_a_log_entry_with_a_large_offset_is_stored_in_utc(client, all_key) -> None:
    local = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=20)
    entry = {"timestamp": local.strftime("%Y-%m-%dT%H:%M:%S+20:00"), "level": "info", "service": "s", "message": "m"}
    response = _post(client, "/api/logs", json.dumps({"entries": [entry]}), all_key)
    assert response.json() == {"accepted": 1, "rejected": []}
    assert LogEntry.objects.get().time == local - timedelta(hours=20)


@pytest.mark.parametrize("q", ["!&|", "!", "&", "|", "(", ")", ":*", "<->", "'", '"', "-", "!!&&||", "\\"])
def test_full_text_queries_made_only_of_operators_are_answered(client, all_key, q) -> None:
    now = datetime.now(UTC)
    log_entries_write([LogRow(now, logging.INFO, "INFO", "web", "t", "e", "slack timeout", {}, "", "", "", "", None)])
    response = client.get("/api/logs?q=" + quote(q), HTTP_X_API_KEY=all_key)
    assert response.status_code == 200
    assert response.json()["items"] == []
    response = client.get("/api/leads?q=" + quote(q), HTTP_X_API_KEY=all_key)
    assert response.status_code == 200


@pytest.mark.parametrize("timestamp", ["abc", "", " ", "1.5", "1e5", "-1", "9" * 30, "١٢٣"])
def test_a_malformed_slack_timestamp_header_is_401(client, signing_settings, timestamp) -> None:
    body = "payload=%7B%7D"
    response = client.post(
        "/slack/interactions",
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=slack_signature(body, timestamp),
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid Slack signature"}


@pytest.mark.parametrize("payload", [_nested(5000), '{"type": NaN}', "[1]", "{"])
def test_a_signed_slack_payload_that_is_not_a_json_object_is_400(client, signing_settings, payload) -> None:
    body = "payload=" + quote(payload)
    timestamp = str(int(time.time()))
    response = client.post(
        "/slack/interactions",
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=slack_signature(body, timestamp),
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "payload must be a JSON object"}


@pytest.mark.parametrize(
    "body",
    ["[]", '"x"', "null", "1", "true", "{}", '{"id": []}', '{"id": {"a": 1}, "type": "payment_intent.succeeded"}'],
)
def test_signed_stripe_bodies_that_are_not_event_objects_are_400(client, signing_settings, body) -> None:
    raw = body.encode()
    response = client.post(
        "/api/webhooks/stripe", raw, content_type="application/json", HTTP_STRIPE_SIGNATURE=stripe_signature(raw)
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "not a Stripe event: the body must be an object with a string id"}
    assert not StripeEvent.objects.exists()


def test_a_signed_stripe_body_nested_too_deep_is_400(client, signing_settings) -> None:
    raw = _nested(10_000).encode()
    response = client.post(
        "/api/webhooks/stripe", raw, content_type="application/json", HTTP_STRIPE_SIGNATURE=stripe_signature(raw)
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "invalid payload: the body nests deeper than 20 levels"}


def test_nul_and_surrogates_in_a_stripe_event_are_stored_cleaned(client, signing_settings) -> None:
    event = (
        '{"id": "evt_nul\\u0000", "type": "payment_intent.succeeded", "data": {"object": '
        '{"id": "pi_\\ud800", "amount": 500, "currency": "usd", "metadata": {"customer_name": "Jo\\u0000e"}}}}'
    )
    raw = event.encode()
    response = client.post(
        "/api/webhooks/stripe", raw, content_type="application/json", HTTP_STRIPE_SIGNATURE=stripe_signature(raw)
    )
    assert response.json() == {"received": True, "status": "recorded"}
    payment = Payment.objects.get()
    assert (payment.stripe_event_id, payment.payment_intent_id, payment.customer) == ("evt_nul", "pi_?", "Joe")


@pytest.mark.parametrize("path", ["/api/nope", "/api/", "/api/leads/x/y", "/api/v2/leads"])
def test_unknown_api_routes_are_json_404(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not Found"}


def test_a_wrong_method_is_json_405_with_allow(client) -> None:
    response = client.delete("/api/leads")
    assert response.status_code == 405
    assert set(response["Allow"].split(", ")) == {"GET", "POST"}
    assert response.json() == {"detail": f"method DELETE not allowed; use {response['Allow']}"}


def test_non_api_404_stays_a_page(client) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_nul_in_the_query_string_is_400(client, all_key) -> None:
    response = client.get("/api/leads?q=a%00b", HTTP_X_API_KEY=all_key)
    assert response.status_code == 400
    assert response.json() == {"detail": "NUL characters are not allowed in query parameters"}


def test_nul_in_a_json_body_is_stripped_before_validation(client, all_key) -> None:
    response = _post(client, "/api/alerts", '{"message": "disk\\u0000 full", "source": "\\u0000"}', all_key)
    assert response.status_code == 201
    response = _post(client, "/api/alerts", '{"message": "\\u0000"}', all_key)
    assert response.status_code == 422


def _chunked_post(base_url: str, path: str, body: bytes, key: str) -> tuple[int, dict]:
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
    conn.putrequest("POST", path)
    conn.putheader("X-Api-Key", key)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for start in range(0, len(body), 4096):
        part = body[start : start + 4096]
        conn.send(b"%x\r\n%s\r\n" % (len(part), part))
    conn.send(b"0\r\n\r\n")
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()
    return response.status, payload


def test_chunked_bodies_are_read_under_gunicorn_and_bounded(web_server, make_api_key) -> None:
    key = make_api_key("leads:create", "logs:write")
    base = web_server()
    status, payload = _chunked_post(base, "/api/leads", json.dumps(LEAD).encode(), key)
    assert (status, payload["duplicate"]) == (201, False)
    assert Lead.objects.get().name == "Jane Seller"
    status, payload = _chunked_post(base, "/api/leads", json.dumps({**LEAD, "pad": "x" * 70_000}).encode(), key)
    assert status == 413
    assert payload == {"detail": "request body too large: 65537 bytes, the limit here is 65536 bytes"}
    assert Lead.objects.count() == 1
    # /api/logs allows 1 MB: a 200 KB chunked batch is read whole.
    entries = [{"timestamp": datetime.now(UTC).isoformat(), "level": "info", "service": "s", "message": "m" * 200}]
    status, payload = _chunked_post(base, "/api/logs", json.dumps({"entries": entries * 900}).encode(), key)
    assert (status, payload) == (202, {"accepted": 900, "rejected": []})


def test_booleans_are_not_numbers_and_consent_takes_what_forms_send(client, all_key) -> None:
    response = _post(client, "/api/leads", json.dumps({**LEAD, "beds": True}), all_key)
    assert response.status_code == 422
    assert response.json() == {"detail": {"beds": ["must be a number or empty, not true/false"]}}
    response = _post(client, "/api/leads", json.dumps({**LEAD, "consent": 2}), all_key)
    assert response.status_code == 422
    response = _post(client, "/api/leads", json.dumps({**LEAD, "consent": "on", "consent_text": "ok"}), all_key)
    assert response.status_code == 201
    assert Lead.objects.get().consent is True
