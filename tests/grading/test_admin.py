"""Back office: grade an offer from the lead page, offers list with filters and the synthetic
marker, re-grade and status actions, the dashboard's offers by grade this month."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from django.utils import timezone

from grading.models import Offer, OfferGrade, OfferStatusChange
from grading.selectors import offers_by_grade_this_month
from grading.services import OfferTerms, offer_create
from grading.synthetic import offer_history_generate
from tests.grading.conftest import value_lead

pytestmark = pytest.mark.django_db


def test_lead_page_links_to_the_grade_form_which_grades_and_lists_the_offer(admin_client, valued_lead) -> None:
    page = admin_client.get(f"/admin/leads/lead/{valued_lead.id}/change/").content.decode()
    form_url = f"/admin/grading/offer/grade/{valued_lead.id}/"
    assert f'href="{form_url}"' in page and "Grade an offer" in page
    assert admin_client.get(form_url).status_code == 200

    # Bad terms come back on the form, field by field, and nothing is written.
    refused = admin_client.post(form_url, {"amount": "700000", "repairs": "1000"})
    assert refused.status_code == 200
    assert "more than 3x the ARV $200,000" in refused.content.decode()
    assert Offer.objects.count() == 0

    response = admin_client.post(form_url, {"amount": "125000", "repairs": "20000"})
    offer = Offer.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/grading/offer/{offer.id}/change/"
    assert (offer.grade, offer.created_by_name) == ("C", "admin")
    detail = admin_client.get(response["Location"]).content.decode()
    assert "Counter at $120,000 or less to make it a B" in detail
    # The lead page's inline shows the graded offer, read-only.
    page = admin_client.get(f"/admin/leads/lead/{valued_lead.id}/change/").content.decode()
    assert "125000.00" in page and "reasons &amp; history" in page


def test_regrade_action_appends_a_grade_and_status_actions_record_changes(admin_client, valued_lead) -> None:
    offer, _ = offer_create(lead_id=valued_lead.id, terms=OfferTerms(amount=D("125000"), repairs=D("20000")))
    valued_lead.valuation.delete()
    value_lead(valued_lead, estimate=260_000, low=230_000, high=290_000)
    admin_client.post("/admin/grading/offer/", {"action": "regrade", "_selected_action": [offer.id]})
    assert list(OfferGrade.objects.filter(offer=offer).order_by("id").values_list("grade", flat=True)) == ["C", "A"]
    admin_client.post("/admin/grading/offer/", {"action": "mark_sent", "_selected_action": [offer.id]})
    admin_client.post("/admin/grading/offer/", {"action": "mark_closed", "_selected_action": [offer.id]})  # refused
    assert Offer.objects.get(id=offer.id).status == "sent"
    assert list(OfferStatusChange.objects.filter(offer=offer).values_list("to_status", flat=True)) == ["draft", "sent"]


def test_offers_list_filters_by_grade_and_marks_synthetic_history(admin_client, valued_lead) -> None:
    offer_history_generate(count=12, seed=1, end=timezone.now() - dt.timedelta(days=30))
    offer_create(lead_id=valued_lead.id, terms=OfferTerms(amount=D("100000"), repairs=D("20000")))
    page = admin_client.get("/admin/grading/offer/").content.decode()
    assert page.count("SYNTHETIC") >= 12
    real = admin_client.get("/admin/grading/offer/?synthetic__exact=0")
    assert list(real.context["cl"].result_list) == [Offer.objects.get(synthetic=False)]
    graded_a = admin_client.get("/admin/grading/offer/?grade__exact=A")
    assert {o.grade for o in graded_a.context["cl"].result_list} == {"A"}
    assert admin_client.get("/admin/grading/gradermodel/").status_code == 200


def test_dashboard_shows_real_offers_by_grade_this_month(admin_client, valued_lead) -> None:
    offer_history_generate(count=5, seed=2, end=timezone.now())  # synthetic: never counted
    offer_create(lead_id=valued_lead.id, terms=OfferTerms(amount=D("100000"), repairs=D("20000")))
    offer_create(lead_id=valued_lead.id, terms=OfferTerms(amount=D("125000"), repairs=D("20000")))
    offer_create(lead_id=valued_lead.id, terms=OfferTerms(amount=D("126000"), repairs=D("20000")))
    assert offers_by_grade_this_month() == [("A", 1), ("B", 0), ("C", 2), ("D", 0), ("F", 0)]
    response = admin_client.get("/admin/")
    assert [(b["label"], b["value"]) for b in response.context["dashboard"]["offers_by_grade"]] == [
        ("A", 1),
        ("B", 0),
        ("C", 2),
        ("D", 0),
        ("F", 0),
    ]
    assert 'id="offers-by-grade"' in response.content.decode()
