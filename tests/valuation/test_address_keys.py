"""Duplicate keys from USPS Publication 28 address forms: variants of one address match."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from leads.models import Lead
from leads.normalize import parse_address

LATONA = "4512 latona ave ne|98105"


@pytest.mark.parametrize(
    "raw",
    [
        "4512 Latona Ave NE, Seattle, WA 98105",
        "4512 Latona Ave. N.E., Seattle, WA 98105",
        "4512 LATONA AVENUE NORTHEAST, SEATTLE, WA 98105",
        "4512 latona avenue n.e.,  seattle,  wa 98105-1234",
        "  4512 Latona Av NE, Seattle WA 98105 ",
    ],
)
def test_spelling_case_and_punctuation_variants_give_one_key(raw: str) -> None:
    assert parse_address(raw).key == LATONA


@pytest.mark.parametrize(
    "raw",
    [
        "600 Pine St Apt 1203, Seattle, WA 98101",
        "600 Pine Street #1203, Seattle, WA 98101",
        "600 PINE ST UNIT 1203, SEATTLE, WA 98101",
        "600 Pine St. Apartment 1203, Seattle, WA 98101",
    ],
)
def test_unit_designator_variants_give_one_key(raw: str) -> None:
    assert parse_address(raw).key == "600 pine st 1203|98101"


def test_different_units_and_directionals_stay_different() -> None:
    assert (
        parse_address("600 Pine St Apt 1204, Seattle, WA 98101").key
        != parse_address("600 Pine St Apt 1203, Seattle, WA 98101").key
    )
    assert parse_address("4512 Latona Ave NW, Seattle, WA 98105").key != LATONA


def test_without_a_zip_code_the_key_uses_city_and_state() -> None:
    assert parse_address("4512 Latona Avenue N.E., Seattle, WA").key == "4512 latona ave ne|seattle|wa"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("near the big oak tree", "near the big oak tree"),  # not an address: its canonical text
        ("PO Box 123, Seattle, WA 98101", "po box 123|98101"),  # scourgify refuses PO boxes: usaddress parts
    ],
)
def test_text_scourgify_cannot_read_falls_back_safely(raw: str, key: str) -> None:
    assert parse_address(raw).key == key


def test_repeat_seller_with_a_differently_written_address_is_a_duplicate(client, make_api_key) -> None:
    api_key = make_api_key("leads:create")
    body = {"name": "Jane", "phone": "(206) 555-0123", "address": "4512 Latona Ave. N.E., Seattle, WA 98105"}

    def post(address: str) -> dict:
        response = client.post(
            "/api/leads",
            data=json.dumps({**body, "address": address}),
            content_type="application/json",
            HTTP_X_API_KEY=api_key,
        )
        assert response.status_code in (200, 201), response.content
        return response.json()

    first = post("4512 Latona Ave. N.E., Seattle, WA 98105")
    second = post("4512 latona avenue northeast, Seattle WA 98105")

    assert second == {"id": first["id"], "duplicate": True}
    assert Lead.objects.count() == 1


def test_recompute_address_keys_command_updates_old_keys(db) -> None:
    lead = Lead.objects.create(name="Old", address="4512 Latona Ave. N.E., Seattle, WA 98105", address_key="old key")
    same = Lead.objects.create(name="Current", address="600 Pine St Apt 1203, Seattle, WA 98101")
    same.address_key = parse_address(same.address).key
    same.save()

    first, second = StringIO(), StringIO()
    call_command("recompute_address_keys", stdout=first)
    call_command("recompute_address_keys", stdout=second)  # twice: nothing left to change

    assert (first.getvalue(), second.getvalue()) == ("1 address key(s) changed\n", "0 address key(s) changed\n")

    lead.refresh_from_db()
    assert lead.address_key == LATONA
