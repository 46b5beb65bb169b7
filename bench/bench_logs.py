"""Central logs at a month of traffic: every search the API and the admin offer on LOG_BENCH_ROWS entries.

    make bench BENCH=logs                      # 20,000,000 entries (a month of the seed business)
    LOG_BENCH_ROWS=1000000 make bench BENCH=logs
    LOG_BENCH_KEEP=1 make bench BENCH=logs     # seed as usual but keep the database afterwards
    LOG_BENCH_REUSE=1 make bench BENCH=logs    # search a kept store again: no seeding, nothing dropped
    LOG_BENCH_PARTS=admin LOG_BENCH_INGEST=0 LOG_BENCH_REUSE=1 make bench BENCH=logs   # the admin's searches only

BENCH_DATABASE_URL names the database (default leadsite_bench_logs). With LOG_BENCH_REUSE the cases'
"now" is the store's newest seeded entry (so "last hour" and "one day" mean what they meant when it
was seeded). A kept store stays as seeded: the entries this run writes are deleted again.

What it does, in its own database (dropped at the end, even on failure):
1. the handler's cost per log call (in-process);
2. seeds LOG_BENCH_ROWS entries spread over the last 30 days into the day partitions: generated in
   SQL (generate_series, two connections in parallel, one day per statement) with the indexes
   dropped, then every partition's indexes built two at a time and attached to the parent's, then
   ANALYZE. Realistic mix: web / worker / beat / slack-hub / outside services, DEBUG..CRITICAL, access
   lines, lead intake with names and E.164 phones, valuations, Slack posts and failures, payments;
   words from very common to one-in-a-million ("kangaroo") to absent ("zeppelinfactory");
3. every search of GET /api/logs and of the admin's list (gunicorn 2 workers x 4 threads, 2 clients
   closed-loop): text (common, rare, absent, a phone), level, service, time range, request id, lead
   id and combinations, with and without a time range, first page and page 50 -> p50/p95/p99;
4. POST /api/logs ingestion throughput while searches run.

Targets (issue 14): every search p95 < 100 ms at 20M entries on the 2-core box; ingestion >= 10,000/s.
"""

from __future__ import annotations

import html
import http.client
import json
import logging
import os
import re
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _redis_db(db: int) -> str:
    # Our own Redis databases on whatever Redis REDIS_URL names (never someone else's by default).
    parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return parts._replace(path=f"/{db}").geturl()


os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadsite_bench_logs")
os.environ.setdefault("BENCH_REDIS_URL", _redis_db(7))
os.environ.setdefault("BENCH_BROKER_URL", _redis_db(8))

from bench.harness import (  # noqa: E402
    BENCH_DATABASE_URL,
    Server,
    bench_env,
    create_api_key,
    load,
    prepare_database,
    print_table,
)

ROWS = int(os.environ.get("LOG_BENCH_ROWS", "20000000"))
SEARCH_SECONDS = float(os.environ.get("LOG_BENCH_SECONDS", "4"))
PARTS = os.environ.get("LOG_BENCH_PARTS", "api,admin").split(",")  # LOG_BENCH_PARTS=admin: the admin's cases only
DAYS = 30
BATCH = 1_000
RARE_WORD = "kangaroo"  # about one entry in a million
ABSENT_WORD = "zeppelinfactory"


# --- (1) the handler's cost per log call -------------------------------------------------------


