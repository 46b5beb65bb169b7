from __future__ import annotations

from notifications.templates import render


def test_new_lead_text_starts_with_emoji_line_and_has_a_claim_button() -> None:
    text, blocks = render(
        "new_lead", {"lead_id": "abc", "name": "Ann", "phone": "+12065550100", "address": "1 Main St"}
    )
    assert text == "🔥 *New Lead!*\nAnn · +12065550100\n1 Main St"
    actions = [b for b in blocks if b["type"] == "actions"]
    assert actions[0]["elements"][0]["action_id"] == "lead_claim"
    assert actions[0]["elements"][0]["value"] == "abc"
    assert actions[0]["elements"][0]["text"]["text"] == "Claim"


def test_user_text_is_escaped_so_nobody_is_pinged() -> None:
    text, blocks = render("new_lead", {"name": "<!channel> & <@U123>", "phone": ""})
    assert text == "🔥 *New Lead!*\n&lt;!channel&gt; &amp; &lt;@U123&gt;"
    assert "<!channel>" not in str(blocks)


def test_claimed_new_lead_shows_who_and_drops_the_button() -> None:
    text, blocks = render("new_lead", {"lead_id": "abc", "name": "Ann", "claimed_by": "Bob"})
    assert text.endswith("Claimed by Bob")
    assert not [b for b in blocks if b["type"] == "actions"]


def test_payment_line_formats_the_amount() -> None:
    text, _ = render("payment", {"customer": "Jane Doe", "amount": "1250", "currency": "usd"})
    assert text == "💰 *Payment!* Jane Doe paid $1,250.00"


def test_alert_line_and_count() -> None:
    text, _ = render("alert", {"message": "disk <full>", "severity": "critical", "source": "db", "count": 3})
    assert text.startswith("🚨 *Alert!* disk &lt;full&gt;\n")
    assert "seen 3×" in text


def test_templates_tolerate_missing_keys() -> None:
    for event_type in (
        "new_lead",
        "repeat_lead",
        "lead_status",
        "lead_claimed",
        "valuation_ready",
        "offer_graded",
        "sla_breach",
        "payment",
        "alert",
        "daily_digest",
    ):
        text, blocks = render(event_type, {})
        assert text and blocks


def test_sla_breach_mentions_the_mapped_assignee() -> None:
    text, _ = render("sla_breach", {"name": "Ann", "minutes_waiting": 7, "assignee_slack_id": "U42"})
    assert text == "⏰ *SLA breach!* Ann has not been contacted in 7 min — <@U42>"
