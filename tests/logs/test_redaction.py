"""PII stays out of the central store: query strings, e-mails, street addresses, Slack response URLs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from logs.handler import stop_all
from logs.models import LogEntry
from logs.records import LogRow
from logs.services import log_entries_write

RESPONSE_URL = "https://hooks.slack.com/actions/T0123/456789/AbCdEfGhIjKl"


def _row(message: str, context: dict, exception: str = "") -> LogRow:
    return LogRow(
        time=datetime.now(tz=UTC),
        level=logging.INFO,
        level_name="INFO",
        service="worker",
        logger="tests",
        event="",
        message=message,
        context=context,
        request_id="",
        lead_id="",
        exception=exception,
        host="test",
        process=None,
    )


@pytest.mark.django_db
def test_the_store_keeps_no_query_values_emails_addresses_or_response_urls():
    log_entries_write(
        [
            _row(
                "GET /api/leads?email=jane%40example.com&q=206-555-0123 from jane@example.com "
                "for 123 N Main St Apt 4, Seattle, WA 98101; respond to " + RESPONSE_URL,
                {
                    # the shape Celery gives a task's "received" line (args as their repr)
                    "data": {"name": "notifications.respond", "args": f"('{RESPONSE_URL}', 'Claimed')"},
                    "address": "4512 Rainier Ave S, Seattle, WA 98118",
                    "email": "jane@example.com",
                    "request": "<WSGIRequest: GET '/api/leads?phone=%2B12065550123'>",
                    "estimate": 512000,
                },
                exception=f"SlackError: response_url {RESPONSE_URL} HTTP 404",
            )
        ]
    )
    entry = LogEntry.objects.get()
    assert entry.message == (
        "GET /api/leads?email=[redacted]&q=[redacted] from [email] for [address]; "
        "respond to https://hooks.slack.com/[redacted]"
    )
    assert entry.context == {
        "data": {"name": "notifications.respond", "args": "('https://hooks.slack.com/[redacted]', 'Claimed')"},
        "address": "[redacted]",
        "email": "[redacted]",
        "request": "<WSGIRequest: GET '/api/leads?phone=[redacted]'>",
        "estimate": 512000,
    }
    assert entry.exception == "SlackError: response_url https://hooks.slack.com/[redacted] HTTP 404"
    stored = json.dumps([entry.message, entry.context, entry.exception])
    for secret in ("jane", "555-0123", "Main St", "Rainier", "T0123", "12065550123"):
        assert secret not in stored


@pytest.mark.django_db
def test_ordinary_lines_and_phones_outside_urls_are_kept_as_they_are():
    lines = [
        "POST /api/leads 201 in 35 ms",
        "sent 3 messages the fast way",
        "lead received from Jane Seller phone +12065550123",
        "valuation finished: estimate 512000 usd (12 comps)",
    ]
    log_entries_write([_row(line, {"status": 201}) for line in lines])
    assert sorted(LogEntry.objects.values_list("message", flat=True)) == sorted(lines)


@pytest.fixture
def store_on(transactional_db, settings) -> Iterator[None]:
    settings.LOGS_TO_DATABASE = True
    yield
    stop_all()


def test_requests_with_personal_data_in_the_query_leave_none_in_the_store(store_on, client, make_api_key):
    key = make_api_key("leads:read")
    response = client.get("/api/leads", {"q": "jane@example.com", "email": "jane@example.com"}, HTTP_X_API_KEY=key)
    assert response.status_code == 200
    assert client.get("/no-such-page", {"phone": "206-555-0123"}).status_code == 404
    stop_all()
    entries = list(LogEntry.objects.values("event", "message", "context"))
    access = [e for e in entries if e["event"] == "http.request"]
    assert [e["context"]["path"] for e in access] == ["/api/leads"]
    not_found = [e for e in entries if e["message"] == "Not Found: /no-such-page"]
    assert len(not_found) == 1
    assert "phone=[redacted]" in not_found[0]["context"]["request"]
    assert "jane" not in json.dumps(entries) and "555-0123" not in json.dumps(entries)