def handler_cost() -> dict[str, float]:
    from leadsite.context import ContextFilter, request_id_var
    from logs.handler import CentralLogHandler

    def timed(handler: logging.Handler, rounds: int = 10, calls: int = 5_000) -> float:
        log = logging.getLogger(f"bench.logs.{id(handler)}")
        log.propagate = False
        log.setLevel(logging.INFO)
        log.addHandler(handler)
        per_call = []
        for _ in range(rounds):
            started = time.perf_counter()
            for i in range(calls):
                log.info("lead %s valued at %d", "6f1c0d2e", i, extra={"event": "valuation.done", "estimate": i})
            per_call.append((time.perf_counter() - started) / calls * 1e6)
            handler.flush()  # untimed: the flusher's writes happen off the caller's path
        return statistics.median(per_call)

    token = request_id_var.set("bench-request-0001")
    try:
        null = logging.NullHandler()
        null.addFilter(ContextFilter())
        baseline = timed(null)
        central = CentralLogHandler(capacity=100_000, service="bench")
        central.addFilter(ContextFilter())
        with_store = timed(central)
        central.stop()
    finally:
        request_id_var.reset(token)
    return {"baseline_us": baseline, "central_us": with_store, "added_us": with_store - baseline}


# --- (2) seeding ---------------------------------------------------------------------------------

# One statement per chunk of `i`: entry i is logged (i / ROWS) * 30 days before the seed's `now`.
SEED_SQL = """
INSERT INTO logs_logentry
    (time, level, level_name, service, logger, event, message, context, request_id, lead_id, exception, host, process)
SELECT
    %(now)s::timestamptz - (i * %(step)s::double precision) * interval '1 second',
    lv,
    CASE lv WHEN 10 THEN 'DEBUG' WHEN 20 THEN 'INFO' WHEN 30 THEN 'WARNING' WHEN 40 THEN 'ERROR' ELSE 'CRITICAL' END,
    svc,
    CASE svc WHEN 'web' THEN 'logs.access' WHEN 'worker' THEN 'celery.app.trace' ELSE 'bench.' || svc END,
    ev,
    msg,
    CASE WHEN ev = 'http.request'
         THEN jsonb_build_object('method', 'POST', 'path', '/api/leads', 'status', 201, 'duration_ms', ms)
         ELSE jsonb_build_object('n', i) END,
    'req-' || to_hex((i / 6) * 2654435761 %% 4294967296),
    CASE WHEN i %% 3 = 0 THEN 'lead-' || to_hex((i / 18) * 40503 %% 16777216 + 16777216) ELSE '' END,
    CASE WHEN lv >= 40 THEN 'Traceback (most recent call last):\n  ...\nTimeoutError: timed out' ELSE '' END,
    'bench-host',
    1000 + i %% 50
FROM (
    SELECT i, ms, first, last, phone, lv, svc,
        (ARRAY['http.request', 'lead.created', 'valuation.done', 'slack.sent', 'slack.failed', 'offer.graded',
               'payment.received', 'sla.breached', 'outbox.relayed', 'geocode.done', 'payment.disputed',
               'bench.rare'])[k] AS ev,
        CASE k
            WHEN 1 THEN 'POST /api/leads 201 in ' || ms || ' ms'
            WHEN 2 THEN 'lead received from ' || first || ' ' || last || ' phone ' || phone
            WHEN 3 THEN 'valuation finished for the property: estimate ' || (150000 + ms * 4000) || ' usd'
            WHEN 4 THEN 'slack post delivered to channel leads for ' || first || ' ' || last
            WHEN 5 THEN 'slack post failed: timeout after 5 s, will retry'
            WHEN 6 THEN 'offer graded against ' || (3 + ms %% 9) || ' comparable sales'
            WHEN 7 THEN 'payment received from stripe for invoice in_' || to_hex(i)
            WHEN 8 THEN 'speed to lead sla breached: ' || first || ' ' || last || ' not contacted'
            WHEN 9 THEN 'outbox relay published ' || (1 + ms %% 4) || ' events'
            WHEN 10 THEN 'geocoded the address of lead for ' || first
            WHEN 11 THEN 'chargeback disputed by the bank for ' || first || ' ' || last
            ELSE 'a ' || 'kangaroo' || ' crossed the log for ' || first
        END AS msg
    FROM (
        SELECT i, (random() * 80)::int AS ms,
            (ARRAY['Jane', 'John', 'Maria', 'Wei', 'Aisha', 'Carlos', 'Olga', 'Kenji', 'Fatima', 'Liam', 'Noah',
                   'Emma', 'Ava', 'Mateo', 'Priya', 'Omar', 'Hana', 'Luca', 'Zoe', 'Ivan'])[1 + (random() * 19)::int]
                AS first,
            (ARRAY['Smith', 'Garcia', 'Nguyen', 'Johnson', 'Kim', 'Patel', 'Brown', 'Lopez', 'Rossi', 'Novak',
                   'Okafor', 'Silva', 'Cohen', 'Muller', 'Tanaka', 'Haddad', 'Walker', 'Young', 'Reyes',
                   'Khan'])[1 + (random() * 19)::int] AS last,
            '+1206' || lpad((random() * 9999999)::int::text, 7, '0') AS phone,
            CASE WHEN r1 < 0.001 THEN 50 WHEN r1 < 0.03 THEN 40 WHEN r1 < 0.12 THEN 30 WHEN r1 < 0.22 THEN 10
                 ELSE 20 END AS lv,
            CASE WHEN r2 < 0.45 THEN 'web' WHEN r2 < 0.86 THEN 'worker' WHEN r2 < 0.92 THEN 'beat'
                 WHEN r2 < 0.97 THEN 'slack-hub' WHEN r2 < 0.9999 THEN 'pricing-service' ELSE 'intake-edge' END
                AS svc,
            CASE WHEN r2 >= 0.86 AND r2 < 0.92 AND r3 >= 0.64 AND r3 < 0.66 THEN 9  -- beat never times out
                 WHEN r3 < 0.000001 THEN 12 WHEN r3 < 0.0001 THEN 11 WHEN r3 < 0.30 THEN 1 WHEN r3 < 0.40 THEN 2
                 WHEN r3 < 0.52 THEN 3 WHEN r3 < 0.64 THEN 4 WHEN r3 < 0.66 THEN 5 WHEN r3 < 0.72 THEN 6
                 WHEN r3 < 0.75 THEN 7 WHEN r3 < 0.77 THEN 8 WHEN r3 < 0.95 THEN 9 ELSE 10 END AS k
        FROM (SELECT i, random() AS r1, random() AS r2, random() AS r3
              FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i) AS raw
    ) AS picked
) AS rows
"""


