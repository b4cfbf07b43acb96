"""DNS probe benchmark: latency accuracy (vs dig) and sustained throughput.

    .venv/bin/python bench/dns_bench.py [--quick]

The responder runs in its own process (python -m probes.lab.dnsserver) so it does not
share a GIL with the probe. The last line prints key=value pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probes.dns.probe import DnsOutcome, DnsProbe  # noqa: E402
from probes.dns.resolvers import Resolver, ResolverKind  # noqa: E402
from probes.lab.dnsserver import Zone  # noqa: E402

NAME = "kubernetes.default.svc.cluster.local"


@contextmanager
def responder(delay_ms: float):
    p = subprocess.Popen(
        [sys.executable, "-m", "probes.lab.dnsserver", "--delay", str(delay_ms)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(p.stdout.readline())
        yield port
    finally:
        p.stdin.close()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def ours(port: int, n: int) -> list[float]:
    probe = DnsProbe(timeout=2.0)
    r = Resolver("bench", ResolverKind.CUSTOM, "127.0.0.1", port)
    for _ in range(5):  # warm up
        await probe.query(r, NAME)
    out = []
    for _ in range(n):
        res = await probe.query(r, NAME)
        assert res.outcome is DnsOutcome.OK, res
        out.append(res.latency_ms)
    return out


def dig(port: int, n: int) -> list[float]:
    out = []
    for _ in range(n):
        p = subprocess.run(
            ["dig", "@127.0.0.1", "-p", str(port), "+tries=1", "+time=2", NAME, "A"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        m = re.search(r"Query time: (\d+) (msec|usec)", p.stdout)
        if m:
            v = float(m.group(1))
            out.append(v / 1000.0 if m.group(2) == "usec" else v)
    return out


async def throughput(port: int, seconds: float, window: int) -> tuple[int, int, int, float]:
    probe = DnsProbe(timeout=2.0)
    r = Resolver("bench", ResolverKind.CUSTOM, "127.0.0.1", port)
    zone = Zone()
    ok = bad = lost = 0
    counter = 0
    end = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal ok, bad, lost, counter
        while time.perf_counter() < end:
            counter += 1
            name = f"q{counter}.bench.example.com"
            res = await probe.query(r, name)
            if res.outcome is not DnsOutcome.OK:
                lost += 1
                continue
            _, ip = zone.lookup(__import__("dns.name").name.from_text(name))
            # the answer must be for this query: same name, and the address the responder
            # derives from this name
            if res.qname == name and f"{name}. 30 IN A {ip}" in res.raw:
                ok += 1
            else:
                bad += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(window)))
    return ok, bad, lost, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n_ours = {1: 300, 10: 150, 100: 30} if not a.quick else {1: 50, 10: 30, 100: 10}
    n_dig = {1: 40, 10: 30, 100: 15} if not a.quick else {1: 10, 10: 10, 100: 5}
    have_dig = shutil.which("dig") is not None
    kv: dict[str, str] = {}
    ok_all = True
    for d in (1, 10, 100):
        with responder(d) as port:
            lat = asyncio.run(ours(port, n_ours[d]))
            med = statistics.median(lat)
            err = statistics.median(abs(x - d) for x in lat)
            line = f"delay {d:>3} ms: ours median {med:.3f} ms, |err| median {err:.3f} ms"
            kv[f"ours_med_{d}ms"] = f"{med:.3f}"
            kv[f"ours_err_{d}ms"] = f"{err:.3f}"
            ok_all &= err <= 0.5
            if have_dig:
                dl = dig(port, n_dig[d])
                if dl:
                    dmed = statistics.median(dl)
                    derr = statistics.median(abs(x - d) for x in dl)
                    kv[f"dig_med_{d}ms"] = f"{dmed:.3f}"
                    kv[f"dig_err_{d}ms"] = f"{derr:.3f}"
                    line += f"; dig median {dmed:.3f} ms, |err| {derr:.3f} ms"
                    ok_all &= err <= derr * 1.2 + 0.5
            print(line, flush=True)
    with responder(0) as port:
        secs = 2.0 if a.quick else 5.0
        ok, bad, lost, el = asyncio.run(throughput(port, secs, 64))
    qps = ok / el
    print(f"throughput: {ok} good answers in {el:.2f} s = {qps:.0f} q/s; mis-attributed {bad}, lost {lost}", flush=True)
    kv.update(
        qps=f"{qps:.0f}",
        answered=str(ok),
        misattributed=str(bad),
        lost=str(lost),
        cpus=str(os.cpu_count()),
        targets_met=str(ok_all and bad == 0 and lost == 0).lower(),
    )
    print(" ".join(f"{k}={v}" for k, v in kv.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
