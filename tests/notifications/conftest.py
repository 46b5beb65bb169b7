from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.fakes.slack import FakeSlack


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def slack_settings(settings, fake_slack: FakeSlack):
    """This process talks to the fake Slack (for direct service/task calls)."""
    settings.SLACK_BOT_TOKEN = fake_slack.token
    settings.SLACK_API_BASE_URL = fake_slack.base_url
    settings.SLACK_DEFAULT_CHANNEL = "#leads"
    settings.SLACK_SIGNING_SECRET = "slack-signing-secret"
    return settings


@pytest.fixture
def slack_worker(start_worker, fake_slack: FakeSlack, slack_settings) -> Callable[..., object]:
    """Factory: a real Celery worker that posts to the fake Slack."""

    def start(concurrency: int = 1, **env: str):
        return start_worker(
            concurrency=concurrency,
            SLACK_BOT_TOKEN=fake_slack.token,
            SLACK_API_BASE_URL=fake_slack.base_url,
            SLACK_DEFAULT_CHANNEL="#leads",
            **env,
        )

    return start


@pytest.fixture
def make_lead(db) -> Callable[..., object]:
    from leads.models import Lead

    def make(**fields):
        defaults = {"name": "Ann Seller", "phone": "+12065550100", "address": "1 Main St, Seattle, WA", "source": "web"}
        return Lead.objects.create(**{**defaults, **fields})

    return make


def new_lead_context(lead) -> dict:
    return {
        "lead_id": str(lead.id),
        "name": lead.name,
        "phone": lead.phone,
        "email": lead.email,
        "address": lead.address,
        "source": lead.source,
    }
