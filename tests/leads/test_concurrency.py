"""Races that must not create two leads: the same Idempotency-Key, or a double-clicked form."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from leads.models import IdempotencyRecord, Lead, OutboxEvent
from tests.leads.conftest import FORM

pytestmark = pytest.mark.django_db(transaction=True)


def _post_together(key: str, bodies: list[dict[str, Any]], headers: list[dict[str, str]]) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(len(bodies))
    results: list[tuple[int, dict]] = [None] * len(bodies)  # type: ignore[list-item]

    def post(i: int) -> None:
        try:
            client = Client()
            barrier.wait()
            response = client.post(
                "/api/leads",
                json.dumps(bodies[i]),
                content_type="application/json",
                HTTP_X_API_KEY=key,
                **headers[i],
            )
            results[i] = (response.status_code, response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_requests_with_same_idempotency_key_make_one_lead(form_key, round_):
    key_header = {"HTTP_IDEMPOTENCY_KEY": f"double-submit-{round_}"}
    results = _post_together(form_key, [FORM, FORM], [key_header, key_header])
    assert [status for status, _ in results] == [201, 201]
    assert results[0][1] == results[1][1]
    assert Lead.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1
    assert list(OutboxEvent.objects.values_list("task_name", flat=True)) == ["leads.fan_out"]


def test_concurrent_same_key_different_bodies_one_wins_other_409(form_key):
    key_header = {"HTTP_IDEMPOTENCY_KEY": "racy-key"}
    other = {**FORM, "message": "something else"}
    results = _post_together(form_key, [FORM, other], [key_header, key_header])
    assert sorted(status for status, _ in results) == [201, 409]
    assert Lead.objects.count() == 1


def test_double_click_without_idempotency_key_makes_one_lead_and_one_repeat(form_key):
    results = _post_together(form_key, [FORM, FORM], [{}, {}])
    assert sorted(status for status, _ in results) == [200, 201]
    assert {body["id"] for _, body in results} == {str(Lead.objects.get().id)}
    assert sorted(body["duplicate"] for _, body in results) == [False, True]
