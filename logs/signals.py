"""Keep the central log handler in Celery processes.

A Celery worker or beat replaces the root logger's handlers with its own (worker_hijack_root_logger) and
gives the `celery.task` logger handlers that don't propagate: put the central handler back on both.
Prefork children leave with os._exit (no atexit), so flush on worker_process_shutdown.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_shutdown

from logs.handler import attach_to, flush_all


@after_setup_logger.connect
def _keep_on_root(logger: logging.Logger | None = None, **kwargs: Any) -> None:
    attach_to(logger or logging.getLogger())


@after_setup_task_logger.connect
def _keep_on_task_logger(logger: logging.Logger | None = None, **kwargs: Any) -> None:
    if logger is not None:
        attach_to(logger)


@worker_process_shutdown.connect
def _flush_on_child_exit(**kwargs: Any) -> None:
    flush_all(timeout=2.0)
