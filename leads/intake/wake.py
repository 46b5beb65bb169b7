"""Waking the outbox pumps after the intake commits, without serialising the intake's commits.

The outbox's insert trigger NOTIFYs in the inserting transaction, and PostgreSQL serialises the
commits of all notifying transactions (a global lock from pre-commit until the commit is durable,
WAL flush included): every new lead waited for every other lead's commit, which capped the intake at
one commit at a time (pgbench on the new-lead function, 8 clients: ~200-740 commits/s with the
NOTIFY, ~750-1,700 without, same box and minute). So the intake's function asks the trigger to stay
quiet for its transaction (leadsite.outbox_wake = after_commit; migration leads 0013), and after the
commit `outbox_wake()` has this process's waker thread send the NOTIFY: on a connection of its own,
with asynchronous commit (a NOTIFY protects no data, so nothing waits for a WAL flush under the
lock), at most one per WAKE_INTERVAL. A lone lead wakes the pumps at once; under load, one NOTIFY
wakes them for every lead committed since the last, and the pumps claim everything pending anyway.

Never in the way of a request: outbox_wake() only sets an event. If the waker cannot reach the
database, its rows wait for the pumps' idle re-check (1 s), as they do behind a transaction pooler.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.db import connection, transaction

from leads.outbox import OUTBOX_CHANNEL

logger = logging.getLogger(__name__)

WAKE_INTERVAL = 0.02  # seconds between two NOTIFYs of one process (<= 50 a second)
RETRY_SECONDS = 1.0
IDLE_SECONDS = 10.0  # the waker's connection is closed after this long without a lead
# The setting the intake's function sets (SET LOCAL) and the outbox trigger reads.
WAKE_SETTING = "leadsite.outbox_wake"
WAKE_AFTER_COMMIT = "after_commit"


class _Waker:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._start_lock = threading.Lock()

    def wake(self) -> None:
        if self._pid != os.getpid():  # first use in this process (or a forked child)
            with self._start_lock:
                if self._pid != os.getpid():
                    self._event, self._stopping = threading.Event(), False
                    self._thread = threading.Thread(
                        target=self._run, args=(self._event,), name="leads-outbox-waker", daemon=True
                    )
                    self._thread.start()
                    self._pid = os.getpid()
        self._event.set()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread and close its connection (tests: before the test database is dropped)."""
        with self._start_lock:
            thread, self._stopping, self._pid = self._thread, True, None
            self._event.set()
        if thread is not None:
            thread.join(timeout)

    def _run(self, event: threading.Event) -> None:
        # Django's connection for this thread: its own, closed when idle (no request cycle closes it).
        while True:
            if not event.wait(IDLE_SECONDS):
                connection.close()
                event.wait()
            if self._stopping:
                connection.close()
                return
            event.clear()
            try:
                with connection.cursor() as cursor:
                    cursor.execute(f"SET synchronous_commit = off; NOTIFY {OUTBOX_CHANNEL}")
            except Exception:  # noqa: BLE001 - the pumps' idle re-check covers a lost wake-up
                logger.warning("outbox waker: could not notify the pumps", exc_info=True)
                connection.close()
                time.sleep(RETRY_SECONDS)
            time.sleep(WAKE_INTERVAL)  # leads that commit meanwhile set the event again: one NOTIFY for them all


_waker = _Waker()


def outbox_wake() -> None:
    """Wake the outbox pumps once the caller's transaction commits (at once outside one)."""
    transaction.on_commit(_waker.wake)


def outbox_waker_stop() -> None:
    """Stop this process's waker thread and close its connection (it starts again when needed)."""
    _waker.stop()
