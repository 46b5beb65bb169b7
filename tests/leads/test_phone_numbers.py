"""normalize_phone's shortcut for the common US shapes gives what phonenumbers' full parse gives."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from leads.normalize import _NANP, normalize_phone


def _full_parse(raw: str) -> str:
    """normalize_phone without the shortcut: phonenumbers.parse, is_valid_number, E.164."""
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return "ValueError: not a phone number"
    if not phonenumbers.is_valid_number(number):
        return "ValueError: not a valid phone number"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _ours(raw: str) -> str:
    try:
        return normalize_phone(raw)
    except ValueError as exc:
        return f"ValueError: {exc}"


_SHAPES = (
    "({a}) {e}-{l}",
    "({a}){e}-{l}",
    "({a}) {e} {l}",
    "{a}-{e}-{l}",
    "{a}.{e}.{l}",
    "{a} {e} {l}",
    "{a}{e}{l}",
    "1{a}{e}{l}",
    "1-{a}-{e}-{l}",
    "1 ({a}) {e}-{l}",
    "+1 {a} {e} {l}",
    "+1-{a}-{e}-{l}",
    "+1 ({a}) {e}-{l}",
    "+1{a}{e}{l}",
    "+1.{a}.{e}.{l}",
    "{a}-{e}{l}",
    "({a} {e}-{l}",  # unbalanced: the full parse decides
    "{a}) {e}-{l}",
    "{a}--{e}-{l}",
    "{a}/{e}-{l}",
    "+{a} {e} {l}",
    "{a} {e} {l} x12",
    "0{a}{e}{l}",
    "11{a}{e}{l}",
    "+44 20 {e} {l}",
)


def test_the_shortcut_gives_the_full_parses_answer_for_every_shape_and_area_code() -> None:
    rng = random.Random(13)
    shortcut = 0
    for _ in range(20_000):
        area = f"{rng.randint(0, 999):03d}"
        exchange = f"{rng.randint(0, 999):03d}"
        line = f"{rng.randint(0, 9999):04d}"
        raw = rng.choice(_SHAPES).format(a=area, e=exchange, l=line)
        shortcut += _NANP.fullmatch(raw) is not None
        assert _ours(raw) == _full_parse(raw), raw
    assert shortcut > 10_000  # the corpus exercises the shortcut, not only the fallback


@pytest.mark.parametrize(
    ("raw", "e164"),
    [("(206) 555-0123", "+12065550123"), ("+1 604 555 0123", "+16045550123"), ("12065550123", "+12065550123")],
)
def test_common_shapes_are_read_without_a_parse(raw: str, e164: str) -> None:
    assert _NANP.fullmatch(raw) is not None
    assert normalize_phone(raw) == e164
