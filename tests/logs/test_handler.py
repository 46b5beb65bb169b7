from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest
from django.db import connection

from leadsite.context import lead_id_var, request_id_var
from logs.handler import STATS, detect_service
from logs.models import LogEntry


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition never became true")


def test_records_are_written_in_batches_with_their_context(central_logger):
    log, handler = central_logger(batch_size=10)
    request_token, lead_token = request_id_var.set("req-batch-0001"), lead_id_var.set("lead-7")
    try:
        for i in range(24):
            log.info("step %d of the journey", i, extra={"event": "journey.step", "step": i})
        try:
            raise ValueError("bad valuation input")
        except ValueError:
            log.exception("valuation failed", extra={"lead_id": "lead-8"})
    finally:
        request_id_var.reset(request_token)
        lead_id_var.reset(lead_token)
    handler.flush()

    rows = list(LogEntry.objects.order_by("id"))
    assert len(rows) == 25
    first = rows[0]
    assert (first.level, first.level_name, first.service, first.logger) == (logging.INFO, "INFO", "web", log.name)
    assert (first.event, first.message, first.context) == ("journey.step", "step 0 of the journey", {"step": 0})
    assert (first.request_id, first.lead_id, first.exception) == ("req-batch-0001", "lead-7", "")
    assert first.process is not None and first.host
    assert abs((datetime.now(tz=UTC) - first.time).total_seconds()) < 30
    assert [row.context.get("step") for row in rows[:24]] == list(range(24))
    last = rows[-1]
    assert (last.level_name, last.message, last.lead_id) == ("ERROR", "valuation failed", "lead-8")
    assert last.exception.startswith("Traceback (most recent call last):")
    assert last.exception.rstrip().endswith("ValueError: bad valuation input")


def test_nothing_is_queued_while_the_store_is_switched_off(central_logger, settings):
    log, handler = central_logger()
    settings.LOGS_TO_DATABASE = False
    log.info("not stored")
    settings.LOGS_TO_DATABASE = True
    log.info("stored")
    handler.flush()
    assert list(LogEntry.objects.values_list("message", flat=True)) == ["stored"]


def test_nul_bytes_anywhere_in_a_record_do_not_lose_the_batch(central_logger):
    log, handler = central_logger(batch_size=10, service="we\x00b")
    before = dict(STATS)
    nul_log = logging.getLogger(f"{log.name}.nu\x00l")
    nul_log.propagate = True  # through `log`, which has the handler
    log.info("before")
    request_token = request_id_var.set("req\x00-0001")
    try:
        raise ValueError("bad\x00 input")
    except ValueError:
        nul_log.exception(
            "mess\x00age %s",
            "arg\x00",
            extra={"event": "ev\x00ent", "lead_id": "lead\x00-9", "ke\x00y": ["v\x00", {"x": "\x00"}]},
        )
    finally:
        request_id_var.reset(request_token)
    log.info("after")
    handler.flush()

    assert STATS["failed_batches"] == before["failed_batches"]
    rows = list(LogEntry.objects.order_by("id"))
    assert [row.message for row in rows] == ["before", "message arg", "after"]
    nul = rows[1]
    assert (nul.service, nul.logger, nul.event) == ("web", f"{log.name}.nul", "event")
    assert (nul.request_id, nul.lead_id, nul.context) == ("req-0001", "lead-9", {"key": ["v", {"x": ""}]})
    assert nul.exception.rstrip().endswith("ValueError: bad input")


