"""Sanity check of the harness: the bare baseline alone (each app's bench compares against it)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Server, load, prepare_database, print_table  # noqa: E402


def main() -> None:
    prepare_database()
    body = json.dumps({"name": "Jane Seller", "phone": "+12065550100", "address": "1 Main St"}).encode()
    with Server("bench.bare_settings") as base:
        insert = load(f"{base}/bare/insert", "POST", body, duration=5)
        redis_read = load(f"{base}/bare/redis", duration=5)
    print_table(
        "bare baseline (gunicorn 2x4 gthread, PostgreSQL, Redis)",
        [
            ("bare POST /bare/insert (one row)", insert),
            ("bare GET /bare/redis (one key)", redis_read),
        ],
    )


if __name__ == "__main__":
    main()
