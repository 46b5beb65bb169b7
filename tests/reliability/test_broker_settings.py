"""Broker hygiene: its own Redis database, a visibility timeout just over the task time limit,
bounded database waits, and one queue per kind of work, consumed by every worker command."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys

import pytest

from leadsite.celery import app
from leadsite.env import redis_url_db, redis_url_with_db
from tests.conftest import ALL_QUEUES, ROOT


def settings_under(**env: str) -> dict:
    """Selected settings as a fresh process computes them from `env` (nothing else configured)."""
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
        "'broker': s.CELERY_BROKER_URL, 'options': s.CELERY_BROKER_TRANSPORT_OPTIONS,"
        "'db': s.DATABASES['default'].get('OPTIONS', {}), 'time_limit': s.CELERY_TASK_TIME_LIMIT}, default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "leadsite.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_redis_url_with_db_swaps_only_the_database():
    assert redis_url_with_db("redis://cache.internal:6379/0", 1) == "redis://cache.internal:6379/1"
    assert redis_url_with_db("redis://:pw@h:6379", 1) == "redis://:pw@h:6379/1"
    assert redis_url_with_db("rediss://h:6380/15?ssl_cert_reqs=none", 0) == "rediss://h:6380/0?ssl_cert_reqs=none"
    assert redis_url_with_db("unix:///run/redis.sock?db=3", 4) == "unix:///run/redis.sock?db=4"
    assert [redis_url_db(u) for u in ("redis://h/7", "redis://h", "unix:///s?db=2")] == [7, 0, 2]


def test_broker_defaults_to_the_next_database_of_the_cache_redis():
    derived = settings_under(REDIS_URL="redis://cache.internal:6379/0")
    assert derived["broker"] == "redis://cache.internal:6379/1"
    assert settings_under(REDIS_URL="redis://cache.internal:6379/15")["broker"] == "redis://cache.internal:6379/0"
    explicit = settings_under(REDIS_URL="redis://a:6379/0", CELERY_BROKER_URL="redis://b:6379/5")
    assert explicit["broker"] == "redis://b:6379/5"
    assert settings_under()["broker"] == "filesystem://localhost/"


def test_visibility_timeout_is_a_little_over_the_task_time_limit():
    options = settings_under(REDIS_URL="redis://h:6379/0")["options"]
    assert options["visibility_timeout"] == 300 + 60
    assert settings_under(REDIS_URL="redis://h:6379/0", CELERY_TASK_TIME_LIMIT="60")["options"][
        "visibility_timeout"
    ] == (120)
    tuned = settings_under(REDIS_URL="redis://h:6379/0", CELERY_BROKER_VISIBILITY_TIMEOUT="900")
    assert tuned["options"]["visibility_timeout"] == 900


def test_database_waits_are_bounded():
    options = settings_under(DATABASE_URL="postgres://u@db.internal:5432/leadsite")["db"]
    assert options["connect_timeout"] == 2
    assert options["options"] == "-c statement_timeout=15000 -c lock_timeout=2000"
    tuned = settings_under(
        DATABASE_URL="postgres://u@db.internal:5432/leadsite",
        DATABASE_STATEMENT_TIMEOUT_MS="0",
        DATABASE_LOCK_TIMEOUT_MS="500",
    )["db"]
    assert tuned["options"] == "-c statement_timeout=0 -c lock_timeout=500"


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("leads.fan_out", "celery"),
        ("leads.assign_lead", "celery"),
        ("leadsite.ping", "celery"),
        ("notifications.send_delivery", "slack"),
        ("notifications.update_message", "slack"),
        ("notifications.respond", "slack"),
        ("valuation.value_lead", "valuation"),
        ("valuation.train", "valuation"),
        ("leads.relay_outbox", "upkeep"),
        ("leads.repair_fan_out", "upkeep"),
        ("leads.check_sla", "upkeep"),
        ("notifications.sweep", "upkeep"),
        ("notifications.daily_digest", "upkeep"),
        ("valuation.retrain_if_due", "upkeep"),
        ("logs.purge_expired", "upkeep"),
        ("logs.check_error_spike", "upkeep"),
    ],
)
def test_each_task_has_its_queue(task: str, queue: str):
    importlib.import_module(f"{task.split('.')[0]}.tasks")  # the task exists under that name
    assert task in app.tasks
    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_every_beat_job_runs_on_upkeep_and_every_worker_command_consumes_every_queue():
    from django.conf import settings

    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert app.amqp.router.route({}, entry["task"])["queue"].name == "upkeep", entry["task"]
    queues = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert queues == {"celery", "slack", "valuation", "upkeep"}
    assert set(ALL_QUEUES.split(",")) == queues
    procfile = (ROOT / "Procfile").read_text()
    assert set(re.search(r"^worker:.* -Q (\S+)", procfile, re.M).group(1).split(",")) == queues
    readme = (ROOT / "README.md").read_text()
    # README's worker commands each consume every queue, or split them between workers that together do.
    commands = re.findall(r"celery -A leadsite worker[^\n]*", readme)
    listed = [set(re.search(r"-Q (\S+)", command).group(1).split(",")) for command in commands]
    assert listed and all(each <= queues for each in listed), commands
    split = [each for each in listed if each != queues]
    assert not split or set().union(*split) == queues, commands
