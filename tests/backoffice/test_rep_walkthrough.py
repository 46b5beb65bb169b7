"""An acquisitions rep's day in the back office, in a real browser (Debian's Chromium via Playwright)
against gunicorn and a real Celery worker: log in, land on My leads, find a lead by a phone typed
with dashes, work it (status, teammate, note, follow-up, coordinates), see its valuation appear,
follow a dashboard number to its list, find log entries by a pasted request id. At 1440×900 no table
overflows its box; at 390×844 the pages fit the screen. Screenshots go to $LEADSITE_SCREENSHOTS
(default: the test's tmp dir) and are listed in the test output."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, sync_playwright

from tests.backoffice.conftest import PASSWORD
from tests.valuation.conftest import synthetic_sales

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REQUEST_ID = "9f1c2b7e4d5a4e6f8a1b2c3d4e5f6a7b"
AS_OF = "2015-06-05"

# Every table's boxes (up to the page's main area) must hold it: no cut-off columns.
OVERFLOWING = """
() => {
  const bad = [];
  for (const table of document.querySelectorAll('#main table, main table, #content table')) {
    for (let el = table.parentElement; el && el !== document.body; el = el.parentElement) {
      if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible') {
        bad.push((table.id || table.className || 'table') + ' in ' + (el.id || el.className).slice(0, 60)
                 + ': ' + el.scrollWidth + ' > ' + el.clientWidth);
        break;
      }
    }
  }
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1) bad.push('page: ' + doc.scrollWidth + ' > ' + window.innerWidth);
  return bad;
}
"""


@pytest.mark.timeout(420)  # trains a small model and starts gunicorn, a worker and a browser on a shared box
def test_a_rep_works_a_lead_end_to_end(make_staff, make_lead, start_worker, web_server, tmp_path) -> None:
    from leads.models import Lead, LeadEvent
    from logs.models import LogEntry
    from valuation.models import Sale
    from valuation.services import model_train

    Sale.objects.bulk_create(synthetic_sales())
    model_train()
    rita = make_staff("rita", first_name="Rita", last_name="Rep")
    make_staff("tom", first_name="Tom", last_name="Teammate")
    now = timezone.now()
    # Ada has no coordinates yet: she cannot be valued until the rep adds them.
    ada = make_lead(name="Ada Seller", phone="+12065550171", assigned_to=rita, latitude=None, longitude=None)
    LeadEvent.objects.create(lead=ada, kind="created", message="New lead from website")
    due = make_lead(name="Ben Due", assigned_to=rita, follow_up_at=now - dt.timedelta(hours=1))
    make_lead(name="Cy Other", phone="+12535550199")  # not Rita's, not a match for the phone
    for i, message in enumerate(["POST /api/leads 201", "lead fanned out"]):
        LogEntry.objects.create(
            time=now - dt.timedelta(seconds=10 - i),
            level=20,
            level_name="INFO",
            service="web",
            message=message,
            request_id=REQUEST_ID,
        )
    LogEntry.objects.create(
        time=now,
        level=20,
        level_name="INFO",
        service="web",
        message="someone else's request",
        request_id="0000aaaa1111bbbb2222cccc3333dddd",
    )

    env = {"VALUATION_DEFAULT_AS_OF": AS_OF}
    start_worker(**env)
    base = web_server(DJANGO_DEBUG="1", **env)
    shots = Path(os.environ.get("LEADSITE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)

    # Playwright runs an event loop in this thread: all database work is done above or polled below.
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(20_000)
            _desktop_walk(page, base, shots, ada_id=str(ada.id), due_name=due.name)
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.set_default_timeout(20_000)
            _phone_walk(phone, base, shots, ada_id=str(ada.id))
        finally:
            browser.close()
    print(f"screenshots in {shots}: {sorted(p.name for p in shots.glob('*.png'))}")

    ada.refresh_from_db()
    assert ada.status == "contacted"
    assert ada.assigned_to.username == "tom"
    assert (ada.latitude, ada.longitude) == (47.621, -122.331)
    assert ada.follow_up_note == "Send the offer letter"
    kinds = list(LeadEvent.objects.filter(lead=ada).values_list("kind", flat=True))
    for kind in ("status", "assigned", "note", "follow_up", "property", "valuation"):
        assert kinds.count(kind) == 1, (kind, kinds)
    assert Lead.objects.get(pk=ada.pk).first_contacted_at is not None


def _login(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_load_state()


def _no_overflow(page: Page, where: str) -> None:
    bad = page.evaluate(OVERFLOWING)
    assert bad == [], f"{where}: {bad}"


def _desktop_walk(page: Page, base: str, shots: Path, *, ada_id: str, due_name: str) -> None:
    _login(page, base, "rita")
    # A rep lands on My leads: her open leads, the follow-up due first.
    assert "queue=mine" in page.url
    names = page.locator("#result_list tbody th a, #result_list tbody td.field-name a").all_inner_texts()
    assert names[:2] == [due_name, "Ada Seller"], names
    assert "Cy Other" not in names
    _no_overflow(page, "my leads")
    page.screenshot(path=str(shots / "1440-my-leads.png"), full_page=True)

    # Find Ada by a phone typed with dashes.
    page.fill("#searchbar", "206-555-0171")
    page.press("#searchbar", "Enter")
    page.wait_for_load_state()
    names = page.locator("#result_list tbody th a, #result_list tbody td.field-name a").all_inner_texts()
    assert names == ["Ada Seller"], names
    page.click("text=Ada Seller")
    page.wait_for_selector("#id_status")
    assert page.get_attribute("#lead-call", "href") == "tel:+12065550171"
    assert page.inner_text("#lead-call") == "Call (206) 555-0171"
    assert page.get_attribute("#lead-text", "href") == "sms:+12065550171"
    assert "Not valued yet." in page.content()

    # Work it: status, a teammate, a note, a follow-up, the coordinates.
    status_options = page.locator("#id_status option").all_inner_texts()
    assert status_options == ["New", "Contacted", "Appointment", "Offer Made", "Lost", "Spam"]
    page.select_option("#id_status", "contacted")
    page.select_option("#id_assigned_to", label="Tom Teammate")
    page.fill("#id_note", "Spoke to Ada; wants an offer this week")
    tomorrow = (timezone.localtime() + dt.timedelta(days=1)).date().isoformat()
    page.fill("#id_follow_up_at_0", tomorrow)
    page.fill("#id_follow_up_at_1", "10:00")
    page.fill("#id_follow_up_note", "Send the offer letter")
    page.fill("#id_latitude", "47.621")
    page.fill("#id_longitude", "-122.331")
    page.click("button[name=_continue]")
    page.wait_for_selector("text=Saved: status, assignee, note, follow-up, property facts (valuation re-queued).")
    timeline = page.inner_text("#lead-timeline")
    for text in (
        "Status new → contacted by Rita Rep",
        "Assigned to Tom Teammate",
        "Spoke to Ada",
        "Send the offer letter",
        "latitude — → 47.621",
    ):
        assert text in timeline, (text, timeline)
    # Newest first (the intake entry last), with who did what.
    rows = page.locator("#lead-timeline tbody tr")
    assert "New lead from website" in rows.last.inner_text()
    assert "Rita Rep" in rows.first.inner_text()

    # The valuation worker picks the change up; the page shows the panel once it is stored.
    deadline = time.monotonic() + 90
    while page.locator("#valuation").count() == 0:
        assert time.monotonic() < deadline, "the valuation never appeared on the lead page"
        page.wait_for_timeout(1000)  # a browser reload cadence, not a sleep-and-hope: the loop has a deadline
        page.reload()
    panel = page.inner_text("#valuation")
    assert "$" in panel and "estimate" in panel and "confidence" in panel
    assert page.locator("#valuation-comps tbody tr").count() >= 3
    _no_overflow(page, "lead page")
    page.screenshot(path=str(shots / "1440-lead.png"), full_page=True)

    # Saving again without a change says so (no "changed successfully").
    page.click("button[name=_continue]")
    page.wait_for_selector("text=No changes to save.")
    assert "changed successfully" not in page.content()

    # The dashboard: every number a link to its list.
    page.click("#nav-sidebar-inner >> text=Dashboard")
    page.wait_for_selector("#dashboard")
    assert page.inner_text("#kpi-today") == "3"
    assert page.locator("#chart-per-day rect.bar").count() == 30
    _no_overflow(page, "dashboard")
    page.screenshot(path=str(shots / "1440-dashboard.png"), full_page=True)
    page.click("#kpi-today")
    page.wait_for_selector("#result_list")
    names = sorted(page.locator("#result_list tbody th a, #result_list tbody td.field-name a").all_inner_texts())
    assert names == ["Ada Seller", "Ben Due", "Cy Other"], names
    _no_overflow(page, "all leads")
    page.screenshot(path=str(shots / "1440-leads.png"), full_page=True)

    # The logs: a request id pasted into the search box finds its entries.
    page.click("#nav-sidebar-inner >> text=Log entries")
    page.wait_for_selector("#searchbar")
    page.fill("#searchbar", REQUEST_ID)
    page.press("#searchbar", "Enter")
    page.wait_for_load_state()
    messages = [m.strip() for m in page.locator("#result_list td.field-short_message").all_inner_texts()]
    assert messages == ["lead fanned out", "POST /api/leads 201"], messages
    _no_overflow(page, "log entries")
    page.screenshot(path=str(shots / "1440-logs.png"), full_page=True)

    # "View site" is the back office itself, not a 404 page.
    response = page.goto(f"{base}/admin/")
    assert response is not None and response.status == 200
    assert ada_id  # the lead page was reached by search above


def _phone_walk(page: Page, base: str, shots: Path, *, ada_id: str) -> None:
    _login(page, base, "rita")
    assert "queue=mine" in page.url
    page.screenshot(path=str(shots / "390-my-leads.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for name, path in (
        ("lead", f"/admin/leads/lead/{ada_id}/change/"),
        ("dashboard", "/admin/dashboard/"),
        ("logs", "/admin/logs/logentry/"),
    ):
        page.goto(base + path)
        page.wait_for_load_state()
        width = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(shots / f"390-{name}.png"), full_page=True)
        assert width <= 390, f"{name} is {width}px wide on a 390px screen"
    # The call and text links are there to tap.
    page.goto(f"{base}/admin/leads/lead/{ada_id}/change/")
    assert page.locator("#lead-call").is_visible()
