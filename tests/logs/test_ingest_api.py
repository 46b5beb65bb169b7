from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from logs.models import LogEntry

# Entries must be within the retention period (and at most an hour ahead): a recent fixed instant.
T1 = (datetime.now(tz=UTC) - timedelta(days=1)).replace(microsecond=123456)
T2 = T1.replace(microsecond=0) + timedelta(seconds=1)


def _post(client, key: str, body: object, **headers: str):
    return client.post(
        "/api/logs", data=json.dumps(body), content_type="application/json", HTTP_X_API_KEY=key, **headers
    )


def _entry(**fields: object) -> dict:
    return {
        "timestamp": T1.isoformat().replace("+00:00", "Z"),
        "level": "info",
        "service": "pricing-service",
        "message": "quote computed",
        **fields,
    }


@pytest.mark.django_db
def test_good_entries_are_stored_and_bad_ones_rejected_each_with_its_reason(client, make_api_key):
    key = make_api_key("logs:write", name="pricing")
    response = _post(
        client,
        key,
        {
            "entries": [
                _entry(event="quote.done", context={"quote": 12}, request_id="req-12345678", lead_id="lead-1"),
                _entry(level="loud"),
                "not an object",
                _entry(level=40, timestamp=T2.replace(tzinfo=None).isoformat(), message="failed"),
                _entry(request_id="bad id with spaces", service=""),
                _entry(colour="blue"),
            ]
        },
    )
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 2,
        "rejected": [
            {
                "index": 1,
                "errors": [
                    {"field": "level", "message": "Value error, level must be debug, info, warning, error or critical"}
                ],
            },
            {
                "index": 2,
                "errors": [
                    {"field": "entry", "message": "Input should be a valid dictionary or instance of LogEntryIn"}
                ],
            },
            {
                "index": 4,
                "errors": [
                    {"field": "service", "message": "String should have at least 1 character"},
                    {
                        "field": "request_id",
                        "message": "Value error, request_id must be 8-128 characters of letters, digits and . _ : -",
                    },
                ],
            },
            {"index": 5, "errors": [{"field": "colour", "message": "Extra inputs are not permitted"}]},
        ],
    }
    rows = list(
        LogEntry.objects.order_by("time").values(
            "time", "level", "level_name", "service", "logger", "event", "message", "context", "request_id", "lead_id"
        )
    )
    assert rows == [
        {
            "time": T1,
            "level": logging.INFO,
            "level_name": "INFO",
            "service": "pricing-service",
            "logger": "api:pricing",
            "event": "quote.done",
            "message": "quote computed",
            "context": {"quote": 12},
            "request_id": "req-12345678",
            "lead_id": "lead-1",
        },
        {
            "time": T2,
            "level": logging.ERROR,
            "level_name": "ERROR",
            "service": "pricing-service",
            "logger": "api:pricing",
            "event": "",
            "message": "failed",
            "context": {},
            "request_id": "",
            "lead_id": "",
        },
    ]


@pytest.mark.django_db
def test_a_batch_of_more_than_1000_entries_is_413_and_nothing_is_stored(client, make_api_key):
    key = make_api_key("logs:write")
    response = _post(client, key, {"entries": [_entry()] * 1001})
    assert response.status_code == 413
    assert response.json() == {"detail": "too many entries: 1001, at most 1000 per batch"}
    assert LogEntry.objects.count() == 0


@pytest.mark.django_db
def test_exactly_1000_entries_are_accepted(client, make_api_key):
    key = make_api_key("logs:write")
    response = _post(client, key, {"entries": [_entry(message=f"line {i}") for i in range(1000)]})
    assert response.status_code == 202
    assert response.json() == {"accepted": 1000, "rejected": []}
    assert LogEntry.objects.count() == 1000


@pytest.mark.django_db
def test_a_body_over_1_mb_is_413(client, make_api_key):
    key = make_api_key("logs:write")
    body = {"entries": [_entry(message="x" * 9_000) for _ in range(120)]}  # ~1.1 MB, under 1,000 entries
    assert len(json.dumps(body)) > 1024 * 1024
    response = _post(client, key, body)
    assert response.status_code == 413
    assert response.json()["detail"].startswith("request body too large")
    assert LogEntry.objects.count() == 0


