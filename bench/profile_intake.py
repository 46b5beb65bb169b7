"""CPU per lead through the whole WSGI app, in process: where intake's time goes.

    .venv/bin/python bench/profile_intake.py [N] [--cprofile] [--rate-limited] [--idempotency-keys]

Posts N varied new leads (default 2,000) through the WSGI application gunicorn serves
(leadsite.wsgi.application: its middleware, request signals, the real database and Redis), and
prints process CPU and PostgreSQL backend CPU per lead, so a change on the intake path can be
measured before and after without a load generator in the way.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_leads import lead_body  # noqa: E402
from bench.harness import bench_env, create_api_key, prepare_database  # noqa: E402


def _backend_cpu(pid: int) -> float:
    """CPU seconds used so far by one PostgreSQL backend (from /proc; same machine only)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _transactions() -> int:
    """Transactions committed in the bench database so far, by every session (the statistics
    collector's count, flushed first)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def main() -> None:
    n = int(next((a for a in sys.argv[1:] if a.isdigit()), "2000"))
    os.environ.update(bench_env())
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
    prepare_database()
    # --rate-limited: a key with a (never reached) per-minute limit, so each lead also pays the
    # per-key and per-client rate limit counters a real form key has; the default key has none.
    key = create_api_key("leads:create", rate_limit=10**9 if "--rate-limited" in sys.argv else 0)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadsite.settings")
    import django

    django.setup()
    from django.db import connections
    from django.test import RequestFactory

    from leadsite.wsgi import application

    # One backend for the whole run, so its CPU can be read: no reconnect after CONN_MAX_AGE (60 s,
    # which a slow run on a busy box passes).
    connections["default"].settings_dict["CONN_MAX_AGE"] = None

    factory = RequestFactory(HTTP_X_API_KEY=key, HTTP_HOST="127.0.0.1")

    class _Client:
        """Calls the WSGI application as gunicorn does (the test Client would bypass it)."""

        def post(self, path: str, body: bytes, content_type: str, **headers: str) -> tuple[int, bytes]:
            environ = factory.post(path, body, content_type=content_type, **headers).environ
            status: list[str] = []
            chunks = application(environ, lambda s, headers, exc_info=None: status.append(s))
            try:
                content = b"".join(chunks)
            finally:
                getattr(chunks, "close", lambda: None)()
            return int(status[0].split()[0]), content

    client = _Client()

    def extra(i: int) -> dict[str, str]:
        # --idempotency-keys: one Idempotency-Key per submission, as the web-form snippet sends.
        return {"HTTP_IDEMPOTENCY_KEY": f"profile-{i}"} if "--idempotency-keys" in sys.argv else {}

    make = lead_body(7)
    for i in range(50):  # warm up: imports, caches, connections
        status, content = client.post("/api/leads", make(i), content_type="application/json")
        assert status == 201, (status, content)
    if True:
        pid = _backend_pid()
        pg0, xacts0 = _backend_cpu(pid), _transactions()
        cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        profiler = cProfile.Profile() if "--cprofile" in sys.argv else None
        if profiler:
            profiler.enable()
        for i in range(50, 50 + n):
            status, content = client.post("/api/leads", make(i), content_type="application/json", **extra(i))
            assert status == 201, content
        if profiler:
            profiler.disable()
        cpu1, wall1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        assert _backend_pid() == pid, "the request connection changed; PostgreSQL CPU would be wrong"
        pg1, xacts1 = _backend_cpu(pid), _transactions()
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    print(
        f"{n} leads: process CPU {cpu / n * 1000:.2f} ms/lead, PostgreSQL backends {(pg1 - pg0) / n * 1000:.2f} ms/lead, "
        f"wall {(wall1 - wall0) / n * 1000:.2f} ms/lead, {(xacts1 - xacts0) / n:.2f} transactions/lead (whole database)"
    )
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(
            int(os.environ.get("PROFILE_LINES", "45"))
        )
        print(out.getvalue())


if __name__ == "__main__":
    main()
