"""Periodic tasks of the notification hub (merged into CELERY_BEAT_SCHEDULE by settings)."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "notifications-sweep": {"task": "notifications.sweep", "schedule": 30.0},
    "notifications-daily-digest": {"task": "notifications.daily_digest", "schedule": crontab(hour=8, minute=0)},
}