def _connect(**kwargs: object):  # noqa: ANN202 - a psycopg connection
    import psycopg

    return psycopg.connect(BENCH_DATABASE_URL, autocommit=True, **kwargs)


def seed(rows: int) -> dict[str, float]:
    """Load `rows` entries over the last 30 days; indexes are built after the load, two at a time."""
    now = datetime.now(tz=UTC)
    step = DAYS * 86400 / rows
    timings = {}
    started = time.perf_counter()
    with _connect() as conn:
        parent_indexes = conn.execute(
            "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'logs_logentry'::regclass AND NOT i.indisprimary"
        ).fetchall()
        for name, _ in parent_indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("TRUNCATE logs_logentry")
    chunk = max(rows // (DAYS * 2), 10_000)
    ranges = [(first, min(first + chunk - 1, rows)) for first in range(1, rows + 1, chunk)]

    def insert(bounds: tuple[int, int]) -> None:
        with _connect() as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute(SEED_SQL, {"now": now, "step": step, "first": bounds[0], "last": bounds[1]})

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(insert, ranges))
    timings["load_s"] = time.perf_counter() - started

    started = time.perf_counter()
    with _connect() as conn:
        partitions = [
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'logs_logentry'::regclass ORDER BY 1"
            ).fetchall()
        ]
    jobs = [
        (partition, re.sub(r"INDEX \S+ ON (ONLY )?public\.logs_logentry ", f"INDEX ON public.{partition} ", definition))
        for partition in partitions
        for _, definition in parent_indexes
    ]

    def build(job: tuple[str, str]) -> None:
        with _connect() as conn:
            conn.execute("SET maintenance_work_mem = '256MB'")
            conn.execute("SET max_parallel_maintenance_workers = 0")  # two builds at a time use both cores
            conn.execute(job[1])

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(build, jobs))
    with _connect() as conn:
        for _, definition in parent_indexes:
            conn.execute(
                definition.replace(" ON ONLY ", " ON ")
            )  # finds each partition's matching index and attaches it: no rebuild
    timings["index_s"] = time.perf_counter() - started

    started = time.perf_counter()

    def analyze(partition: str) -> None:
        with _connect() as conn:
            conn.execute(f'VACUUM (ANALYZE) "{partition}"')

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(analyze, partitions))
    with _connect() as conn:
        conn.execute("ANALYZE logs_logentry")  # the parent's own statistics, for plans across partitions
        timings["size_gb"] = conn.execute("SELECT pg_database_size(current_database()) / 1e9").fetchone()[0]
    timings["analyze_s"] = time.perf_counter() - started
    return timings


