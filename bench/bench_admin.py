"""The back office at volume: server time of the admin's busy pages on 50,000 leads and 1,000,000 log entries.

`manage.py seed_volume` fills a fresh bench database; a real gunicorn (2 workers × 4 threads) serves the
admin; logged-in sessions (a superuser, and rep01 for "My leads") request each page from 2 keep-alive
connections for a few seconds. Target (issue 11): p95 < 300 ms per page on the 2-core dev box.
"""

from __future__ import annotations

import http.client
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Our own bench database and Redis databases, so running this next to another bench clobbers nothing.
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadsite_bench_admin")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
os.environ.setdefault("BENCH_BROKER_URL", "redis://127.0.0.1:6379/12")

from bench.harness import Server, load, manage, prepare_database, print_table  # noqa: E402

DURATION = float(os.environ.get("BENCH_ADMIN_SECONDS", "5"))

SESSIONS = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from leads.models import Lead
from logs.models import LogEntry

User = get_user_model()
boss, _ = User.objects.get_or_create(username="bench-boss", defaults={"is_staff": True, "is_superuser": True})
for user in (boss, User.objects.get(username="rep01")):
    s = SessionStore()
    s["_auth_user_id"] = str(user.pk)
    s["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    s["_auth_user_hash"] = user.get_session_auth_hash()
    s.create()
    print("session", user.username, s.session_key)
lead = Lead.objects.filter(source="seed-volume").order_by("-created_at")[12345]
print("lead", lead.pk, lead.phone)
print("request", LogEntry.objects.filter(logger="seed_volume").order_by("-time")[500_000].request_id)
"""


def _one_request_ms(url: str, headers: dict[str, str]) -> float:
    """One GET, timed (load() with a tiny duration may send none when the box is busy)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    started = time.perf_counter()
    conn.request("GET", f"{parts.path}?{parts.query}" if parts.query else parts.path, headers=headers)
    response = conn.getresponse()
    response.read()
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"{url}: {response.status}")
    return elapsed


def _dashed(e164: str) -> str:
    digits = e164[2:]
    return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"


def main() -> None:
    if os.environ.get("BENCH_ADMIN_REUSE") != "1":  # 1: measure again on the database seeded last time
        prepare_database()
        started = time.perf_counter()
        print(manage("seed_volume").strip())
        print(f"seeded in {time.perf_counter() - started:.0f} s")
    facts: dict[str, list[str]] = {}
    for line in manage("shell", "-c", SESSIONS).splitlines():
        kind, *rest = line.split() or [""]
        if kind in ("session", "lead", "request"):
            facts.setdefault(kind, []).extend(rest)
    sessions = dict(zip(facts["session"][0::2], facts["session"][1::2], strict=True))
    lead_id, phone = facts["lead"]
    request_id = facts["request"][0]
    boss = {"Cookie": f"sessionid={sessions['bench-boss']}"}
    rep = {"Cookie": f"sessionid={sessions['rep01']}"}
    cases = [
        ("leads list", "/admin/leads/lead/", boss),
        (f"leads search by phone {_dashed(phone)}", "/admin/leads/lead/?" + urlencode({"q": _dashed(phone)}), boss),
        ("leads search by name", "/admin/leads/lead/?" + urlencode({"q": "priya patel"}), boss),
        ("lead page", f"/admin/leads/lead/{lead_id}/change/", boss),
        ("My leads (rep01)", "/admin/leads/lead/?queue=mine", rep),
        ("dashboard (30 s Redis cache)", "/admin/dashboard/", boss),
        ("logs search by pasted request id", "/admin/logs/logentry/?" + urlencode({"q": request_id}), boss),
        ("logs list, newest", "/admin/logs/logentry/", boss),
    ]
    rows = []
    with Server("leadsite.settings") as base:
        for name, path, headers in cases:
            # Both workers compile their templates before the clock starts (the first page is slow).
            load(base + path, headers=headers, concurrency=2, duration=0.5, warmup=0)
            result = load(base + path, headers=headers, concurrency=2, duration=DURATION)
            rows.append((name, result))
        # The dashboard uncached: what the first request after the cache expires pays.
        cold = []
        for _ in range(3):
            manage("shell", "-c", "from django.core.cache import cache; cache.delete('dashboard:v2')")
            cold.append(_one_request_ms(base + "/admin/dashboard/", boss))
    print_table(
        f"admin pages on 50,000 leads / 1,000,000 log entries, {DURATION:.0f} s each (target p95 < 300 ms)", rows
    )
    print(f"dashboard computed uncached: {', '.join(f'{ms:.0f} ms' for ms in cold)}")


if __name__ == "__main__":
    main()
