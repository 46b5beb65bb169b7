"""Back-office fixtures: staff in the real groups (made by the data migration), leads to work."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

PASSWORD = "pw-back-office-1"


@pytest.fixture
def make_staff(db) -> Callable[..., Any]:
    """Factory: make_staff("rita", group="Acquisitions", first_name="Rita") -> a staff user who can log in."""

    def make(username: str, group: str | None = "Acquisitions", **fields: Any) -> Any:
        user = get_user_model().objects.create_user(
            username, f"{username}@example.com", PASSWORD, is_staff=True, **fields
        )
        if group:
            user.groups.add(Group.objects.get(name=group))
        return user

    return make


@pytest.fixture
def make_lead(db) -> Callable[..., Any]:
    from leads.models import Lead

    counter = iter(range(100, 10_000))

    def make(**fields: Any) -> Lead:
        n = next(counter)
        defaults: dict[str, Any] = {
            "name": f"Seller {n}",
            "phone": f"+1206555{n:04d}",
            "email": f"seller{n}@example.com",
            "address": f"{n} Main St, Seattle, WA 98101",
            "city": "Seattle",
            "source": "website",
            "living_area_sqft": 1800,
            "beds": 3,
            "baths": Decimal("2.00"),
            "year_built": 1960,
            "lot_sqft": 5000,
            "property_type": "sfr",
        }
        return Lead.objects.create(**{**defaults, **fields})

    return make


@pytest.fixture
def fake_slack():
    from tests.fakes.slack import FakeSlack

    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def slack_settings(settings, fake_slack):
    settings.SLACK_BOT_TOKEN = fake_slack.token
    settings.SLACK_API_BASE_URL = fake_slack.base_url
    settings.SLACK_DEFAULT_CHANNEL = "#leads"
    return settings
