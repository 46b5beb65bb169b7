"""Beat tasks of the central log: retention and the error-spike alert."""

from __future__ import annotations

from celery import shared_task

from logs.services import error_spike_check, log_entries_purge_expired


@shared_task(name="logs.purge_expired")
def purge_expired() -> int:
    return log_entries_purge_expired()


@shared_task(name="logs.check_error_spike")
def check_error_spike() -> bool:
    return error_spike_check() is not None