# --- (3) searches --------------------------------------------------------------------------------


def samples() -> dict[str, str]:
    """Values that exist in the seeded data: a request id, a lead id, a phone that appears once or twice."""
    with _connect() as conn:
        request_id, lead_id = conn.execute(
            "SELECT request_id, lead_id FROM logs_logentry WHERE lead_id <> '' AND time < now() - interval '12 days' "
            "ORDER BY time DESC LIMIT 1"
        ).fetchone()
        message = conn.execute(
            "SELECT message FROM logs_logentry WHERE event = 'lead.created' AND time < now() - interval '20 days' "
            "ORDER BY time DESC LIMIT 1"
        ).fetchone()[0]
    return {"request_id": request_id, "lead_id": lead_id, "phone": message.rsplit(" ", 1)[-1]}


def api_cases(values: dict[str, str], now: datetime) -> list[tuple[str, dict]]:
    day = (now - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    a_day = {"since": day, "until": day + timedelta(days=1)}
    hour = {"since": now - timedelta(hours=1)}
    return [
        ("newest 100, no filter", {}),
        ("text common 'slack'", {"q": "slack"}),
        ("text 'timeout' (2%)", {"q": "timeout"}),
        ("text two words 'stripe invoice'", {"q": "stripe invoice"}),
        ("text 'chargeback' (1 in 10,000)", {"q": "chargeback"}),
        (f"text rare '{RARE_WORD}' (1 in 1M)", {"q": RARE_WORD}),
        ("text a phone (1-3 entries)", {"q": values["phone"]}),
        ("text absent word", {"q": ABSENT_WORD}),
        ("text common, in a day", {"q": "slack", **a_day}),
        ("text rare, in a day", {"q": RARE_WORD, **a_day}),
        ("text absent, in a day", {"q": ABSENT_WORD, **a_day}),
        ("text common + level>=warning + service", {"q": "timeout", "level": "warning", "service": "worker"}),
        ("text + service with no match (beat)", {"q": "timeout", "service": "beat"}),
        ("text rare + level>=error", {"q": "chargeback", "level": "error"}),
        ("level>=error", {"level": "error"}),
        ("level=critical (0.1%)", {"level": "critical"}),
        ("level>=error, last hour", {"level": "error", **hour}),
        ("service=beat", {"service": "beat"}),
        ("service rare (intake-edge)", {"service": "intake-edge"}),
        ("service absent", {"service": "no-such-service"}),
        ("time range: one day", a_day),
        ("request_id (one journey)", {"request_id": values["request_id"]}),
        ("request_id, oldest first", {"request_id": values["request_id"], "order": "asc"}),
        ("lead_id", {"lead_id": values["lead_id"]}),
        ("lead_id + level>=warning", {"lead_id": values["lead_id"], "level": "warning"}),
        ("text common, oldest first", {"q": "slack", "order": "asc"}),
        ("text absent, oldest first", {"q": ABSENT_WORD, "order": "asc"}),
    ]


PAGE_50_CASES = {"newest 100, no filter", "text common 'slack'", "text 'timeout' (2%)", "level>=error", "service=beat"}


def _query(params: dict) -> str:
    return urlencode({k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items()})


def page_50_cursor(params: dict) -> str | None:
    """Follow 49 pages of 100 through the selector to reach page 50's cursor."""
    from logs.selectors import LogFilters, log_entries_page, parse_level

    filters = LogFilters(
        q=params.get("q", ""),
        level=parse_level(params["level"]) if "level" in params else None,
        service=params.get("service", ""),
        since=params.get("since"),
        until=params.get("until"),
        request_id=params.get("request_id", ""),
        lead_id=params.get("lead_id", ""),
    )
    cursor = None
    for _ in range(49):
        _, cursor = log_entries_page(filters, cursor=cursor, limit=100, oldest_first=params.get("order") == "asc")
        if cursor is None:
            return None
    return cursor


def admin_cases(values: dict[str, str], now: datetime) -> list[tuple[str, dict]]:
    """The admin list's searches; "page 50" is the page its "Next" link reaches from page 49 (a keyset
    cursor), "?p=50 typed" the same page asked for by number (PostgreSQL skips the 2,450 entries before it)."""
    return [
        ("list, no filter", {}),
        ("list, page 50", {"p": 50, "follow": True}),
        ("list, ?p=50 typed", {"p": 50}),
        ("text common 'slack'", {"q": "slack"}),
        ("text common, page 50", {"q": "slack", "p": 50, "follow": True}),
        ("text common, ?p=50 typed", {"q": "slack", "p": 50}),
        ("text 'chargeback'", {"q": "chargeback"}),
        (f"text rare '{RARE_WORD}'", {"q": RARE_WORD}),
        ("text a phone", {"q": values["phone"]}),
        ("text absent", {"q": ABSENT_WORD}),
        ("level>=error", {"level": 40}),
        ("level>=error + text + service", {"level": 40, "q": "timeout", "service": "worker"}),
        ("service=beat", {"service": "beat"}),
        ("time: past 7 days", {"time__gte": (now - timedelta(days=7)).replace(microsecond=0)}),
        ("request_id", {"request_id": values["request_id"]}),
        ("lead journey", {"journey": values["lead_id"]}),
    ]


_NEXT = re.compile(r'<a href="([^"]*)"[^>]*>\s*Next\s*</a>')


def admin_followed_url(base: str, cookie: str, params: dict) -> str:
    """The admin list's page `params["p"]` as a user reaches it: page 1, then its "Next" link each time."""
    params = {k: v for k, v in params.items() if k not in ("p", "follow")}
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    url = f"/admin/logs/logentry/?{_query(params)}"
    for _ in range(49):
        conn.request("GET", url, headers={"Cookie": f"sessionid={cookie}"})
        response = conn.getresponse()
        page = response.read().decode()
        link = _NEXT.search(page)
        if response.status != 200 or link is None:
            raise RuntimeError(f"no Next link on {url} ({response.status})")
        url = "/admin/logs/logentry/" + html.unescape(link.group(1))
    conn.close()
    return url


def admin_session() -> str:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def warm_up(url: str, headers: dict[str, str], method: str = "GET", body: bytes | None = None) -> None:
    """A few untimed requests on every connection first: each gunicorn worker checks a new API key's
    slow hash once and imports lazily on its first requests (seconds on a busy box)."""
    load(url, method, body=body, headers=headers, concurrency=8, duration=1, warmup=0)
    load(url, method, body=body, headers=headers, concurrency=8, duration=2, warmup=0)


def searches(values: dict[str, str], now: datetime) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]]]:
    key = create_api_key("logs:read")
    api_rows, admin_rows = [], []
    cookie = admin_session()
    with Server("leadsite.settings") as base:
        warm_up(f"{base}/api/logs?limit=1", {"X-Api-Key": key})
        warm_up(f"{base}/admin/logs/logentry/?request_id=warm-up", {"Cookie": f"sessionid={cookie}"})
        for name, params in api_cases(values, now) if "api" in PARTS else []:
            url = f"{base}/api/logs?{_query(params)}"
            api_rows.append((name, load(url, headers={"X-Api-Key": key}, concurrency=2, duration=SEARCH_SECONDS)))
            if name in PAGE_50_CASES:
                cursor = page_50_cursor(params)
                if cursor is not None:
                    url = f"{base}/api/logs?{_query({**params, 'cursor': cursor})}"
                    result = load(url, headers={"X-Api-Key": key}, concurrency=2, duration=SEARCH_SECONDS)
                    api_rows.append((f"{name}, page 50", result))
        for name, params in admin_cases(values, now) if "admin" in PARTS else []:
            if params.get("follow"):
                url = base + admin_followed_url(base, cookie, params)
            else:
                url = f"{base}/admin/logs/logentry/?{_query(params)}"
            result = load(url, headers={"Cookie": f"sessionid={cookie}"}, concurrency=2, duration=SEARCH_SECONDS)
            admin_rows.append((name, result))
    return api_rows, admin_rows


