"""Memory of the app on a big demo: RSS of the app process alone, sampled every 10 s.

    .venv/bin/python bench/memory_bench.py [--minutes 10] [--nodes 5000] [--scenario overlay]

Starts `aksnet-top --demo --nodes N` in an 80×24 tmux pane (a real terminal, as a user
runs it). The demo's lab (API server, ARM endpoint, agent farm) runs in child processes
of the app (probes.demo): they are measured apart and left out of the app's figure. By
default the bench presses 1…5 in turn, one tab per sample, so every pane draws.
Reports the app's RSS after 1 minute, its peak, its slope over the whole run and over
the second half (once the histories are full), and how far the second half strays from
its mean (every sample, so a SNAT refresh caught mid-parse counts), and the same for the
floor (each minute's lowest sample: growth of the app itself) with the refresh's
transient on top of it; and the app's CPU over the second half in % of one core (with `--no-tabs`, the
app left alone: the idle-CPU figure; target <= 3 %). Target (`--minutes 30`): <= 400 MB and flat within ±5 % once the histories are
full. The last line prints every figure as key=value; `--csv PATH` keeps the samples.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PERIOD = 10.0
TARGET_MB = 400.0
FLAT_PCT = 5.0


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds the process has used."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (the lab and its agent farm run in their own session)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 2:
        return float("nan")
    ts = [t / 60 for t, _ in samples]
    ys = [y for _, y in samples]
    mt, my = statistics.fmean(ts), statistics.fmean(ys)
    den = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / den if den else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10; 30 for the full target)")
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument(
        "--scenario", default="overlay", help="demo scenario to scale (default overlay: AKS allows 5,000 overlay nodes)"
    )
    ap.add_argument("--no-tabs", action="store_true", help="stay on the topology tab instead of visiting every tab")
    ap.add_argument("--csv", metavar="PATH", help="write the samples (seconds, app MB, lab MB)")
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set for the app, e.g. AKSNET_AZURE_ENABLED=false to see what one source costs (repeatable)",
    )
    args = ap.parse_args()
    if not shutil.which("tmux"):
        print("memory_bench: needs tmux", file=sys.stderr)
        return 3
    session = f"aksnet-mem-{os.getpid()}"
    home = Path(f"/tmp/{session}")
    home.mkdir(exist_ok=True)
    extra_env = " ".join(shlex.quote(e) for e in args.env)
    cmd = (
        f"cd {ROOT} && exec env HOME={home} XDG_CONFIG_HOME={home} PYTHONPATH={ROOT} {extra_env} {PY} -m tui.cli --demo "
        f"--scenario {args.scenario} --nodes {args.nodes}"
    )
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd], check=True)
    samples: list[tuple[float, float, float]] = []
    cpu: list[tuple[float, float]] = []  # (seconds, app CPU seconds so far)
    try:
        pid = int(
            subprocess.run(
                ["tmux", "display", "-p", "-t", session, "#{pane_pid}"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        tab = 0
        while True:
            now = time.monotonic()
            app = rss_mb(pid)
            if app is None:
                print("memory_bench: the app exited", file=sys.stderr)
                break
            lab = sum(rss_mb(c) or 0.0 for c in descendants(pid))
            samples.append((now - t0, app, lab))
            used = cpu_s(pid)
            if used is not None:
                cpu.append((now - t0, used))
            print(f"{now - t0:6.0f} s  app {app:7.1f} MB  lab {lab:7.1f} MB", flush=True)
            if now >= end:
                break
            if not args.no_tabs:
                tab = tab % 5 + 1
                subprocess.run(["tmux", "send-keys", "-t", session, str(tab)], capture_output=True)
            time.sleep(max(0.0, t0 + len(samples) * PERIOD - time.monotonic()))
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], capture_output=True)
        time.sleep(3)
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    if args.csv:
        with open(args.csv, "w") as f:
            f.write("seconds,app_mb,lab_mb\n")
            f.writelines(f"{t:.1f},{a:.1f},{b:.1f}\n" for t, a, b in samples)
    if not samples:
        return 3
    at_1min = next((a for t, a, _ in samples if t >= 60), float("nan"))
    app_series = [(t, a) for t, a, _ in samples]
    half = [(t, a) for t, a in app_series if t >= samples[-1][0] / 2]
    mean_half = statistics.fmean(a for _, a in half)
    spread = max(abs(a - mean_half) for _, a in half) / mean_half * 100
    peak = max(a for _, a in app_series)
    # the floor: each minute's lowest sample (between SNAT refreshes, whose parse lifts RSS
    # for a few seconds until the pages are trimmed back): does the app itself grow?
    minutes: dict[int, list[float]] = {}
    for t, a in half:
        minutes.setdefault(int(t // 60), []).append(a)
    whole = int(60 / PERIOD) - 1  # a minute cut by the run's start or end says nothing of its floor
    floor = [(m * 60.0, min(v)) for m, v in sorted(minutes.items()) if len(v) >= whole] or [half[0]]
    floor_mean = statistics.fmean(a for _, a in floor)
    floor_spread = max(abs(a - floor_mean) for _, a in floor) / floor_mean * 100
    cpu_half = [(t, c) for t, c in cpu if t >= samples[-1][0] / 2]
    cpu_pct = (
        100 * (cpu_half[-1][1] - cpu_half[0][1]) / (cpu_half[-1][0] - cpu_half[0][0])
        if len(cpu_half) >= 2 and cpu_half[-1][0] > cpu_half[0][0]
        else float("nan")
    )
    figures = {
        "minutes": round(samples[-1][0] / 60, 1),
        "nodes": args.nodes,
        "scenario": args.scenario,
        "app_mb_1min": round(at_1min, 1),
        "app_mb_peak": round(peak, 1),
        "app_mb_last": round(samples[-1][1], 1),
        "slope_mb_per_min": round(slope_mb_per_min(app_series), 2),
        "slope_2nd_half_mb_per_min": round(slope_mb_per_min(half), 2),
        "spread_2nd_half_pct": round(spread, 1),
        "floor_slope_2nd_half_mb_per_min": round(slope_mb_per_min(floor), 2),
        "floor_spread_2nd_half_pct": round(floor_spread, 1),
        "refresh_transient_mb": round(max(a for _, a in half) - min(a for _, a in floor), 1),
        "lab_mb_last": round(samples[-1][2], 1),
        "app_cpu_pct_2nd_half": round(cpu_pct, 1),  # % of one core; with --no-tabs: the app left alone
        "under_400mb": peak <= TARGET_MB,
        "flat_5pct": spread <= FLAT_PCT,
        "floor_flat_5pct": floor_spread <= FLAT_PCT,
    }
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
