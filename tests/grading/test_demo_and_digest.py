"""`make run`'s grading demo data (synthetic, marked, once) and the daily digest's offers line."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal as D

import pytest
from django.utils import timezone

from grading.demo import seed
from grading.models import GraderModel, Offer
from grading.services import OfferTerms, offer_create
from leads.models import Lead, LeadEvent
from notifications.digest import digest_context
from notifications.models import Delivery

pytestmark = pytest.mark.django_db


def test_demo_seed_adds_a_marked_synthetic_history_and_a_grader_once() -> None:
    out = io.StringIO()
    seed(out)
    seed(out)
    assert Offer.objects.count() == Offer.objects.filter(synthetic=True).count() == 240
    assert Lead.objects.filter(source="Synthetic offer history", name__startswith="[synthetic] ").count() == 240
    assert GraderModel.objects.count() == 1
    assert out.getvalue().startswith("Grading: 240 SYNTHETIC past offers; grader v")
    # History, not work done today: nothing on timelines, nothing for Slack.
    assert not LeadEvent.objects.exists() and not Delivery.objects.exists()


def test_digest_counts_real_offers_graded_that_day(valued_lead) -> None:
    offer_create(lead_id=valued_lead.id, terms=OfferTerms(amount=D("100000"), repairs=D("20000")))
    offer_create(lead_id=valued_lead.id, terms=OfferTerms(amount=D("125000"), repairs=D("20000")))
    today = timezone.now().date()
    assert digest_context(day=today)["offers"] == {"count": 2, "by_grade": {"A": 1, "C": 1}}
    assert digest_context(day=today - dt.timedelta(days=1))["offers"] == {"count": 0, "by_grade": {}}
