"""Benchmark harness: real gunicorn processes on PostgreSQL + Redis, and a small load generator.

    with Server("leadsite.settings") as base_url:
        result = load(f"{base_url}/api/leads", method="POST", body=make_body, headers=..., duration=10)

Numbers are printed, not asserted: `make bench` compares leadsite with the bare baseline
(bench.bare_settings) measured in the same run on the same machine.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

BENCH_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadsite_bench")
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
BENCH_BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/10")


def bench_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=BENCH_DATABASE_URL,
        REDIS_URL=BENCH_REDIS_URL,
        CELERY_BROKER_URL=BENCH_BROKER_URL,
        DJANGO_SECRET_KEY="bench-only-secret",
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        LEADSITE_VAR_DIR=str(ROOT / "var" / "bench"),
    )
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str] | None = None, capture: bool = True) -> str:
    result = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env or bench_env(), capture_output=capture, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout if capture else ""


def prepare_database(fresh: bool = True) -> None:
    """(Re)create the bench database, migrate it, and create the bare baseline's table."""
    import psycopg

    parts = urlsplit(BENCH_DATABASE_URL)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    manage("migrate", "--noinput")
    with psycopg.connect(BENCH_DATABASE_URL, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_bare_row (id bigserial PRIMARY KEY, payload jsonb, created_at timestamptz)"
        )
    flush_redis()


def flush_redis() -> None:
    import redis

    for url in (BENCH_REDIS_URL, BENCH_BROKER_URL):
        redis.Redis.from_url(url).flushdb()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A gunicorn process (gthread workers, keep-alive) serving `settings_module`; yields its base URL."""

    def __init__(
        self,
        settings_module: str = "leadsite.settings",
        env: dict[str, str] | None = None,
        workers: int = 2,
        threads: int = 4,
        worker_connections: int = 8,
    ) -> None:
        self.settings_module = settings_module
        self.env = env or bench_env()
        self.workers = workers
        self.threads = threads
        # gthread workers accept up to worker_connections keep-alive connections each; with the
        # default (1000) one worker takes all 16 of load()'s connections and serves from one core.
        self.worker_connections = worker_connections
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> str:
        port = _free_port()
        env = {**self.env, "DJANGO_SETTINGS_MODULE": self.settings_module}
        log_dir = Path(env.get("LEADSITE_VAR_DIR", ROOT / "var" / "bench"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"gunicorn-{port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            [
                PY,
                "-m",
                "gunicorn",
                "leadsite.wsgi",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                str(self.workers),
                "-k",
                "gthread",
                "--threads",
                str(self.threads),
                "--worker-connections",
                str(self.worker_connections),
                "--keep-alive",
                "30",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not start")
        self.base_url = f"http://127.0.0.1:{port}"
        # gunicorn listens before its workers have imported the app: wait for real answers from
        # every worker (a few in a row) so that no measurement includes a worker's boot.
        answered = 0
        while answered < 2 * self.workers and time.monotonic() < deadline + 60:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                conn.request("GET", "/api/health")
                conn.getresponse().read()
                answered += 1
            except (OSError, http.client.HTTPException):
                time.sleep(0.2)
            finally:
                conn.close()
        return self.base_url

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
        # Server-side errors are part of the result: say so instead of hiding them in a file.
        text = self.log_path.read_text(errors="replace")
        tracebacks = text.count("Traceback (most recent call last)")
        if tracebacks:
            last = text[text.rfind("Traceback (most recent call last)") :][:1500]
            print(f"!! {self.settings_module}: {tracebacks} server traceback(s) in {self.log_path}; last:\n{last}")


Body = bytes | Callable[[int], bytes] | None


def load(
    url: str,
    method: str = "GET",
    body: Body = None,
    headers: dict[str, str] | None = None,
    concurrency: int = 16,
    duration: float = 10.0,
    rate: float | None = None,
    warmup: float = 1.0,
) -> dict:
    """Send requests for `duration` seconds from `concurrency` keep-alive connections.

    Closed loop (as fast as the server answers) unless `rate` (requests/s) is given: then requests
    are scheduled at fixed intervals and latency is counted from the scheduled time, so a stalled
    server cannot hide its queueing delay (no coordinated omission).
    """
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    base_headers = {"Content-Type": "application/json", **(headers or {})}
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(10**9))
    counter_lock = threading.Lock()
    start = time.perf_counter() + warmup
    end = start + duration

    def next_index() -> int:
        with counter_lock:
            return next(counter)

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        local_lat: list[float] = []
        local_status: Counter = Counter()
        local_err = 0
        while True:
            i = next_index()
            if rate:
                scheduled = (start - warmup) + i / rate
                if scheduled >= end:
                    break
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            else:
                scheduled = time.perf_counter()
                if scheduled >= end:
                    break
            payload = body(i) if callable(body) else body
            try:
                conn.request(method, target, body=payload, headers=base_headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                local_err += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                continue
            done = time.perf_counter()
            if scheduled >= start:  # not warm-up
                local_lat.append(done - scheduled)
                local_status[status] += 1
        conn.close()
        with lock:
            latencies.extend(local_lat)
            statuses.update(local_status)
            errors[0] += local_err

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + warmup + 60)
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "errors": errors[0],
        "throughput": len(latencies) / duration,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "statuses": dict(statuses),
        "duration": duration,
        "latencies": latencies,
    }


def merge_runs(runs: list[dict]) -> dict:
    """Several load() results of one case as one: throughput over their summed time, percentiles
    over all their latencies."""
    latencies = sorted(x for r in runs for x in r["latencies"])
    duration = sum(r["duration"] for r in runs)
    statuses: Counter = Counter()
    for r in runs:
        statuses.update(r["statuses"])

    def at(p: float) -> float:
        return pct(latencies, p) * 1000

    return {
        "requests": len(latencies),
        "errors": sum(r["errors"] for r in runs),
        "throughput": len(latencies) / duration if duration else float("nan"),
        "p50_ms": at(50),
        "p95_ms": at(95),
        "p99_ms": at(99),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "statuses": dict(statuses),
        "duration": duration,
        "latencies": latencies,
    }


def print_table(title: str, rows: list[tuple[str, dict]]) -> None:
    print(f"\n## {title}")
    print(f"{'case':44} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}  statuses")
    for name, r in rows:
        print(
            f"{name:44} {r['throughput']:9.0f} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['p99_ms']:8.1f} "
            f"{r['errors']:6d}  {json.dumps(r['statuses'])}"
        )


def create_api_key(*scopes: str, rate_limit: int = 0) -> str:
    args = ["create_api_key", "bench"]
    for scope in scopes:
        args += ["--scope", scope]
    args += ["--rate-limit", str(rate_limit)]
    return manage(*args).strip().splitlines()[-1]


def pct(sorted_values: list[float], p: float) -> float:
    """The p-th percentile of an already sorted list (nan when empty)."""
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def post_json(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One POST on a fresh connection; (status, body), status 0 when the connection failed."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", parts.path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()
