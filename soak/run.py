"""`make soak`: leadsite under steady load for minutes, with faults injected midway.

Real processes on their own PostgreSQL database and their own redis-server (cache on db 0, the
broker on db 1, derived from REDIS_URL as in production; `maxmemory-policy noeviction`): gunicorn,
a Celery worker consuming every queue, `celery beat`, and the fake Slack (tests/fakes/slack.py).
Leads are posted open-loop at SOAK_RATE per second for SOAK_SECONDS; at the midpoint the worker
is SIGKILLed (and restarted), then the broker's redis-server is killed and restarted empty. After
the load the script waits (up to SOAK_DRAIN_SECONDS) until every accepted lead is announced,
assigned and valued, then prints: 5xx, lost and duplicated leads (counted in the fake Slack),
p50/p99 latency, RSS memory and PostgreSQL/Redis connection counts at start and end.

    SOAK_SECONDS=600 SOAK_RATE=100 make soak

Numbers are printed, nothing is asserted (the exit status is 1 if a lead was lost or duplicated).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.slack import FakeSlack  # noqa: E402 - after the path is set

PY = sys.executable
SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
RATE = float(os.environ.get("SOAK_RATE", "100"))
DRAIN_SECONDS = float(os.environ.get("SOAK_DRAIN_SECONDS", "1800"))
# The worker's pool, as README's deployment runs it (--concurrency 4).
CONCURRENCY = int(os.environ.get("SOAK_WORKER_CONCURRENCY", "4"))
DATABASE_URL = os.environ.get("SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadsite_soak")
VAR = ROOT / "var" / "soak"
NEW_LEAD_LINE = "🔥 *New Lead!*"
FORM = {
    "name": "Soak Seller",
    "message": "soak",
    "consent": True,
    "consent_text": "I agree to be contacted.",
    "living_area_sqft": 1800,
    "beds": 3,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--maxmemory-policy", "noeviction", "--dir", str(VAR)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def clients(self) -> int:
        import redis

        return int(redis.Redis(port=self.port).info("clients")["connected_clients"])


def prepare_database(env: dict[str, str]) -> None:
    import psycopg

    parts = urlsplit(DATABASE_URL)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    manage(env, "migrate", "--noinput")


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)}: {result.stderr}")
    return result.stdout


def db_connections() -> int:
    import psycopg

    name = urlsplit(DATABASE_URL).path.lstrip("/")
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        # Our own probe connection is not counted.
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [name]
        ).fetchone()
    return int(row[0])


def rss_mb(pgid: int) -> float:
    """Resident memory of every process in a process group (a server and its children), in MB."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ProcessLookupError, ValueError):
            continue
    return total / 1024


