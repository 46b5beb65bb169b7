"""The paste-ready web form in a real browser (Debian's Chromium via Playwright) against gunicorn.

A seller's submission must survive a flaky connection without being lost or doubled: the form keeps one
Idempotency-Key per submission across its retries, backs off on network errors and 429/503, and shows
the server's per-field messages on 422.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from playwright.sync_api import Route, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _open_form(pw, base: str, key: str):
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_default_timeout(15_000)
    page.goto(f"{base}/form/example/?key={key}&utm_source=radio")
    page.wait_for_function("document.querySelector('form[data-leadsite-form]').leadsiteForm !== undefined")
    return browser, page


def _fill(page, *, phone: str = "(206) 555-0142") -> None:
    page.fill("#f-name", "Rosa Díaz")
    page.fill("#f-phone", phone)
    page.fill("#f-address", "4512 Latona Ave NE, Seattle, WA 98105")
    page.select_option("#f-timeline", "asap")
    page.fill("#f-condition", "needs a roof")
    page.check("input[name=consent]")


def _screenshot(page, tmp_path: Path, name: str) -> None:
    shots = Path(os.environ.get("LEADSITE_SCREENSHOTS", tmp_path))
    page.screenshot(path=str(shots / name), full_page=True)


def test_seller_sends_the_form_and_gets_one_lead_with_consent(web_server, make_api_key, tmp_path):
    from leads.models import Lead

    key = make_api_key("leads:create", rate_limit=0)
    base = web_server(DJANGO_DEBUG="1")
    with sync_playwright() as pw:
        browser, page = _open_form(pw, base, key)
        try:
            _fill(page)
            page.click("button[type=submit]")
            page.wait_for_selector("[data-leadsite-status][data-state=sent]")
            status = page.inner_text("[data-leadsite-status]")
            name_after = page.input_value("#f-name")
            _screenshot(page, tmp_path, "form-sent.png")
        finally:
            browser.close()

    assert status.startswith("Thank you")
    assert name_after == ""  # the form is cleared for the next seller
    lead = Lead.objects.get()
    assert (lead.name, lead.phone, lead.utm_source) == ("Rosa Díaz", "+12065550142", "radio")
    assert lead.consent is True
    assert lead.consent_text == "I agree to be contacted about my property by phone, text or email."
    assert lead.page_url.startswith(f"{base}/form/example/")


def test_a_flaky_connection_neither_loses_nor_doubles_the_lead(web_server, make_api_key, tmp_path):
    """First try: the server takes the lead but the answer is lost (connection reset). Second: a 503 with
    Retry-After. Third: through. The seller sees success and exactly one lead exists."""
    from leads.models import Lead

    key = make_api_key("leads:create", rate_limit=0)
    base = web_server(DJANGO_DEBUG="1")
    seen: list[dict] = []

    def flaky(route: Route) -> None:
        request = route.request
        seen.append({"key": request.headers.get("idempotency-key"), "body": request.post_data})
        if len(seen) == 1:
            route.fetch()  # the server receives and commits it ...
            route.abort("connectionreset")  # ... but the page never hears back
        elif len(seen) == 2:
            route.fulfill(status=503, headers={"Retry-After": "0"}, json={"detail": "try again"})
        else:
            answer = route.fetch()
            seen[-1]["replayed"] = answer.headers.get("idempotent-replayed")
            seen[-1]["status"] = answer.status
            route.fulfill(response=answer)

    with sync_playwright() as pw:
        browser, page = _open_form(pw, base, key)
        try:
            page.evaluate("document.querySelector('form').dataset.retryBaseMs = '50'")
            page.evaluate("document.querySelector('form').leadsiteForm.baseDelayMs = 50")
            page.route("**/api/leads", flaky)
            _fill(page)
            page.click("button[type=submit]")
            page.wait_for_selector("[data-leadsite-status][data-state=sent]")
            _screenshot(page, tmp_path, "form-sent-after-retries.png")
        finally:
            browser.close()

    assert len(seen) == 3
    assert len({attempt["key"] for attempt in seen}) == 1 and seen[0]["key"]
    assert len({attempt["body"] for attempt in seen}) == 1
    assert (seen[2]["status"], seen[2]["replayed"]) == (201, "true")
    assert Lead.objects.count() == 1


def test_a_rejected_form_shows_the_message_per_field_and_stores_nothing(web_server, make_api_key, tmp_path):
    from leads.models import Lead

    key = make_api_key("leads:create", rate_limit=0)
    base = web_server(DJANGO_DEBUG="1")
    posted: list[str] = []
    with sync_playwright() as pw:
        browser, page = _open_form(pw, base, key)
        try:
            page.on(
                "request", lambda r: posted.append(r.headers.get("idempotency-key")) if r.method == "POST" else None
            )
            page.fill("#f-name", "No Contact")  # neither phone nor email
            page.click("button[type=submit]")
            page.wait_for_selector("[data-leadsite-status][data-state=invalid]")
            errors = page.inner_text("form")
            _screenshot(page, tmp_path, "form-invalid.png")
            # Corrected, it is a new submission with a new key (the old key with a new body would be 409).
            page.fill("#f-email", "Rosa@Example.com")
            page.click("button[type=submit]")
            page.wait_for_selector("[data-leadsite-status][data-state=sent]")
        finally:
            browser.close()

    assert "Please check the highlighted fields." in errors
    assert "phone" in errors.lower() or "email" in errors.lower()
    assert len(posted) == 2 and posted[0] != posted[1]
    lead = Lead.objects.get()
    assert lead.email == "rosa@example.com"


def test_the_example_page_keeps_only_a_printable_key(client):
    ok = client.get("/form/example/?key=abc123")
    assert ok.status_code == 200 and 'data-api-key="abc123"' in ok.content.decode()
    hostile = client.get("/form/example/", {"key": '"><script>alert(1)</script>'})
    assert hostile.status_code == 200 and "<script>alert(1)" not in hostile.content.decode()
    assert json.loads(json.dumps(hostile.headers["Referrer-Policy"])) == "no-referrer"
