"""`aksnet-top check --demo` wall time: 2 cycles at check's default (back to back, 1 s
apart; `healthy_interval5`: `--interval 5`, the patient way), on `healthy` (5 nodes,
5 agents) and on `overlay --nodes 1000` (1,000 nodes, agents on the first 50), the latter
at check's default agent budget (20 requests/s) and at the app's rolling rate
(`--agent-budget 5`: reading 50 agents alone takes 11 s). Each run is a fresh process through the `aksnet-top` command
(imports, the demo's lab process with its API server, ARM endpoint and agent farm
(probes.demo), listing, probing, agent reads through the pod proxy, the ARM reads, the
verdict, the lab's shutdown), as a pipeline would run it.

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
        cmd = [
            str(Path(sys.executable).with_name("aksnet-top")),
            "check",
            "--demo",
            "--cycles",
            "2",
            "--output",
            "json",
            *extra,
        ]
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
    cases = (
        ("healthy", ["--scenario", "healthy"]),
        ("nodes1000", ["--scenario", "overlay", "--nodes", "1000"]),
        ("nodes1000_budget5", ["--scenario", "overlay", "--nodes", "1000", "--agent-budget", "5"]),
        ("healthy_interval5", ["--scenario", "healthy", "--interval", "5"]),
    )
    for label, extra in cases:
        times = []
        for _ in range(max(1, min(a.runs, 20))):
            dt, rc, nodes = one(extra)
            times.append(dt)
            print(f"{label}: {dt:.2f} s (exit {rc}, {nodes} nodes)", flush=True)
        res[label] = statistics.median(times)
    print(
        f"healthy_s={res['healthy']:.2f} nodes1000_s={res['nodes1000']:.2f} "
        f"nodes1000_budget5_s={res['nodes1000_budget5']:.2f} healthy_interval5_s={res['healthy_interval5']:.2f} "
        "target_healthy_s=3 target_nodes1000_s=6"
    )


if __name__ == "__main__":
    main()
