"""HTTPS probe benchmark: 1,000 ingress hosts probed through the service against ten
loopback endpoints (many hosts per endpoint, told apart by SNI, as behind an ingress
controller).

    .venv/bin/python bench/tls_bench.py [--hosts 1000] [--concurrency 64 ...] [--quick]

Loopback only (127.0.0.41-50): nothing leaves the machine. The endpoints run in a child
process (``python -m probes.lab.tlshosts``) so their handshakes do not share our GIL;
their CPU is read from /proc and shown apart.

The endpoints: seven TLS listeners (controllers) serving the hosts' certificates by SNI
(of the hosts on them: 85 % valid, 5 % expiring, 4 % expired, 3 % wrong host, 3 %
self-signed), one refused port, one plain-HTTP port, and one that accepts and never
answers (1 % of the hosts: each of those holds a slot for the whole timeout).

For each concurrency, with a fresh lab: a **cold** round (the lab issues each host's
certificate on its first handshake, we parse and verify each certificate once) and a
**warm** round (a second service, same lab: nothing to issue, parse or verify again). Per round: wall time until every host has a result, our CPU (the bench process:
the service's loop thread included), the lab's CPU, handshake p50/p95 from the history,
the peak handshakes in flight, the outcome counts, and what probing every host every
30 s (the default interval) would cost us in CPU share.
The last line prints key=value pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probes.dns.service import wait_for  # noqa: E402
from probes.ingress import certcheck  # noqa: E402
from probes.ingress.certcheck import parse_cert  # noqa: E402
from probes.ingress.httpsservice import DEFAULT_INTERVAL, HttpsService, HttpsSettings  # noqa: E402
from probes.ingress.tlsprobe import DEFAULT_CONCURRENCY  # noqa: E402

TLS_IPS = [f"127.0.0.{41 + i}" for i in range(7)]
REFUSED_IP, PLAIN_IP, HANG_IP = "127.0.0.48", "127.0.0.49", "127.0.0.50"


def specs(n: int) -> list[list[str]]:
    """[host, kind, ip, endpoint] rows: deterministic, spread over the ten endpoints."""
    out = []
    for i in range(n):
        host = f"app{i:04d}.ingress.lab.test"
        r = i % 100
        if r == 0:
            out.append([host, "hang", HANG_IP, ""])
        elif r in (1, 2):
            out.append([host, "refused", REFUSED_IP, ""])
        elif r in (3, 4):
            out.append([host, "plaintext", PLAIN_IP, ""])
        else:
            kind = (
                "expiring"
                if r < 10
                else "expired"
                if r < 14
                else "wrong-host"
                if r < 17
                else "self-signed"
                if r < 20
                else "valid"
            )
            out.append([host, kind, TLS_IPS[i % len(TLS_IPS)], ""])
    return out


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, seconds (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(hosts: list[tuple[str, str, int]], ca: str, concurrency: int, lab_pid: int, timeout: float) -> dict:
    s = HttpsSettings(ca_bundle=ca, interval=3600.0, timeout=timeout, concurrency=concurrency, jitter=0.0)
    svc = HttpsService(lambda: hosts, s, poll=0.02, refresh=3600.0)
    cpu0, lab0, t0 = time.process_time(), proc_cpu(lab_pid), time.monotonic()
    svc.start()
    try:
        ok = wait_for(lambda: len(svc.history.keys()) >= len(hosts), 120.0, step=0.01)
        wall = time.monotonic() - t0
        cpu, lab_cpu = time.process_time() - cpu0, proc_cpu(lab_pid) - lab0
        results = [svc.history.stats(k).last for k in svc.history.keys()]
        peak = svc._probe.peak_inflight if svc._probe is not None else 0
    finally:
        svc.stop()
    hs = sorted(r.latency_ms for r in results if r.success)
    return {
        "complete": ok,
        "wall_s": wall,
        "cpu_s": cpu,
        "lab_cpu_s": lab_cpu,
        "p50_ms": statistics.median(hs) if hs else float("nan"),
        "p95_ms": hs[int(0.95 * (len(hs) - 1))] if hs else float("nan"),
        "peak": peak,
        "outcomes": Counter(getattr(r.outcome, "value", f"job {r.outcome}: {r.error}") for r in results),
        "results": len(results),
    }


@contextmanager
def lab_process(spec_path: str) -> Iterator[tuple[dict, int]]:
    """The endpoints in a child process (its handshakes do not share our GIL)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    lab = subprocess.Popen(
        [sys.executable, "-m", "probes.lab.tlshosts", spec_path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert lab.stdout is not None
        yield json.loads(lab.stdout.readline()), lab.pid
    finally:
        if lab.stdin is not None:
            lab.stdin.close()
        try:
            lab.wait(15)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait(5)
        if lab.stdout is not None:
            lab.stdout.close()


def report(kv: dict[str, str], n: int, c: int, label: str, r: dict) -> None:
    share = 100.0 * r["cpu_s"] / DEFAULT_INTERVAL
    print(
        f"concurrency {c:4d} {label}: {r['results']}/{n} hosts in {r['wall_s']:.2f} s; "
        f"our CPU {r['cpu_s']:.2f} s ({1000 * r['cpu_s'] / n:.2f} ms/host), lab CPU {r['lab_cpu_s']:.2f} s; "
        f"handshake p50 {r['p50_ms']:.1f} ms p95 {r['p95_ms']:.1f} ms; peak in flight {r['peak']}; "
        f"every {DEFAULT_INTERVAL:g} s: {share:.1f} % of a core",
        flush=True,
    )
    print(f"    outcomes: {dict(sorted(r['outcomes'].items()))}", flush=True)
    tag = f"c{c}_{label}"
    kv.update(
        {
            f"{tag}_wall_s": f"{r['wall_s']:.2f}",
            f"{tag}_cpu_s": f"{r['cpu_s']:.2f}",
            f"{tag}_lab_cpu_s": f"{r['lab_cpu_s']:.2f}",
            f"{tag}_p50_ms": f"{r['p50_ms']:.1f}",
            f"{tag}_p95_ms": f"{r['p95_ms']:.1f}",
            f"{tag}_complete": str(r["complete"] and r["results"] == n).lower(),
        }
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[DEFAULT_CONCURRENCY])
    ap.add_argument("--timeout", type=float, default=3.0, help="the probe's TCP + TLS bound (default: the product's)")
    ap.add_argument("--quick", action="store_true", help="200 hosts")
    a = ap.parse_args()
    n = 200 if a.quick else a.hosts
    rows = specs(n)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(rows, f)
        spec_path = f.name
    kv: dict[str, str] = {"hosts": str(n), "endpoints": "10", "cpus": str(os.cpu_count())}
    kv["load_before"] = f"{os.getloadavg()[0]:.1f}"
    try:
        for c in a.concurrency:
            # a fresh lab and empty caches for each concurrency: its cold round is cold
            parse_cert.cache_clear()
            certcheck._passed.clear()
            with lab_process(spec_path) as (info, pid):
                hosts = [(h, ip, port) for h, (ip, port, _) in info["hosts"].items()]
                endpoints = {(ip, port) for _, ip, port in hosts}
                print(
                    f"{n} hosts on {len(endpoints)} loopback endpoints (lab pid {pid}); "
                    f"load average {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                for label in ("cold", "warm"):
                    r = one_round(hosts, info["ca"], c, pid, a.timeout)
                    report(kv, n, c, label, r)
        kv["load_after"] = f"{os.getloadavg()[0]:.1f}"
        kv["max_rss_mb"] = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
    finally:
        os.unlink(spec_path)
    print(" ".join(f"{k}={v}" for k, v in kv.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
