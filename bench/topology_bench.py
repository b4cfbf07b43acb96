"""Foundation benchmark: topology collection vs kubectl, peak RSS, and time to first frame.

    .venv/bin/python bench/topology_bench.py [--nodes 5000] [--repeat 3] [--no-tui] [--root DIR]

Starts `aksnet-top lab` in its own process with N generated nodes, then, against that
same server, times (median of --repeat runs) and measures peak RSS of:
  - `kubectl get nodes` and `kubectl get nodes -o json` (output checked for N nodes)
  - aksnet-top's collection, in a fresh process: from KubeSource.start() to a complete
    Topology (nodes, DNS pods, services listed and parsed). "warm": the HTTP client and
    YAML are already imported (as in the app, where that import overlaps start-up);
    "cold": the clock also runs through that import. And the whole process (cold), which
    starts and ends as the `aksnet-top` command does (tui.cli.console_main: probes.memtune
    first; a flush and os._exit last, no interpreter teardown).
then the time from launching `aksnet-top --demo` in an 80×24 tmux pane to its first frame
and to the first node on screen (skip it with --no-tui). The last line prints every figure
as key=value.

The machine is usually shared, so the runs are interleaved (kubectl, ours cold, kubectl,
ours cold, …) and every ratio is taken pair by pair, then the median of the pair ratios:
a burst of load elsewhere then slows both sides of a pair, not one figure. --root runs the
aksnet-top collection from another checkout (e.g. a `git archive` of an older commit);
--compare DIR adds a cold run from checkout DIR to every round, so before and after meet
the same lab and the same load. The collection runs with its bytecode compiled (in a
private cache, warmed by one unmeasured run), as an installed aksnet-top has it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent / "aksnet-top"

COLLECT = r"""
import json, sys, time
t_start = time.perf_counter()
try:  # what the `aksnet-top` entry point does first (an older checkout has no such module)
    from probes.memtune import tune_malloc
    tune_malloc()
except ImportError:
    pass
from probes.config import KubeConfig
from probes.kube.source import KubeSource
from probes.engine.store import Store
if sys.argv[2] == "warm":  # what the app has imported by the time it connects
    try:
        import probes.kube.client, yaml
    except ImportError:  # an older checkout: the official client
        import kubernetes.client, kubernetes.config
t0 = time.perf_counter()
store = Store()
src = KubeSource(store, KubeConfig(kubeconfig=sys.argv[1]))
src.start()
ok = src.wait_synced(120)
topo = store.snapshot().topology
t1 = time.perf_counter()
src.stop()
import probes
print(json.dumps({"ok": ok, "collect_s": t1 - t0, "import_s": t0 - t_start, "nodes": len(topo.nodes), "pools": len(topo.pools), "src": probes.__path__[0]}))
# and what it does last (tui.cli.console_main): flush, then leave without tearing the
# interpreter down (its final collections walk every object: 40-150 ms here)
sys.stdout.flush()
import os
os._exit(0)
"""


# Linux carries a process's peak RSS across fork+exec, so a child forked straight from this
# (large) process would report at least our own size. A tiny launcher forks the command
# instead and reports the command's own wall time and peak RSS.
LAUNCHER = r"""
import json, os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"wall": time.perf_counter() - t0, "rss_mb": ru.ru_maxrss / 1024.0, "rc": os.waitstatus_to_exitcode(status)}, f)
"""


def run_measured(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, float, str]:
    """Run cmd (in `cwd`); return (wall seconds, peak RSS MB of the command itself, stdout)."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as rep:
        proc = subprocess.run([PY, "-c", LAUNCHER, rep.name, *cmd], capture_output=True, env=env, cwd=cwd)
        doc = json.load(open(rep.name))
    if doc["rc"] != 0 or proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {proc.stderr.decode()[-500:]}")
    return doc["wall"], doc["rss_mb"], proc.stdout.decode()


