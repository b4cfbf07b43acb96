"""How long the embedded lab (healthy scenario) takes to come up in a fresh interpreter,
imports included: best and median of N runs (target: under 200 ms).

    .venv/bin/python bench/lab_start_bench.py --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = (
    "import time; t = time.perf_counter()\n"
    "from probes.lab.serve import start_embedded\n"
    "srv, kc = start_embedded('healthy'); print(time.perf_counter() - t)\n"
    "srv.stop()\n"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ns = ap.parse_args()
    times = []
    for _ in range(max(1, ns.runs)):
        p = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            print(p.stderr, file=sys.stderr)
            return 1
        times.append(float(p.stdout.strip()))
    print(f"lab_start_best_s={min(times):.3f} lab_start_median_s={statistics.median(times):.3f} runs={len(times)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
