from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from logs.selectors import LogFilters, log_entries_page

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def entries(make_entry):
    return {
        "a": make_entry(
            "lead received from the website form",
            time=T0,
            request_id="req-aaaa-0001",
            lead_id="L1",
            event="lead.created",
        ),
        "b": make_entry(
            "valuation finished for the property",
            time=T0 + timedelta(seconds=1),
            service="worker",
            request_id="req-aaaa-0001",
            lead_id="L1",
        ),
        "c": make_entry(
            "slack post failed: channel_not_found",
            time=T0 + timedelta(seconds=2),
            service="worker",
            level=logging.ERROR,
            request_id="req-aaaa-0001",
        ),
        "d": make_entry("daily digest sent", time=T0 + timedelta(hours=3), service="beat", request_id="req-bbbb-0002"),
        "e": make_entry(
            "disk almost full", time=T0 + timedelta(days=2), level=logging.WARNING, service="pricing-service"
        ),
    }


def _get(client, key: str, **params) -> list[str]:
    response = client.get("/api/logs", params, HTTP_X_API_KEY=key)
    assert response.status_code == 200, response.content
    return [entry["message"] for entry in response.json()["items"]]


@pytest.mark.django_db
def test_filters_narrow_the_search_newest_first(client, make_api_key, entries):
    key = make_api_key("logs:read")
    assert _get(client, key, request_id="req-aaaa-0001") == [
        "slack post failed: channel_not_found",
        "valuation finished for the property",
        "lead received from the website form",
    ]
    assert _get(client, key, lead_id="L1") == [
        "valuation finished for the property",
        "lead received from the website form",
    ]
    assert _get(client, key, level="warning") == ["disk almost full", "slack post failed: channel_not_found"]
    assert _get(client, key, level="error") == ["slack post failed: channel_not_found"]
    assert _get(client, key, service="beat") == ["daily digest sent"]
    assert _get(
        client, key, since=(T0 + timedelta(seconds=1)).isoformat(), until=(T0 + timedelta(days=1)).isoformat()
    ) == [
        "daily digest sent",
        "slack post failed: channel_not_found",
        "valuation finished for the property",
    ]
    assert _get(client, key, request_id="req-aaaa-0001", order="asc") == [
        "lead received from the website form",
        "valuation finished for the property",
        "slack post failed: channel_not_found",
    ]


@pytest.mark.django_db
def test_full_text_search_matches_words_in_message_and_event(client, make_api_key, entries):
    key = make_api_key("logs:read")
    assert _get(client, key, q="valuation") == ["valuation finished for the property"]
    assert _get(client, key, q="channel_not_found") == ["slack post failed: channel_not_found"]
    assert _get(client, key, q="lead.created") == ["lead received from the website form"]
    assert _get(client, key, q="nothing-like-this") == []
    assert _get(client, key, q="daily", service="worker") == []