@pytest.fixture
def store_down(transactional_db):
    """The store refuses writes: the log table is renamed away (every COPY fails with UndefinedTable)
    until the test puts it back by calling the returned function."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE logs_logentry RENAME TO logs_logentry_away")
    state = {"down": True}

    def restore() -> None:
        if state["down"]:
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE logs_logentry_away RENAME TO logs_logentry")
            state["down"] = False

    yield restore
    restore()


def test_a_dead_store_costs_the_caller_nothing_and_drops_with_a_counter(central_logger, store_down):
    log, handler = central_logger(capacity=100, batch_size=50)
    before = dict(STATS)

    started = time.perf_counter()
    for i in range(2_000):
        log.info("entry %d", i)  # must neither raise nor wait for the database
    elapsed = time.perf_counter() - started
    _wait_for(lambda: STATS["failed_batches"] > before["failed_batches"])
    handler.flush()

    assert elapsed < 1.0, f"2,000 log calls took {elapsed:.3f}s with the store down"
    # Bounded memory: the queue fills to `capacity` and holds it; only what does not fit is dropped.
    assert len(handler._queue) == 100
    assert STATS["dropped"] - before["dropped"] == 1_900
    assert "UndefinedTable" in STATS["last_error"]

    # The store comes back: the records held are written, and the gap is reported in the store itself.
    store_down()
    _wait_for(lambda: LogEntry.objects.filter(message__startswith="entry ").count() == 100, timeout=40)
    dropped_row = LogEntry.objects.get(event="logs.dropped")
    assert dropped_row.level_name == "WARNING"
    assert dropped_row.context["dropped"] == 1_900
    assert LogEntry.objects.filter(message="entry 0").exists()  # a refused batch goes back to the head


def test_records_logged_while_the_store_is_down_are_kept_and_written_when_it_is_back(central_logger, store_down):
    log, handler = central_logger(capacity=100, batch_size=10)
    before = dict(STATS)
    for i in range(30):
        log.warning("held %d", i)
    _wait_for(lambda: STATS["failed_batches"] > before["failed_batches"])
    log.warning("held 30")  # logged during the backoff: queued, not dropped
    time.sleep(0.3)
    assert len(handler._queue) == 31
    assert STATS["dropped"] == before["dropped"]

    store_down()
    _wait_for(lambda: LogEntry.objects.count() == 31, timeout=40)
    assert sorted(LogEntry.objects.values_list("message", flat=True)) == sorted(f"held {i}" for i in range(31))
    assert STATS["dropped"] == before["dropped"]


def test_stats_endpoint_shows_this_processes_counters(client, make_api_key):
    response = client.get("/api/logs/stats", HTTP_X_API_KEY=make_api_key("logs:read"))
    assert response.status_code == 200
    assert set(response.json()) == {
        "service",
        "pid",
        "queued",
        "written",
        "dropped",
        "failed_batches",
        "last_error",
        "last_error_at",
    }
    assert response.json()["dropped"] == STATS["dropped"]


def test_a_forked_child_starts_its_own_flusher_and_does_not_repeat_the_parents_queue(central_logger):
    import os

    log, handler = central_logger(flush_interval=5.0)  # the parent's queue still holds its record at fork
    log.info("from the parent")
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            log.info("from the child")
            handler.flush()
            code = 0 if len(handler._queue) == 0 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    handler.flush()
    assert sorted(LogEntry.objects.values_list("message", flat=True)) == ["from the child", "from the parent"]


def test_a_forked_childs_first_thread_is_not_mistaken_for_the_dead_flusher(central_logger):
    import os
    import threading

    log, handler = central_logger()
    log.info("from the parent")
    handler.flush()
    flusher_ident = handler._flusher_ident
    assert flusher_ident is not None
    pid = os.fork()
    if pid == 0:  # child: the flusher thread did not survive the fork; a new thread may get its ident
        code = 1
        try:
            idents = []

            def work() -> None:
                idents.append(threading.get_ident())
                log.info("from the child's thread")

            thread = threading.Thread(target=work)
            thread.start()
            thread.join()
            handler.flush()
            code = 0 if idents == [flusher_ident] else 3  # 3: the ident was not reused, nothing tested
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(LogEntry.objects.values_list("message", flat=True)) == ["from the child's thread", "from the parent"]


def test_queued_records_hold_no_live_objects_and_have_bounded_size(central_logger):
    import gc
    import uuid
    import weakref

    from logs.records import MAX_CONTEXT_CHARS, MAX_EXCEPTION_CHARS, MAX_MESSAGE_CHARS

    class FakeRequest:
        def __init__(self) -> None:
            self.body = b"x" * 1_000_000

        def __repr__(self) -> str:
            return f"<FakeRequest body={self.body!r}>"

    log, handler = central_logger(flush_interval=5.0)
    request = FakeRequest()
    alive = weakref.ref(request)
    key_id = uuid.UUID(int=7)
    try:
        raise ValueError("e" * 50_000)
    except ValueError:
        log.exception(
            "%s",
            "m" * 50_000,
            extra={"request": request, "blob": "b" * 50_000, "ids": [1, 2, {"k": key_id}], "status_code": 500},
        )
    del request
    gc.collect()
    assert alive() is None  # the queue holds a repr, not the request and its 1 MB body
    assert len(handler._queue) == 1
    handler.flush()

    row = LogEntry.objects.get()
    assert row.message == "m" * MAX_MESSAGE_CHARS
    assert len(row.exception) == MAX_EXCEPTION_CHARS
    assert len(row.context["request"]) == MAX_CONTEXT_CHARS
    assert row.context["request"].startswith("<FakeRequest body=b'xxx")
    assert row.context["request"].endswith("xxx'>")
    assert row.context["blob"] == "b" * MAX_CONTEXT_CHARS
    assert row.context["ids"] == [1, 2, {"k": str(key_id)}]
    assert row.context["status_code"] == 500


@pytest.mark.parametrize(
    ("argv", "environ", "service"),
    [
        (["/venv/bin/celery", "-A", "leadsite", "worker", "-l", "INFO"], {}, "worker"),
        (["/venv/lib/python3.11/site-packages/celery/__main__.py", "-A", "leadsite", "beat"], {}, "beat"),
        (["/venv/bin/gunicorn", "leadsite.wsgi", "-w", "2"], {}, "web"),
        (["manage.py", "runserver", "127.0.0.1:8000"], {}, "web"),
        (["manage.py", "migrate"], {}, "cli"),
        (["/venv/bin/gunicorn", "leadsite.wsgi"], {"LEADSITE_SERVICE": "web-eu"}, "web-eu"),
    ],
)
def test_service_is_named_after_the_process(argv, environ, service):
    assert detect_service(argv, environ) == service
