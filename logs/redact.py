"""What the central log must not keep: personal data that travels in URLs and addresses.

Applied by the store (logs.services.log_entries_write) to every message, exception and context
string, from the handler and the API alike, off the caller's path (the handler's flusher thread):
- query-string values (`?email=jane%40example.com&phone=…` -> `?email=[redacted]&phone=[redacted]`;
  the keys stay, they tell what was asked);
- Slack `response_url`s (a bearer credential for answering an interaction);
- e-mail addresses;
- US street addresses (`123 N Main St Apt 4, Seattle, WA 98101` -> `[address]`);
- context values under keys that name such data (`address`, `email`, `response_url`, `query_string`).
Phone numbers outside query strings are kept on purpose: "did this number ever call?" is a search
the log exists to answer, and the lead id links to the rest.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"

_QUERY_VALUE = re.compile(r"(?<=[?&])([^=&\s#?'\"<>]{1,100})=([^&#\s'\"<>]+)")
_SLACK_RESPONSE_URL = re.compile(r"https://hooks\.slack\.com/[^\s'\"<>]+")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_SUFFIXES = (
    "St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Dr|Drive|Ln|Lane|Way|Ct|Court|Pl|Place|Ter|Terrace|"
    "Cir|Circle|Hwy|Highway|Pkwy|Parkway|Loop|Trl|Trail|Sq|Square|Plz|Plaza"
)
# Case-sensitive on purpose: street names are capitalised in addresses, so "sent 3 messages the
# fast way" stays as it is while "123 N Main St" goes.
_ADDRESS = re.compile(
    r"\b\d{1,6}[A-Z]?\s+(?:(?:N|S|E|W|NE|NW|SE|SW)\.?\s+)?"
    r"(?:(?:[A-Z][A-Za-z'.-]*|\d+(?:st|nd|rd|th))\s+){1,4}"
    rf"(?:{_SUFFIXES})\b\.?"
    r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?"
    r"(?:,?\s+(?:Apt|Unit|Suite|Ste|#)\.?\s*[\w-]+)?"
    r"(?:,\s*[A-Z][A-Za-z .'-]{1,40})?"
    r"(?:,\s*[A-Z]{2})?(?:\s+\d{5}(?:-\d{4})?)?"
)
SENSITIVE_KEYS = frozenset({"address", "email", "response_url", "query_string", "street", "address_line"})


def redact_text(value: str) -> str:
    # Cheap membership tests first: most log lines hold none of these, and this runs on every line.
    if "=" in value and ("?" in value or "&" in value):
        value = _QUERY_VALUE.sub(rf"\1={REDACTED}", value)
    if "hooks.slack.com" in value:
        value = _SLACK_RESPONSE_URL.sub(f"https://hooks.slack.com/{REDACTED}", value)
    if "@" in value:
        value = _EMAIL.sub("[email]", value)
    if any(suffix in value for suffix in _SUFFIX_WORDS):
        value = _ADDRESS.sub("[address]", value)
    return value


_SUFFIX_WORDS = tuple(_SUFFIXES.split("|"))


def redact_context(value: Any, key: str = "") -> Any:
    """A copy of a JSON-ready context with every string redacted and sensitive keys blanked."""
    if key and key.lower() in SENSITIVE_KEYS and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {name: redact_context(item, name if isinstance(name, str) else "") for name, item in value.items()}
    if isinstance(value, list):
        return [redact_context(item) for item in value]
    return value
