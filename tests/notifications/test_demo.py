from __future__ import annotations

import io

import pytest

from notifications.demo import seed
from notifications.models import Route


@pytest.mark.django_db
def test_seed_adds_default_routes_once() -> None:
    out = io.StringIO()
    seed(out)
    seed(out)
    assert Route.objects.filter(event_type="new_lead", channel="#leads").count() == 1
    assert Route.objects.count() == 5
    assert out.getvalue().startswith("notifications: 5 route(s) added")
