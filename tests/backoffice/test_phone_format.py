"""Phones in the back office read as the national format phonenumbers gives them."""

from __future__ import annotations

import random

import phonenumbers

from leadsite.templatetags.leadsite_format import phone_national


def _phonenumbers_national(value: str) -> str:
    number = phonenumbers.parse(value, "US")
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 1
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, fmt)


def test_us_phones_read_as_phonenumbers_formats_them() -> None:
    rng = random.Random(11)
    phones = ["+12065550171", "+19995550100", "+12000000000", "+18005551234"]
    phones += [f"+1{rng.randint(2_000_000_000, 9_999_999_999)}" for _ in range(2000)]
    for phone in phones:
        assert phone_national(phone) == _phonenumbers_national(phone), phone
    assert phone_national("+12065550171") == "(206) 555-0171"


def test_other_phones_are_left_to_phonenumbers() -> None:
    for phone in ("+442071838750", "+11065550171", "+1206555017", "+3312345678"):
        assert phone_national(phone) == _phonenumbers_national(phone), phone
    assert phone_national("") == ""
    assert phone_national("not a phone") == "not a phone"
