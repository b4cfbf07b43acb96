"""The flight recorder's cost at 1,000 nodes with probes and agents, and replay's speed.

Frames are built as the publisher builds them (a new stats mapping per frame with the rows
probed since, the same objects for what did not move), at 4 frames per simulated second:
every node is a DNS vantage (3 resolvers × 2 names) and an egress vantage (5 targets),
each row probed every 5 s (DNS) / 10 s (egress); agents read at 5/s; a node flaps every
minute; findings come and go; Azure Monitor's SNAT report (a 30-minute per-minute series
per node) refreshes every minute. The recorder's CPU is the run's CPU minus the same run
without a recorder; bytes per hour are the file's size scaled to one hour. Then a 1-hour
recording is opened and seeked.

    PYTHONPATH=$PWD .venv/bin/python bench/recorder_bench.py [--minutes 10] [--nodes 1000] [--keep FILE]
    PYTHONPATH=$PWD .venv/bin/python bench/recorder_bench.py --replay FILE   (replay's figures alone)
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import random
import shutil
import sqlite3
import tempfile
import time
import zlib
from pathlib import Path
from types import MappingProxyType

import msgspec

from probes.agent.reader import AgentStatus
from probes.azure.service import AzureState, SnatReport
from probes.azure.snat import NodeSnat, SnatTable
from probes.diagnose.model import Finding, Severity
from probes.dns.resolvers import Resolver, ResolverKind
from probes.dns.result import DnsOutcome, DnsResult, ProbeKey
from probes.dns.service import DnsPlan, Vantage, VantagePlan
from probes.egress.result import EgressKey, EgressMode, EgressOutcome, EgressResult
from probes.egress.service import EgressPlan, EgressVantage, EgressVantagePlan
from probes.egress.targets import Target
from probes.engine.frame import AgentsView, Frame, ProbeView
from probes.engine.history import Stats
from probes.engine.store import Snapshot
from probes.kube.model import NodeInfo, SourceState, SourceStatus
from probes.kube.topology import build_topology
from probes.record.codec import RowStats
from probes.record.reader import Recording
from probes.record.schema import unpack
from probes.record.writer import Recorder

FPS = 4
OTHER_TARGETS = ("login.microsoftonline.com:443", "management.azure.com:443", "a:443", "b:443")


def _node(i: int) -> NodeInfo:
    return NodeInfo(
        name=f"aks-pool{i // 100}-12345678-vmss{i:06d}",
        internal_ip=f"10.224.{i // 250}.{i % 250 + 4}",
        pod_cidrs=(f"10.244.{i // 256}.{i % 256}/24",),
        pool=f"pool{i // 100}",
        ready=True,
        ready_reason="KubeletReady",
        cordoned=False,
        network_unavailable=False,
        network_reason="RouteCreated",
        kubelet_version="v1.30.6",
        zone="westeurope-1",
        provider_id=f"azure:///subscriptions/x/resourceGroups/mc_rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss/virtualMachines/{i}",
        vmss="aks-pool-12345678-vmss",
        instance_id=str(i),
        created=1.7e9,
    )


class World:
    def __init__(self, nodes: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.nodes = {n.name: n for n in (_node(i) for i in range(nodes))}
        self.dns_keys = [
            ProbeKey(f"node/{n}", r, q)
            for n in self.nodes
            for r in ("nodelocal", "kube-dns", "coredns/coredns-1")
            for q in ("kubernetes.default.svc.cluster.local", "mcr.microsoft.com")
        ]
        self.eg_keys = [
            EgressKey(f"node/{n}", t) for n in self.nodes for t in ("mcr.microsoft.com:443",) + OTHER_TARGETS
        ]
        self.dns: dict[object, Stats] = {}
        self.eg: dict[object, Stats] = {}
        self.agents: dict[str, AgentStatus] = {n: AgentStatus(node=n, pod=f"agent-{n[-6:]}") for n in self.nodes}
        self.version = 0
        self.snap = self._snap()
        self.findings: tuple[Finding, ...] = ()
        self.frame: Frame | None = None
        self.snat: SnatReport | None = None
        self.used: dict[str, list[float]] = {}
        self.seq = 0
        self.aseq = 0
        # the probe services' plans (every node a vantage): what a replayed probe pane lays out
        resolvers = (
            Resolver("nodelocal", ResolverKind.NODELOCAL, "169.254.20.10"),
            Resolver("kube-dns", ResolverKind.KUBE_DNS, "10.0.0.10"),
            Resolver("coredns/coredns-1", ResolverKind.COREDNS, "10.244.0.5"),
        )
        names = ("kubernetes.default.svc.cluster.local", "mcr.microsoft.com")
        self.dns_plan = DnsPlan(
            1, tuple(VantagePlan(Vantage(f"node/{n}", n, agent=True), resolvers) for n in self.nodes), names
        )
        targets = tuple(Target(t.rsplit(":", 1)[0], 443) for t in ("mcr.microsoft.com:443",) + OTHER_TARGETS)
        self.egress_plan = EgressPlan(
            1, tuple(EgressVantagePlan(EgressVantage(f"node/{n}", n), targets) for n in self.nodes), targets
        )

    def _snap(self) -> Snapshot:
        self.version += 1
        topo = build_topology(self.nodes, cluster="mc_rg")
        return Snapshot(
            version=self.version,
            topology=topo,
            statuses=(SourceStatus("kubernetes", SourceState.LIVE),),
            synced=frozenset({"nodes", "coredns", "nodelocal", "services"}),
            target="ctx @ https://aks.example:443",
            taken=0.0,
        )

    def _stats(self, key: object, t: float, dns: bool, old: Stats | None) -> Stats:
        lat = self.rng.lognormvariate(0.0, 0.3) * (1.0 if dns else 20.0)
        recent = ((old.recent if old else ())[-19:]) + (lat,)
        if dns:
            last: object = DnsResult(
                key.vantage,
                key.resolver,
                "10.0.0.10",
                "10.0.0.10:53",
                key.name,
                "A",
                DnsOutcome.OK,
                lat,
                answers=1,
                timestamp=t,
            )  # type: ignore[attr-defined]
        else:
            last = EgressResult(
                key.vantage, key.target, "20.1.2.3", 443, EgressMode.CONNECT, EgressOutcome.OPEN, lat, timestamp=t
            )  # type: ignore[attr-defined]
        ok = [x for x in recent if x is not None]
        ok.sort()
        return Stats(
            count=(old.count + 1) if old else 1,
            attempts=len(recent),
            successes=len(ok),
            p50=ok[len(ok) // 2],
            p95=ok[int(len(ok) * 0.95)],
            p99=ok[-1],
            loss_pct=0.0,
            last_outcome="ok" if dns else "open",
            last_error="",
            last_raw="",
            last_ts=t,
            last=last,
            recent=recent,
            version=self.seq,
        )

    def _snat(self, t: float) -> SnatReport:
        end = int(t // 60 * 60)
        times = [float(end - 60 * (29 - j)) for j in range(30)]
        rows = []
        for n in self.nodes.values():
            used = self.used.setdefault(n.name, [float(self.rng.randint(0, 300)) for _ in range(29)])
            used.append(float(max(0, used[-1] + self.rng.randint(-20, 20))))
            del used[:-30]
            rows.append(
                NodeSnat(
                    n.internal_ip, n.name, n.pool, 1024, used[-1], used[-1] * 0.8, 0.0, 0.0, times, list(used), 1024
                )
            )
        rows.sort(key=lambda r: r.pressure)
        v = self.snat.version + 1 if self.snat else 1
        return SnatReport(
            version=v,
            state=AzureState.LIVE,
            message="live",
            table=SnatTable(tuple(rows), (), (), times[0], times[-1]),
            updated=t,
            calls=v * 2,
        )

    def step(self, t: float) -> Frame:
        self.seq += 1
        i = self.seq
        # DNS rows every 5 s, egress every 10 s: at 4 frames a second, a 1/20 and a 1/40 of them per frame
        dch = self.dns_keys[(i % (5 * FPS)) :: 5 * FPS]
        ech = self.eg_keys[(i % (10 * FPS)) :: 10 * FPS]
        for k in dch:
            self.dns[k] = self._stats(k, t, True, self.dns.get(k))
        for k in ech:
            self.eg[k] = self._stats(k, t, False, self.eg.get(k))
        if i % (60 * FPS) == 0:  # a node flaps every minute
            name = self.rng.choice(list(self.nodes))
            n = self.nodes[name]
            self.nodes[name] = dataclasses.replace(n, ready=not n.ready)
            self.snap = self._snap()
            self.findings = (
                ()
                if n.ready is False
                else (Finding("node-not-ready", None, Severity.CRITICAL, f"node/{name}", "NotReady"),)
            )
        if i == 1 or i % (60 * FPS) == 0:  # Azure Monitor: a new minute per node
            self.snat = self._snat(t)
        # agents: 5 reads a second
        changed = []
        for _ in range(5 // FPS + (1 if i % FPS < 5 % FPS else 0)):
            name = self.rng.choice(list(self.nodes))
            a = self.agents[name]
            self.agents[name] = dataclasses.replace(a, read_at=time.monotonic(), results=a.results + 8, seq=a.seq + 1)
            changed.append(name)
        self.aseq += 1
        dv = ProbeView(
            plan=self.dns_plan,
            stats=MappingProxyType(dict(self.dns)),
            changed=frozenset(dch),
            since=i - 1,
            version=i,
        )
        ev = ProbeView(
            plan=self.egress_plan, stats=MappingProxyType(dict(self.eg)), changed=frozenset(ech), since=i - 1, version=i
        )
        av = AgentsView(
            by_node=MappingProxyType(dict(self.agents)),
            discovered=True,
            error="",
            stale=30.0,
            version=1,
            seq=self.aseq,
            since=self.aseq - 1,
            changed=frozenset(changed),
        )
        self.frame = Frame(
            seq=i, kube=self.snap, dns=dv, egress=ev, snat=self.snat, agents=av, findings=self.findings, findings_at=t
        )
        return self.frame


def run(minutes: float, nodes: int, path: Path | None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) to build the frames of `minutes`, recording when `path`."""
    world = World(nodes)
    t0 = 1.8e9
    clock = [t0]
    rec = Recorder(path, clock=lambda: clock[0]) if path is not None else None
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(int(minutes * 60 * FPS)):
        clock[0] = t0 + i / FPS
        frame = world.step(clock[0])
        if rec is not None:
            rec._q.put((clock[0], frame))  # the bench waits for the writer instead of dropping
    if rec is not None:
        rec.close(600)
    return time.process_time() - c0, time.perf_counter() - w0