class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name, self.args, self.env = name, args, env
        self.proc: subprocess.Popen | None = None

    def start(self) -> Proc:
        self.log = open(VAR / f"{self.name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def rss(self) -> float:
        return rss_mb(self.proc.pid) if self.proc and self.proc.poll() is None else 0.0


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: int = 0
    accepted: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_leads(base_url: str, key: str, results: Results, seconds: float, rate: float, connections: int = 16) -> None:
    """Open loop: request i is due at start + i/rate; latency counts from when it was due."""
    parts = urlsplit(base_url)
    start = time.perf_counter()
    end = start + seconds
    counter = iter(range(10**9))
    counter_lock = threading.Lock()
    headers = {"Content-Type": "application/json", "X-Api-Key": key}

    def run() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while True:
            with counter_lock:
                i = next(counter)
            due = start + i / rate
            if due >= end:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            # Each a new lead: its own email and house number (a repeat would be a duplicate, 200).
            body = json.dumps(
                {
                    **FORM,
                    "phone": f"+1206{5550000 + i % 10000:07d}",
                    "email": f"s{i}@soak.example",
                    "address": f"{100 + i} North Main Street, Seattle, WA 98101",
                }
            )
            try:
                conn.request("POST", "/api/leads", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                with results.lock:
                    results.errors += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                continue
            elapsed = time.perf_counter() - due
            with results.lock:
                results.latencies.append(elapsed)
                results.statuses[response.status] += 1
                if response.status == 201:
                    results.accepted.append(json.loads(payload)["id"])
        conn.close()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)


def settled(accepted: set[str], slack: FakeSlack) -> tuple[bool, dict[str, int]]:
    import psycopg

    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        counts = {
            "unassigned": conn.execute(
                "SELECT count(*) FROM leads_lead WHERE assigned_to_id IS NULL AND status <> 'spam'"
            ).fetchone()[0],
            "not_valued": conn.execute(
                "SELECT count(*) FROM leads_lead l WHERE NOT EXISTS (SELECT 1 FROM leads_leadevent e"
                " WHERE e.lead_id = l.id AND e.kind = 'valuation')"
            ).fetchone()[0],
            "outbox_unsent": conn.execute(
                "SELECT count(*) FROM leads_outboxevent WHERE published_at IS NULL"
            ).fetchone()[0],
            "deliveries_open": conn.execute(
                "SELECT count(*) FROM notifications_delivery WHERE status <> 'sent'"
            ).fetchone()[0],
        }
    posted = announced(slack)
    counts["not_announced"] = len(accepted - set(posted))
    return not any(counts.values()), counts


def announced(slack: FakeSlack) -> Counter:
    seen: Counter = Counter()
    for call in slack.messages():
        if call.text.startswith(NEW_LEAD_LINE):
            lead_id = next((b for b in _lead_ids(call.body)), None)
            if lead_id:
                seen[lead_id] += 1
    return seen


def _lead_ids(body: dict) -> list[str]:
    import re

    return re.findall(r"Lead `([0-9a-f-]{36})`", json.dumps(body, ensure_ascii=False))


def main() -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    redis_server = Redis()
    redis_server.start()
    slack = FakeSlack().start()
    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "SOAK_SECONDS"}}
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/0",  # the broker: db 1, derived by settings
        DJANGO_SECRET_KEY="soak-only-secret",
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        LEADSITE_VAR_DIR=str(VAR),
        LOG_LEVEL="WARNING",
        # Plain HTTP on 127.0.0.1 (production sits behind TLS; a redirect would be all it measured).
        DJANGO_SECURE_SSL_REDIRECT="0",
        # 127.0.0.1 only: leads are placed at their ZIP centroid, never sent to the Census geocoder.
        VALUATION_GEOCODER="off",
        SLACK_BOT_TOKEN=slack.token,
        SLACK_API_BASE_URL=slack.base_url,
        SLACK_DEFAULT_CHANNEL="#leads",
        # One channel at 100 leads/s: Slack's real 1/s would be the only thing measured.
        SLACK_CHANNEL_RATE_PER_MINUTE=os.environ.get("SLACK_CHANNEL_RATE_PER_MINUTE", "6000"),
        SLACK_CHANNEL_BURST=os.environ.get("SLACK_CHANNEL_BURST", "100"),
        # Nobody works the soak's leads: without this each would also raise a speed-to-lead alert.
        LEAD_SLA_MINUTES=os.environ.get("LEAD_SLA_MINUTES", "10080"),
    )
    log(f"soak: {SECONDS:.0f} s at {RATE:.0f} leads/s; database {DATABASE_URL}, redis-server :{redis_server.port}")
    prepare_database(env)
    manage(env, "shell", "-c", _STAFF)
    key = manage(env, "create_api_key", "soak", "--scope", "leads:create", "--rate-limit", "0").strip().splitlines()[-1]

    port = free_port()
    web = Proc(
        "web",
        [PY, "-m", "gunicorn", "leadsite.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "-k", "gthread"]
        + ["--threads", "4", "--worker-connections", "8", "--keep-alive", "30", "--log-level", "warning"],
        env,
    ).start()
    worker_args = [PY, "-m", "celery", "-A", "leadsite", "worker", "--loglevel=WARNING", f"--concurrency={CONCURRENCY}"]
    worker_args += ["-Q", "celery,slack,valuation,upkeep", "--without-gossip", "--without-mingle"]
    worker = Proc("worker", worker_args, env).start()
    beat = Proc(
        "beat", [PY, "-m", "celery", "-A", "leadsite", "beat", "--loglevel=WARNING", "-s", str(VAR / "beat")], env
    ).start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.2)
    # gunicorn listens before its workers have booted: wait for real answers before the clock starts.
    while time.monotonic() < deadline + 120:
        try:
            health = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            health.request("GET", "/api/health")
            if health.getresponse().status == 200:
                break
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.5)
    time.sleep(5)  # and let the worker and beat finish booting
    results = Results()
    loader = threading.Thread(target=post_leads, args=(base_url, key, results, SECONDS, RATE), daemon=True)
    load_started = time.monotonic()
    loader.start()
    # "Start" is taken once the processes are warm (imports done, connections open), 10% into the load.
    time.sleep(SECONDS / 10)
    start = {
        "web_rss_mb": web.rss(),
        "worker_rss_mb": worker.rss(),
        "pg_connections": db_connections(),
        "redis_clients": redis_server.clients(),
    }
    log(f"start (after warm-up): {start}")
    time.sleep(SECONDS / 2 - SECONDS / 10)
    log("fault: SIGKILL the worker (main process and pool), start a new one")
    worker.kill()
    worker = Proc("worker", worker_args, env).start()
    time.sleep(min(10.0, SECONDS / 10))
    log("fault: kill the broker's redis-server and start it again, empty")
    redis_server.kill()
    time.sleep(2)
    redis_server.start()
    loader.join()
    load_seconds = time.monotonic() - load_started
    log(f"load done: {len(results.latencies)} requests in {load_seconds:.0f} s, {dict(results.statuses)}")

    accepted = set(results.accepted)
    drain_started = time.monotonic()
    ok, counts = settled(accepted, slack)
    while not ok and time.monotonic() - drain_started < DRAIN_SECONDS:
        time.sleep(5)
        ok, counts = settled(accepted, slack)
        log(f"draining: {counts}")
    drain_seconds = time.monotonic() - drain_started
    time.sleep(5)  # anything still in flight that would post twice
    end = {
        "web_rss_mb": web.rss(),
        "worker_rss_mb": worker.rss(),
        "pg_connections": db_connections(),
        "redis_clients": redis_server.clients(),
    }
    posts = announced(slack)
    lost = len(accepted - set(posts))
    duplicates = sum(1 for lead_id in accepted if posts[lead_id] > 1)
    latencies = sorted(results.latencies)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else float("nan")

    for proc in (beat, worker, web):
        proc.stop()
    slack.close()
    redis_server.kill()

    fivexx = sum(n for status, n in results.statuses.items() if status >= 500)
    print()
    print(f"## soak: {SECONDS:.0f} s at {RATE:.0f} leads/s, worker SIGKILL + broker restart midway")
    print(
        f"requests               {len(latencies)} ({len(latencies) / load_seconds:.1f}/s), statuses {dict(results.statuses)}"
    )
    print(f"5xx                    {fivexx}")
    print(f"no answer              {results.errors}")
    print(f"accepted (201)         {len(accepted)}")
    print(f"lost (not announced)   {lost}")
    print(f"duplicates             {duplicates}")
    print(f"latency p50 / p99      {pct(50):.1f} ms / {pct(99):.1f} ms (max {pct(100):.0f} ms)")
    print(
        f"drained in             {drain_seconds:.0f} s after the load ({'settled' if ok else f'NOT settled: {counts}'})"
    )
    print(f"web RSS                {start['web_rss_mb']:.0f} MB -> {end['web_rss_mb']:.0f} MB")
    print(f"worker RSS             {start['worker_rss_mb']:.0f} MB -> {end['worker_rss_mb']:.0f} MB")
    print(f"PostgreSQL connections {start['pg_connections']} -> {end['pg_connections']}")
    print(f"Redis clients          {start['redis_clients']} -> {end['redis_clients']}")
    refused = sum(n for status, n in results.statuses.items() if status not in (200, 201))
    if refused:
        print(f"!! {refused} request(s) were not accepted (statuses above): the soak measured nothing useful")
    return 0 if ok and accepted and not refused and lost == 0 and duplicates == 0 else 1


_STAFF = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
group, _ = Group.objects.get_or_create(name="Acquisitions")
for name in ("alice", "bob"):
    user = get_user_model().objects.create_user(name, f"{name}@example.com", "pw-soak-123", is_staff=True)
    user.groups.add(group)
"""


if __name__ == "__main__":
    sys.exit(main())
