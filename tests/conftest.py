"""Shared fixtures. Tests run against real PostgreSQL and Redis (see Makefile `test`)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
# Worker and web subprocesses inherit this: no test ever reaches the real US Census geocoder (a test
# that wants one points VALUATION_GEOCODER_URL at a fake).
os.environ.setdefault("VALUATION_GEOCODER", "off")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A skipped test is a test that did not run: fail the suite rather than pass silently.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped"):
        reporter.write_line(f"FAILED: {len(reporter.stats['skipped'])} test(s) skipped; skips are not allowed here")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session", autouse=True)
def _stop_outbox_waker(django_db_setup) -> Iterator[None]:
    # The intake's waker thread keeps a connection of its own (leads.intake.wake): close it before
    # the test database is dropped.
    yield
    from leads.intake.wake import outbox_waker_stop

    outbox_waker_stop()


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _fresh_correlation_context() -> Iterator[None]:
    # Services set the lead id for logging; one test's ids must not leak into the next.
    from leadsite.context import lead_id_var, request_id_var

    tokens = (request_id_var.set(None), lead_id_var.set(None))
    yield
    request_id_var.reset(tokens[0])
    lead_id_var.reset(tokens[1])


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def make_api_key(db) -> Callable[..., str]:
    """Factory: make_api_key("leads:create", origins=[...], rate_limit=0) -> raw key."""
    from leadsite.services import api_key_create

    def make(*scopes: str, origins: list[str] | None = None, rate_limit: int = 0, name: str = "test") -> str:
        _, raw = api_key_create(name=name, scopes=list(scopes), allowed_origins=origins, rate_limit=rate_limit)
        return raw

    return make


@pytest.fixture
def staff_user(db):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from leadsite.permissions import SCOPE_PERMISSIONS

    user = get_user_model().objects.create_user("staff", "staff@example.com", "pw-staff-123", is_staff=True)
    # The staff API checks the admin's model permissions (leadsite.auth.StaffSessionAuth): grant them.
    for code in SCOPE_PERMISSIONS.values():
        app_label, codename = code.split(".")
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label=app_label, codename=codename))
    return user


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Every queue leadsite routes to (leadsite.settings CELERY_TASK_ROUTES), as the Procfile's worker consumes them.
ALL_QUEUES = "celery,slack,valuation,upkeep"


class WorkerProcess:
    """A real `celery -A leadsite worker` subprocess pointed at the test database."""

    def __init__(self, env: dict[str, str], queues: str = ALL_QUEUES, concurrency: int = 1) -> None:
        self.env = env
        self.queues = queues
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(env["LEADSITE_VAR_DIR"]) / f"worker-{uuid.uuid4().hex[:6]}.log"

    def start(self) -> WorkerProcess:
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "leadsite",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.concurrency}",
                "--pool=prefork",
                "--without-gossip",
                "--without-mingle",
                "-Q",
                self.queues,
                f"--hostname=test-{uuid.uuid4().hex[:6]}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        from leadsite.tasks import ping

        marker = uuid.uuid4().hex
        ping.delay(marker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cache.get(f"ping:{marker}") is not None:
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"worker did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if getattr(self, "log", None):
            self.log.close()


@pytest.fixture
def worker_env(transactional_db, tmp_path) -> dict[str, str]:
    """Environment for a subprocess (worker, web server) that shares this test's database."""
    from django.db import connection

    db = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env["LEADSITE_VAR_DIR"] = str(tmp_path)
    env.setdefault("DJANGO_SECRET_KEY", "test-only-secret")
    return env


@pytest.fixture
def start_worker(worker_env) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory: start_worker(**env_overrides) -> a running WorkerProcess, stopped after the test."""
    from leadsite.celery import app

    app.control.purge()
    workers: list[WorkerProcess] = []

    def start(queues: str = ALL_QUEUES, concurrency: int = 1, **overrides: str) -> WorkerProcess:
        env = {**worker_env, **overrides}
        worker = WorkerProcess(env, queues=queues, concurrency=concurrency).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def redis_server(tmp_path) -> Iterator[Callable[[], tuple[str, subprocess.Popen]]]:
    """A private redis-server on a free port, for tests that stop or pause Redis."""
    if not shutil.which("redis-server"):
        raise RuntimeError("redis-server is required for this test")
    procs: list[subprocess.Popen] = []

    def start(port: int | None = None) -> tuple[str, subprocess.Popen]:
        port = port or free_port()
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=port, socket_connect_timeout=0.2).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        return f"redis://127.0.0.1:{port}/0", proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            proc.wait(5)


@pytest.fixture
def web_server(worker_env) -> Iterator[Callable[..., str]]:
    """Factory: web_server(**env_overrides) -> base URL of a real gunicorn process on a free port."""
    import socket

    procs: list[subprocess.Popen] = []
    logs: list[Any] = []

    def start(**overrides: str) -> str:
        port = free_port()
        env = {**worker_env, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", **overrides}
        # A file, not a pipe: nobody reads a pipe while the server runs, and once ~64 KB of log lines
        # fill it every request hangs on its next log write.
        log = open(Path(worker_env["LEADSITE_VAR_DIR"]) / f"gunicorn-{port}.log", "w+b")  # noqa: SIM115
        logs.append(log)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "leadsite.wsgi",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                "1",
                "--timeout",
                "30",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        procs.append(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"web server exited: {log.read().decode(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("web server did not start")

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
    for log in logs:
        log.close()
