"""POST/GET/PATCH /api/offers and the offers on GET /api/leads/{id}."""

from __future__ import annotations

import json
import uuid

import pytest

from grading.models import Offer, OfferGrade, OfferStatusChange
from grading.services import offer_regrade
from leads.models import LeadEvent
from notifications.models import Delivery
from tests.grading.conftest import value_lead

pytestmark = pytest.mark.django_db


def test_offer_on_a_valued_lead_is_graded_with_numbers_reasons_and_history(
    post_offer, valued_lead, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks():
        response = post_offer({"lead_id": str(valued_lead.id), "amount": 100000, "repairs": "20000"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["grade"], body["recommendation"], body["counter_offer"]) == ("A", "accept", None)
    assert 80 <= body["score"] <= 99
    assert (body["arv"], body["arv_low"], body["arv_high"], body["arv_source"]) == (
        "200000.00",
        "170000.00",
        "230000.00",
        "valuation",
    )
    assert body["numbers"]["mao"] == "120000.00"
    assert body["numbers"]["gap"] == "0.1000"
    assert body["numbers"]["confidence"] == "0.73"
    assert body["reasons"][0] == "Offer $100,000 is $20,000 (10.0% of ARV) under the 70%-rule maximum of $120,000"
    assert body["repairs_estimated"] is False and body["repairs_how"] is None
    assert body["acceptance"] == {
        "chance": None,
        "model": None,
        "detail": "the rules decide: no grader has been trained yet (manage.py train_grader)",
    }
    assert body["status"] == "draft"
    assert [(c["from"], c["to"]) for c in body["status_history"]] == [(None, "draft")]
    assert body["created_by"] == "API key Acquisitions app"
    # The grade record holds its inputs and version; the timeline and one Slack delivery follow.
    grade = OfferGrade.objects.get(offer_id=body["id"])
    assert grade.grader_version == "rules-1"
    assert grade.inputs["amount"] == "100000" and grade.inputs["arv_source"] == "valuation"
    assert grade.inputs["valuation"]["estimate"] == 200000
    assert LeadEvent.objects.get(lead=valued_lead, kind="offer").message == (
        "Offer $100,000 graded A (" + str(body["score"]) + "/100): accept"
    )
    delivery = Delivery.objects.get(event_type="offer_graded")
    assert delivery.key == f"offer:{body['id']}:grade:{grade.id}"
    assert delivery.lead_id == valued_lead.id
    assert delivery.payload["mao"] == "120000.00" and delivery.payload["grade"] == "A"


def test_repairs_are_estimated_from_the_lead_when_not_given(post_offer, valued_lead) -> None:
    response = post_offer({"lead_id": str(valued_lead.id), "amount": "80000"})
    assert response.status_code == 201
    body = response.json()
    # fair -> medium, $30/sqft x 1,800 sqft x 1.10 (built 1978)
    assert (body["repairs"], body["repairs_estimated"]) == ("59400.00", True)
    assert body["repairs_how"] == (
        "Repairs estimated at $59,400: medium rehab ('fair' in what the seller said) at $30/sqft"
        " x 1,800 sqft x 1.10 for a house built in 1978"
    )
    assert body["repairs_how"] in body["reasons"]


def test_given_arv_and_ratio_override_and_json_numbers_stay_exact(post_offer, make_lead) -> None:
    lead = make_lead()
    # 0.7 x 100000.10 is 70000.06999999999 in floats; read as Decimal it is exactly the offer.
    raw = '{"lead_id": "' + str(lead.id) + '", "amount": 70000.07, "repairs": 0, "arv": 100000.10}'
    body = post_offer(None, raw=raw).json()
    assert (body["grade"], body["numbers"]["mao"], body["numbers"]["gap"]) == ("B", "70000.07", "0.0000")
    assert body["arv_source"] == "given" and body["numbers"]["loss_chance"] is None
    over = post_offer({"lead_id": str(lead.id), "amount": "70000", "repairs": "0", "arv": "100000", "ratio": "0.6"})
    assert (over.json()["grade"], over.json()["numbers"]["mao"], over.json()["ratio"]) == ("D", "60000.00", "0.600")


def test_lead_detail_lists_its_offers_and_regrading_keeps_history(
    client, post_offer, valued_lead, make_api_key
) -> None:
    first = post_offer({"lead_id": str(valued_lead.id), "amount": "125000", "repairs": "20000"}).json()
    assert (first["grade"], first["recommendation"], first["counter_offer"]) == ("C", "negotiate", "120000.00")
    reader = make_api_key("leads:read")
    offers = client.get(f"/api/leads/{valued_lead.id}", HTTP_X_API_KEY=reader).json()["offers"]
    assert [(o["id"], o["grade"], o["amount"]) for o in offers] == [(first["id"], "C", "125000.00")]

    # The valuation improves; re-grading appends a record and the offer shows the newest.
    valued_lead.valuation.delete()
    value_lead(valued_lead, estimate=250_000, low=220_000, high=280_000)
    offer_regrade(offer_id=first["id"], by="test")
    assert list(OfferGrade.objects.filter(offer_id=first["id"]).order_by("id").values_list("grade", flat=True)) == [
        "C",
        "A",
    ]
    again = client.get(f"/api/offers/{first['id']}", HTTP_X_API_KEY=reader)
    assert again.status_code == 403  # a leads:read key may not read offers


def test_get_list_and_patch_status_with_timestamps(client, post_offer, valued_lead, offers_key) -> None:
    created = post_offer({"lead_id": str(valued_lead.id), "amount": "100000", "repairs": "20000"}).json()
    other = post_offer({"lead_id": str(valued_lead.id), "amount": "90000", "repairs": "20000"}).json()
    got = client.get(f"/api/offers/{created['id']}", HTTP_X_API_KEY=offers_key)
    # The 201 is built from what was just written; a fresh read says exactly the same.
    assert (got.status_code, got.json()) == (200, created)
    page = client.get(f"/api/offers?lead_id={valued_lead.id}&limit=1", HTTP_X_API_KEY=offers_key).json()
    assert ([o["id"] for o in page["items"]], page["next_offset"]) == ([other["id"]], 1)
    assert client.get(f"/api/offers?lead_id={uuid.uuid4()}", HTTP_X_API_KEY=offers_key).json()["items"] == []

    def patch(status: str):
        return client.patch(
            f"/api/offers/{created['id']}",
            json.dumps({"status": status}),
            content_type="application/json",
            HTTP_X_API_KEY=offers_key,
        )

    assert patch("sent").status_code == 200
    accepted = patch("accepted").json()
    assert [(c["from"], c["to"]) for c in accepted["status_history"]] == [
        (None, "draft"),
        ("draft", "sent"),
        ("sent", "accepted"),
    ]
    assert accepted["status_changed_at"] == accepted["status_history"][-1]["at"]
    assert Offer.objects.get(id=created["id"]).accepted_at is not None
    refused = patch("draft")
    assert (refused.status_code, refused.json()) == (
        422,
        {"detail": {"status": ["a accepted offer cannot become draft (allowed: closed, lost)"]}},
    )
    bad = patch("maybe")
    assert bad.status_code == 422 and list(bad.json()["detail"]) == ["status"]
    assert OfferStatusChange.objects.filter(offer_id=created["id"]).count() == 3


def test_auth_scope_and_staff_session(client, post_offer, valued_lead, make_api_key, staff_user) -> None:
    body = {"lead_id": str(valued_lead.id), "amount": "100000", "repairs": "20000"}
    assert client.post("/api/offers", json.dumps(body), content_type="application/json").status_code == 401
    assert post_offer(body, key=make_api_key("leads:write")).status_code == 403
    client.force_login(staff_user)
    response = client.post("/api/offers", json.dumps(body), content_type="application/json")
    assert response.status_code == 201 and response.json()["created_by"] == "staff"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"amount": "0"}, {"amount": ["Input should be greater than 0"]}),
        ({"amount": "-5"}, {"amount": ["Input should be greater than 0"]}),
        ({"repairs": "-1"}, {"repairs": ["Input should be greater than or equal to 0"]}),
        ({"arv": "0"}, {"arv": ["Input should be greater than 0"]}),
        ({"repairs": "200000.01"}, {"repairs": ["repairs $200,000.01 are more than the ARV $200,000"]}),
        (
            {"amount": "600000.01"},
            {"amount": ["$600,000.01 is more than 3x the ARV $200,000: check the amount and the ARV"]},
        ),
        ({"ratio": "0.49"}, {"ratio": ["Input should be greater than or equal to 0.5"]}),
        ({"ratio": "0.91"}, {"ratio": ["Input should be less than or equal to 0.9"]}),
        ({"arv_low": "250000"}, {"arv_low": ["$250,000 is above the ARV $200,000"]}),
        ({"arv_high": "150000"}, {"arv_high": ["$150,000 is below the ARV $200,000"]}),
        ({"amount": "1e309"}, {"amount": ["Decimal input should have no more than 12 digits in total"]}),
        ({"amount": "12.345"}, {"amount": ["Decimal input should have no more than 2 decimal places"]}),
        ({"amount": "NaN"}, {"amount": ["Input should be a finite number"]}),
        ({"amount": "Infinity"}, {"amount": ["Input should be a finite number"]}),
        ({"amount": ["1"]}, {"amount": ["Decimal input should be an integer, float, string or Decimal object"]}),
        (
            {"amount": {"a": {"b": 1}}},
            {"amount": ["Decimal input should be an integer, float, string or Decimal object"]},
        ),
        ({"amount": "\u0000"}, {"amount": ["Input should be a valid decimal"]}),  # NULs are stripped first
        ({"status": "sent"}, {"status": ["unknown field"]}),
        ({"lead_id": "not-a-uuid"}, {"lead_id": ["not a valid lead id (a UUID)"]}),
        ({"lead_id": 12}, {"lead_id": ["Input should be a valid string"]}),
    ],
)
def test_bad_input_is_a_422_with_a_message_per_field_and_writes_nothing(post_offer, valued_lead, body, errors) -> None:
    payload = {"lead_id": str(valued_lead.id), "amount": "100000", "repairs": "20000", **body}
    response = post_offer(payload)
    assert (response.status_code, response.json()) == (422, {"detail": errors})
    assert Offer.objects.count() == 0 and Delivery.objects.count() == 0


