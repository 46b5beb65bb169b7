"""Beat tasks of the central log: day partitions, retention and the error-spike alert."""

from __future__ import annotations

from celery import shared_task

from logs.services import error_spike_check, log_entries_purge_expired, partitions_maintain


@shared_task(name="logs.purge_expired")
def purge_expired() -> dict[str, object]:
    purged = log_entries_purge_expired()
    return {"days_dropped": [day.isoformat() for day in purged.days_dropped], "rows_deleted": purged.rows_deleted}


@shared_task(name="logs.maintain_partitions")
def maintain_partitions() -> list[str]:
    return [day.isoformat() for day in partitions_maintain()]


@shared_task(name="logs.check_error_spike")
def check_error_spike() -> bool:
    return error_spike_check() is not None
