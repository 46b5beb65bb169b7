from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from leads.models import Lead
from notifications.digest import digest_send
from notifications.models import Delivery, Payment
from notifications.services import delivery_send

pytestmark = pytest.mark.django_db


def test_digest_counts_yesterday_and_posts_once(make_lead, slack_settings, fake_slack) -> None:
    yesterday = timezone.now() - datetime.timedelta(days=1)
    for source in ("web", "web", "ppc"):
        make_lead(source=source)
    make_lead(source="today")
    Lead.objects.exclude(source="today").update(created_at=yesterday)
    Lead.objects.filter(source="ppc").update(status="contacted")
    payment = Payment.objects.create(stripe_event_id="evt_1", type="invoice.paid", amount=Decimal("1250.00"))
    Payment.objects.filter(pk=payment.pk).update(created_at=yesterday)

    digest_send()
    digest_send()  # the beat fired twice: still one digest

    [delivery] = Delivery.objects.filter(event_type="daily_digest")
    assert delivery.payload["leads"] == {
        "total": 3,
        "by_source": {"web": 2, "ppc": 1},
        "by_status": {"contacted": 1, "new": 2},
    }
    assert delivery.payload["payments"] == {"count": 1, "total": "1250.00"}
    delivery_send(delivery_id=delivery.pk)
    text = fake_slack.messages()[0].text
    assert text.startswith(f"📅 *Daily digest* {yesterday.date().isoformat()}\n*Leads:* 3 (web: 2, ppc: 1)")
    assert "*Payments:* 1 totalling $1,250.00" in text
