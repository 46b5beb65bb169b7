"""Quiet by default: what the central store does not keep at INFO.

Routine upkeep would otherwise be most of the store: the outbox relay runs every 10 s, the Slack
sweeper and the SLA check every 30 s, the error-spike check every minute, and each run leaves a
beat "Sending due task", a worker "received" and a "succeeded" line (about 30,000 entries a day
that say only "nothing happened"). Browsers ask every web process for /favicon.ico.

Dropped (store only; the console still shows everything at LOG_LEVEL):
- celery.beat's "Sending due task" for frequent tasks (scheduled at least every ROUTINE_EVERY);
- the worker's "received" and "succeeded" lines of those tasks;
- django.request / django.server 404s for paths browsers and crawlers probe (favicon, robots.txt).
Kept: everything at WARNING and above (a routine task that fails or retries is not routine), every
line of every other task (a lead's fan-out, valuation, Slack posts carry its request and lead id),
and whatever a routine task logs itself (the relay's "broker unavailable", the sweeper's re-queues).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import cache

ROUTINE_EVERY = timedelta(minutes=15)
NOISE_PATHS = ("/favicon.ico", "/robots.txt", "/apple-touch-icon")
_CELERY_TASK_LOGGERS = frozenset({"celery.worker.strategy", "celery.app.trace"})
_HTTP_LOGGERS = frozenset({"django.request", "django.server"})


@cache
def routine_tasks() -> frozenset[str]:
    """Names of the beat tasks that run at least every ROUTINE_EVERY (crontab entries are not routine)."""
    from django.conf import settings

    names = set()
    for entry in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).values():
        schedule = entry.get("schedule")
        seconds = schedule.total_seconds() if isinstance(schedule, timedelta) else schedule
        if isinstance(seconds, int | float) and seconds <= ROUTINE_EVERY.total_seconds():
            names.add(entry["task"])
    return frozenset(names)


def _celery_chatter(record: logging.LogRecord) -> bool:
    from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

    if record.msg not in (LOG_RECEIVED, LOG_SUCCESS) or not isinstance(record.args, dict):
        return False
    return record.args.get("name") in routine_tasks()


def _beat_chatter(record: logging.LogRecord) -> bool:
    # info('Scheduler: Sending due task %s (%s)', entry.name, entry.task)
    args = record.args
    return (
        isinstance(record.msg, str)
        and record.msg.startswith("Scheduler: Sending due task")
        and isinstance(args, tuple)
        and len(args) == 2
        and args[1] in routine_tasks()
    )


def _probe_404(record: logging.LogRecord) -> bool:
    if getattr(record, "status_code", None) != 404:
        return False
    request = getattr(record, "request", None)
    path = getattr(request, "path", None)
    if not isinstance(path, str):
        path = record.getMessage()
    return any(noise in path for noise in NOISE_PATHS)


class RoutineNoiseFilter(logging.Filter):
    """Drops the records above from the central store (attached by CentralLogHandler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if name in _HTTP_LOGGERS:
            return not _probe_404(record)
        if record.levelno > logging.INFO:
            return True
        if name in _CELERY_TASK_LOGGERS:
            return not _celery_chatter(record)
        if name == "celery.beat":
            return not _beat_chatter(record)
        return True
