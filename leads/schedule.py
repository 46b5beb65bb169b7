"""Periodic tasks of the leads app (merged into CELERY_BEAT_SCHEDULE by leadsite.settings)."""

BEAT_SCHEDULE = {
    # `expires` so that runs missed while no worker was up do not pile up in the queue.
    "leads-relay-outbox": {"task": "leads.relay_outbox", "schedule": 10.0, "options": {"expires": 10}},
    "leads-check-sla": {"task": "leads.check_sla", "schedule": 30.0, "options": {"expires": 30}},
    "leads-repair-fan-out": {"task": "leads.repair_fan_out", "schedule": 60.0, "options": {"expires": 60}},
    "leads-remind-follow-ups": {"task": "leads.remind_follow_ups", "schedule": 60.0, "options": {"expires": 60}},
    "leads-purge-idempotency-records": {
        "task": "leads.purge_idempotency_records",
        "schedule": 3600.0,
        "options": {"expires": 600},
    },
}