def wire_bytes(kubeconfig: Path) -> dict[str, float]:
    """Bytes on the wire for listing every node in pages of 500, as the topology lists them:
    plain, and with the gzip the client asks for (the lab compresses as an API server does)."""
    sys.path.insert(0, str(ROOT))
    from probes.kube import connect

    api, _ = connect.load(str(kubeconfig))
    out: dict[str, float] = {}
    try:
        for label, headers in (("plain", {"Accept": "application/json"}), ("gzip", connect.GET_HEADERS)):
            total, cont = 0, ""
            while True:
                query = [("limit", "500")] + ([("continue", cont)] if cont else [])
                resp = api.request("GET", "/api/v1/nodes", query, headers=headers, stream=True)
                raw = resp.read(decode_content=False)
                resp.release_conn()
                total += len(raw)
                body = gzip.decompress(raw) if resp.headers.get("Content-Encoding") == "gzip" else raw
                cont = json.loads(body)["metadata"].get("continue") or ""
                if not cont:
                    break
            out[f"wire_mb_{label}"] = round(total / 1e6, 2)
    finally:
        api.close()
    return out


def start_lab(nodes: int, scenario: str, tmp: Path) -> tuple[subprocess.Popen[bytes], Path]:
    kubeconfig = tmp / "kubeconfig"
    proc = subprocess.Popen(
        [str(BIN), "lab", "--scenario", scenario, "--nodes", str(nodes), "--kubeconfig-out", str(kubeconfig)],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not kubeconfig.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"lab did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.05)
    return proc, kubeconfig


def first_frame(timeout: float = 20.0) -> tuple[float, float]:
    """Seconds from launch to the first drawn frame, and to the first node row on screen."""
    if not shutil.which("tmux"):
        return float("nan"), float("nan")
    session = f"aksnet-bench-{os.getpid()}"
    t0 = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", f"{BIN} --demo"], check=True)
    frame = topo = float("nan")
    try:
        while time.perf_counter() - t0 < timeout:
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
            now = time.perf_counter() - t0
            if frame != frame and ("Quit" in screen or "starting" in screen or "connecting" in screen):
                frame = now
            if "vmss000000" in screen:
                topo = now
                break
            time.sleep(0.005)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return frame, topo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--scenario", default="overlay", help="lab scenario to scale (default overlay: AKS allows 5,000 overlay nodes)"
    )
    ap.add_argument("--no-tui", action="store_true", help="skip the tmux first-frame measurement")
    ap.add_argument("--no-json", action="store_true", help="skip `kubectl get nodes -o json` (slow at 5,000 nodes)")
    ap.add_argument(
        "--root", type=Path, default=ROOT, help="checkout whose probes/ the collection imports (default: this one)"
    )
    ap.add_argument(
        "--compare",
        type=Path,
        default=None,
        metavar="DIR",
        help="also run the cold collection from checkout DIR in every round (before/after in one run)",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="print each interleaved pair")
    args = ap.parse_args()
    kubectl = shutil.which("kubectl")
    if not kubectl:
        raise SystemExit("kubectl not found (apt-get install kubernetes-client)")
    figures: dict[str, float | int | str] = {"nodes": args.nodes}
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        lab, kubeconfig = start_lab(args.nodes, args.scenario, tmp)
        try:
            env = dict(os.environ, KUBECONFIG=str(kubeconfig), HOME=str(tmp))  # fresh kubectl discovery cache each run
            rows = {
                "kubectl_get_nodes": [kubectl, "get", "nodes"],
                "kubectl_get_nodes_json": [kubectl, "get", "nodes", "-o", "json"],
            }
            # An installed aksnet-top has its bytecode compiled at install time; so do we, in a
            # private cache (the tree is left alone), warmed by one unmeasured run.
            ours_env = dict(os.environ, PYTHONPATH=str(args.root), PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
            ours_env.pop("PYTHONDONTWRITEBYTECODE", None)
            # `python -c` puts its working directory first on sys.path, ahead of PYTHONPATH: each
            # checkout's collection runs from that checkout, or every run would import this one
            run_measured([PY, "-c", COLLECT, str(kubeconfig), "cold"], ours_env, args.root)
            other_env = dict(ours_env, PYTHONPATH=str(args.compare), PYTHONPYCACHEPREFIX=str(tmp / "pycache-compare"))
            if args.compare:
                run_measured([PY, "-c", COLLECT, str(kubeconfig), "cold"], other_env, args.compare)
            walls: dict[str, list[float]] = {}
            rss: dict[str, list[float]] = {}
            collect: dict[str, list[float]] = {}
            ratios: dict[str, list[float]] = {"process": [], "collect_cold": [], "collect_warm": []}
            if args.no_json:
                del rows["kubectl_get_nodes_json"]

            def kubectl_run(key: str) -> None:
                cmd = rows[key]
                shutil.rmtree(tmp / ".kube", ignore_errors=True)
                wall, peak, out = run_measured(cmd, env)
                count = len(json.loads(out)["items"]) if cmd[-1] == "json" else len(out.strip().splitlines()) - 1
                if count != args.nodes:
                    raise SystemExit(f"{' '.join(cmd[1:])} saw {count} nodes, expected {args.nodes}")
                walls.setdefault(key, []).append(wall)
                rss.setdefault(key, []).append(peak)

            def ours_run(mode: str) -> None:
                wall, peak, out = run_measured([PY, "-c", COLLECT, str(kubeconfig), mode], ours_env, args.root)
                doc = json.loads(out.strip().splitlines()[-1])
                if Path(doc["src"]).resolve() != (args.root / "probes").resolve():
                    raise SystemExit(f"the collection imported {doc['src']}, not {args.root}")
                if not doc["ok"] or doc["nodes"] != args.nodes:
                    raise SystemExit(f"aksnet-top collected {doc}")
                collect.setdefault(mode, []).append(doc["collect_s"])
                walls.setdefault(f"aksnet_{mode}_process", []).append(wall)
                rss.setdefault(f"aksnet_{mode}", []).append(peak)
                ratios[f"collect_{mode}"].append(doc["collect_s"] / walls["kubectl_get_nodes"][-1])

            for _ in range(args.repeat):  # interleaved: the pair that makes the ratio runs back to back
                kubectl_run("kubectl_get_nodes")
                ours_run("cold")
                ratios["process"].append(walls["aksnet_cold_process"][-1] / walls["kubectl_get_nodes"][-1])
                if args.compare:  # the other checkout, right after, against the same kubectl run
                    wall, _, _out = run_measured([PY, "-c", COLLECT, str(kubeconfig), "cold"], other_env, args.compare)
                    src = json.loads(_out.strip().splitlines()[-1])["src"]
                    if Path(src).resolve() != (args.compare / "probes").resolve():
                        raise SystemExit(f"the --compare collection imported {src}, not {args.compare}")
                    walls.setdefault("compare_cold_process", []).append(wall)
                    ratios.setdefault("compare_process", []).append(wall / walls["kubectl_get_nodes"][-1])
                ours_run("warm")
                if "kubectl_get_nodes_json" in rows:
                    kubectl_run("kubectl_get_nodes_json")
            for key in rows:
                figures[f"{key}_s"] = round(statistics.median(walls[key]), 3)
                figures[f"{key}_rss_mb"] = round(max(rss[key]), 1)
            for mode in ("warm", "cold"):
                figures[f"aksnet_collect_{mode}_s"] = round(statistics.median(collect[mode]), 3)
                figures[f"aksnet_{mode}_process_s"] = round(statistics.median(walls[f"aksnet_{mode}_process"]), 3)
                figures[f"aksnet_{mode}_peak_rss_mb"] = round(max(rss[f"aksnet_{mode}"]), 1)
            figures["collect_warm_vs_kubectl_get_nodes"] = round(statistics.median(ratios["collect_warm"]), 3)
            figures["collect_cold_vs_kubectl_get_nodes"] = round(statistics.median(ratios["collect_cold"]), 3)
            figures["process_vs_kubectl_get_nodes"] = round(statistics.median(ratios["process"]), 3)
            figures.update(wire_bytes(kubeconfig))
            if args.compare:
                figures["compare_cold_process_s"] = round(statistics.median(walls["compare_cold_process"]), 3)
                figures["compare_process_vs_kubectl_get_nodes"] = round(statistics.median(ratios["compare_process"]), 3)
            if args.verbose:
                print(
                    "rounds (kubectl get nodes s, ours cold process s[, --compare's]):",
                    " ".join(
                        "(" + ",".join(f"{v:.3f}" for v in vals) + ")"
                        for vals in zip(
                            walls["kubectl_get_nodes"],
                            walls["aksnet_cold_process"],
                            *([walls["compare_cold_process"]] if args.compare else []),
                        )
                    ),
                )
        finally:
            lab.terminate()
            lab.wait(10)
    if not args.no_tui:
        frames = [first_frame() for _ in range(args.repeat)]
        figures["first_frame_s"] = round(statistics.median(f for f, _ in frames), 3)
        figures["first_topology_s"] = round(statistics.median(t for _, t in frames), 3)
    for k, v in figures.items():
        print(f"{k:32} {v}")
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
