"""`aksnet-top check --demo --scenario healthy` wall time: 2 cycles at a 1 s interval, on
the built-in 5 nodes and with --nodes 1000. Each run is a fresh process (imports, lab
start, listing, probing, the ARM reads, the verdict), as a pipeline would run it.

    .venv/bin/python bench/check_bench.py [--runs 3]

Targets: <= 3 s for healthy, <= 6 s for 1,000 nodes. Last line: key=value.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(extra: list[str]) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AKSNET_", "KUBECONFIG"))}
        env.update({"HOME": home, "XDG_CONFIG_HOME": home, "PYTHONPATH": str(ROOT)})
        cmd = [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main(sys.argv[1:]))",
               "check", "--demo", "--scenario", "healthy", "--interval", "1", "--cycles", "2", "--output", "json", *extra]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
        dt = time.perf_counter() - t0
    doc = json.loads(out.stdout)
    return dt, out.returncode, doc["observations"]["topology"]["nodes"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    res = {}
    for label, extra in (("healthy", []), ("nodes1000", ["--nodes", "1000"])):
        times = []
        for _ in range(max(1, min(a.runs, 20))):
            dt, rc, nodes = one(extra)
            times.append(dt)
            print(f"{label}: {dt:.2f} s (exit {rc}, {nodes} nodes)", flush=True)
        res[label] = statistics.median(times)
    print(f"healthy_s={res['healthy']:.2f} nodes1000_s={res['nodes1000']:.2f} target_healthy_s=3 target_nodes1000_s=6")


if __name__ == "__main__":
    main()
