"""The Celery app, and the correlation id's trip through every task.

`before_task_publish` copies the current request id (and lead id) into the task's headers;
`task_prerun` restores them inside the worker, so a task's own logs and the tasks it starts carry
the id of the form request that began the journey.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from celery import Celery, bootsteps
from celery.signals import (
    beat_init,
    before_task_publish,
    celeryd_init,
    task_postrun,
    task_prerun,
    worker_process_init,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadsite.settings")

app = Celery("leadsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class OutboxPumpStep(bootsteps.StartStopStep):
    """Each worker publishes committed outbox rows as they commit (leads.outbox.OutboxPump), in a
    thread of its main process; the web processes never talk to the broker for them."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.pump = None

    def start(self, worker: Any) -> None:
        from django.conf import settings

        if settings.OUTBOX_PUMP:
            from leads.outbox import OutboxPump

            self.pump = OutboxPump().start()

    def stop(self, worker: Any) -> None:
        if self.pump is not None:
            self.pump.stop()
            self.pump = None


app.steps["worker"].add(OutboxPumpStep)

_HEADER_REQUEST_ID = "leadsite_request_id"
_HEADER_LEAD_ID = "leadsite_lead_id"


@before_task_publish.connect
def _stamp_correlation(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    from leadsite.context import lead_id_var, new_request_id, request_id_var

    if headers is None:
        return
    # A task started outside any request (beat, shell) begins a journey of its own.
    headers.setdefault(_HEADER_REQUEST_ID, request_id_var.get() or new_request_id())
    lead_id = lead_id_var.get()
    if lead_id and _HEADER_LEAD_ID not in headers:
        headers[_HEADER_LEAD_ID] = lead_id


_tokens: dict[str, tuple] = {}


@task_prerun.connect
def _restore_correlation(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    from leadsite.context import lead_id_var, request_id_var

    if task is None or task_id is None:
        return
    request_id = task.request.get(_HEADER_REQUEST_ID)
    lead_id = task.request.get(_HEADER_LEAD_ID)
    _tokens[task_id] = (request_id_var.set(request_id), lead_id_var.set(lead_id))


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task: Any = None, **kwargs: Any) -> None:
    """Around each task as around each web request: close a connection that is broken (PostgreSQL
    went away), past DATABASE_CONN_MAX_AGE or left mid-transaction, and check the rest before their
    next use; keep the good ones (settings.CELERY_DB_REUSE_MAX keeps Celery from closing them all).
    Not for a task run eagerly inside the caller's transaction."""
    from django.db import close_old_connections

    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()


@task_postrun.connect
def _clear_correlation(task_id: str | None = None, **kwargs: Any) -> None:
    from leadsite.context import lead_id_var, request_id_var

    tokens = _tokens.pop(task_id, None) if task_id else None
    if tokens:
        request_id_var.reset(tokens[0])
        lead_id_var.reset(tokens[1])


@celeryd_init.connect
@beat_init.connect
def _refuse_to_start_without_secret(**kwargs: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from leadsite.env import require_secret_key

    try:
        require_secret_key()
    except ImproperlyConfigured as exc:
        # Celery logs and swallows exceptions raised by signal handlers; SystemExit stops the process.
        raise SystemExit(f"leadsite: {exc}") from None


@worker_process_init.connect
def _freeze_loaded_objects(**kwargs: Any) -> None:
    """A pool process starts with Django, the app and its tasks loaded: out of the collector's sight,
    a full collection no longer walks them (~50-300 ms) in the middle of a lead's fan-out."""
    gc.collect()
    gc.freeze()
