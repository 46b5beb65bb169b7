from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from leadsite.env import env_bool, env_int, env_list, env_url

ROOT = Path(__file__).resolve().parents[2]


def test_env_int_rejects_words_naming_the_variable():
    with pytest.raises(ImproperlyConfigured, match="LEAD_SLA_MINUTES must be a whole number"):
        env_int("LEAD_SLA_MINUTES", 5, environ={"LEAD_SLA_MINUTES": "five"})


def test_env_int_enforces_bounds():
    with pytest.raises(ImproperlyConfigured, match="LOG_RETENTION_DAYS must be at least 1"):
        env_int("LOG_RETENTION_DAYS", 30, minimum=1, environ={"LOG_RETENTION_DAYS": "0"})
    assert env_int("LOG_RETENTION_DAYS", 30, minimum=1, environ={}) == 30
    assert env_int("LOG_RETENTION_DAYS", 30, minimum=1, environ={"LOG_RETENTION_DAYS": " 7 "}) == 7


def test_env_bool_accepts_common_spellings_and_rejects_others():
    assert env_bool("DJANGO_DEBUG", False, environ={"DJANGO_DEBUG": "yes"}) is True
    assert env_bool("DJANGO_DEBUG", True, environ={"DJANGO_DEBUG": "0"}) is False
    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG must be a boolean"):
        env_bool("DJANGO_DEBUG", False, environ={"DJANGO_DEBUG": "maybe"})


def test_env_url_checks_scheme_and_host():
    assert env_url("REDIS_URL", schemes=("redis",), environ={}) == ""
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL must be a URL starting with redis://"):
        env_url("REDIS_URL", schemes=("redis",), environ={"REDIS_URL": "localhost:6379"})
    with pytest.raises(ImproperlyConfigured, match="SLACK_API_BASE_URL must name a host"):
        env_url("SLACK_API_BASE_URL", schemes=("http", "https"), environ={"SLACK_API_BASE_URL": "http://"})


def test_env_list_splits_on_commas():
    assert env_list("DJANGO_ALLOWED_HOSTS", [], environ={"DJANGO_ALLOWED_HOSTS": "a.com, b.com,"}) == ["a.com", "b.com"]


def _start_django(**env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    full.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LEAD_SLA_MINUTES": "soon"}, "LEAD_SLA_MINUTES must be a whole number"),
        ({"DJANGO_DEBUG": "perhaps"}, "DJANGO_DEBUG must be a boolean"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL must be a URL starting with"),
        ({"REDIS_URL": "127.0.0.1:6379"}, "REDIS_URL must be a URL starting with redis://"),
        ({"LOG_RETENTION_DAYS": "-3"}, "LOG_RETENTION_DAYS must be at least 1"),
    ],
)
def test_bad_setting_fails_at_startup_naming_the_variable(env, message):
    result = _start_django(**{"DJANGO_SECRET_KEY": "x", **env})
    assert result.returncode != 0
    assert message in result.stderr


def test_embedded_defaults_without_database_or_redis(tmp_path):
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'], s.CELERY_BROKER_URL)"
    )
    full = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    full.update(DJANGO_SETTINGS_MODULE="leadsite.settings", DJANGO_DEBUG="1", LEADSITE_VAR_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == [
        "django.db.backends.sqlite3",
        "django.core.cache.backends.filebased.FileBasedCache",
        "filesystem://localhost/",
    ], out.stderr


def test_configured_services_are_used(settings):
    # The suite itself runs with DATABASE_URL and REDIS_URL set (Makefile `test`).
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"
    assert settings.CACHES["default"]["OPTIONS"]["IGNORE_EXCEPTIONS"] is True
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


def _without_secret() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="")
    return env


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-c", "import leadsite.wsgi"],
        [sys.executable, "-c", "import leadsite.asgi"],
        [sys.executable, "manage.py", "runserver", "127.0.0.1:0", "--noreload"],
        [sys.executable, "-m", "celery", "-A", "leadsite", "worker", "--pool=solo", "-Q", "never-used"],
        [sys.executable, "-m", "celery", "-A", "leadsite", "beat", "--schedule", "/tmp/leadsite-never-beat"],
    ],
    ids=["wsgi", "asgi", "runserver", "worker", "beat"],
)
def test_serving_processes_refuse_to_start_without_a_secret_key(command, tmp_path):
    env = {**_without_secret(), "LEADSITE_VAR_DIR": str(tmp_path)}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off" in result.stdout + result.stderr


def test_maintenance_commands_run_without_a_secret_key(tmp_path):
    env = {**_without_secret(), "LEADSITE_VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout
