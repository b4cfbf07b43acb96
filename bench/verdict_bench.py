"""Verdict benchmark: for each built-in fault scenario, how soon `check --demo` names it.

    .venv/bin/python bench/verdict_bench.py [--runs N] [--cycles 1,2] [--scenarios f1,f15,healthy]

For every scenario `fN` and its variants `fN-<what>` (and the healthy ones: `healthy`,
`overlay`, `udr-firewall`) and
every cycle count asked (default 1 and 2), it runs ``aksnet-top check --demo --scenario X
--interval 1 --cycles C --output json --no-record`` as a subprocess, `--runs` times, one
at a time (the lab, its agent farm and the check share the machine: two at once measure
each other). Loopback only: the demo's lab serves everything on 127.0.0.1.

Per scenario it reports:

* ``verdict``: the first cycle count from which every run named the expected FAULTS id
  (``fN`` and ``fN-<what>`` -> ``FN``) and every larger count asked did too ("—" when none did);
* ``named``: runs naming the expected id, per cycle count (``2/3 3/3``);
* ``false``: findings above info whose id is not the expected one, over all runs (on the
  healthy scenarios every finding above info is false);
* ``seconds``: the median wall time of one check at the verdict's cycle count (or at the
  largest count when there is no verdict), lab start included.

The last lines are totals and a key=value line. Timing figures depend on the machine's
load: the agents' latencies are measured in one process for every simulated node.
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

ROOT = Path(__file__).resolve().parent.parent
HEALTHY = ("healthy", "overlay", "udr-firewall")
CODE = "import sys; from tui.cli import main; sys.exit(main(sys.argv[1:]))"


def _fault_number(stem: str) -> int | None:
    """fN and fN-<what> -> N; anything else None."""
    head = stem.split("-", 1)[0]
    return int(head[1:]) if head[:1] == "f" and head[1:].isdigit() else None


def builtin_faults() -> list[str]:
    stems = (p.stem for p in (ROOT / "probes" / "lab" / "scenarios").glob("f*.yaml"))
    return sorted((s for s in stems if _fault_number(s) is not None), key=lambda s: (_fault_number(s), s))


def expected(scenario: str) -> str | None:
    n = _fault_number(scenario)
    return None if scenario in HEALTHY or n is None else f"F{n}"


def run_check(scenario: str, cycles: int, home: str, timeout: float = 120.0) -> tuple[float, dict | None, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKSNET_", "KUBECONFIG"))}
    env.update({"HOME": home, "XDG_CONFIG_HOME": os.path.join(home, "cfg"), "PYTHONPATH": str(ROOT)})
    args = ["check", "--demo", "--scenario", scenario, "--interval", "1", "--cycles", str(cycles)]
    args += ["--output", "json", "--no-record"]
    t = time.monotonic()
    try:
        out = subprocess.run(
            [sys.executable, "-c", CODE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return time.monotonic() - t, None, f"no answer in {timeout:g} s"
    elapsed = time.monotonic() - t
    try:
        return elapsed, json.loads(out.stdout), ""
    except ValueError:
        return elapsed, None, (out.stderr.strip().splitlines() or ["no output"])[-1][:120]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1, help="checks per scenario and cycle count (default 1)")
    ap.add_argument("--cycles", default="1,2", help="cycle counts to try, comma-separated (default 1,2)")
    ap.add_argument("--scenarios", default="", help="comma-separated (default: every fN, then the healthy ones)")
    a = ap.parse_args(argv)
    counts = sorted({int(c) for c in a.cycles.split(",") if c.strip()})
    if not counts or counts[0] < 1 or a.runs < 1:
        ap.error("--cycles takes whole numbers >= 1 and --runs a number >= 1")
    scenarios = [s for s in a.scenarios.split(",") if s] or [*builtin_faults(), *HEALTHY]

    print(f"{'scenario':<14} {'expect':<6} {'verdict':>7}  {'named':<14} {'false':>5} {'seconds':>8}  notes")
    totals = {"scenarios": 0, "within2": 0, "false_on_healthy": 0, "false_on_faults": 0, "failed_runs": 0}
    verdicts: list[int] = []
    with tempfile.TemporaryDirectory(prefix="verdict-bench-") as home:
        for sc in scenarios:
            want = expected(sc)
            named: dict[int, int] = {}
            secs: dict[int, list[float]] = {}
            false = 0
            notes: list[str] = []
            for c in counts:
                named[c] = 0
                for _ in range(a.runs):
                    elapsed, doc, err = run_check(sc, c, home)
                    secs.setdefault(c, []).append(elapsed)
                    if doc is None:
                        totals["failed_runs"] += 1
                        notes.append(f"c{c}: {err}")
                        continue
                    above = [f for f in doc["findings"] if f["severity"] != "info"]
                    ids = {f["fault"] for f in above}
                    if want is not None and want in ids:
                        named[c] += 1
                    extra = sorted({str(f["fault"]) for f in above if f["fault"] != want})
                    false += sum(1 for f in above if f["fault"] != want)
                    if extra:
                        notes.append(f"c{c}: +{','.join(extra)}")
                    if doc.get("errors"):
                        notes.append(f"c{c}: {doc['errors'][0][:60]}")
            verdict = None
            if want is not None:
                for c in counts:
                    if all(named[d] == a.runs for d in counts if d >= c):
                        verdict = c
                        break
            at = verdict if verdict is not None else counts[-1]
            seconds = statistics.median(secs[at])
            totals["scenarios"] += 1
            if want is None:
                totals["false_on_healthy"] += false
            else:
                totals["false_on_faults"] += false
                if verdict is not None and verdict <= 2:
                    totals["within2"] += 1
                if verdict is not None:
                    verdicts.append(verdict)
            shown = "—" if want is None else (str(verdict) if verdict is not None else "none")
            per = " ".join(f"{named[c]}/{a.runs}" for c in counts) if want is not None else "—"
            print(
                f"{sc:<14} {want or '-':<6} {shown:>7}  {per:<14} {false:>5} {seconds:>8.1f}  "
                + "; ".join(dict.fromkeys(notes))[:100],
                flush=True,
            )
    faults = sum(1 for s in scenarios if expected(s) is not None)
    print(
        f"\n{totals['within2']} of {faults} fault scenarios named within 2 cycles by every run; "
        f"{totals['false_on_healthy']} findings above info on the healthy scenarios; "
        f"{totals['false_on_faults']} other findings above info on the fault scenarios"
    )
    print(
        " ".join(
            f"{k}={v}"
            for k, v in {
                **totals,
                "faults": faults,
                "runs": a.runs,
                "cycles": ",".join(map(str, counts)),
                "max_verdict": max(verdicts) if verdicts else "none",
            }.items()
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