def test_missing_arv_without_a_valuation_says_what_is_missing_and_how(post_offer, make_lead) -> None:
    lead = make_lead()
    response = post_offer({"lead_id": str(lead.id), "amount": "100000", "repairs": "10000"})
    assert response.status_code == 422
    assert response.json() == {
        "detail": {
            "arv": [
                "required: the lead has not been valued yet. Send arv (the after-repair value, with "
                "arv_low/arv_high if you know the range), or give the lead its coordinates and living area "
                "so it can be valued."
            ]
        }
    }
    no_size = make_lead(living_area_sqft=None)
    response = post_offer({"lead_id": str(no_size.id), "amount": "100000", "arv": "200000"})
    assert response.json()["detail"] == {
        "repairs": [
            "not given, and it cannot be estimated: the lead has no living area (living_area_sqft). "
            "Send repairs, or add the lead's living area."
        ]
    }
    assert Offer.objects.count() == 0


def test_unknown_lead_and_offer_are_json_404s(client, post_offer, offers_key) -> None:
    missing = post_offer({"lead_id": str(uuid.uuid4()), "amount": "100000", "arv": "200000", "repairs": "0"})
    assert (missing.status_code, missing.json()) == (404, {"detail": "lead not found"})
    for path in ("/api/offers/999999", "/api/offers/99999999999999999999999"):
        response = client.get(path, HTTP_X_API_KEY=offers_key)
        assert (response.status_code, response.json()) == (404, {"detail": "offer not found"})
    patch = client.patch(
        "/api/offers/999999", json.dumps({"status": "sent"}), content_type="application/json", HTTP_X_API_KEY=offers_key
    )
    assert (patch.status_code, patch.json()) == (404, {"detail": "offer not found"})


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        ("[1, 2]", "application/json", 422),
        ('"text"', "application/json", 422),
        ("{", "application/json", 400),
        ('{"amount": NaN}', "application/json", 400),
        ('{"amount": -Infinity}', "application/json", 400),
        ("[" * 50_000 + "]" * 50_000, "application/json", 413),
        ("[" * 20_000 + "]" * 20_000, "application/json", 400),
        ("\xff\xfe", "application/json", 400),
        ("amount=1", "application/x-www-form-urlencoded", 415),
        ('{"lead_id": "x", "amount": 1}' + " " * 70_000, "application/json", 413),
    ],
)
def test_malformed_bodies_are_4xx_json_never_500(post_offer, raw, content_type, status) -> None:
    response = post_offer(None, raw=raw, content_type=content_type)
    assert response.status_code == status, response.content
    assert "detail" in response.json()
    assert Offer.objects.count() == 0