@pytest.mark.django_db
def test_ingest_needs_the_logs_write_scope(client, make_api_key):
    assert _post(client, "ls_nope_nope", {"entries": [_entry()]}).status_code == 401
    assert _post(client, make_api_key("logs:read"), {"entries": [_entry()]}).status_code == 403
    assert LogEntry.objects.count() == 0


@pytest.mark.django_db
def test_timestamps_far_in_the_future_are_rejected(client, make_api_key):
    response = _post(client, make_api_key("logs:write"), {"entries": [_entry(timestamp="2999-01-01T00:00:00Z")]})
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 0,
        "rejected": [
            {
                "index": 0,
                "errors": [
                    {"field": "timestamp", "message": "Value error, timestamp is more than an hour in the future"}
                ],
            }
        ],
    }


@pytest.mark.django_db
def test_timestamps_older_than_the_retention_period_are_rejected(client, make_api_key, settings):
    # Year 1 at +05:00 is 1 BC in UTC: stored, it made every list that showed it fail.
    settings.LOG_RETENTION_DAYS = 30
    old = (datetime.now(tz=UTC) - timedelta(days=30, minutes=1)).isoformat()
    just_in = (datetime.now(tz=UTC) - timedelta(days=29, hours=23)).isoformat()
    entries = [_entry(timestamp="0001-01-01T00:00:00+05:00"), _entry(timestamp=old), _entry(timestamp=just_in)]
    response = _post(client, make_api_key("logs:write"), {"entries": entries})
    assert response.status_code == 202
    error = {"field": "timestamp", "message": "Value error, timestamp is older than the 30-day retention period"}
    assert response.json() == {
        "accepted": 1,
        "rejected": [{"index": 0, "errors": [error]}, {"index": 1, "errors": [error]}],
    }
    assert list(LogEntry.objects.values_list("time", flat=True)) == [datetime.fromisoformat(just_in)]

    response = client.get("/api/logs", HTTP_X_API_KEY=make_api_key("logs:read"))
    assert response.status_code == 200
    assert len(response.json()["items"]) == 1


@pytest.mark.django_db
def test_nul_bytes_in_any_text_are_stripped_not_a_500(client, make_api_key):
    # PostgreSQL text and jsonb cannot hold NUL: one stray \x00 used to fail the whole batch with a 500.
    entry = _entry(
        event="quote\x00.done",
        message="quote\x00 computed",
        context={"k\x00ey": "va\x00lue", "nested": [{"deep\x00": "x\x00"}], "n": 1},
        lead_id="lead\x00-1",
    )
    response = _post(
        client, make_api_key("logs:write", name="pricing"), {"entries": [entry, _entry()]}, REMOTE_ADDR="10.0.0.1\x00"
    )
    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "rejected": []}
    row = LogEntry.objects.get(event="quote.done")
    assert (row.message, row.lead_id, row.host, row.logger) == ("quote computed", "lead-1", "10.0.0.1", "api:pricing")
    assert row.context == {"key": "value", "nested": [{"deep": "x"}], "n": 1}


@pytest.mark.django_db
def test_text_that_postgresql_cannot_store_is_made_storable(client, make_api_key):
    # In `context` (free-form JSON): a lone surrogate cannot be encoded as UTF-8 and NaN/Infinity are not
    # JSON to PostgreSQL (pydantic already rejects a lone surrogate in the typed string fields).
    body = (
        '{"entries": [{"timestamp": "' + T1.isoformat() + '", "level": "info", "service": "pricing-service", '
        '"message": "m", "context": {"ratio": NaN, "top": Infinity, "s": "half \\ud800 a pair"}}]}'
    )
    response = client.post(
        "/api/logs", data=body, content_type="application/json", HTTP_X_API_KEY=make_api_key("logs:write")
    )
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "rejected": []}
    row = LogEntry.objects.get()
    assert row.context == {"ratio": "nan", "top": "inf", "s": "half ? a pair"}
