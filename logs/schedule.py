"""Periodic tasks of the central log (merged into CELERY_BEAT_SCHEDULE by leadsite.settings)."""

BEAT_SCHEDULE = {
    "logs-maintain-partitions": {"task": "logs.maintain_partitions", "schedule": 3600.0},
    "logs-purge-expired": {"task": "logs.purge_expired", "schedule": 3600.0},
    "logs-check-error-spike": {"task": "logs.check_error_spike", "schedule": 60.0},
}
