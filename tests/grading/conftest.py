"""Grading fixtures: an offers:write key, leads with and without a valuation, posting an offer."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from leads.models import Lead
from valuation.models import Valuation

VALUED = {"estimate": 200_000, "low": 170_000, "high": 230_000, "confidence": 0.73}


@pytest.fixture(autouse=True)
def _fresh_grader_memo() -> None:
    # The grader in use is memoised per process for a few seconds; each test has its own rows.
    from grading.selectors import grader_memo_clear

    grader_memo_clear()


@pytest.fixture
def offers_key(make_api_key) -> str:
    return make_api_key("offers:write", name="Acquisitions app")


@pytest.fixture
def make_lead(db) -> Callable[..., Lead]:
    def make(**fields: Any) -> Lead:
        defaults = {
            "name": "Jane Seller",
            "phone": "+12065550123",
            "address": "123 N Main St, Seattle, WA 98101",
            "source": "web",
            "living_area_sqft": 1800,
            "year_built": 1978,
            "condition": "fair",
        }
        return Lead.objects.create(**{**defaults, **fields})

    return make


def value_lead(lead: Lead, **numbers: Any) -> Valuation:
    """A stored valuation as valuation.services.lead_value writes it (status ok, the API's result)."""
    n = {**VALUED, **numbers}
    result = {
        "status": "ok",
        "detail": None,
        "missing": [],
        **n,
        "comps": [],
        "method": "test",
        "as_of": "2016-01-01",
        "model_version": None,
    }
    return Valuation.objects.create(lead=lead, status="ok", as_of=dt.date(2016, 1, 1), result=result, comps=[], **n)


@pytest.fixture
def valued_lead(make_lead) -> Lead:
    lead = make_lead()
    value_lead(lead)
    return lead


@pytest.fixture
def post_offer(client: Client, offers_key: str) -> Callable[..., Any]:
    def post(body: Any, *, raw: bytes | str | None = None, key: str | None = None, **extra: Any) -> Any:
        payload = raw if raw is not None else json.dumps(body)
        return client.post(
            "/api/offers",
            payload,
            content_type=extra.pop("content_type", "application/json"),
            HTTP_X_API_KEY=key or offers_key,
            **extra,
        )

    return post
