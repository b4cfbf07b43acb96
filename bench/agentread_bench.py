"""The app reading 1,000 per-node agents through the API server's pod proxy.

A child process runs the lab API server (an overlay cluster of N nodes) and N real agents
(probes.agent: DNS to a loopback responder, one egress target, the default 10 s interval)
on loopback ports, registered as agent pods; the lab's pod proxy reaches them. This
process runs only the app's reader (probes.agent.reader) at the default budget and
measures: the time for one full rolling refresh (every agent read once), this process's
CPU while it runs, and the API requests per second the lab saw (overall and the worst
one-second window, by arrival).

    .venv/bin/python bench/agentread_bench.py [--agents 1000] [--budget 5]

Last line: key=value.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# --- the child: lab + agents -----------------------------------------------------------------
def serve(n: int) -> None:
    from probes.agent.core import Agent, AgentSettings
    from probes.agent.http import AgentServer
    from probes.dns.resolvers import Resolver, ResolverKind
    from probes.egress.targets import parse_target
    from probes.lab.apiserver import LabApiServer
    from probes.lab.cluster import LabAgentPod
    from probes.lab.dnsserver import DnsResponder
    from probes.lab.tcptargets import LoopbackTargets

    lab = LabApiServer("overlay", nodes=n).start()
    dns = DnsResponder(host="127.0.0.1", name="bench-dns").start()
    tcp = LoopbackTargets().start(verify=False)
    target = parse_target(f"127.0.0.1:{tcp.open.port}")
    with lab.state.lock:
        nodes = sorted(lab.state.nodes)[:n]
    loop = asyncio.new_event_loop()

    async def start_all() -> list[tuple[Agent, AgentServer]]:
        out = []
        for node in nodes:
            s = AgentSettings(
                node=node,
                resolvers=(Resolver("kube-dns", ResolverKind.KUBE_DNS, "10.0.0.10", target=dns.address),),
                targets=(target,),
                mode="connect",
            )
            a = Agent(s)
            await a.start()
            out.append((a, await AgentServer(a, "127.0.0.1", 0).start()))
        return out

    agents = loop.run_until_complete(start_all())
    lab.set_agent_pods({a.node: LabAgentPod(endpoint=srv.address) for a, srv in agents})
    kc = lab.write_kubeconfig(os.path.join(tempfile.mkdtemp(prefix="aksnet-bench-"), "kubeconfig"))
    print(orjson.dumps({"kubeconfig": kc, "agents": len(agents)}).decode(), flush=True)

    async def until_told() -> None:
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.strip() == b"stats":
                log = [r for r in lab.request_log() if r.resource == "pods"]
                times = sorted(r.arrived for r in log)
                worst, j = 0, 0
                for i, t in enumerate(times):
                    while times[j] <= t - 1.0:
                        j += 1
                    worst = max(worst, i - j + 1)
                verbs: dict[str, int] = {}
                for r in log:
                    verbs[r.verb] = verbs.get(r.verb, 0) + 1
                span = (times[-1] - times[0]) if len(times) > 1 else 0.0
                print(
                    orjson.dumps({"requests": len(log), "verbs": verbs, "worst_1s": worst, "span_s": span}).decode(),
                    flush=True,
                )

    try:
        loop.run_until_complete(until_told())
    finally:
        os._exit(0)  # the agents and the lab die with the process


# --- the parent: the app's reader ----------------------------------------------------------
def line(proc: subprocess.Popen, timeout: float) -> dict:
    end = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = end - time.monotonic()
        if left <= 0:
            raise SystemExit("the lab child did not answer in time")
        r, _, _ = select.select([proc.stdout], [], [], left)
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise SystemExit(f"the lab child exited ({proc.wait()})")
            buf += chunk
    return orjson.loads(buf.split(b"\n", 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--budget", type=float, default=5.0)
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        serve(a.serve)
        return
    import kubernetes  # noqa: F401 - loaded by the app long before agents are read

    from probes.agent import wire  # noqa: F401
    from probes.agent.reader import AgentReader, ReaderSettings
    from probes.config import KubeConfig
    from probes.engine.history import History
    from probes.kube import connect as kubeconnect  # noqa: F401

    t_setup = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(a.agents)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        ready = line(proc, 300)
        print(f"lab with {ready['agents']} agents up in {time.monotonic() - t_setup:.1f} s", flush=True)
        time.sleep(12)  # every agent has a round of results before the first read
        dns, egress = History(), History()
        reader = AgentReader(
            KubeConfig(kubeconfig=ready["kubeconfig"]),
            ReaderSettings(budget=a.budget),
            dns_history=dns,
            egress_history=egress,
        )
        ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        reader.start()
        limit = t0 + a.agents / a.budget * 1.5 + 60
        last = 0
        while time.monotonic() < limit and not reader.read_once():
            time.sleep(0.5)
            n = sum(1 for s in reader.statuses().values() if s.read_at is not None)
            if n // 100 != last // 100:
                print(f"  {n} agents read after {time.monotonic() - t0:.0f} s", flush=True)
            last = n
        t1, ru1 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
        reader.stop()
        sent = sorted(reader.sent)
        worst_sent, j = 0, 0
        for i, t in enumerate(sent):
            while sent[j] <= t - 1.0:
                j += 1
            worst_sent = max(worst_sent, i - j + 1)
        st = reader.statuses()
        ok = sum(1 for s in st.values() if s.read_at is not None and not s.error)
        results = sum(s.results for s in st.values())
        assert proc.stdin is not None
        proc.stdin.write(b"stats\n")
        proc.stdin.flush()
        stats = line(proc, 30)
    finally:
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        proc.wait(10)
    wall = t1 - t0
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    rps = stats["requests"] / stats["span_s"] if stats["span_s"] else 0.0
    print(
        f"full rolling refresh: {wall:.1f} s for {ok}/{a.agents} agents ({results} results replayed, "
        f"{len(dns.keys())} DNS + {len(egress.keys())} egress series)"
    )
    print(
        f"reader CPU: {cpu:.2f} s over {wall:.1f} s = {100 * cpu / wall:.1f} % of one core; "
        f"peak RSS {ru1.ru_maxrss / 1024:.0f} MB"
    )
    print(
        f"API requests at the lab: {stats['requests']} ({stats['verbs']}), {rps:.2f}/s on average, "
        f"worst one-second window {stats['worst_1s']} by arrival (the lab shares its process with the "
        f"agents), {worst_sent} by send time (budget {a.budget:g}/s)"
    )
    print(
        f"agents={a.agents} budget={a.budget:g} refresh_s={wall:.1f} cpu_pct={100 * cpu / wall:.1f} "
        f"rps={rps:.2f} worst_1s_arrival={stats['worst_1s']} worst_1s_sent={worst_sent} read_ok={ok}"
    )


if __name__ == "__main__":
    main()
