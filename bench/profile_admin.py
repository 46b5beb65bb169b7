"""The admin's busy pages timed in-process on a seeded bench database: CPU and SQL per request.

    BENCH_DATABASE_URL=postgres://…/leadsite_bench_admin .venv/bin/python bench/profile_admin.py [page …]

Run `make bench BENCH=admin` (or `manage.py seed_volume` on that database) first. Pages: list, phone, name,
page, mine, dashboard, dashboard-uncached, logs-request, logs; and, named only, logs-p50 (`?p=50` typed),
logs-text-p50, logs-rare (`?q=kangaroo`), which also run on the logs bench's kept store
(`BENCH_DATABASE_URL=…/leadsite_bench_logs … profile_admin.py logs logs-p50 logs-text-p50 logs-rare`). CPU time (process time) is what a page
costs whatever else the box is doing; wall time is printed beside it. `PROFILE=1` adds a pyinstrument
profile of each page (pip install pyinstrument; not a dependency of the project).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadsite_bench_admin")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadsite.settings")
os.environ.update(
    DATABASE_URL=os.environ["BENCH_DATABASE_URL"],
    REDIS_URL=os.environ["BENCH_REDIS_URL"],
    DJANGO_SECRET_KEY="bench-only-secret",
    DJANGO_DEBUG="0",
    DJANGO_ALLOWED_HOSTS="testserver",
    DJANGO_SECURE_SSL_REDIRECT="0",
    LOG_LEVEL="WARNING",
    LOGS_TO_DATABASE="0",
)

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from leads.models import Lead  # noqa: E402
from leadsite.dashboard import DASHBOARD_CACHE_KEY  # noqa: E402
from logs.models import LogEntry  # noqa: E402

RUNS = int(os.environ.get("RUNS", "10"))


def _clients() -> tuple[Client, Client]:
    users = get_user_model().objects
    boss, _ = users.get_or_create(username="bench-boss", defaults={"is_staff": True, "is_superuser": True})
    boss_client, rep_client = Client(), Client()
    boss_client.force_login(boss)
    rep = users.filter(username="rep01").first()  # seed_volume's; not on the logs bench's store
    if rep is not None:
        rep_client.force_login(rep)
    return boss_client, rep_client


def main() -> None:
    boss, rep = _clients()

    def lead() -> Lead:
        return Lead.objects.filter(source="seed-volume").order_by("-created_at")[12345]

    def phone() -> str:
        digits = lead().phone[2:]
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"

    def request_id() -> str:
        return LogEntry.objects.filter(logger="seed_volume").order_by("-time")[500_000].request_id

    # Built when asked for: the logs pages also run on the logs bench's store (no leads there).
    pages = {
        "list": lambda: (boss, "/admin/leads/lead/"),
        "phone": lambda: (boss, "/admin/leads/lead/?" + urlencode({"q": phone()})),
        "name": lambda: (boss, "/admin/leads/lead/?" + urlencode({"q": "priya patel"})),
        "page": lambda: (boss, f"/admin/leads/lead/{lead().pk}/change/"),
        "mine": lambda: (rep, "/admin/leads/lead/?queue=mine"),
        "dashboard": lambda: (boss, "/admin/dashboard/"),
        "dashboard-uncached": lambda: (boss, "/admin/dashboard/"),
        "logs-request": lambda: (boss, "/admin/logs/logentry/?" + urlencode({"q": request_id()})),
        "logs": lambda: (boss, "/admin/logs/logentry/"),
        "logs-p50": lambda: (boss, "/admin/logs/logentry/?p=50"),  # a page number typed without a cursor
        "logs-text-p50": lambda: (boss, "/admin/logs/logentry/?q=slack&p=50"),
        "logs-rare": lambda: (boss, "/admin/logs/logentry/?q=kangaroo"),
    }
    print(f"{'page':20} {'cpu ms':>8} {'wall ms':>8} {'sql ms':>8} {'queries':>8} {'KB':>6}")
    for name in sys.argv[1:] or [name for name in pages if not name.startswith("logs-") or name == "logs-request"]:
        client, url = pages[name]()
        client.get(url)  # templates compiled, caches warm
        cpu, wall, sql = [], [], []
        for _ in range(RUNS):
            if name == "dashboard-uncached":
                cache.delete(DASHBOARD_CACHE_KEY)
            with CaptureQueriesContext(connection) as queries:
                started, started_cpu = time.perf_counter(), time.process_time()
                response = client.get(url)
                cpu.append((time.process_time() - started_cpu) * 1000)
                wall.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (name, response.status_code)
            sql.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
        print(
            f"{name:20} {statistics.median(cpu):8.1f} {statistics.median(wall):8.1f} {statistics.median(sql):8.1f} "
            f"{len(queries.captured_queries):8d} {len(response.content) / 1024:6.0f}"
        )
        if os.environ.get("PROFILE") == "1":
            from pyinstrument import Profiler

            profiler = Profiler()
            with profiler:
                for _ in range(3):
                    client.get(url)
            print(profiler.output_text(color=False))


if __name__ == "__main__":
    main()
