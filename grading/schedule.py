"""Periodic grading work for `celery beat` (imported by leadsite.settings before Django is set up)."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    # Outcomes arrive all day through the API and the admin; learning from them once a night is plenty.
    "grading.train_grader": {"task": "grading.train_grader", "schedule": crontab(hour=3, minute=30)},
}
