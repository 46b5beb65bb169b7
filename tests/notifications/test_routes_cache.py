"""notify()'s routing table comes from the cache, and every Route save or delete refreshes it."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from notifications.models import Delivery, Route
from notifications.services import ROUTES_CACHE_KEY, notify, route_channels

pytestmark = pytest.mark.django_db


def test_route_lookup_is_cached_and_costs_no_query(settings, django_assert_num_queries) -> None:
    settings.SLACK_DEFAULT_CHANNEL = "#default"
    Route.objects.create(event_type="payment", channel="#ops")
    Route.objects.create(event_type="payment", channel="#money")
    Route.objects.create(event_type="alert", channel="#alerts", is_active=False)
    with django_assert_num_queries(1):
        assert route_channels("payment") == ["#money", "#ops"]
    with django_assert_num_queries(0):
        assert route_channels("payment") == ["#money", "#ops"]
        assert route_channels("alert") == ["#default"]  # inactive route: the default channel
        assert route_channels("new_lead") == ["#default"]
    assert cache.get(ROUTES_CACHE_KEY) == {"payment": ["#money", "#ops"]}


def test_saving_or_deleting_a_route_refreshes_the_table(settings) -> None:
    settings.SLACK_DEFAULT_CHANNEL = "#default"
    route = Route.objects.create(event_type="new_lead", channel="#leads")
    assert route_channels("new_lead") == ["#leads"]

    route.channel = "#sellers"
    route.save()  # what the admin's change form and list_editable do
    assert route_channels("new_lead") == ["#sellers"]

    route.is_active = False
    route.save()
    assert route_channels("new_lead") == ["#default"]

    route.is_active = True
    route.save()
    Route.objects.create(event_type="new_lead", channel="#acquisitions")
    assert route_channels("new_lead") == ["#acquisitions", "#sellers"]

    Route.objects.filter(channel="#sellers").delete()  # the admin's bulk delete action
    notify(event_type="new_lead", context={"name": "Ann"}, key="lead:x:new_lead")
    assert list(Delivery.objects.values_list("channel", flat=True)) == ["#acquisitions"]


def test_admin_edit_of_a_route_takes_effect_at_once(admin_client, settings) -> None:
    settings.SLACK_DEFAULT_CHANNEL = "#default"
    route = Route.objects.create(event_type="payment", channel="#money")
    assert route_channels("payment") == ["#money"]
    response = admin_client.post(
        f"/admin/notifications/route/{route.pk}/change/",
        {"event_type": "payment", "channel": "#finance", "is_active": "on"},
    )
    assert response.status_code == 302
    assert route_channels("payment") == ["#finance"]
    response = admin_client.post(f"/admin/notifications/route/{route.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert route_channels("payment") == ["#default"]
