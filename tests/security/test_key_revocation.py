"""A key revoked in the admin stops working in every web process within about a second."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest


def _status(base_url: str, key: str) -> int:
    request = urllib.request.Request(f"{base_url}/api/leads?limit=1", headers={"X-Api-Key": key})
    return _open(request)


def _form_status(base_url: str, key: str) -> int:
    """POST /api/leads, which takes the lean middleware path (leadsite/lean.py): 422 for this empty
    body while the key works, 401 once it is revoked."""
    request = urllib.request.Request(
        f"{base_url}/api/leads", data=b"{}", headers={"X-Api-Key": key, "Content-Type": "application/json"}
    )
    return _open(request)


def _open(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.timeout(120)
def test_revoking_a_key_in_the_admin_bites_in_every_process_within_a_second(
    web_server, make_api_key, client, django_user_model
) -> None:
    from leadsite.models import ApiKey

    key = make_api_key("leads:read", "leads:create", name="crm")
    servers = [web_server(), web_server()]  # two gunicorn processes, each with its own memory cache
    for base in servers:
        # Warm both processes' caches (memory and Redis) with the active key.
        assert [_status(base, key) for _ in range(3)] == [200, 200, 200]
        assert [_form_status(base, key) for _ in range(3)] == [422, 422, 422]

    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(admin)
    row = ApiKey.objects.get(name="crm")
    response = client.post(
        f"/admin/leadsite/apikey/{row.pk}/change/",
        {"name": "crm", "scopes": ["leads:read", "leads:create"], "allowed_origins": "", "rate_limit": "0"},  # inactive
    )
    assert response.status_code == 302
    revoked_at = time.monotonic()
    assert not ApiKey.objects.get(pk=row.pk).is_active

    pending = {(base, check) for base in servers for check in (_status, _form_status)}
    while pending and time.monotonic() - revoked_at < 10:
        pending = {(base, check) for base, check in pending if check(base, key) != 401}
        time.sleep(0.05)
    took = time.monotonic() - revoked_at
    assert not pending, "a process still accepted the revoked key after 10 s"
    assert took < 1.5, f"revocation took {took:.2f} s to reach every process"
    for base in servers:
        assert {_status(base, key) for _ in range(5)} == {401}
        assert {_form_status(base, key) for _ in range(5)} == {401}
