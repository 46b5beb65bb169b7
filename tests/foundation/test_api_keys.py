from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from leadsite.models import ApiKey

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.foundation.probe_urls")]


def test_missing_key_is_401(client):
    response = client.get("/api/_probe/key/leads:read")
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


def test_wrong_key_is_401(client, make_api_key):
    raw = make_api_key("leads:read")
    tampered = raw[:-2] + ("AA" if not raw.endswith("AA") else "BB")
    for bad in (tampered, "ls_nope_nope", "garbage"):
        assert client.get("/api/_probe/key/leads:read", HTTP_X_API_KEY=bad).status_code == 401


def test_key_without_scope_is_403(client, make_api_key):
    raw = make_api_key("leads:create")
    response = client.get("/api/_probe/key/leads:read", HTTP_X_API_KEY=raw)
    assert response.status_code == 403
    assert "leads:read" in response.json()["detail"]


def test_key_with_scope_passes_and_records_last_use(client, make_api_key):
    raw = make_api_key("leads:read")
    response = client.get("/api/_probe/key/leads:read", HTTP_X_API_KEY=raw)
    assert response.status_code == 200
    assert response.json()["key"] == "test"
    assert ApiKey.objects.get().last_used_at is not None


def test_inactive_key_is_401(client, make_api_key):
    raw = make_api_key("leads:read")
    key = ApiKey.objects.get()
    key.is_active = False
    key.save()
    from leadsite.services import api_key_invalidate

    api_key_invalidate(prefix=key.prefix)
    assert client.get("/api/_probe/key/leads:read", HTTP_X_API_KEY=raw).status_code == 401


def test_over_rate_limit_is_429_with_retry_after(client, make_api_key):
    raw = make_api_key("leads:read", rate_limit=3)
    codes = [client.get("/api/_probe/key/leads:read", HTTP_X_API_KEY=raw).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    response = client.get("/api/_probe/key/leads:read", HTTP_X_API_KEY=raw)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 61
    assert response.json()["detail"] == "rate limit exceeded for this API key"


def test_rate_limit_zero_is_unlimited(client, make_api_key):
    raw = make_api_key("leads:read", rate_limit=0)
    assert {client.get("/api/_probe/key/leads:read", HTTP_X_API_KEY=raw).status_code for _ in range(80)} == {200}


def test_browser_origin_not_allowed_for_key_is_403(client, make_api_key):
    raw = make_api_key("leads:read", origins=["https://forms.example.com"])
    ok = client.get("/api/_probe/key/leads:read", HTTP_X_API_KEY=raw, HTTP_ORIGIN="https://forms.example.com")
    assert ok.status_code == 200
    assert ok["Access-Control-Allow-Origin"] == "https://forms.example.com"
    bad = client.get("/api/_probe/key/leads:read", HTTP_X_API_KEY=raw, HTTP_ORIGIN="https://evil.example.net")
    assert bad.status_code == 403
    assert "Access-Control-Allow-Origin" not in bad


def test_cors_preflight_allows_known_origins_only(client, make_api_key):
    make_api_key("leads:create", origins=["https://forms.example.com"])
    ok = client.options(
        "/api/_probe/key/leads:read",
        HTTP_ORIGIN="https://forms.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-api-key, content-type",
    )
    assert ok.status_code == 200
    assert ok["Access-Control-Allow-Origin"] == "https://forms.example.com"
    assert "x-api-key" in ok["Access-Control-Allow-Headers"]
    other = client.options(
        "/api/_probe/key/leads:read",
        HTTP_ORIGIN="https://evil.example.net",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert "Access-Control-Allow-Origin" not in other


def test_staff_session_is_accepted_where_staff_may_use_it(client, staff_user):
    assert client.get("/api/_probe/staff/leads:read").status_code == 401
    client.force_login(staff_user)
    response = client.get("/api/_probe/staff/leads:read")
    assert response.status_code == 200
    assert response.json()["user"] == "staff"


def test_create_api_key_command_prints_key_alone_on_last_line(capsys, client):
    call_command(
        "create_api_key",
        "website form",
        "--scope",
        "leads:create",
        "--scope",
        "leads:read",
        "--origin",
        "https://forms.example.com",
        "--rate-limit",
        "120",
    )
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    assert raw.startswith("ls_") and " " not in raw
    key = ApiKey.objects.get()
    assert key.scopes == ["leads:create", "leads:read"]
    assert key.allowed_origins == ["https://forms.example.com"]
    assert key.rate_limit == 120
    assert raw not in key.hashed_key and len(key.hashed_key) == 64
    assert client.get("/api/_probe/key/leads:read", HTTP_X_API_KEY=raw).status_code == 200


def test_create_api_key_command_rejects_bad_origin():
    with pytest.raises(CommandError, match="origin must look like"):
        call_command("create_api_key", "x", "--scope", "leads:create", "--origin", "forms.example.com")


def test_admin_shows_new_key_once(client, db):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "r@example.com", "pw-root-123")
    client.force_login(admin)
    response = client.post(
        "/admin/leadsite/apikey/add/",
        {
            "name": "landing page",
            "scopes": ["leads:create"],
            "allowed_origins": "https://a.example.com\n",
            "rate_limit": "30",
            "is_active": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"] if "copy it now" in str(m)]
    assert len(shown) == 1
    raw = shown[0].split(": ", 1)[1].split(" ")[0]
    key = ApiKey.objects.get(name="landing page")
    assert key.allowed_origins == ["https://a.example.com"]
    assert client.get(f"/admin/leadsite/apikey/{key.pk}/change/").content.decode().count(raw) == 0
    client.logout()
    assert (
        client.post("/api/_probe/key/leads:create", {}, content_type="application/json", HTTP_X_API_KEY=raw).status_code
        == 200
    )
