from __future__ import annotations

import html
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.http import urlencode

from leads.models import Lead
from logs.admin import WindowPaginator
from logs.models import LogEntry
from logs.selectors import lead_journey_url

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    assert response.status_code == 200
    cells = re.findall(r'<td class="field-short_message[^"]*"[^>]*>(.*?)</td>', response.content.decode(), re.S)
    return [cell.strip() for cell in cells]


@pytest.mark.django_db
def test_admin_list_filters_by_level_service_request_and_text(admin_client, make_entry):
    make_entry("first step", time=T0, request_id="req-cccc-0003")
    make_entry(
        "second step failed",
        time=T0 + timedelta(seconds=1),
        level=logging.ERROR,
        service="worker",
        request_id="req-cccc-0003",
    )
    make_entry("unrelated", time=T0 + timedelta(seconds=2))
    url = "/admin/logs/logentry/"
    assert _messages(admin_client.get(url)) == ["unrelated", "second step failed", "first step"]
    assert _messages(admin_client.get(url, {"level": "40"})) == ["second step failed"]
    assert _messages(admin_client.get(url, {"service": "worker"})) == ["second step failed"]
    assert _messages(admin_client.get(url, {"request_id": "req-cccc-0003"})) == ["second step failed", "first step"]
    assert _messages(admin_client.get(url, {"q": "step"})) == ["second step failed", "first step"]
    # With text, level and service are terms of the full-text query rather than B-tree conditions.
    assert _messages(admin_client.get(url, {"q": "step", "level": "40"})) == ["second step failed"]
    assert _messages(admin_client.get(url, {"q": "step", "service": "worker"})) == ["second step failed"]
    assert _messages(admin_client.get(url, {"q": "step", "service": "beat"})) == []


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{}, {"q": "one"}, {"level": "40"}, {"service": "web"}, {"p": "2"}])
def test_admin_list_never_counts(admin_client, make_entry, params):
    make_entry("one", time=T0, level=logging.ERROR)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get("/admin/logs/logentry/", params)
    assert response.status_code in (200, 302)
    assert not [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{}, {"q": "step"}, {"q": "step", "level": "30", "service": "worker"}])
def test_admin_pages_go_previous_next_in_time_windows(admin_client, make_entry, params):
    """Entries over three days (several day partitions and windows): every page in order, no gaps."""
    now = datetime.now(tz=UTC).replace(microsecond=0)
    for i in range(120):
        make_entry(f"step {i}", time=now - timedelta(minutes=37 * i), level=logging.WARNING, service="worker")
    expected = [f"step {i}" for i in range(120)]
    seen = []
    for page in (1, 2, 3):
        response = admin_client.get("/admin/logs/logentry/", {**params, "p": page})
        seen += _messages(response)
        assert (f"p={page + 1}" in response.content.decode()) == (page < 3)  # "Next" links only while more
    assert seen == expected
    # Past the last page, or deeper than the paginator reads: the admin's "invalid page" redirect.
    assert admin_client.get("/admin/logs/logentry/", {**params, "p": 4}).status_code == 302
    assert admin_client.get("/admin/logs/logentry/", {"p": WindowPaginator.MAX_PAGES + 1}).status_code == 302


@pytest.mark.django_db
def test_a_leads_journey_link_shows_its_entries_and_its_intake_request(admin_client, make_entry):
    lead = Lead.objects.create(name="Pat Seller", request_id="req-intake-0004")
    make_entry("POST /api/leads 201", time=T0, request_id="req-intake-0004")
    make_entry("valued", time=T0 + timedelta(seconds=1), request_id="req-later-0005", lead_id=str(lead.pk))
    make_entry("someone else", time=T0 + timedelta(seconds=2), request_id="req-other-0006")
    url = lead_journey_url(lead.pk)
    assert url == f"/admin/logs/logentry/?journey={lead.pk}"
    assert _messages(admin_client.get(url)) == ["valued", "POST /api/leads 201"]


@pytest.mark.django_db
def test_log_entries_are_read_only_in_the_admin(admin_client, make_entry):
    entry = make_entry("fixed", time=T0)
    assert admin_client.get("/admin/logs/logentry/add/").status_code == 403
    assert admin_client.get(f"/admin/logs/logentry/{entry.pk}/delete/").status_code == 403
    response = admin_client.post(f"/admin/logs/logentry/{entry.pk}/change/", {"message": "changed"})
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.message == "fixed"


@pytest.mark.django_db
def test_admin_level_filter_ignores_non_ascii_digits(admin_client, make_entry):
    make_entry("kept", time=T0, level=logging.ERROR)
    assert _messages(admin_client.get("/admin/logs/logentry/", {"level": "²"})) == ["kept"]


@pytest.mark.django_db
@pytest.mark.parametrize("param", ["q", "service", "request_id", "lead_id", "journey", "level"])
def test_admin_list_ignores_nul_bytes_in_filters(admin_client, make_entry, param):
    make_entry("kept", time=T0, service="web", request_id="", lead_id="")
    assert _messages(admin_client.get("/admin/logs/logentry/", {param: "\x00"})) == ["kept"]


