"""Central logs: the handler's cost per log call, POST /api/logs ingestion, search on 1,000,000 entries.

Targets (issue 6): < 50 µs added per log call; >= 10,000 entries/s ingested on 2 cores with PostgreSQL;
p95 < 100 ms for a text search within a day, a correlation-id search and level=error in the last hour.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Our own bench database and Redis databases, so running this next to another app's bench clobbers nothing.
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadsite_bench_logs")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
os.environ.setdefault("BENCH_BROKER_URL", "redis://127.0.0.1:6379/8")

from bench.harness import (  # noqa: E402
    BENCH_DATABASE_URL,
    Server,
    bench_env,
    create_api_key,
    load,
    prepare_database,
    print_table,
)

SEED_ROWS = 1_000_000
BATCH = 1_000


# --- (1) the handler's cost per log call -------------------------------------------------------


def handler_cost() -> dict[str, float]:
    os.environ.update(bench_env())
    os.environ["DJANGO_SETTINGS_MODULE"] = "leadsite.settings"
    import django

    django.setup()
    from leadsite.context import ContextFilter, request_id_var
    from logs.handler import STATS, CentralLogHandler

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
    return {
        "baseline_us": baseline,
        "central_us": with_store,
        "added_us": with_store - baseline,
        "written": STATS["written"],
        "dropped": STATS["dropped"],
    }


# --- (2) ingestion through POST /api/logs ----------------------------------------------------


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


def ingestion() -> dict:
    key = create_api_key("logs:write")
    bodies = [batch_body(i) for i in range(20)]
    with Server("leadsite.settings") as base:
        return load(
            f"{base}/api/logs",
            "POST",
            body=lambda i: bodies[i % len(bodies)],
            headers={"X-Api-Key": key},
            concurrency=4,
            duration=10,
        )


# --- (3) search on 1,000,000 entries ----------------------------------------------------------

SEED_SQL = f"""
INSERT INTO logs_logentry
    (time, level, level_name, service, logger, event, message, context, request_id, lead_id, exception, host, process)
SELECT
    now() - i * interval '2.592 seconds',  -- {SEED_ROWS:,} rows spread evenly over 30 days
    lv,
    CASE lv WHEN 10 THEN 'DEBUG' WHEN 20 THEN 'INFO' WHEN 30 THEN 'WARNING' ELSE 'ERROR' END,
    (ARRAY['web', 'worker', 'beat'])[1 + i % 3],
    'bench.seed',
    (ARRAY['lead.created', 'valuation.done', 'slack.sent', 'http.request', 'offer.graded'])[1 + i % 5],
    (ARRAY['lead received from the website form', 'valuation finished for the property',
           'slack post delivered to channel leads', 'slack post failed with timeout after retries',
           'offer graded against comparable sales', 'POST /api/leads 201 in 35 ms',
           'payment received from stripe', 'speed to lead sla breached'])[1 + (i * 7) % 8]
        || ' ' || substr(md5(i::text), 1, 12),
    jsonb_build_object('n', i),
    'req-' || (i / 6),
    CASE WHEN i % 3 = 0 THEN md5((i / 6)::text) ELSE '' END,
    '',
    'bench-host',
    1000 + i % 50
FROM (
    SELECT i, CASE WHEN i % 50 = 0 THEN 40 WHEN i % 10 = 1 THEN 30 WHEN i % 4 = 2 THEN 10 ELSE 20 END AS lv
    FROM generate_series(1, {SEED_ROWS}) AS i
) AS s
"""


def seed() -> float:
    """Bulk-load in SQL with the indexes dropped, then build them once (much faster than 1M index inserts)."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(BENCH_DATABASE_URL, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'logs_logentry' AND indexname <> 'logs_logentry_pkey'"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("TRUNCATE logs_logentry")
        conn.execute(SEED_SQL)
        conn.execute("SET maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("VACUUM ANALYZE logs_logentry")
    return time.perf_counter() - started


def searches() -> list[tuple[str, dict]]:
    key = create_api_key("logs:read")
    now = datetime.now(tz=UTC)
    day_start = (now - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    cases = [
        ("text 'timeout' in a day", {"q": "timeout", "since": day_start, "until": day_start + timedelta(days=1)}),
        (
            "text 'stripe payment' in a day",
            {"q": "stripe payment", "since": day_start, "until": day_start + timedelta(days=1)},
        ),
        ("request_id (one journey)", {"request_id": "req-123456"}),
        ("level=error in the last hour", {"level": "error", "since": now - timedelta(hours=1)}),
        ("newest 100, no filter", {}),
    ]
    rows = []
    with Server("leadsite.settings") as base:
        for name, params in cases:
            query = urlencode({k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items()})
            url = f"{base}/api/logs?{query}"
            result = load(url, headers={"X-Api-Key": key}, concurrency=2, duration=5)
            rows.append((f"GET /api/logs {name}", result))
    return rows


def main() -> None:
    prepare_database()

    cost = handler_cost()
    print("\n## CentralLogHandler: cost per log call (in-process, median of 10 x 5,000 calls)")
    print(f"NullHandler baseline      {cost['baseline_us']:7.2f} µs")
    print(f"CentralLogHandler         {cost['central_us']:7.2f} µs")
    print(f"added per log call        {cost['added_us']:7.2f} µs   (target < 50 µs)")
    print(f"written to the store      {cost['written']:,} (dropped {cost['dropped']:,})")

    result = ingestion()
    print_table(
        f"POST /api/logs, {BATCH:,} entries per request (gunicorn 2x4, PostgreSQL)", [("POST /api/logs", result)]
    )
    print(f"ingested entries/s: {result['throughput'] * BATCH:,.0f}   (target >= 10,000)")

    seconds = seed()
    print(f"\nseeded {SEED_ROWS:,} log entries in {seconds:.1f} s")
    print_table(f"search on {SEED_ROWS:,} entries (target p95 < 100 ms)", searches())


if __name__ == "__main__":
    main()