def main() -> None:
    global FPS  # noqa: PLW0603 - the World's pace, one per run
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--hour", action="store_true", help="also record 60 simulated minutes for replay's figures")
    ap.add_argument(
        "--fps", type=int, default=4, help="frames per simulated second (the same rows per hour; fewer frames to build)"
    )
    ap.add_argument(
        "--no-base",
        action="store_true",
        help="skip the run without a recorder (the CPU printed is then the whole run's)",
    )
    ap.add_argument(
        "--keep", help="copy the recording replay's figures were taken on here (for bench/replay_app_bench.py)"
    )
    ap.add_argument("--replay", help="only replay's figures, on this recording (one --keep wrote)")
    ns = ap.parse_args()
    FPS = ns.fps
    if ns.replay:
        replay(Path(ns.replay))
        return
    with tempfile.TemporaryDirectory() as tmp:
        base_cpu, _ = run(ns.minutes, ns.nodes, None) if not ns.no_base else (0.0, 0.0)
        p = Path(tmp) / "r.aksrec"
        cpu, wall = run(ns.minutes, ns.nodes, p)
        size = p.stat().st_size
        sim = ns.minutes * 60
        rec_cpu = cpu - base_cpu
        print(f"{ns.nodes} nodes, {ns.minutes:g} simulated minutes ({int(sim * FPS)} frames)")
        print(f"recorder CPU: {rec_cpu:.1f} s for {sim:.0f} s recorded = {100 * rec_cpu / sim:.2f} % of one core")
        print(f"file: {size / 1e6:.1f} MB = {size / 1e6 * 3600 / sim:.1f} MB per hour")
        breakdown(p, sim)
        hour = p
        if ns.hour:
            hour = Path(tmp) / "hour.aksrec"
            run(60, ns.nodes, hour)
            print(f"1-hour recording: {hour.stat().st_size / 1e6:.1f} MB")
        replay(hour)
        if ns.keep:
            shutil.copyfile(hour, ns.keep)


