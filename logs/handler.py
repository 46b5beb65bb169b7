"""CentralLogHandler: every process's log records into the central store, without slowing anyone down.

`emit()` only turns the record into a tuple and appends it to an in-process bounded deque (a few µs);
a daemon thread per process drains the deque in batches through `logs.services.log_entries_write`
(COPY on PostgreSQL) on its own database connection. The rules it keeps:

- never block the caller: a full queue drops the record and counts it (STATS["dropped"]) instead of
  waiting or growing; a dead store costs the caller nothing more than a full queue does;
- keep records while the store is down: a refused batch goes back to the head of the queue and the
  flusher retries with backoff (1 s doubling to 30 s); only what no longer fits in `capacity` is
  dropped. A batch rejected for its data (a retry cannot help) is dropped and counted;
- never recurse: records emitted by the flusher thread itself (its DB driver, Django's query log, its
  own error report) are not queued, and its own failures go to stderr, not to logging;
- fork safe: the queue and thread belong to one PID; a forked child (Celery prefork, gunicorn) starts
  its own flusher on its first record and never writes its parent's leftovers twice;
- flush on shutdown: `flush()` is called by `logging.shutdown` at exit and by Celery's
  worker_process_shutdown (prefork children leave with os._exit, which skips atexit).

Stats are per process (each gunicorn worker and Celery child has its own): GET /api/logs/stats shows
the answering process's; after an outage the flusher also writes one WARNING entry saying how many
records it dropped, so the gap is visible in the store itself.
"""

from __future__ import annotations

import collections
import decimal
import logging
import os
import reprlib
import socket
import sys
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any

from leadsite.context import lead_id_var, request_id_var
from logs.quiet import RoutineNoiseFilter
from logs.records import (
    MAX_CONTEXT_CHARS,
    MAX_CONTEXT_DEPTH,
    MAX_CONTEXT_ITEMS,
    MAX_EXCEPTION_CHARS,
    MAX_MESSAGE_CHARS,
    LogRow,
)

STATS: dict[str, Any] = {
    "queued": 0,
    "written": 0,
    "dropped": 0,
    "failed_batches": 0,
    "last_error": "",
    "last_error_at": None,
}

# Strong references: Celery empties the root logger's handler list before `after_setup_logger` lets us
# put ours back, and nothing else would keep the handler alive in between. close() removes it.
_HANDLERS: set[CentralLogHandler] = set()

# Attributes every LogRecord has; anything else on a record came from `extra=` and goes into `context`.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
    "lead_id",
    "event",
    "taskName",
}
_EXC_FORMATTER = logging.Formatter()
_IMMUTABLE = (bool, int, float, decimal.Decimal, uuid.UUID, date, dt_time, timedelta)  # datetime is a date
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = MAX_CONTEXT_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = MAX_CONTEXT_ITEMS


def _compact(value: Any, depth: int = 0) -> Any:
    """A bounded copy of one `extra` value that keeps nothing alive: strings truncated, small containers
    copied, any other object as its truncated repr()."""
    if value is None or isinstance(value, _IMMUTABLE):
        return value
    if isinstance(value, str):
        return value[:MAX_CONTEXT_CHARS]
    if depth < MAX_CONTEXT_DEPTH and isinstance(value, dict | list | tuple) and len(value) <= MAX_CONTEXT_ITEMS:
        if isinstance(value, dict):
            return {
                (key if isinstance(key, str) else str(key))[:MAX_CONTEXT_CHARS]: _compact(item, depth + 1)
                for key, item in value.items()
            }
        return [_compact(item, depth + 1) for item in value]
    return _REPR.repr(value)[:MAX_CONTEXT_CHARS]


_WEB_PROGRAMS = ("gunicorn", "uwsgi", "uvicorn", "daphne", "runserver")


