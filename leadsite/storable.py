"""The one place that makes text and JSON storable in PostgreSQL, and parses JSON bodies safely.

PostgreSQL's text and jsonb cannot hold a NUL character, UTF-8 cannot encode a lone surrogate
(JSON may spell one as "\\ud800"), and jsonb has no NaN or Infinity. Whatever a form, a service, a
webhook or a log call hands us goes through here before it is stored, so none of those can turn
into a 500 (or lose a whole log batch).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

# Deeper JSON than this is refused at the door (400) and cut (as text) when stored: no form or
# service needs it, and walking it recursively is what a hostile body aims at.
MAX_JSON_DEPTH = 20
MAX_REPR_CHARS = 10_000


class InvalidJson(ValueError):
    """A request body that is not JSON we accept (the API answers 400 with this message)."""


def storable_text(value: str, limit: int | None = None) -> str:
    """`value` without NUL and with lone surrogates replaced ("?"), at most `limit` characters."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if limit is not None:
        value = value[:limit]
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            value = value.encode(errors="replace").decode()
    return value


def _fallback_text(value: Any) -> str:
    # Dates, decimals, UUIDs as Django's encoder writes them; anything else as its repr.
    try:
        text = DjangoJSONEncoder().default(value)
    except TypeError:
        text = repr(value)
    return storable_text(str(text), MAX_REPR_CHARS)


def storable_json(value: Any, depth: int = 0, *, exact: bool = False) -> Any:
    """A JSON value PostgreSQL accepts: strings (keys too) made storable, NaN/Infinity as text, anything
    JSON has no type for as text (ISO dates, repr), nesting below MAX_JSON_DEPTH kept as text. With
    `exact`, finite Decimals (money parsed exactly) are kept as they are."""
    if value is None or isinstance(value, bool | int):
        return value
    if exact and isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= MAX_JSON_DEPTH:
        return storable_text(repr(value), MAX_REPR_CHARS)
    if isinstance(value, dict):
        return {
            storable_text(key if isinstance(key, str) else str(key)): storable_json(item, depth + 1, exact=exact)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [storable_json(item, depth + 1, exact=exact) for item in value]
    return _fallback_text(value)


def _reject_constant(name: str) -> None:
    raise InvalidJson(f"{name} is not valid JSON")


def _parse_float(text: str) -> float | str:
    # 1e309 is valid JSON but no float: keep what was sent as text rather than storing "inf".
    number = float(text)
    return number if math.isfinite(number) else text


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, dict | list))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if isinstance(child, dict | list))
    return False


def parse_json_body(body: bytes, *, allow_nan: bool = True, exact_numbers: bool = False) -> Any:
    """Decode a request body; InvalidJson (the API's 400) for bad JSON or UTF-8, or nesting deeper than
    MAX_JSON_DEPTH. Strings come back storable; a number too large for a float comes back as its
    text. NaN and Infinity (which Python's json writes) come back as text, or are InvalidJson
    without `allow_nan` (a web form has no business sending them). With `exact_numbers` every number
    comes back as a Decimal, exactly as sent (money: no float on the way in)."""
    numbers: dict[str, Any] = {"parse_float": Decimal, "parse_int": Decimal} if exact_numbers else {}
    try:
        data = json.loads(
            body,
            parse_constant=None if allow_nan else _reject_constant,
            **({"parse_float": _parse_float} | numbers),
        )
    except RecursionError:
        raise InvalidJson(f"the body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except InvalidJson:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None
    # Counting brackets is C-speed; only a body with enough of them can be too deep.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _depth_exceeds(data, MAX_JSON_DEPTH):
        raise InvalidJson(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    # A NUL or a lone surrogate can only arrive escaped (\u0000, \ud800), a non-finite float only as
    # NaN/Infinity: walk the structure only when one might be there.
    if b"\\u" in body or (allow_nan and (b"NaN" in body or b"Infinity" in body)):
        data = storable_json(data, exact=exact_numbers)
    return data