# --- (4) ingestion while searches run ------------------------------------------------------------


def batch_body(i: int) -> bytes:
    now = datetime.now(tz=UTC).isoformat()
    return json.dumps(
        {
            "entries": [
                {
                    "timestamp": now,
                    "level": "error" if j % 50 == 0 else "info",
                    "service": "pricing-service",
                    "event": "quote.computed",
                    "message": f"quote {i}-{j} computed for lead in 12 ms",
                    "context": {"quote": j, "batch": i},
                    "request_id": f"ext-{i:08d}-{j // 10:03d}",
                }
                for j in range(BATCH)
            ]
        }
    ).encode()


def ingestion_with_searches(values: dict[str, str]) -> tuple[dict, list[tuple[str, dict]]]:
    write_key = create_api_key("logs:write")
    read_key = create_api_key("logs:read")
    bodies = [batch_body(i) for i in range(20)]
    mix = [
        ("text rare, while ingesting", {"q": RARE_WORD}),
        ("text common, while ingesting", {"q": "slack"}),
        ("request_id, while ingesting", {"request_id": values["request_id"]}),
    ]
    duration = SEARCH_SECONDS * len(mix)
    rows: list[tuple[str, dict]] = []
    with Server("leadsite.settings") as base:
        result: dict = {}

        def ingest() -> None:
            result.update(
                load(
                    f"{base}/api/logs",
                    "POST",
                    body=lambda i: bodies[i % len(bodies)],
                    headers={"X-Api-Key": write_key},
                    concurrency=2,
                    duration=duration,
                )
            )

        warm_up(f"{base}/api/logs?limit=1", {"X-Api-Key": read_key})
        warm_up(f"{base}/api/logs", {"X-Api-Key": write_key}, "POST", bodies[0])
        thread = threading.Thread(target=ingest)
        thread.start()
        time.sleep(1)  # the ingest load's own warm-up
        for name, params in mix:
            url = f"{base}/api/logs?{_query(params)}"
            rows.append((name, load(url, headers={"X-Api-Key": read_key}, concurrency=1, duration=SEARCH_SECONDS)))
        thread.join()
    return result, rows


