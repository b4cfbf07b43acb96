"""Per-node agent benchmark: RSS and CPU of `aksnet-top agent run` at its default interval.

    .venv/bin/python bench/agent_bench.py [--minutes 10] [--mode connect|auto|syn] [--interval S]

Loopback only: the agent runs as a subprocess (``python -c 'from probes.agent.main import
run; …'``, what ``aksnet-top agent run`` calls) with the lab flags pointing its resolvers
(NodeLocal DNS, kube-dns) at the lab's DNS responders and its egress checks (AKS's
required endpoints and an API server target) at the lab's DNS and loopback TCP targets,
so it does what a production agent does every interval: 2 resolvers × 3 names of DNS
(the default names: two cluster names and one external), the CoreDNS pods the reader
hands it (``--coredns``, default 2, AKS's default replica count: 2 pods × 3 names more,
POD_QUERIES in probes/agent/core.py) and 8 TCP handshakes, each name resolved first. A reader in this process fetches
``/v1/results?since=cursor`` every 10 s, as the app would (far more often than the app's
one read per 10–200 s), and checks no result was missed; it also scrapes ``/metrics``
every 10 s, as a Prometheus with a short scrape interval would.

Every 10 s it samples the agent's RSS (VmRSS of /proc/PID/status) and CPU time
(utime + stime of /proc/PID/stat). It prints RSS at start (first sample after the agent
said it listens), after 1 minute, at the end and the maximum; the average CPU in
millicores from the first sample to the last (start-up imports excluded, they are shown
apart); and RSS growth per hour, the slope of a least-squares line through the last 80 %
of samples. Targets: RSS <= 60 MB, CPU <= 10 millicores, no growth. The last line is
key=value pairs.

``--mode connect`` (the default here) measures a pod where raw sockets are refused;
``--mode syn`` (root) measures what the DaemonSet runs by default, where the image's file
capability gives the non-root agent NET_RAW and ``--mode auto`` picks SYN mode. Neither
loads scapy: SYN segments and answer summaries are made with struct.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probes.agent.hint import CorednsPod, format_hint  # noqa: E402
from probes.agent.wire import decode  # noqa: E402
from probes.lab.dnsdemo import DnsDemo  # noqa: E402
from probes.lab.dnsspec import DnsLabSpec  # noqa: E402
from probes.lab.egressdemo import EgressDemo  # noqa: E402

CODE = "import sys\nfrom probes.agent.main import run\nsys.exit(run(sys.argv[1:]))\n"
SAMPLE = 10.0
TICK = os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK  # fields 14 and 15: utime, stime


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return 0.0 if den == 0 else sum((t - mx) * (v - my) for t, v in points) / den * 3600.0


def wait_listening(log: Path, proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """The port from the agent's "listening on" line in its stderr file (bounded wait)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        for line in log.read_text(errors="replace").splitlines():
            if "listening on 127.0.0.1:" in line:
                sys.stderr.write("agent: " + line + "\n")
                return int(line.split("listening on 127.0.0.1:")[1].split(":")[0])
        time.sleep(0.05)
    raise SystemExit("the agent did not start listening:\n" + log.read_text(errors="replace"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--mode", default="connect", choices=("connect", "auto", "syn"))
    ap.add_argument("--interval", type=float, default=None, help="default: the agent's own default")
    ap.add_argument(
        "--results",
        type=int,
        default=None,
        help="the agent's ring size (default: its own, 2048: full after ~28 min at the "
        "default interval; a smaller ring shows the plateau sooner)",
    )
    ap.add_argument(
        "--coredns",
        type=int,
        default=2,
        help="CoreDNS pods the reader hands the agent with each read (default 2; at most 16)",
    )
    a = ap.parse_args()
    pods = [CorednsPod(f"coredns-bench-{i:02d}", f"10.244.{i}.5", "bench-node") for i in range(a.coredns)]
    hint = "&coredns=" + format_hint(pods)

    dns = DnsDemo(spec=DnsLabSpec()).start()
    egress = EgressDemo().start()
    proc = None
    try:
        nodelocal, kube = dns.responders["nodelocal"].address, dns.responders["kube-dns"].address
        edns = egress.dns_for(None)
        assert edns is not None
        args = [
            "--node",
            "bench-node",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--kube-dns",
            "10.0.0.10",
            "--nodelocal",
            "--mode",
            a.mode,
            "--confine",
            "--dns-override",
            "169.254.20.10=%s:%d" % nodelocal,
            "--dns-override",
            "10.0.0.10=%s:%d" % kube,
            *(
                x
                for p in pods
                for x in ("--dns-override", f"coredns/{p.name}=%s:%d" % dns.responders["coredns"].address)
            ),
            "--egress-dns",
            "%s:%d" % edns,
            "--apiserver",
            "127.0.0.2:443",
        ]
        for addr, port in egress.dial_map().items():
            args += ["--dial", f"{addr}={port}"]
        if a.interval is not None:
            args += ["--interval", str(a.interval)]
        if a.results is not None:
            args += ["--results", str(a.results)]
        # the agent's log goes to a file: a pipe nobody drains could block it
        log = Path(tempfile.mkdtemp(prefix="agent-bench-")) / "agent.log"
        with open(log, "w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-c", CODE, *args],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        t_spawn = time.monotonic()
        port = wait_listening(log, proc)
        start_cpu = cpu_s(proc.pid)
        print(
            f"agent pid {proc.pid} on 127.0.0.1:{port}, mode {a.mode}; start-up took "
            f"{time.monotonic() - t_spawn:.2f} s and {start_cpu * 1000:.0f} ms of CPU",
            flush=True,
        )
        t0 = time.monotonic()
        samples: list[tuple[float, int, float]] = []  # (t, rss_kb, cpu_s)
        cursor, results, missed, reads, payload = 0, 0, 0, 0, 0
        full_at: float | None = None  # when the ring first held its size (then RSS must be flat)
        end = t0 + a.minutes * 60.0
        next_at = t0
        while True:
            now = time.monotonic()
            if now >= next_at:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/results?since={cursor}{hint}", timeout=5) as r:
                    body = r.read()
                rep = decode(body, "node/bench-node")
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    scraped = len(r.read())
                reads += 1
                payload += len(body)
                missed += rep.missed
                results += len(rep.dns) + len(rep.egress)
                cursor = rep.seq
                samples.append((now - t0, rss_kb(proc.pid), cpu_s(proc.pid)))
                if full_at is None and rep.oldest > 1:
                    full_at = now - t0
                t, rss, cpu = samples[-1]
                mc = (cpu - samples[0][2]) / t * 1000 if t > 0 else 0.0
                print(
                    f"t={t:6.0f}s rss={rss / 1024:7.2f} MB cpu_avg={mc:5.2f} mcores results={results} "
                    f"missed={missed} last_read={len(body)} B metrics={scraped} B",
                    flush=True,
                )
                next_at += SAMPLE
                if now >= end:
                    break
            if proc.poll() is not None:
                raise SystemExit(f"the agent exited early with {proc.returncode}")
            time.sleep(max(0.0, min(next_at - time.monotonic(), 1.0)))
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(10)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        dns.stop()
        egress.stop()
    el = samples[-1][0] - samples[0][0]
    rss = [s[1] / 1024 for s in samples]
    after_1m = next((s[1] / 1024 for s in samples if s[0] >= 60.0), rss[-1])
    cpu_mc = (samples[-1][2] - samples[0][2]) / el * 1000 if el > 0 else 0.0
    tail = samples[len(samples) // 5 :]
    growth_mb_h = slope_per_hour([(s[0], s[1] / 1024) for s in tail])
    full = [s for s in samples if full_at is not None and s[0] >= full_at]
    growth_full = slope_per_hour([(s[0], s[1] / 1024) for s in full]) if len(full) >= 6 else None
    ring = (
        f"ring full at {full_at:.0f} s, growth since {growth_full:+.2f} MB/h"
        if growth_full is not None
        else "ring not full yet (its ~0.65 MB of results still filling)"
    )
    print(
        f"RSS start {rss[0]:.1f} MB, after 1 min {after_1m:.1f} MB, end {rss[-1]:.1f} MB, max {max(rss):.1f} MB; "
        f"CPU {cpu_mc:.2f} millicores average over {el / 60:.1f} min; RSS growth {growth_mb_h:+.2f} MB/h "
        f"(last 80 % of {len(samples)} samples; {ring}); {results} results read in {reads} reads "
        f"({payload / max(reads, 1) / 1024:.1f} KB per read), {missed} missed; exit code {rc}"
    )
    kv = {
        "mode": a.mode,
        "minutes": f"{a.minutes:g}",
        "rss_start_mb": f"{rss[0]:.1f}",
        "rss_1min_mb": f"{after_1m:.1f}",
        "rss_end_mb": f"{rss[-1]:.1f}",
        "rss_max_mb": f"{max(rss):.1f}",
        "cpu_mcores": f"{cpu_mc:.2f}",
        "rss_growth_mb_per_h": f"{growth_mb_h:+.2f}",
        "rss_growth_ring_full_mb_per_h": f"{growth_full:+.2f}" if growth_full is not None else "na",
        "results": str(results),
        "missed": str(missed),
        "exit": str(rc),
    }
    print(f"agent log: {log}")
    print(" ".join(f"{k}={v}" for k, v in kv.items()))
    ok = max(rss) <= 60.0 and cpu_mc <= 10.0 and missed == 0 and rc == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
