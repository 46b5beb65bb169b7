"""POST /api/valuations: cached answers vs the bare one-Redis-read endpoint, and the uncached p95.

Loads the shipped Seattle sales and trains a model into the bench database first (~15 s).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Server, load, manage, prepare_database, print_table  # noqa: E402

CSV = "valuation/data/seattle_sales_2010_2015.csv"
HOUSE = {
    "latitude": 47.5613,
    "longitude": -122.3124,
    "living_area_sqft": 1800,
    "beds": 3,
    "baths": 2,
    "year_built": 1950,
    "lot_sqft": 5000,
    "property_type": "sfr",
    "as_of": "2016-01-01",
}


def uncached_body(i: int) -> bytes:
    # A different house every request (size and a spot within ~0.3 miles): never in the cache.
    return json.dumps(
        {
            **HOUSE,
            "living_area_sqft": 1000 + i % 2500,
            "latitude": HOUSE["latitude"] + (i % 97) * 0.00005,
            "longitude": HOUSE["longitude"] - (i // 97 % 89) * 0.00005,
        }
    ).encode()


def main() -> None:
    prepare_database()
    manage("import_sales", CSV, "--no-progress")
    manage("train_valuation")
    key = manage("create_api_key", "bench", "--scope", "valuations:read", "--rate-limit", "0").strip().splitlines()[-1]
    headers = {"X-Api-Key": key}
    cached_body = json.dumps(HOUSE).encode()

    with Server("bench.bare_settings") as base:
        bare = load(f"{base}/bare/redis", duration=10)
    with Server("leadsite.settings") as base:
        load(f"{base}/api/valuations", "POST", cached_body, headers, concurrency=1, duration=1)  # fill the cache
        cached = load(f"{base}/api/valuations", "POST", cached_body, headers, duration=10)
        uncached = load(f"{base}/api/valuations", "POST", uncached_body, headers, concurrency=4, duration=10)
    print_table(
        "valuation (gunicorn 2x4 gthread, PostgreSQL, Redis)",
        [
            ("bare GET /bare/redis (one key)", bare),
            ("POST /api/valuations, cached", cached),
            ("POST /api/valuations, uncached (4 clients)", uncached),
        ],
    )
    ratio = cached["throughput"] / bare["throughput"] if bare["throughput"] else float("nan")
    print(f"cached valuation / bare redis throughput: {ratio:.2f} (target >= 0.80)")
    print(f"uncached valuation p95: {uncached['p95_ms']:.0f} ms")


if __name__ == "__main__":
    main()
