"""Egress probe benchmark: a round of 500 dropped targets, and handshake time vs nc -z.

    .venv/bin/python bench/egress_bench.py [--quick]

Loopback only (127.0.0.0/8): nothing leaves the machine, the default AKS targets are never
dialled. The last line prints key=value pairs.

1. Round time: 500 distinct targets (500 listeners on 127.0.0.4 whose accept queues are
   full, so the kernel drops every SYN) with a 2 s timeout must finish one round in at
   most 2.5 s — connect mode, and SYN mode when root.
2. Handshake time vs ``nc -z`` against the same loopback listener, handshake to
   handshake. nc prints no time and its process start (exec, dynamic linking) costs far
   more than a loopback handshake, so timing nc's whole run would compare process start-up,
   not handshakes. Instead ``strace -T nc -z host port`` gives the time nc spent inside its
   non-blocking connect() and the pselect6() that waits for the socket to become writable:
   SYN sent → SYN-ACK processed. Ours is the latency our probe reports (connect mode:
   connect_ex → socket writable; SYN mode: SYN sent → SYN-ACK read). The listener runs in
   a separate process so its accept thread does not contend for our GIL. strace's
   exit stop adds a few µs to nc's figure, so a third reference is shown too: an
   in-process blocking connect timed with perf_counter (no tracer, no event loop), the
   floor any tool can reach, sampled interleaved with ours (a loopback handshake costs
   2-3x more when the path is cold, so a back-to-back floor would be unfair). Gate (connect
   mode, the brief's): median(ours) / median(nc) <= 1.2. The floor ratio is reported, not
   gated: on a busy 2-core machine it moves between about 1.0 and 1.3 from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probes.egress.probe import EgressOutcome, EgressProbe, raise_nofile_limit  # noqa: E402
from probes.lab.tcptargets import DropListener  # noqa: E402


async def _round(targets: list[str], mode: str) -> tuple[float, dict, int]:
    p = EgressProbe(mode=mode, timeout=2.0)
    t0 = time.monotonic()
    try:
        rs = await p.probe_all(targets)
    finally:
        await p.close()
    el = time.monotonic() - t0
    counts: dict[str, int] = {}
    for r in rs:
        counts[r.outcome.value] = counts.get(r.outcome.value, 0) + 1
    return el, counts, p.peak_inflight


def round_bench(n: int, kv: dict) -> bool:
    drops: list[DropListener] = []
    ok = True
    try:
        for i in range(n):
            drops.append(DropListener("127.0.0.4").start(verify=(i == 0)))
        targets = [d.endpoint.text for d in drops]
        modes = ["connect"] + (["syn"] if os.geteuid() == 0 else [])
        for mode in modes:
            el, counts, peak = asyncio.run(_round(targets, mode))
            good = counts.get("timeout", 0) == n and el <= 2.5
            ok &= good
            print(
                f"{mode}: {n} dropped targets, one round in {el:.3f} s (peak in flight {peak}); outcomes {counts}",
                flush=True,
            )
            kv[f"round_{mode}_s"] = f"{el:.3f}"
            kv[f"round_{mode}_timeouts"] = str(counts.get("timeout", 0))
    finally:
        for d in drops:
            d.stop()
    return ok


def nc_connect_us(host: str, port: int, n: int) -> list[float]:
    """nc's handshake: its non-blocking connect() plus the pselect6()/poll() that waits
    for writability, each as timed by strace -T (time inside the syscall; the user-space
    gap between them, inflated by the tracer, is left out: this errs in nc's favour)."""
    out = []
    pat = re.compile(r"^(connect|pselect6|select|poll|ppoll)\(.*<([0-9.]+)>$", re.M)
    for _ in range(n):
        r = subprocess.run(
            ["strace", "-T", "-e", "trace=connect,pselect6,select,poll,ppoll", "nc", "-z", host, str(port)],
            capture_output=True,
            text=True,
            timeout=10,
        )
        calls = pat.findall(r.stderr)
        idx = [i for i, (name, _) in enumerate(calls) if name == "connect"]
        if r.returncode != 0 or not idx:
            continue
        i = idx[-1]
        us = float(calls[i][1]) * 1e6
        if i + 1 < len(calls) and calls[i + 1][0] != "connect":
            us += float(calls[i + 1][1]) * 1e6
        out.append(us)
    return out


def ideal_us(host: str, port: int, n: int) -> list[float]:
    out = []
    for _ in range(n):
        s = socket.socket()
        t0 = time.perf_counter()
        s.connect((host, port))
        out.append((time.perf_counter() - t0) * 1e6)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    return out


async def ours_us(target: str, mode: str, n: int) -> tuple[list[float], list[float]]:
    """Our reported handshake times, each paired with a floor sample (blocking connect,
    perf_counter) taken right before it: loopback handshake cost depends on how warm the
    path is (back-to-back connects run 2-3x faster than spaced ones), so the floor must
    be sampled under the same conditions as our probe to be a fair reference."""
    host, _, port = target.rpartition(":")
    p = EgressProbe(mode=mode, timeout=2.0)
    out, floor = [], []
    try:
        for _ in range(5):
            await p.probe(target)  # warm up (imports, caches)
        for _ in range(n):
            floor.extend(ideal_us(host, int(port), 1))
            r = await p.probe(target)
            assert r.outcome is EgressOutcome.OPEN, r
            out.append(r.latency_ms * 1000.0)
    finally:
        await p.close()
    return out, floor


@contextmanager
def listener_process():
    """The loopback targets in their own process (python -m probes.lab.tcptargets), so the
    listener's accept thread does not share a GIL with the probe being measured."""
    p = subprocess.Popen(
        [sys.executable, "-m", "probes.lab.tcptargets"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield json.loads(p.stdout.readline())
    finally:
        p.stdin.close()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def handshake_bench(n: int, kv: dict) -> bool:
    have_nc = shutil.which("nc") and shutil.which("strace")
    ok = True
    with listener_process() as lab:
        target = lab["open"]
        host, _, p = target.rpartition(":")
        port = int(p)
        hot = statistics.median(ideal_us(host, port, n))
        kv["floor_hot_med_us"] = f"{hot:.1f}"
        print(f"in-process blocking connect, back to back: median {hot:.1f} µs", flush=True)
        nc = None
        if have_nc:
            samples = nc_connect_us(host, port, max(20, n // 5))
            if samples:
                nc = statistics.median(samples)
                kv["nc_med_us"] = f"{nc:.1f}"
                print(
                    f"nc -z connect()+pselect6() (strace -T): median {nc:.1f} µs over {len(samples)} runs", flush=True
                )
        else:
            print("nc or strace missing (apt-get install netcat-openbsd strace): no nc reference")
        for mode in ["connect"] + (["syn"] if os.geteuid() == 0 else []):
            mine, floor = asyncio.run(ours_us(target, mode, n))
            med, ideal = statistics.median(mine), statistics.median(floor)
            kv[f"ours_{mode}_med_us"] = f"{med:.1f}"
            kv[f"floor_{mode}_med_us"] = f"{ideal:.1f}"
            kv[f"ratio_{mode}_vs_floor"] = f"{med / ideal:.2f}"
            line = f"ours ({mode}): median {med:.1f} µs; interleaved floor {ideal:.1f} µs ({med / ideal:.2f}x)"
            if nc:
                ratio = med / nc
                kv[f"ratio_{mode}_vs_nc"] = f"{ratio:.2f}"
                line += f"; vs nc {ratio:.2f}x"
                if mode == "connect":
                    ok &= ratio <= 1.2
            print(line, flush=True)
        if nc is None:
            ok = False
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    soft, _ = raise_nofile_limit()
    kv: dict[str, str] = {"nofile": str(soft), "cpus": str(os.cpu_count()), "root": str(os.geteuid() == 0).lower()}
    ok = round_bench(500, kv)
    ok &= handshake_bench(100 if a.quick else 400, kv)
    kv["targets_met"] = str(ok).lower()
    print(" ".join(f"{k}={v}" for k, v in kv.items()))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