KINDS = {"n": "nodes", "d": "DNS rows", "e": "egress rows", "a": "agents", "s": "SNAT nodes"}


def breakdown(path: Path, seconds: float) -> None:
    """Where the bytes go: each kind of channel's rows compressed on their own, per hour,
    in the batches (deltas) and in the keyframes; and the other tables."""
    db = sqlite3.connect(path)
    names = dict(db.execute("SELECT id, name FROM channels"))
    enc = msgspec.msgpack.Encoder()
    scale = 3600 / seconds / 1e6
    for table in ("deltas", "keyframes"):
        size: dict[str, int] = {}
        count: dict[str, int] = {}
        total = 0
        for (blob,) in db.execute(f"SELECT blob FROM {table}"):  # noqa: S608
            total += len(blob)
            body = unpack(blob)
            frames = [body] if table == "keyframes" else [chans for _, chans in body]
            groups: dict[str, list[object]] = {}
            for chans in frames:
                for cid, v in chans.items():
                    name = names.get(cid, "?")
                    kind = KINDS.get(name[0], name) if name[1:2] == "\t" else name
                    groups.setdefault(kind, []).append(v)
            for kind, vals in groups.items():
                size[kind] = size.get(kind, 0) + len(zlib.compress(enc.encode(vals), 6))
                count[kind] = count.get(kind, 0) + len(vals)
        top = sorted(size.items(), key=lambda kv: -kv[1])[:6]
        print(
            f"  {table}: {total * scale:.1f} MB/h; by kind (compressed alone): "
            + ", ".join(f"{k} {v * scale:.1f} MB/h ({count[k] * 3600 / seconds:.0f} rows/h)" for k, v in top)
        )
    others = {t: db.execute(f"SELECT SUM(LENGTH(body)) FROM {t}").fetchone()[0] for t in ("findings",)}  # noqa: S608
    print(f"  findings' bodies: {(others['findings'] or 0) * scale:.3f} MB/h")
    db.close()


