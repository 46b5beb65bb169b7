"""The back office as staff use it: a real browser (Debian's Chromium via Playwright) against gunicorn."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def test_staff_log_in_see_the_dashboard_and_follow_a_lead(web_server, django_user_model, tmp_path):
    from leads.models import Lead, LeadEvent

    django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    lead = Lead.objects.create(
        name="Ada Seller", phone="+12065550199", address="1 Main St, Seattle, WA 98101", source="website"
    )
    LeadEvent.objects.create(lead=lead, kind="created", message="New lead from website")
    base = web_server(DJANGO_DEBUG="1")
    # Playwright runs an event loop in this thread: all database work is done above.
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            _walk_through(browser.new_page(viewport={"width": 1400, "height": 1000}), base, tmp_path)
        finally:
            browser.close()


def _walk_through(page, base: str, tmp_path: Path) -> None:
    page.set_default_timeout(15_000)
    page.goto(f"{base}/admin/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-boss-123")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#dashboard")
    assert page.inner_text("#kpi-today") == "1"
    assert "website" in page.inner_text("#dashboard")
    # The theme's own stylesheet is served from the package (no CDN): the page is styled.
    assert page.evaluate("[...document.styleSheets].some(s => (s.href || '').includes('/static/unfold/css/'))")
    assert page.evaluate(
        "[...document.querySelectorAll('link[href], script[src]')].every(e => (e.href || e.src).startsWith(location.origin))"
    )
    assert page.evaluate("getComputedStyle(document.querySelector('#nav-sidebar-inner')).display") != "inline"
    shots = Path(os.environ.get("LEADSITE_SCREENSHOTS", tmp_path))
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

    page.click("#kpi-today")
    page.click("text=Ada Seller")
    page.wait_for_selector("text=New lead from website")
    assert page.get_attribute("#lead-call", "href") == "tel:+12065550199"
    assert page.inner_text("#lead-call") == "Call (206) 555-0199"
    page.screenshot(path=str(shots / "lead.png"), full_page=True)

    page.click("text=Everything logged about this lead")
    page.wait_for_selector("#changelist")
    assert "journey=" in page.url
