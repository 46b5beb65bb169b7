"""`make bench`: run every bench/bench_*.py in turn; each prints its own numbers."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    scripts = sorted((ROOT / "bench").glob("bench_*.py"))
    only = sys.argv[1:]
    failed = 0
    for script in scripts:
        if only and not any(name in script.stem for name in only):
            continue
        print(f"\n# {script.stem}", flush=True)
        failed += subprocess.run([sys.executable, str(script)], cwd=ROOT).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
