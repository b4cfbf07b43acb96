"""What shared viewing costs the engine: its process's CPU with 0, 1 and 3 viewers
attached, at 1,000 nodes, for 60 s each (target: ≤ 5 % of one core per viewer).

The engine is a process of its own that builds frames the way the publisher does, at the
app's 4 frames a second (`bench/recorder_bench.py`'s World: every node a DNS vantage of 3
resolvers × 2 names probed every 5 s and an egress vantage of 5 targets every 10 s, agents
read at 5/s, a node flapping every minute) and offers each one to a `probes.share.host.Host`
on a real socket. Each viewer is a process of its own running `ViewerPublisher` (what the
attached app runs, without the screen). The engine's CPU (`time.process_time`, every
thread) is measured over the window after every viewer got its first frame.

    PYTHONPATH=$PWD .venv/bin/python bench/attach_bench.py [--seconds 60] [--nodes 1000] [--viewers 0,1,3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the repository root, when run as a script


def engine(key: str, nodes: int, seconds: float, viewers: int) -> None:
    """The engine's process: frames at 4/s to the host; once `viewers` are attached (and
    got their first frame), `seconds` measured. Prints one JSON line at the end."""
    sys.path.insert(0, HERE)
    from recorder_bench import FPS, World  # lazy: a benchmark's child process

    from probes.share.host import Host  # lazy: the child process only
    from probes.share.place import place_for, try_own  # lazy: the child process only

    world = World(nodes)
    owned = try_own(place_for(key))
    assert owned is not None
    host = Host(owned, banner="bench")
    print("ready", flush=True)
    period = 1.0 / FPS
    next_at = time.monotonic()
    measuring_from: tuple[float, float] | None = None
    end = float("inf")
    frames = 0
    while time.monotonic() < end:
        host.offer(world.step(time.time()))
        frames += 1
        if measuring_from is None and host.viewers >= viewers and host.messages >= (1 if viewers else 0):
            time.sleep(2.0)  # the first keyframes go out before the window opens
            next_at = time.monotonic()
            measuring_from = (time.process_time(), time.monotonic())
            end = time.monotonic() + seconds
            frames = 0
        next_at += period
        time.sleep(max(0.0, next_at - time.monotonic()))
    assert measuring_from is not None
    cpu = time.process_time() - measuring_from[0]
    wall = time.monotonic() - measuring_from[1]
    sent = host.messages
    dropped = [v.dropped for v in host._viewers]
    host.close()
    print(json.dumps({"cpu": cpu, "wall": wall, "frames": frames, "messages": sent, "dropped": dropped}), flush=True)


def viewer(key: str) -> None:
    """A viewer's process: attach, take frames until the owner leaves; print how many."""
    from probes.share.place import connect, place_for  # lazy: the child process only
    from probes.share.viewer import ViewerPublisher  # lazy: the child process only

    sock = connect(place_for(key))
    assert sock is not None
    v = ViewerPublisher(sock)
    v.publish()
    done = []
    v.start(lambda f: done.append(f.seq) if f.error else None)
    while not done and not v.gone:
        time.sleep(0.2)
    print(json.dumps({"frames": v.frames, "bytes": v.reader.received, "cpu": time.process_time()}), flush=True)
    v.stop()


def one(nodes: int, seconds: float, viewers: int) -> dict[str, float]:
    key = f"bench-{os.getpid()}-{viewers}"
    cmd = [sys.executable, os.path.abspath(__file__)]
    eng = subprocess.Popen(
        [*cmd, "--engine", key, "--nodes", str(nodes), "--seconds", str(seconds), "--viewers", str(viewers)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert eng.stdout is not None and eng.stdout.readline().strip() == "ready"
    vs = [subprocess.Popen([*cmd, "--viewer", key], stdout=subprocess.PIPE, text=True) for _ in range(viewers)]
    out = json.loads(eng.stdout.readline())
    eng.wait(30)
    got = [json.loads(v.communicate(timeout=30)[0].strip().splitlines()[-1]) for v in vs]
    out["viewer_frames"] = [g["frames"] for g in got]
    out["viewer_mb"] = [round(g["bytes"] / 1e6, 1) for g in got]
    out["viewer_cpu"] = [round(g["cpu"], 1) for g in got]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--viewers", default="0,1,3")
    ap.add_argument("--engine", metavar="KEY")
    ap.add_argument("--viewer", metavar="KEY")
    ns = ap.parse_args()
    if ns.engine:
        return engine(ns.engine, ns.nodes, ns.seconds, int(ns.viewers))
    if ns.viewer:
        return viewer(ns.viewer)
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="attach-bench-"))
    counts = [int(x) for x in ns.viewers.split(",")]
    results = {n: one(ns.nodes, ns.seconds, n) for n in counts}
    base = results[counts[0]]
    base_pct = 100 * base["cpu"] / base["wall"]
    print(f"{ns.nodes} nodes, {ns.seconds:g} s per run, 4 frames/s")
    for n, r in results.items():
        pct = 100 * r["cpu"] / r["wall"]
        per = (pct - base_pct) / n if n else 0.0
        extra = f"; +{per:.2f} % of one core per viewer" if n else ""
        print(
            f"{n} viewer(s): engine CPU {r['cpu']:.1f} s in {r['wall']:.0f} s = {pct:.1f} % of one core{extra}"
            + (
                f"\n    viewers: frames built {r['viewer_frames']}, MB received {r['viewer_mb']}, "
                f"their own CPU s {r['viewer_cpu']}, queue overflows {r['dropped']}"
                if n
                else ""
            )
        )


if __name__ == "__main__":
    main()