@pytest.mark.django_db
def test_full_text_search_reads_the_gin_index_never_the_time_index(entries):
    from logs.selectors import LogFilters, gin_only, log_entries_filter

    assert connection.vendor == "postgresql"
    qs = log_entries_filter(LogFilters(q="valuation", service="worker")).order_by("-time", "-id")[:101]
    sql, params = qs.query.sql_with_params()
    with gin_only(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan Backward" not in plan and "Seq Scan" not in plan, plan
    assert "_search_idx" in plan and "_service_time_idx" not in plan, plan
    # Each partition has its own copy of the partitioned GIN index (logs_search_gin on the parent).
    assert "_search_idx" in plan and "Bitmap Index Scan" in plan, plan
    # The word within the service is one lexeme of its own (migration 0006): one posting list, and
    # the service's own (a third of the entries) is not intersected with it.
    assert "'svc:worker/valuation'" in plan and "'svc:worker'" not in plan, plan
    # Without a pair to imply it (an OR), the service is a GIN term of the same query.
    qs = log_entries_filter(LogFilters(q="valuation or digest", service="worker")).order_by("-time", "-id")[:101]
    sql, params = qs.query.sql_with_params()
    with gin_only(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "'svc:worker'" in plan and "'svc:worker/" not in plan, plan


@pytest.mark.django_db
def test_a_word_within_a_service_is_one_lexeme_and_or_and_not_still_work(client, make_api_key, entries):
    key = make_api_key("logs:read")
    with connection.cursor() as cursor:
        cursor.execute("SELECT search FROM logs_logentry WHERE id = %s", [entries["d"].pk])
        vector = cursor.fetchone()[0]
    assert "'svc:beat/daily'" in vector and "'svc:beat/digest'" in vector and "'svc:beat'" in vector, vector
    assert _get(client, key, q="daily digest", service="beat") == ["daily digest sent"]
    assert _get(client, key, q='"digest sent"', service="beat") == ["daily digest sent"]
    assert _get(client, key, q="daily digest", service="worker") == []
    # Not every word required: no pair terms, the plain full-text condition decides.
    assert _get(client, key, q="daily or valuation", service="worker") == ["valuation finished for the property"]
    assert _get(client, key, q="slack -digest", service="worker") == ["slack post failed: channel_not_found"]
    assert _get(client, key, q="-valuation", service="worker") == ["slack post failed: channel_not_found"]


@pytest.mark.django_db
def test_a_service_named_with_a_slash_is_not_confused_with_a_word_that_has_one(client, make_api_key, make_entry):
    """'svc:edge/eu/timeout' is both service "edge" with the word "eu/timeout" and service "edge/eu" with
    "timeout" (the handler's LEADSITE_SERVICE may hold a '/', the API refuses one): the service is asked too."""
    key = make_api_key("logs:read")
    make_entry("saw eu/timeout after a timeout", time=T0, service="edge")
    make_entry("a timeout today", time=T0 + timedelta(seconds=1), service="edge/eu")
    assert _get(client, key, q="timeout", service="edge/eu") == ["a timeout today"]
    assert _get(client, key, q="eu/timeout", service="edge") == ["saw eu/timeout after a timeout"]


@pytest.mark.django_db
def test_text_search_reads_windows_across_days_and_pages_stay_in_order(client, make_api_key, make_entry):
    """Entries over ten days (in their day partitions): a common word, a rare one spread over days, an
    absent one, with service and level narrowing the text; keyset pages across window boundaries."""
    key = make_api_key("logs:read")
    now = datetime.now(tz=UTC).replace(microsecond=0)
    for hour in range(0, 240, 3):
        make_entry(
            f"common step {hour}",
            time=now - timedelta(hours=hour),
            service="worker" if hour % 2 else "web",
            level=logging.ERROR if hour % 9 == 0 else logging.INFO,
        )
    for days, service in ((0, "web"), (3, "worker"), (8, "beat")):
        make_entry(f"rare kangaroo seen {days}", time=now - timedelta(days=days, minutes=30), service=service)

    assert _get(client, key, q="kangaroo") == ["rare kangaroo seen 0", "rare kangaroo seen 3", "rare kangaroo seen 8"]
    assert _get(client, key, q="kangaroo", order="asc") == [
        "rare kangaroo seen 8",
        "rare kangaroo seen 3",
        "rare kangaroo seen 0",
    ]
    assert _get(client, key, q="kangaroo", service="worker") == ["rare kangaroo seen 3"]
    assert _get(client, key, q="kangaroo", service="nobody") == []
    assert _get(client, key, q="zeppelinfactory") == []
    assert _get(client, key, q="kangaroo", since=(now - timedelta(days=5)).isoformat()) == [
        "rare kangaroo seen 0",
        "rare kangaroo seen 3",
    ]
    errors = [f"common step {hour}" for hour in range(0, 240, 3) if hour % 9 == 0]
    assert _get(client, key, q="common", level="error") == errors

    expected = [f"common step {hour}" for hour in range(0, 240, 3)]
    for order, wanted in (("desc", expected), ("asc", expected[::-1])):
        seen: list[str] = []
        cursor = None
        while True:
            params = {"q": "common", "limit": 7, "order": order, **({"cursor": cursor} if cursor else {})}
            body = client.get("/api/logs", params, HTTP_X_API_KEY=key).json()
            seen += [entry["message"] for entry in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == wanted, order


@pytest.mark.django_db
def test_pages_follow_the_cursor_without_counting(client, make_api_key, make_entry):
    key = make_api_key("logs:read")
    for i in range(7):
        # two entries share each timestamp: the cursor must break ties by id
        make_entry(f"line {i}", time=T0 + timedelta(seconds=i // 2))
    seen: list[str] = []
    cursor = None
    with CaptureQueriesContext(connection) as queries:
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            body = client.get("/api/logs", params, HTTP_X_API_KEY=key).json()
            seen += [entry["message"] for entry in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
    assert seen == ["line 6", "line 5", "line 4", "line 3", "line 2", "line 1", "line 0"]
    assert not [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


@pytest.mark.django_db
def test_search_needs_logs_read_or_a_staff_session(client, make_api_key, staff_user, entries):
    assert client.get("/api/logs").status_code == 401
    assert client.get("/api/logs", HTTP_X_API_KEY=make_api_key("logs:write")).status_code == 403
    client.force_login(staff_user)
    assert len(client.get("/api/logs").json()["items"]) == 5


@pytest.mark.django_db
def test_bad_level_and_cursor_are_422(client, make_api_key):
    key = make_api_key("logs:read")
    response = client.get("/api/logs", {"level": "loud"}, HTTP_X_API_KEY=key)
    assert response.status_code == 422
    assert response.json() == {
        "detail": {"level": ["unknown level 'loud'; use debug, info, warning, error or critical"]}
    }
    response = client.get("/api/logs", {"cursor": "garbage"}, HTTP_X_API_KEY=key)
    assert response.status_code == 422
    assert response.json() == {"detail": {"cursor": ["invalid cursor"]}}


@pytest.mark.django_db
@pytest.mark.parametrize("level", ["²", "٣", "1²"])
def test_a_level_of_non_ascii_digits_is_422(client, make_api_key, level):
    response = client.get("/api/logs", {"level": level}, HTTP_X_API_KEY=make_api_key("logs:read"))
    assert response.status_code == 422
    assert response.json() == {
        "detail": {"level": [f"unknown level {level!r}; use debug, info, warning, error or critical"]}
    }


@pytest.mark.django_db
def test_numeric_levels_still_filter(client, make_api_key, entries):
    key = make_api_key("logs:read")
    assert _get(client, key, level="40") == ["slack post failed: channel_not_found"]
    assert _get(client, key, level="99999999999999999999") == []


@pytest.mark.django_db
@pytest.mark.parametrize("param", ["q", "service", "request_id", "lead_id"])
def test_nul_bytes_in_filters_are_ignored_not_a_500(client, make_api_key, entries, param):
    # Stored text never holds NUL (stripped on the way in), so filters compare without it. The API's
    # request guard already answers 400 to a NUL in any query; the admin and other callers reach here.
    value = {"q": "digest", "service": "beat", "request_id": "req-bbbb-0002", "lead_id": "L1"}[param]

    def messages(filter_value: str) -> list[str]:
        return [entry.message for entry in log_entries_page(LogFilters(**{param: filter_value}))[0]]

    expected = messages(value)
    assert expected
    assert messages(value[:2] + "\x00" + value[2:]) == expected
    assert len(messages("\x00")) == 5

    response = client.get("/api/logs", {param: "\x00"}, HTTP_X_API_KEY=make_api_key("logs:read"))
    assert response.status_code == 400
    assert response.json() == {"detail": "NUL characters are not allowed in query parameters"}


@pytest.mark.django_db
def test_a_text_search_inside_a_transaction_leaves_the_planner_settings_as_they_were(entries):
    from django.db import transaction

    with transaction.atomic():
        log_entries_page(LogFilters(q="valuation"))
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('enable_indexscan'), current_setting('enable_seqscan')")
            assert cursor.fetchone() == ("on", "on")


@pytest.mark.django_db
def test_windows_start_at_the_newest_entry_not_at_the_clock(make_entry):
    """A store whose writers went quiet three days ago: the first window holds its newest minutes (so a
    common word still fills a page from one small window), not three days of nothing."""
    from logs.selectors import FIRST_WINDOW, FUTURE_SKEW, text_windows

    now = datetime.now(tz=UTC)
    newest = now - timedelta(days=3)
    make_entry("older", time=newest - timedelta(hours=1))
    make_entry("newest", time=newest)
    windows = text_windows(since=None, until=None, oldest_first=False, now=now)
    assert windows[0][0] == newest - FIRST_WINDOW
    assert windows[0][1] == now + FUTURE_SKEW
    assert windows[-1][0] is None  # then back to the retention window and one open window beyond it
    assert text_windows(since=now - timedelta(days=1), until=None, oldest_first=False, now=now) == []
    assert [e.message for e in log_entries_page(LogFilters(q="newest"))[0]] == ["newest"]