SCREEN = 15  # the DNS rows a pane at 80x24 draws


def replay(path: Path) -> None:
    """Open `path` and seek at random: wall and CPU time (the CPU figure holds on a busy
    machine). A seek builds the frame the app shows; a DNS pane on screen then judges every
    row from its bytes (`RowStats.healths`) and decodes the rows it draws (a screenful),
    measured apart, and the two together. The slowest seeks say how far past their keyframe
    they land. Decoding every DNS row of a frame (what the pane did before it judged rows
    from their bytes) is measured last, on a few seeks of its own: its garbage would
    otherwise land on the seeks measured."""
    c = time.process_time()
    sum(range(10**7))  # the machine's pace now (about 150-250 ms of CPU on an idle core)
    print(f"calibration: sum(range(10**7)) {(time.process_time() - c) * 1000:.0f} ms CPU")
    w, c = time.perf_counter(), time.process_time()
    rec = Recording(path)
    rec.frame_at(rec.start)
    t_open, c_open = time.perf_counter() - w, time.process_time() - c
    rng = random.Random(1)
    seeks, cpu, pane, both, where = [], [], [], [], []
    for _ in range(40):
        at = rng.uniform(rec.start, rec.end)
        w, c = time.perf_counter(), time.process_time()
        frame = rec.frame_at(at)
        seeks.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
        k = bisect.bisect_right(rec._kf_t, at) - 1
        where.append((cpu[-1], at - rec._kf_t[k] if k >= 0 else at - rec.start))
        c = time.process_time()
        stats = frame.dns.stats if frame.dns is not None else {}
        if isinstance(stats, RowStats):
            stats.healths(None, DnsOutcome)
        for key in list(stats)[:SCREEN]:
            stats[key]
        pane.append(time.process_time() - c)
        both.append(cpu[-1] + pane[-1])
    rows = []
    for _ in range(10):
        frame = rec.frame_at(rng.uniform(rec.start, rec.end))
        c = time.process_time()
        for k in frame.dns.stats if frame.dns is not None else ():
            frame.dns.stats[k]
        rows.append(time.process_time() - c)
    for x in (seeks, cpu, pane, both, rows):
        x.sort()
    n = len(seeks)
    med, p95 = n // 2, min(n - 1, int(n * 0.95))
    print(
        f"replay ({(rec.end - rec.start) / 60:.0f} min, {len(rec._kf)} keyframes, {len(rec._dl)} batches): "
        f"open + first frame {t_open * 1000:.0f} ms wall / {c_open * 1000:.0f} ms CPU; "
        f"random seek median {seeks[med] * 1000:.0f} ms wall / {cpu[med] * 1000:.0f} ms CPU, "
        f"p95 {seeks[p95] * 1000:.0f} ms wall / {cpu[p95] * 1000:.0f} ms CPU, "
        f"max {seeks[-1] * 1000:.0f} ms wall / {cpu[-1] * 1000:.0f} ms CPU"
    )
    print(
        f"  a DNS pane on screen (every row judged, {SCREEN} decoded): median {pane[med] * 1000:.0f} "
        f"max {pane[-1] * 1000:.0f} ms CPU; seek + pane median {both[med] * 1000:.0f} p95 {both[p95] * 1000:.0f} "
        f"max {both[-1] * 1000:.0f} ms CPU"
    )
    slow = sorted(where, reverse=True)[:3]
    print(
        "  slowest seeks (ms CPU @ s past their keyframe): " + ", ".join(f"{c * 1000:.0f} @ {d:.0f}" for c, d in slow)
    )
    print(f"  decoding every DNS row of a frame: median {rows[len(rows) // 2] * 1000:.0f} ms CPU")


if __name__ == "__main__":
    main()
