"""Can the agent be starved? `/healthz` as the kubelet asks it, while idle connections squat.

    .venv/bin/python bench/agent_starve_bench.py [--idle 500] [--seconds 20] [--reopen fast|4]

Loopback only. `aksnet-top agent run` runs as a subprocess with nothing to probe; this
process holds `--idle` connections to its port that never send a byte, and re-opens each
one the agent closes: at once (`--reopen fast`, a flood) or at the next tick of N seconds
(issue 12's case: 40 connections re-opened every 4 s made 17 of 22 probes fail). A prober
thread opens a new connection every 0.2 s, sends ``GET /healthz`` and waits up to 1 s
(the kubelet's default probe timeout). Printed: probes answered within 1 s, latency
p50/p95/max of those, connections re-opened per second; the last line is key=value pairs.
Target: >= 95 % answered.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _open(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    return s


def _closed(s: socket.socket) -> bool:
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _healthz(port: int, timeout: float = 1.0) -> float | None:
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: agent\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
                s.settimeout(max(0.001, timeout - (time.monotonic() - t0)))
    except OSError:
        return None
    took = time.monotonic() - t0
    return took if data.startswith(b"HTTP/1.1 200 ") and took <= timeout else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--idle", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--reopen", default="fast", help="fast, or a tick in seconds")
    a = ap.parse_args()
    tick = 0.0 if a.reopen == "fast" else float(a.reopen)
    args = ["agent", "run", "--node", "n1", "--bind", "127.0.0.1", "--port", "0", "--mode", "connect", "--confine"]
    args += ["--no-aks-defaults", "--kube-dns", "127.0.0.1", "--interval", "60"]
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli", *args], stderr=subprocess.PIPE, text=True, env=env)
    idle: list[socket.socket] = []
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        port = int(line.split("listening on 127.0.0.1:")[1].split(":")[0])
        idle = [_open(port) for _ in range(a.idle)]
        results: list[float | None] = []
        stop = threading.Event()

        def prober() -> None:
            while not stop.wait(0.2):
                results.append(_healthz(port))

        t = threading.Thread(target=prober, daemon=True)
        t.start()
        end = time.monotonic() + a.seconds
        next_tick = time.monotonic() + tick
        reopened, dead = 0, []
        while time.monotonic() < end:
            readable, _, _ = select.select([s for s in idle if s.fileno() >= 0], [], [], 0.05)
            for s in readable:
                if _closed(s):
                    s.close()
                    dead.append(idle.index(s))
            if dead and time.monotonic() >= next_tick:
                for i in dead:
                    idle[i] = _open(port)
                reopened += len(dead)
                dead = []
                next_tick = time.monotonic() + tick
        stop.set()
        t.join(5)
        ok = sorted(r for r in results if r is not None)
        pct = 100.0 * len(ok) / max(1, len(results))
        p50 = ok[len(ok) // 2] * 1000 if ok else float("nan")
        p95 = ok[min(len(ok) - 1, int(len(ok) * 0.95))] * 1000 if ok else float("nan")
        mx = ok[-1] * 1000 if ok else float("nan")
        print(
            f"{a.idle} idle connections, re-open {a.reopen}: {len(ok)}/{len(results)} /healthz within 1 s ({pct:.0f} %)"
        )
        print(f"latency of the answered: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {mx:.1f} ms")
        print(f"re-opened {reopened / a.seconds:.0f} connections/s")
        print(
            f"idle={a.idle} reopen={a.reopen} probes={len(results)} ok={len(ok)} ok_pct={pct:.1f} "
            f"p50_ms={p50:.1f} p95_ms={p95:.1f} max_ms={mx:.1f} reopen_per_s={reopened / a.seconds:.0f}"
        )
    finally:
        for s in idle:
            s.close()
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
