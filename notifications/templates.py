"""Message templates as code: render(event_type, context) -> (fallback text, Block Kit blocks).

Every fallback text starts with the event's emoji line (the spec's "🔥 *New Lead!*", "💰 *Payment!*
{customer} paid ${amount}", "🚨 *Alert!* {message}"). Everything that came from a user or a caller
goes through `escape`, so a lead named `<!channel>` pings nobody. Contexts are tolerated with keys
missing: a template shows what it has.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from notifications import slack
from notifications.slack import escape

CLAIM_ACTION_ID = "lead_claim"

Rendered = tuple[str, list[dict[str, Any]]]


def money(value: Any, currency: str = "usd") -> str:
    """1250 -> "$1,250.00"; other currencies as "1,250.00 EUR"."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return escape(value)
    text = f"{amount:,.2f}"
    return f"${text}" if (currency or "usd").lower() == "usd" else f"{text} {currency.upper()}"


def _get(context: dict[str, Any], key: str, default: str = "") -> str:
    value = context.get(key)
    return escape(value) if value not in (None, "") else default


def _lead_fields(context: dict[str, Any]) -> list[str]:
    fields = []
    for label, key in (("Phone", "phone"), ("Email", "email"), ("Address", "address"), ("Source", "source")):
        if context.get(key):
            fields.append(f"*{label}*\n{_get(context, key)}")
    return fields


def _lead_context(context: dict[str, Any]) -> dict[str, Any] | None:
    lead_id = context.get("lead_id")
    return slack.context(f"Lead `{escape(lead_id)}`") if lead_id else None


def new_lead(context: dict[str, Any]) -> Rendered:
    name = _get(context, "name", "Someone")
    phone = _get(context, "phone")
    line = "🔥 *New Lead!*"
    text = f"{line}\n{name}" + (f" · {phone}" if phone else "")
    if context.get("address"):
        text += f"\n{_get(context, 'address')}"
    blocks = [slack.section(f"{line}\n*{name}*", fields=_lead_fields(context))]
    claimed_by = context.get("claimed_by")
    if claimed_by:
        blocks.append(slack.context(f"✅ Claimed by *{escape(claimed_by)}*"))
        text += f"\nClaimed by {escape(claimed_by)}"
    elif context.get("lead_id"):
        blocks.append(
            slack.actions(
                "lead_actions",
                slack.button(text="Claim", action_id=CLAIM_ACTION_ID, value=str(context["lead_id"]), style="primary"),
            )
        )
    if (ctx := _lead_context(context)) is not None:
        blocks.append(ctx)
    return text, blocks


def repeat_lead(context: dict[str, Any]) -> Rendered:
    name = _get(context, "name", "A lead")
    line = "🔁 *Repeat Lead!*"
    text = f"{line}\n{name} came back" + (f" · {_get(context, 'phone')}" if context.get("phone") else "")
    blocks = [slack.section(f"{line}\n*{name}* sent the form again", fields=_lead_fields(context))]
    if (ctx := _lead_context(context)) is not None:
        blocks.append(ctx)
    return text, blocks


def lead_status(context: dict[str, Any]) -> Rendered:
    name = _get(context, "name", "The lead")
    old = _get(context, "from", _get(context, "old_status", "?"))
    new = _get(context, "to", _get(context, "status", "?"))
    actor = context.get("by") or context.get("actor")
    by = f" by {escape(actor)}" if actor else ""
    line = f"📌 *Status:* {name} {old} → {new}{by}"
    return line, [slack.section(line)]


def lead_claimed(context: dict[str, Any]) -> Rendered:
    who = _get(context, "claimed_by", _get(context, "assignee", "Someone"))
    name = _get(context, "name", "this lead")
    line = f"🙋 *Claimed!* {who} took {name}"
    return line, [slack.section(line)]


def whole_dollars(value: Any) -> str:
    """612345.6 -> "$612,346": estimates are not precise to the cent, so they are not shown so."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("1"))
    except (InvalidOperation, ValueError):
        return escape(value)
    return f"${amount:,}"


def valuation_ready(context: dict[str, Any]) -> Rendered:
    line = "🏠 *Valuation ready*"
    estimate = context.get("estimate")
    parts = [line]
    if estimate is not None:
        value = f"{whole_dollars(estimate)}"
        if context.get("low") is not None and context.get("high") is not None:
            value += f" (range {whole_dollars(context['low'])}–{whole_dollars(context['high'])})"
        if context.get("as_of"):
            value += f" as of {_get(context, 'as_of')}"
        parts.append(value)
    if context.get("confidence") not in (None, ""):
        try:
            parts.append(f"confidence {float(context['confidence']):.0%}")
        except (TypeError, ValueError):
            parts.append(f"confidence {_get(context, 'confidence')}")
    if context.get("location_note"):
        parts.append(_get(context, "location_note"))
    if context.get("stale_note"):
        parts.append(_get(context, "stale_note"))
    text = " · ".join(parts[:1]) + ("\n" + " · ".join(parts[1:]) if len(parts) > 1 else "")
    fields = []
    if context.get("method"):
        fields.append(f"*Method*\n{_get(context, 'method')}")
    if context.get("comparables_count") is not None:
        fields.append(f"*Comparables*\n{_get(context, 'comparables_count')}")
    return text, [slack.section(text, fields=fields)]


def offer_graded(context: dict[str, Any]) -> Rendered:
    """A reply in the lead's thread: grade, offer, MAO, the counter-offer when there is one, top reasons."""
    grade = _get(context, "grade", "?")
    line = f"📊 *Offer graded:* {grade}"
    if context.get("name"):
        line += f" — {_get(context, 'name')}"
    details = []
    if context.get("amount") is not None:
        details.append(f"offer {whole_dollars(context['amount'])}")
    if context.get("mao") is not None:
        details.append(f"MAO {whole_dollars(context['mao'])}")
    if context.get("score") is not None:
        details.append(f"score {_get(context, 'score')}/100")
    if context.get("recommendation"):
        recommendation = _get(context, "recommendation")
        if context.get("counter_offer") is not None:
            recommendation += f" (counter {whole_dollars(context['counter_offer'])})"
        details.append(recommendation)
    text = line + ("\n" + " · ".join(details) if details else "")
    blocks = [slack.section(text)]
    reasons = [escape(r) for r in (context.get("reasons") or [])][:3]
    if reasons:
        blocks.append(slack.section("\n".join(f"• {r}" for r in reasons)))
        text += "\n" + "\n".join(f"• {r}" for r in reasons)
    if context.get("by"):
        blocks.append(slack.context(f"graded for {_get(context, 'by')}"))
    return text, blocks


