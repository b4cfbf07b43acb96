"""False findings over a long healthy run: the engine as the app runs it, without the UI.

    .venv/bin/python bench/soak_bench.py [--minutes 10] [--nodes 1000] [--scenario healthy]

Starts the demo's lab in its own process (probes.demo: API server, ARM endpoint, agent
farm, DNS and egress targets, all on loopback), then the app's engine exactly as
`aksnet-top --demo` builds it (KubeSource, probes.engine.services, the Publisher with the
rules at the app's cadence) and runs it for `--minutes`. Every frame's findings are read;
a finding above info on a healthy scenario is a false one. Reports the frames and rule
runs seen, every distinct false finding (rule, fault id, subject, how many frames showed
it, first and last seen), and the load average, since a loaded machine slows the lab's
answers for every node alike. Target (issue #14): 0 false findings on a 1,000-node
healthy run over 10 minutes. The last line prints every figure as key=value.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probes import config as configmod  # noqa: E402
from probes import demo as demomod  # noqa: E402
from probes.diagnose.model import Severity  # noqa: E402
from probes.engine.publisher import Publisher  # noqa: E402
from probes.engine.services import build  # noqa: E402
from probes.engine.store import Store  # noqa: E402
from probes.kube.source import KubeSource  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--scenario", default="healthy")
    args = ap.parse_args()

    cfg = configmod.load(flags={"demo": {"scenario": args.scenario, "nodes": args.nodes}}, path=None)
    lab = demomod.start(args.scenario, args.nodes, cfg.dns, cfg.egress)
    store = Store()
    kube = dataclasses.replace(cfg.kube, kubeconfig=lab.kubeconfig, context="")
    source = KubeSource(store, kube)
    services = build(cfg, store, lab.endpoints, kube)
    publisher = Publisher.of(store, services, interval=cfg.ui.refresh_interval)
    # (rule, fault, subject, severity) -> [first seen, last seen, frames, text]
    seen: dict[tuple[str, str, str, str], list[Any]] = {}
    frames = [0]
    lock = threading.Lock()
    t0 = time.monotonic()

    def on_frame(frame: Any) -> None:
        now = time.monotonic() - t0
        with lock:
            frames[0] += 1
            for f in frame.findings or ():
                if f.severity <= Severity.INFO:
                    continue
                key = (f.rule, f.fault or "", f.subject, f.severity.name.lower())
                rec = seen.setdefault(key, [now, now, 0, f.text])
                rec[1] = now
                rec[2] += 1

    load0 = os.getloadavg()
    try:
        source.start()
        for s in services.sources:
            s.start()
        if not source.wait_synced(120):
            print("the lab's cluster did not list within 120 s", file=sys.stderr)
            return 3
        listed = time.monotonic() - t0
        publisher.start(on_frame)
        end = time.monotonic() + args.minutes * 60
        while time.monotonic() < end:  # bounded: --minutes
            time.sleep(min(5.0, max(0.0, end - time.monotonic())))
        publisher.stop()
    finally:
        services.stop(2.0)
        source.stop(2.0)
        lab.stop()
    load1 = os.getloadavg()
    print(
        f"{args.scenario}, {args.nodes} nodes, {args.minutes:g} min: {frames[0]} frames, {publisher.judged} rule runs"
    )
    for (rule, fault, subject, sev), (first, last, n, text) in sorted(seen.items(), key=lambda kv: kv[1][0]):
        print(f"  FALSE {sev:8} {fault or '-':4} {rule:24} {subject}  in {n} frames, {first:.0f}-{last:.0f} s")
        print(f"        {text}")
    if not seen:
        print("  no finding above info")
    figures = {
        "scenario": args.scenario,
        "nodes": args.nodes,
        "minutes": args.minutes,
        "listed_s": round(listed, 1),
        "frames": frames[0],
        "rule_runs": publisher.judged,
        "false_findings": len(seen),
        "false_frames": sum(int(v[2]) for v in seen.values()),
        "load_start": round(load0[0], 1),
        "load_end": round(load1[0], 1),
    }
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0 if not seen else 1


if __name__ == "__main__":
    sys.exit(main())
