"""Periodic valuation tasks (merged into CELERY_BEAT_SCHEDULE by leadsite/settings.py)."""

BEAT_SCHEDULE = {
    "valuation-retrain-if-due": {"task": "valuation.retrain_if_due", "schedule": 3600.0},
}