def sla_breach(context: dict[str, Any]) -> Rendered:
    name = _get(context, "name", "A lead")
    minutes = _get(context, "minutes_waiting", _get(context, "minutes", _get(context, "sla_minutes", "?")))
    # The mention is ours (resolved from the staff profile), not user text: it is not escaped.
    who = slack.mention(context["assignee_slack_id"]) if context.get("assignee_slack_id") else ""
    if not who and context.get("assignee"):
        who = _get(context, "assignee")
    line = f"⏰ *SLA breach!* {name} has not been contacted in {minutes} min" + (
        f" — {who}" if who else " — unassigned"
    )
    return line, [slack.section(line)]


def follow_up_due(context: dict[str, Any]) -> Rendered:
    name = _get(context, "name", "A lead")
    # The mention is ours (resolved from the staff profile), not user text: it is not escaped.
    who = slack.mention(context["assignee_slack_id"]) if context.get("assignee_slack_id") else ""
    if not who and context.get("assignee"):
        who = _get(context, "assignee")
    when = _get(context, "follow_up_at")
    line = f"📆 *Follow-up due:* {name}" + (f" at {when}" if when else "") + (f" — {who}" if who else " — unassigned")
    note = _get(context, "follow_up_note")
    text = line + (f"\n{note}" if note else "")
    return text, [slack.section(text)]


def payment(context: dict[str, Any]) -> Rendered:
    customer = _get(context, "customer", "A customer")
    amount = money(context.get("amount", "0"), str(context.get("currency") or "usd"))
    line = f"💰 *Payment!* {customer} paid {amount}"
    fields = [f"*Type*\n{_get(context, 'type')}"] if context.get("type") else []
    return line, [slack.section(line, fields=fields)]


SEVERITY_ICON = {"info": "ℹ️", "warning": "⚠️", "critical": "🔴"}


def alert(context: dict[str, Any]) -> Rendered:
    message = _get(context, "message", "(no message)")
    line = f"🚨 *Alert!* {message}"
    severity = str(context.get("severity") or "warning")
    meta = [f"{SEVERITY_ICON.get(severity, '')} {escape(severity)}".strip()]
    if context.get("source"):
        meta.append(f"source {_get(context, 'source')}")
    count = int(context.get("count") or 1)
    if count > 1:
        meta.append(f"seen {count}× since {_get(context, 'first_seen', 'the first one')}")
    text = f"{line}\n" + " · ".join(meta)
    return text, [slack.section(line), slack.context(" · ".join(meta))]


def _by_count(counts: dict[str, int] | None) -> list[tuple[str, int]]:
    # Biggest first (JSON objects in PostgreSQL do not keep their key order).
    return sorted((counts or {}).items(), key=lambda kv: (-int(kv[1] or 0), str(kv[0])))


def daily_digest(context: dict[str, Any]) -> Rendered:
    line = f"📅 *Daily digest* {_get(context, 'date')}".rstrip()
    leads = context.get("leads") or {}
    payments = context.get("payments") or {}
    deliveries = context.get("deliveries") or {}
    by_source = ", ".join(f"{escape(k or 'unknown')}: {v}" for k, v in _by_count(leads.get("by_source")))
    by_status = ", ".join(f"{escape(k)}: {v}" for k, v in _by_count(leads.get("by_status")))
    lines = [
        f"*Leads:* {leads.get('total', 0)}" + (f" ({by_source})" if by_source else ""),
        f"*By status:* {by_status or '—'}",
        f"*Payments:* {payments.get('count', 0)} totalling {money(payments.get('total', 0))}",
        f"*Failed Slack deliveries:* {deliveries.get('dead', 0)}",
    ]
    offers = context.get("offers")
    if offers is not None:
        lines.append(f"*Offers graded:* {offers.get('count', 0)}")
    text = f"{line}\n" + "\n".join(lines)
    return text, [slack.section(line), slack.divider(), slack.section("\n".join(lines))]


TEMPLATES: dict[str, Callable[[dict[str, Any]], Rendered]] = {
    "new_lead": new_lead,
    "repeat_lead": repeat_lead,
    "lead_status": lead_status,
    "lead_claimed": lead_claimed,
    "valuation_ready": valuation_ready,
    "offer_graded": offer_graded,
    "sla_breach": sla_breach,
    "payment": payment,
    "alert": alert,
    "daily_digest": daily_digest,
    "follow_up_due": follow_up_due,
}


def render(event_type: str, context: dict[str, Any]) -> Rendered:
    return TEMPLATES[event_type](context or {})
