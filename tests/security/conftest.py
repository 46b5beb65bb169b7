"""Helpers for the hostile-input and abuse tests: signed Stripe and Slack requests, a lead form."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import pytest

STRIPE_SECRET = "whsec_hostile"
SLACK_SECRET = "slack-hostile-secret"

LEAD = {"name": "Jane Seller", "phone": "(206) 555-0123", "address": "123 Main St, Seattle, WA 98101"}


def stripe_signature(body: bytes, secret: str = STRIPE_SECRET) -> str:
    t = int(time.time())
    return f"t={t},v1=" + hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def slack_signature(body: str, timestamp: str, secret: str = SLACK_SECRET) -> str:
    return "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def signing_settings(settings) -> Any:
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET
    settings.SLACK_SIGNING_SECRET = SLACK_SECRET
    return settings


@pytest.fixture
def all_key(make_api_key) -> str:
    from leadsite.models import Scope

    return make_api_key(*Scope.values, name="everything")
