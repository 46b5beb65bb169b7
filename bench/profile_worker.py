"""CPU, wall time and SQL statements per lead on the worker side, in process: where fan-out time goes.

    .venv/bin/python bench/profile_worker.py [N] [--cprofile]

Posts N varied new leads (default 300) through the WSGI app, then runs each lead's whole journey the
way a worker would (Celery's `apply()`, every signal included): the intake's outbox event
(`leads.fan_out`, which posts the New Lead to a local fake Slack), then every outbox event that
writes (the valuation; on older code also the assignment and the New Lead's send task), and the
pump's claim-and-mark step for all of them (without the broker: only the statements). Three reps are
in the rotation, so every lead is assigned. Prints per task: wall and CPU per lead, SQL statements and PostgreSQL backend CPU,
so a change on the worker side can be measured before and after without a broker in the way.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_leads import journey_env, lead_body  # noqa: E402
from bench.harness import create_api_key, prepare_database  # noqa: E402
from bench.profile_intake import _backend_cpu, _backend_pid  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    n = int(next((a for a in sys.argv[1:] if a.isdigit()), "300"))
    slack = FakeSlack().__enter__()
    os.environ.update(journey_env(slack, OUTBOX_PUMP="0"))
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
    prepare_database()
    key = create_api_key("leads:create")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadsite.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from leads.models import OutboxEvent
    from leadsite.celery import app

    app.loader.import_default_modules()  # the tasks, as a worker registers them at start
    # Three reps in the rotation, as in the demo: every lead is assigned.
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from leads.services import ACQUISITIONS_GROUP

    group, _ = Group.objects.get_or_create(name=ACQUISITIONS_GROUP)
    for name in ("rep1", "rep2", "rep3"):
        get_user_model().objects.create_user(name, is_staff=True).groups.add(group)
    client = Client(HTTP_X_API_KEY=key, HTTP_HOST="127.0.0.1")
    make = lead_body(11)
    warm = 20
    for i in range(warm + n):
        response = client.post("/api/leads", make(i), content_type="application/json")
        assert response.status_code == 201, (response.status_code, response.content)

    statements = 0
    show_sql = int(os.environ.get("PROFILE_SQL", "0"))  # print the first N measured statements

    def count(execute, sql, params, many, context):
        nonlocal statements, show_sql
        statements += 1
        if show_sql and measuring:
            show_sql -= 1
            print("   SQL", " ".join(sql.split())[:160])
        return execute(sql, params, many, context)

    measuring = False

    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0, 0])
    # CPU time, not wall time: on a shared box waiting for PostgreSQL would otherwise dominate.
    profiler = cProfile.Profile(time.process_time) if "--cprofile" in sys.argv else None

    def run_pending(measure: bool) -> None:
        """Run every pending outbox event as a worker would, oldest first, until none is left."""
        nonlocal statements
        while True:
            rows = list(OutboxEvent.objects.filter(published_at=None).order_by("id")[:500])
            if not rows:
                return
            pid = _backend_pid()
            s0, pg0, c0, w0 = statements, _backend_cpu(pid), _cpu(), time.perf_counter()
            OutboxEvent.objects.filter(id__in=[r.id for r in rows]).update(published_at=timezone.now())
            if measure:
                t = totals["(pump: claim + mark, per event)"]
                t[0] += time.perf_counter() - w0
                t[1] += _cpu() - c0
                t[2] += _backend_cpu(pid) - pg0
                t[3] += statements - s0
                t[4] += len(rows)
            for row in rows:
                task = app.tasks[row.task_name]
                s0, pg0, c0, w0 = statements, _backend_cpu(pid), _cpu(), time.perf_counter()
                if profiler and measure:
                    profiler.enable()
                task.apply(kwargs=row.kwargs, headers={"leadsite_request_id": row.request_id})
                if profiler and measure:
                    profiler.disable()
                if measure:
                    t = totals[row.task_name]
                    t[0] += time.perf_counter() - w0
                    t[1] += _cpu() - c0
                    t[2] += _backend_cpu(pid) - pg0
                    t[3] += statements - s0
                    t[4] += 1

    with connection.execute_wrapper(count):
        # Warm up with the first leads' journeys (imports, caches, the Slack client), then measure.
        warm_ids = list(OutboxEvent.objects.order_by("id").values_list("id", flat=True)[warm:])
        OutboxEvent.objects.filter(id__in=warm_ids).update(published_at=timezone.now())
        run_pending(measure=False)
        OutboxEvent.objects.filter(id__in=warm_ids).update(published_at=None)
        wall0, cpu0 = time.perf_counter(), _cpu()
        measuring = True
        run_pending(measure=True)
        wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    posted = sum(1 for m in slack.messages() if "Bench Seller" in m.text)
    print(f"{n} leads ({posted} New Lead posts at the fake Slack, {warm} of them warm-up)")
    print(f"{'task':<34} {'runs':>5} {'wall ms':>8} {'CPU ms':>7} {'PG ms':>6} {'SQL':>5}   (per run)")
    for name, (w, c, p, s, runs) in sorted(totals.items(), key=lambda kv: -kv[1][0]):
        print(
            f"{name:<34} {runs:>5} {w / runs * 1000:>8.2f} {c / runs * 1000:>7.2f} {p / runs * 1000:>6.2f} {s / runs:>5.1f}"
        )
    print(f"per lead, everything: wall {wall / n * 1000:.1f} ms, process CPU {cpu / n * 1000:.1f} ms")
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(
            int(os.environ.get("PROFILE_LINES", "60"))
        )
        print(out.getvalue())
    slack.__exit__(None, None, None)


if __name__ == "__main__":
    main()