def detect_service(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> str:
    """web / worker / beat from LEADSITE_SERVICE, else from the command line; "cli" for anything else."""
    environ = os.environ if environ is None else environ
    if environ.get("LEADSITE_SERVICE"):
        return environ["LEADSITE_SERVICE"]
    argv = sys.argv if argv is None else argv
    program = argv[0] if argv else ""  # `python -m celery` makes this .../celery/__main__.py
    words = argv[1:]
    if "celery" in program:
        if "worker" in words:
            return "worker"
        if "beat" in words:
            return "beat"
        return "celery"
    if any(name in program for name in _WEB_PROGRAMS) or "runserver" in words:
        return "web"
    return "cli"


def _store_enabled() -> bool:
    from django.conf import settings

    return bool(getattr(settings, "LOGS_TO_DATABASE", True))


class CentralLogHandler(logging.Handler):
    """Queue records for the central store; a background thread writes them in batches."""

    def __init__(
        self,
        level: int | str = logging.NOTSET,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        idle_close: float = 10.0,
        using: str = "default",
        service: str | None = None,
        quiet: bool = True,
    ) -> None:
        super().__init__(level)
        if quiet:
            self.addFilter(RoutineNoiseFilter())  # routine upkeep stays out of the store (logs.quiet)
        self.capacity = capacity
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.idle_close = idle_close
        self.using = using
        self.service = service or detect_service()
        self.host = socket.gethostname()[:255]
        self._pid: int | None = None
        self._queue: collections.deque[tuple] = collections.deque()
        self._wakeup = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._flusher_ident: int | None = None
        self._busy = False
        self._stopping = False
        self._backoff_until = 0.0
        self._backoff = 0.0
        self._dropped_reported = STATS["dropped"]  # report only what is dropped from now on
        _HANDLERS.add(self)

    # --- the caller's side: must stay cheap ---------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        # PID first: in a forked child the flusher is gone and a new thread may reuse its ident.
        if self._pid == os.getpid() and threading.get_ident() == self._flusher_ident:
            return  # the flusher's own DB driver / query logs: never feed the store with itself
        try:
            if not _store_enabled():
                return
            if self._pid != os.getpid():
                self._start()
            queue = self._queue
            if len(queue) >= self.capacity:
                STATS["dropped"] += 1
                return
            queue.append(self._entry(record))
            STATS["queued"] += 1
            if len(queue) >= self.batch_size:
                self._wakeup.set()
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            STATS["dropped"] += 1

    def _entry(self, record: logging.LogRecord) -> tuple:
        data = record.__dict__
        exception = ""
        if record.exc_info:
            exception = _EXC_FORMATTER.formatException(record.exc_info)
        elif record.exc_text:
            exception = record.exc_text
        if record.stack_info:
            exception = f"{exception}\n{record.stack_info}" if exception else record.stack_info
        lead_id = data.get("lead_id") or lead_id_var.get()
        # Only small, immutable values are queued: the capacity bounds records, this bounds each record
        # (django.request passes the request itself, body and all, as `extra`).
        return (
            record.created,
            record.levelno,
            record.levelname,
            record.name,
            str(data.get("event") or "")[:100],
            record.getMessage()[:MAX_MESSAGE_CHARS],
            {k: _compact(v) for k, v in data.items() if k not in _RESERVED},
            str(data.get("request_id") or request_id_var.get() or "")[:128],
            str(lead_id)[:64] if lead_id else "",
            exception[:MAX_EXCEPTION_CHARS],
        )

    # --- the flusher's side -------------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            pid = os.getpid()
            if self._pid == pid:
                return
            # A forked child inherits a copy of the parent's queue: the parent writes those itself.
            self._queue = collections.deque()
            self._wakeup = threading.Event()
            self._busy = False
            self._stopping = False
            self._flusher_ident = None
            self._dropped_reported = STATS["dropped"]
            self._thread = threading.Thread(target=self._run, name="central-log-flusher", daemon=True)
            self._pid = pid
            self._thread.start()

    def _run(self) -> None:
        self._flusher_ident = threading.get_ident()
        last_write = time.monotonic()
        while True:
            self._wakeup.wait(self.flush_interval)
            self._wakeup.clear()
            if self._drain():
                last_write = time.monotonic()
            elif time.monotonic() - last_write > self.idle_close:
                self._close_connection()  # don't hold a database connection per process while quiet
                last_write = time.monotonic()
            if self._stopping and (not self._queue or time.monotonic() < self._backoff_until):
                self._drop_queued()  # stopping while the store is down: what is left cannot be written
                self._close_connection()
                return

    def _drain(self) -> bool:
        from django.apps import apps

        if not self._queue or not apps.ready:
            return False
        wrote = False
        while self._queue:
            if time.monotonic() < self._backoff_until:
                # The store is down: keep what is queued (emit drops what no longer fits) and retry later.
                return wrote
            batch = []
            self._busy = True
            try:
                while self._queue and len(batch) < self.batch_size:
                    batch.append(self._queue.popleft())
                wrote = self._write(batch) or wrote
            finally:
                self._busy = False
        return wrote

    def _requeue(self, batch: list[tuple]) -> None:
        """Put a batch the store refused back at the head of the queue; what no longer fits within
        `capacity` (the newest records, as in emit) is dropped and counted."""
        self._queue.extendleft(reversed(batch))
        while len(self._queue) > self.capacity:
            try:
                self._queue.pop()
            except IndexError:
                break
            STATS["dropped"] += 1

    def _drop_queued(self) -> None:
        while self._queue:
            try:
                self._queue.popleft()
            except IndexError:
                break
            STATS["dropped"] += 1

    def _write(self, batch: list[tuple]) -> bool:
        """Write one batch. If the store refuses it the batch goes back to the queue and the flusher
        backs off; a batch the store rejects for its data (which a retry cannot fix) is dropped."""
        from django.db import DataError, IntegrityError, connections

        from logs.services import log_entries_write

        rows = [
            LogRow(
                time=datetime.fromtimestamp(created, tz=UTC),
                level=levelno,
                level_name=levelname,
                service=self.service,
                logger=name,
                event=event,
                message=message,
                context=context,
                request_id=request_id,
                lead_id=lead_id,
                exception=exception,
                host=self.host,
                process=self._pid,
            )
            for created, levelno, levelname, name, event, message, context, request_id, lead_id, exception in batch
        ]
        dropped = STATS["dropped"]
        if dropped > self._dropped_reported:
            rows.append(self._dropped_row(dropped - self._dropped_reported))
        try:
            connections[self.using].close_if_unusable_or_obsolete()
            log_entries_write(rows, using=self.using)
        except Exception as exc:  # noqa: BLE001 - a failed batch is kept or dropped and counted, never raised
            STATS["failed_batches"] += 1
            STATS["last_error"] = f"{exc.__class__.__name__}: {exc}"[:500]
            STATS["last_error_at"] = datetime.now(tz=UTC).isoformat()
            self._close_connection()
            driver = getattr(connections[self.using], "Database", None)
            bad_data = (ValueError, TypeError, DataError, IntegrityError) + tuple(
                getattr(driver, name) for name in ("DataError", "IntegrityError") if hasattr(driver, name)
            )
            # stderr, not logging: reporting through logging would feed this failure back into the queue.
            if isinstance(exc, bad_data):
                STATS["dropped"] += len(batch)
                sys.stderr.write(f"central log store refused a batch ({STATS['last_error']}); dropped {len(batch)}\n")
                return False
            self._requeue(batch)
            self._backoff = min(max(self._backoff * 2, 1.0), 30.0)
            self._backoff_until = time.monotonic() + self._backoff
            sys.stderr.write(
                f"central log store unavailable ({STATS['last_error']}); keeping {len(self._queue)} entries, "
                f"retrying in {self._backoff:.0f}s\n"
            )
            return False
        self._backoff = 0.0
        self._dropped_reported = dropped
        STATS["written"] += len(batch)
        return True

    def _dropped_row(self, count: int) -> LogRow:
        return LogRow(
            time=datetime.now(tz=UTC),
            level=logging.WARNING,
            level_name="WARNING",
            service=self.service,
            logger="logs.handler",
            event="logs.dropped",
            message=f"central log handler dropped {count} entries (store down or queue full)",
            context={"dropped": count, "last_error": STATS["last_error"]},
            request_id="",
            lead_id="",
            exception="",
            host=self.host,
            process=self._pid,
        )

    def _close_connection(self) -> None:
        from django.db import connections

        try:
            connections[self.using].close()
        except Exception:  # noqa: BLE001, S110 - closing a broken connection may fail too; nothing to do
            pass

    # --- shutdown -----------------------------------------------------------------------------

    def flush(self, timeout: float = 3.0) -> None:
        """Wait (up to `timeout`) until everything queued by this process is written or dropped."""
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            return
        if threading.get_ident() == self._flusher_ident:
            return
        deadline = time.monotonic() + timeout
        while (self._queue or self._busy) and time.monotonic() < deadline:
            if not self._busy and time.monotonic() < self._backoff_until:
                return  # the store is down: nothing will be written before the retry
            self._wakeup.set()
            time.sleep(0.005)

    def stop(self, timeout: float = 3.0) -> None:
        """Flush, stop the flusher thread and close its database connection (tests, shutdown)."""
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            return
        self._stopping = True
        self._wakeup.set()
        thread.join(timeout)
        self._pid = None  # the next record starts a fresh flusher

    def close(self) -> None:
        self.stop()
        _HANDLERS.discard(self)
        super().close()


def _reset_stats_in_child() -> None:
    # A forked child starts with its parent's counters; they are per process.
    STATS.update(queued=0, written=0, dropped=0, failed_batches=0, last_error="", last_error_at=None)


os.register_at_fork(after_in_child=_reset_stats_in_child)


def flush_all(timeout: float = 3.0) -> None:
    for handler in list(_HANDLERS):
        handler.flush(timeout)


def stop_all(timeout: float = 3.0) -> None:
    for handler in list(_HANDLERS):
        handler.stop(timeout)


def attach_to(logger: logging.Logger) -> None:
    """Put every configured CentralLogHandler on `logger` (Celery replaces the root logger's handlers)."""
    for handler in list(_HANDLERS):
        if handler not in logger.handlers:
            logger.addHandler(handler)
