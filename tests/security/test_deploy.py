"""Deployment: `check --deploy` is clean with production settings; nothing demo-only or secret leaks."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import ROOT


def _check_deploy(**overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_SETTINGS_MODULE="leadsite.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="leads.example.com",
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        DJANGO_SECURE_HSTS_PRELOAD="1",
        **overrides,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = _check_deploy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_fails_when_cookies_are_not_secure() -> None:
    # The same check can fail: plain-HTTP cookies (as the test suite's own servers use) are flagged.
    result = _check_deploy(DJANGO_SECURE_COOKIES="0")
    assert result.returncode != 0
    assert "security.W012" in result.stderr and "security.W016" in result.stderr


def test_secure_defaults_when_debug_is_off() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'leadsite.settings'; django.setup();"
            "from django.conf import settings as s;"
            "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS,"
            " s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, getattr(s, 'SECURE_PROXY_SSL_HEADER', None))",
        ],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}, "DJANGO_DEBUG": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["True", "True", "True", "31536000", "True", "False", "None"], result.stderr


@pytest.mark.django_db
def test_seed_demo_refuses_without_debug(settings) -> None:
    from django.contrib.auth import get_user_model

    from leadsite.models import ApiKey

    settings.DEBUG = False
    with pytest.raises(CommandError, match="--allow-production"):
        call_command("seed_demo")
    assert not get_user_model().objects.exists()
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_the_new_api_key_never_travels_in_a_cookie(client) -> None:
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(admin)
    response = client.post(
        "/admin/leadsite/apikey/add/",
        {"name": "landing", "scopes": ["leads:create"], "allowed_origins": "", "rate_limit": "30", "is_active": "on"},
    )
    assert response.status_code == 302
    assert "messages" not in response.cookies  # the message (with the key) is kept in the session
    page = client.get(response["Location"])
    shown = [str(m) for m in page.context["messages"] if "copy it now" in str(m)]
    assert len(shown) == 1 and shown[0].split(": ", 1)[1].startswith("ls_")