@pytest.mark.django_db
def test_admin_rows_escape_what_was_logged(admin_client, make_entry):
    make_entry(
        "<script>alert(1)</script>", time=T0, service="web", request_id='req-"><b>x</b>-0001', lead_id="<i>lead</i>"
    )
    body = admin_client.get("/admin/logs/logentry/").content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<b>x</b>" not in body and "<i>lead</i>" not in body


def _link(response, label: str) -> str | None:
    """The href of the list's "Previous" or "Next" link (None when it is shown without one)."""
    match = re.search(rf'<a (?:href="([^"]*)")?[^>]*>\s*{label}\s*</a>', response.content.decode())
    assert match, label
    return "/admin/logs/logentry/" + html.unescape(match.group(1)) if match.group(1) else None


def _limits(queries) -> list[int]:
    return [int(limit) for q in queries.captured_queries for limit in re.findall(r"LIMIT (\d+)", q["sql"])]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": "step"},
        {"q": "step", "level": "30", "service": "worker"},
        {"time__gte": "past"},  # the admin's "Past 7 days" kind of link, here three days back
        {"request_id": "req-pages"},  # no time windows: its own index
    ],
)
def test_admin_next_and_previous_links_seek_by_cursor_and_show_the_numbered_pages(admin_client, make_entry, params):
    """Over days of entries (two to a timestamp: ties broken by id), following "Next" shows exactly the
    rows `?p=n` shows, newest first, reading only each page's own rows; "Previous" walks back the same
    pages."""
    now = datetime.now(tz=UTC).replace(microsecond=0)
    made = [
        make_entry(
            f"step {i}" if i % 4 != 3 else f"noise {i}",
            time=now - timedelta(minutes=19 * (i // 2)),
            level=logging.WARNING if i % 5 else logging.INFO,
            service="worker" if i % 7 else "web",
            request_id="req-pages" if i % 3 else "req-other",
        )
        for i in range(330)
    ]
    since = now - timedelta(days=3)
    if "time__gte" in params:
        params = {"time__gte": since.strftime("%Y-%m-%d %H:%M:%S%z")}

    def wanted(entry: LogEntry) -> bool:
        if "q" in params and not entry.message.startswith("step"):
            return False
        if "level" in params and entry.level < int(params["level"]):
            return False
        if "service" in params and entry.service != params["service"]:
            return False
        if "request_id" in params and entry.request_id != params["request_id"]:
            return False
        return "time__gte" not in params or entry.time >= since

    expected = [e.message for e in sorted(filter(wanted, made), key=lambda e: (e.time, e.id), reverse=True)]
    assert 100 < len(expected) <= 330  # three pages or more, the last one short
    numbered = []
    for number in range(1, len(expected) // 50 + 2):
        numbered.append(_messages(admin_client.get("/admin/logs/logentry/", {**params, "p": number})))
    assert sum(numbered, []) == expected

    url = "/admin/logs/logentry/?" + urlencode(params)
    followed = []
    while url:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(url)
        followed.append(_messages(response))
        assert "after=" in url or len(followed) == 1
        assert max(_limits(queries)) <= 51  # the page's own rows plus one, never the pages before it
        assert 'name="after"' not in response.content.decode()  # a new search starts at the top
        last, url = url, _link(response, "Next")
    assert followed == numbered

    url, back = last, []
    while url:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(url)
        back.append(_messages(response))
        assert max(_limits(queries)) <= 51
        url = _link(response, "Previous")
        assert url is None or "before=" in url or "p=1" in url
    assert back == numbered[::-1]


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["after", "before"])
def test_admin_list_refuses_a_bad_cursor_with_its_error_redirect(admin_client, make_entry, cursor):
    make_entry("kept", time=T0)
    response = admin_client.get("/admin/logs/logentry/", {"p": 2, cursor: "not-a-cursor"})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


@pytest.mark.django_db
def test_admin_time_filter_bounds_the_windows_it_reads(admin_client, make_entry):
    """ "Today" with a word that is not there: the windows stop at the filter's start instead of going
    on through the retention window and the open window before it."""
    now = datetime.now(tz=UTC).replace(microsecond=0)
    make_entry("kangaroo", time=now - timedelta(days=3))
    make_entry("today's news", time=now - timedelta(minutes=1))
    since = now - timedelta(hours=2)
    params = {"q": "kangaroo", "time__gte": since.strftime("%Y-%m-%d %H:%M:%S%z")}
    with CaptureQueriesContext(connection) as queries:
        assert _messages(admin_client.get("/admin/logs/logentry/", params)) == []
    reads = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT") and "logs_logentry" in q["sql"]
    ]
    # The newest entry's probe, then windows of 2 min, 16 min and 2 h 8 min back, the last one cut at
    # `since` (without it: then 17 h, 6 days, the rest of the retention window and the open window).
    assert len(reads) == 4, reads
    assert _messages(admin_client.get("/admin/logs/logentry/", {"q": "kangaroo"})) == ["kangaroo"]