def drop_database() -> None:
    import psycopg

    parts = urlsplit(BENCH_DATABASE_URL)
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def stored_store() -> tuple[int, datetime, float]:
    """A kept store's size: entries (the planner's estimate, no count), newest entry, gigabytes."""
    with _connect() as conn:
        rows = conn.execute(
            "SELECT coalesce(sum(c.reltuples), 0)::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'logs_logentry'::regclass"
        ).fetchone()[0]
        newest = conn.execute("SELECT max(time) FROM logs_logentry").fetchone()[0]
        size_gb = conn.execute("SELECT pg_database_size(current_database()) / 1e9").fetchone()[0]
    return rows, newest, size_gb


def forget_bench_writes(since: datetime) -> None:
    """A kept store stays as seeded: what this run wrote (the handler-cost step's entries, those POST
    /api/logs added) is deleted again, and its days vacuumed."""
    with _connect() as conn:
        conn.execute(
            "DELETE FROM logs_logentry WHERE time >= %s AND (logger LIKE 'api:%%' OR logger LIKE 'bench.logs.%%')",
            [since],
        )
        day = since.date()
        while day <= datetime.now(tz=UTC).date():
            conn.execute(f'VACUUM (ANALYZE) "logs_logentry_p{day:%Y%m%d}"')
            day += timedelta(days=1)


