"""A realistic synthetic offer history for the demo, so the learned part of grading has something
to learn from before a business has ~50 real outcomes. Everything it writes is marked: offers
have `synthetic=True` (a column and a filter in the admin), their leads are named "[synthetic] …"
with the source "Synthetic offer history", and none of it reaches the timeline, Slack or the
dashboard's offer counts.

How sellers behave here (the "truth" the model may learn, and the rules alone do not see): the
closer the offer is to ARV and to the seller's asking price, the likelier a yes, and sellers in a
hurry say yes more often. About 10% of offers are still open (no outcome yet).
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import numpy as np
from django.db import transaction
from django.utils import timezone

from grading.models import Offer, OfferStatus
from grading.services import OfferTerms, offer_create, offer_set_status
from leads.models import LeadStatus
from leads.services import lead_create_historical

SOURCE = "Synthetic offer history"
TIMELINES = ("asap", "1-3 months", "3-6 months", "just exploring")
CONDITIONS = ("good", "fair", "needs work", "major repairs", "")


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def offer_history_generate(*, count: int = 240, seed: int = 7, end: dt.datetime | None = None, days: int = 720) -> int:
    """Create `count` synthetic offers spread over `days` before `end` (default: 30 days ago), graded
    by the real rules and moved through their statuses at their historical times. Returns how many."""
    rng = np.random.default_rng(seed)
    end = end or timezone.now() - dt.timedelta(days=30)
    start = end - dt.timedelta(days=days)
    made = 0
    with transaction.atomic():
        for i in range(count):
            created = start + dt.timedelta(days=days * (i + float(rng.uniform(0, 1))) / count)
            arv = Decimal(int(rng.lognormal(math.log(520_000), 0.35) / 1000) * 1000)
            spread_low = Decimal(str(round(float(rng.uniform(0.82, 0.93)), 3)))
            spread_high = Decimal(str(round(float(rng.uniform(1.07, 1.2)), 3)))
            living = int(rng.integers(800, 3200))
            condition = CONDITIONS[int(rng.integers(0, len(CONDITIONS)))]
            timeline = TIMELINES[int(rng.integers(0, len(TIMELINES)))]
            has_asking = rng.uniform() < 0.7
            asking = (
                (arv * Decimal(str(round(float(rng.uniform(0.72, 1.02)), 3)))).quantize(Decimal(1000))
                if has_asking
                else None
            )
            repairs = Decimal(int(living * float(rng.choice([15, 30, 55])) / 100) * 100)
            offer_to_arv = float(rng.uniform(0.5, 0.86))
            amount = (arv * Decimal(str(round(offer_to_arv, 3)))).quantize(Decimal(500))
            lead = lead_create_historical(
                created_at=created - dt.timedelta(days=int(rng.integers(1, 10))),
                status=LeadStatus.OFFER_MADE,
                source=SOURCE,
                name=f"[synthetic] Seller {i + 1:03d}",
                living_area_sqft=living,
                year_built=int(rng.integers(1915, 2015)),
                condition=condition,
                timeline=timeline,
                asking_price=asking,
            )
            offer, _ = offer_create(
                lead_id=lead.id,
                terms=OfferTerms(
                    amount=amount,
                    repairs=repairs,
                    arv=arv,
                    arv_low=(arv * spread_low).quantize(Decimal(1000)),
                    arv_high=(arv * spread_high).quantize(Decimal(1000)),
                ),
                by="synthetic history",
                synthetic=True,
                created_at=created,
            )
            made += 1
            sent = created + dt.timedelta(hours=float(rng.uniform(2, 48)))
            offer_set_status(offer_id=offer.id, status=OfferStatus.SENT, by="synthetic history", at=sent)
            if rng.uniform() < 0.1:
                continue  # still waiting for the seller
            logit = -0.4 + 9.0 * (offer_to_arv - 0.7) + (1.3 if timeline == "asap" else 0.0)
            if asking is not None:
                logit += 7.0 * (float(amount / asking) - 0.85)
            decided = sent + dt.timedelta(days=float(rng.uniform(1, 14)))
            if rng.uniform() < _sigmoid(logit):
                offer_set_status(offer_id=offer.id, status=OfferStatus.ACCEPTED, by="synthetic history", at=decided)
                final = OfferStatus.CLOSED if rng.uniform() < 0.8 else OfferStatus.LOST
                offer_set_status(
                    offer_id=offer.id, status=final, by="synthetic history", at=decided + dt.timedelta(days=20)
                )
            else:
                final = OfferStatus.REJECTED if rng.uniform() < 0.75 else OfferStatus.LOST
                offer_set_status(offer_id=offer.id, status=final, by="synthetic history", at=decided)
    return made


def offer_history_exists() -> bool:
    return Offer.objects.filter(synthetic=True).exists()
