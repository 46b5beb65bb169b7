"""POST /api/leads under gunicorn on PostgreSQL + Redis, beside the bare one-row insert, in the same run.

Targets (issue 3): intake throughput at least half of the bare endpoint's; p99 under 50 ms at a
fixed 200 requests/s. Every request is a new lead (unique phone, email and address), so each one
takes the full path: validation, address parsing, the locked duplicate check and the inserts of the
lead and its one `leads.fan_out` outbox event (one round trip), and the after-commit publish to the
broker by the process's publisher thread. (The fan-out itself runs in a Celery worker, not here.)
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Server, bench_env, create_api_key, load, prepare_database, print_table  # noqa: E402

DURATION = float(os.environ.get("BENCH_DURATION", "10"))
RATE = 200.0
CONCURRENCY = 16
WORKERS = 2
# Both servers cap gthread's keep-alive connections per worker (harness default 8 = 16 / 2), so
# the load is spread over both processes.
SPREAD = bench_env()


def lead_body(run: int):
    def make(i: int) -> bytes:
        n = run * 1_000_000 + i
        return json.dumps(
            {
                "name": f"Bench Seller {n}",
                # Unique, valid US numbers: exchange 200-999, line 0000-9999.
                "phone": f"(206) {200 + (n // 10_000) % 800:03d}-{n % 10_000:04d}",
                "email": f"seller{n}@example.com",
                "address": f"{100 + n % 9000} {random.choice(['Main St', 'Pine Ave', 'Oak Blvd'])} #{n}, Seattle, WA 98101",
                "message": "Looking for a cash offer",
                "timeline": "asap",
                "beds": 3,
                "baths": "2",
                "consent": True,
                "consent_text": "I agree to be contacted.",
                "utm_source": "bench",
            }
        ).encode()

    return make


def bare_body(i: int) -> bytes:
    return json.dumps({"name": f"Bench Seller {i}", "phone": "+12065550100", "address": "1 Main St"}).encode()


def main() -> None:
    prepare_database()
    key = create_api_key("leads:create")
    headers = {"X-Api-Key": key}
    with Server("bench.bare_settings", env=SPREAD, workers=WORKERS) as base:
        bare = load(f"{base}/bare/insert", "POST", bare_body, concurrency=CONCURRENCY, duration=DURATION)
        bare_fixed = load(f"{base}/bare/insert", "POST", bare_body, duration=DURATION, rate=RATE)
    with Server("leadsite.settings", env=SPREAD, workers=WORKERS) as base:
        intake = load(
            f"{base}/api/leads", "POST", lead_body(1), headers=headers, concurrency=CONCURRENCY, duration=DURATION
        )
        intake_fixed = load(f"{base}/api/leads", "POST", lead_body(2), headers=headers, duration=DURATION, rate=RATE)
    print_table(
        f"leads intake (gunicorn {WORKERS}x4 gthread, {CONCURRENCY // WORKERS} connections per worker, "
        "PostgreSQL, Redis broker; every request a new lead)",
        [
            ("bare POST /bare/insert (closed loop)", bare),
            ("POST /api/leads (closed loop)", intake),
            (f"bare POST /bare/insert @ {RATE:.0f} req/s", bare_fixed),
            (f"POST /api/leads @ {RATE:.0f} req/s", intake_fixed),
        ],
    )
    ratio = intake["throughput"] / bare["throughput"] if bare["throughput"] else float("nan")
    print(
        f"\nintake/bare throughput: {ratio:.2f} (target >= 0.50): {'OK' if ratio >= 0.5 else 'MISSED'}; "
        f"p99 @ {RATE:.0f} req/s: {intake_fixed['p99_ms']:.1f} ms (target < 50): "
        f"{'OK' if intake_fixed['p99_ms'] < 50 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