def main() -> None:
    # LOG_BENCH_REUSE=1: search the store a previous LOG_BENCH_KEEP=1 run left (no seeding, not dropped).
    reuse = os.environ.get("LOG_BENCH_REUSE") == "1"
    keep = reuse or os.environ.get("LOG_BENCH_KEEP") == "1"
    if not reuse:
        prepare_database()
    started = datetime.now(tz=UTC) - timedelta(minutes=1)
    try:
        os.environ.update(bench_env())
        os.environ["DJANGO_SETTINGS_MODULE"] = "leadsite.settings"
        import django

        django.setup()

        cost = handler_cost()
        print("\n## CentralLogHandler: cost per log call (in-process, median of 10 x 5,000 calls)")
        print(f"NullHandler baseline      {cost['baseline_us']:7.2f} µs")
        print(f"CentralLogHandler         {cost['central_us']:7.2f} µs")
        print(f"added per log call        {cost['added_us']:7.2f} µs   (target < 50 µs)", flush=True)

        if reuse:
            forget_bench_writes(started)  # the handler-cost step's entries would be the newest
            rows, now, size_gb = stored_store()
            print(
                f"\nreusing the kept store: ~{rows:,} entries, newest {now:%Y-%m-%d %H:%M}, {size_gb:.1f} GB",
                flush=True,
            )
        else:
            timings = seed(ROWS)
            rows, now = ROWS, datetime.now(tz=UTC)
            print(
                f"\nseeded {ROWS:,} entries over {DAYS} days: load {timings['load_s']:.0f} s, indexes "
                f"{timings['index_s']:.0f} s, vacuum+analyze {timings['analyze_s']:.0f} s; "
                f"database {timings['size_gb']:.1f} GB",
                flush=True,
            )
        values = samples()
        print(f"load average before the searches: {os.getloadavg()}", flush=True)
        api_rows, admin_rows = searches(values, now)
        print_table(f"GET /api/logs on {rows:,} entries (target p95 < 100 ms)", api_rows)
        print_table(f"admin log list on {rows:,} entries (target p95 < 100 ms)", admin_rows)
        worst = max(api_rows + admin_rows, key=lambda row: row[1]["p95_ms"])  # neither part: ValueError
        print(f"slowest p95: {worst[1]['p95_ms']:.1f} ms ({worst[0]})", flush=True)
        print(f"load average after the searches: {os.getloadavg()}", flush=True)

        if os.environ.get("LOG_BENCH_INGEST", "1") == "1":
            ingest, during = ingestion_with_searches(values)
            print_table(f"POST /api/logs, {BATCH:,} entries per request, while searching", [("POST /api/logs", ingest)])
            print(f"ingested entries/s while searching: {ingest['throughput'] * BATCH:,.0f}   (target >= 10,000)")
            print_table("searches while ingesting", during)
            if keep:
                forget_bench_writes(started)
    finally:
        if not keep:
            drop_database()


if __name__ == "__main__":
    main()
