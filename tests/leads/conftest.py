"""Helpers for the leads tests: a form's API key, posting a lead, staff in the Acquisitions group."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

FORM = {
    "name": "Jane Seller",
    "phone": "(206) 555-0123",
    "email": "Jane.Seller@Example.com",
    "address": "123 North Main Street Apt 4B, Seattle, WA 98101",
    "message": "Roof needs work",
    "asking_price": "350000",
    "timeline": "asap",
    "condition": "fair",
    "utm_source": "google",
    "utm_campaign": "spring",
    "page_url": "https://www.example.com/sell",
    "consent": True,
    "consent_text": "I agree to be contacted by phone and text.",
    "beds": 3,
    "baths": "2.5",
    "living_area_sqft": 1800,
    "year_built": 1978,
    "property_type": "sfr",
}


@pytest.fixture
def form_key(make_api_key) -> str:
    return make_api_key("leads:create", origins=["https://www.example.com"], name="Example form")


@pytest.fixture
def post_lead(client: Client, form_key: str) -> Callable[..., Any]:
    def post(body: Any = None, *, key: str | None = None, raw: bytes | str | None = None, **headers: str) -> Any:
        payload = raw if raw is not None else json.dumps(FORM if body is None else body)
        return client.post(
            "/api/leads",
            payload,
            content_type=headers.pop("content_type", "application/json"),
            HTTP_X_API_KEY=key or form_key,
            **headers,
        )

    return post


@pytest.fixture
def acquisitions(db) -> Callable[..., Any]:
    """Factory: acquisitions("alice", active=True) -> a staff user in the Acquisitions group."""
    from django.contrib.auth import get_user_model

    group, _ = Group.objects.get_or_create(name="Acquisitions")

    def make(username: str, *, active: bool = True, staff: bool = True) -> Any:
        user = get_user_model().objects.create_user(
            username, f"{username}@example.com", "pw-123456", is_staff=staff, is_active=active
        )
        user.groups.add(group)
        return user

    return make
