"""The publisher: one thread that turns the store, the probe histories, the SNAT report,
the route table and the agents into one immutable `Frame` at a steady cadence, and hands
it to a callback (the app posts it to its UI thread). Views render frames; they never
read a source, and nothing slow (the topology rebuild, the rules) runs on the UI thread.

Work per frame is proportional to what changed: the store's snapshot is rebuilt only on
a store change, a history is read from the previous frame's version on
(`History.snapshot(since)`), route comparison runs when the route data or the topology
changed, and the rules run when an input changed (at most every `findings_min` seconds),
or every `findings_every` seconds for their time-based marks (a node is "new" for 10 min);
on a big cluster, where one run of the rules costs tens of ms, they run no more often than
keeps them under `JUDGE_SHARE` of a core (still at least every `findings_every` seconds).
A part that did not change is the previous frame's object itself.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from types import MappingProxyType
from typing import Any

from probes.azure.routes import compare
from probes.diagnose import Observations, diagnose, observe
from probes.engine import allocator
from probes.engine.frame import EMPTY, AgentsView, Frame, PathView, ProbeView, RouteView
from probes.engine.history import Stats
from probes.engine.store import Snapshot, Store
from probes.ingress.view import IngressView, build_view, region_of
from probes.kube.model import NetworkPlugin
from probes.kube.topology import build_topology

FindingsFn = Callable[[Observations], list[Any]]
# the rules take at most this share of one core: a run that cost 10 ms waits 4 s for the
# next (findings_every caps the wait at 5 s). On a small cluster a run costs ~1 ms and the
# rules follow every input at findings_min; at 5,000 nodes with agents a run costs ~10 ms
# and the inputs move with every answer: there the share decides the rules' part of the
# app's idle CPU (0.25 %), and findings every ~5 s are as current as the probes behind them.
JUDGE_SHARE = 0.0025


def observations_of(
    kube: Snapshot,
    dns: Mapping[Any, Stats] | None,
    egress: Mapping[Any, Stats] | None,
    snat: Any,
    routes: Any,
    now: float | None,
    dns_plan: Any = None,
    egress_plan: Any = None,
    path: Any = None,
    ingress: Any = None,
    https: Mapping[Any, Stats] | None = None,
) -> Observations:
    """What the rules see, joined from one moment's parts (the app's frames and `check`).
    The plans say which rows their vantage cannot reach (never probed). `ingress`: the
    frame's IngressView (built from `kube` when not given)."""
    if ingress is None:
        ingress = ingress_view(kube, None)
    return observe(
        kube.topology,
        dns,
        now,
        egress=egress,
        snat=getattr(snat, "table", None),
        snat_allocation=getattr(snat, "allocation", None),
        routes=routes,
        not_probed=not_probed(dns_plan, egress_plan),
        path=path,
        policies=kube.policies,
        ingress=ingress,
        gateways=kube.gateways,
        https=https,
    )


def ingress_view(kube: Snapshot, answers: Mapping[Any, Any] | None, prev: IngressView | None = None) -> IngressView:
    """The ingress path's rows from a snapshot and the hosts' DNS answers (`prev`: the last
    view, whose unchanged parts are reused)."""
    topo = kube.topology
    return build_view(
        kube.ingress,
        answers,
        nodes=len(topo.nodes),
        region=region_of(n.zone for n in topo.nodes),
        events=topo.service_events,
        prev=prev,
    )


def not_probed(dns_plan: Any, egress_plan: Any) -> list[tuple[str, str, str]]:
    """(vantage, "resolver/<key>" | "target/<host:port>", why) of every planned row its
    vantage cannot reach (a DnsPlan's resolvers, an EgressPlan's targets)."""
    out = []
    for vp in getattr(dns_plan, "vantages", ()):
        for r in vp.resolvers:
            if r.unreachable:
                out.append((vp.vantage.name, f"resolver/{r.key}", r.unreachable))
    for vp in getattr(egress_plan, "vantages", ()):
        for t in vp.targets:
            if t.unreachable:
                out.append((vp.vantage.name, f"target/{t.text}", t.unreachable))
    return out


def empty_snapshot() -> Snapshot:
    """A snapshot with nothing in it: the frame shown when not even the store could be read."""
    return Snapshot(
        version=-1, topology=build_topology({}, cluster=""), statuses=(), synced=frozenset(), target="", taken=0.0
    )


class _ProbeFeed:
    """Follows one probe service (plan(), history, error) from frame to frame."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.view: ProbeView | None = None
        self.epoch = -1
        self.stats: dict[Hashable, Stats] = {}
        self.watched: dict[Hashable, int] = {}  # key -> history version its details were read at

    def step(self, watch: frozenset[Hashable]) -> ProbeView:
        src = self.source
        plan = src.plan()
        hist = src.history
        error = getattr(plan, "error", "") or getattr(src, "error", "") or ""
        version = hist.version
        epoch = getattr(hist, "epoch", 0)
        prev = self.view
        if prev is None or epoch != self.epoch:  # first frame, or keys were forgotten: read them all
            self.epoch = epoch
            fresh = hist.snapshot(since=0)
            self.stats = dict(fresh)
            changed = frozenset(fresh)
            since = -1
            stats: Mapping[Hashable, Stats] = MappingProxyType(dict(self.stats))
        elif version != prev.version:
            fresh = hist.snapshot(since=prev.version)
            self.stats.update(fresh)
            changed = frozenset(fresh)
            since = prev.version
            # the previous frame's mapping is never written again: the next one is a copy
            # (one C-level copy of a dict, not per-key work)
            stats = MappingProxyType(dict(self.stats)) if fresh else prev.stats
        else:
            changed, since, stats = frozenset(), prev.version, prev.stats
        details = self._details(hist, watch, changed, prev)
        if (
            prev is not None
            and plan is prev.plan
            and not changed
            and error == prev.error
            and details is prev.details
            and version == prev.version
        ):
            return prev
        self.view = ProbeView(
            plan=plan, stats=stats, changed=changed, since=since, version=version, error=error, details=details
        )
        return self.view

    def _details(
        self, hist: Any, watch: frozenset[Hashable], changed: frozenset[Hashable], prev: ProbeView | None
    ) -> Mapping[Hashable, tuple[Any, ...]]:
        """The last results of the rows a detail screen follows (a few keys at most)."""
        old = prev.details if prev is not None else EMPTY
        if not watch:
            return EMPTY
        if set(old) == watch and not (watch & changed):
            return old
        out = {k: (old[k] if k in old and k not in changed else tuple(hist.results(k)[-50:])) for k in watch}
        return MappingProxyType(out)


class Publisher:
    """Builds frames. `step()` builds one on the calling thread (tests, the first frame);
    `start(on_frame)` runs the cadence on a thread of its own until `stop()`."""

    @classmethod
    def of(cls, store: Store, services: Any, **kwargs: Any) -> Publisher:
        """A publisher over every feed of `services` (probes.engine.services.build), as
        `check` and the benchmarks run it; `kwargs` as for the constructor."""
        return cls(
            store,
            dns=getattr(services, "dns", None),
            egress=getattr(services, "egress", None),
            snat=getattr(services, "snat", None),
            agents=getattr(services, "agents", None),
            hosts=getattr(services, "hosts", None),
            https=getattr(services, "https", None),
            **kwargs,
        )

    def __init__(
        self,
        store: Store,
        *,
        dns: Any = None,
        egress: Any = None,
        snat: Any = None,
        agents: Any = None,
        routes: Callable[[], Any] | None = None,
        path: Callable[[], Any] | None = None,
        hosts: Any = None,
        https: Any = None,
        findings: bool = True,
        interval: float = 0.25,
        findings_min: float = 1.0,
        findings_every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        judge: FindingsFn = diagnose,
    ) -> None:
        self.store = store
        self.dns, self.egress, self.snat, self.agents = dns, egress, snat, agents
        if routes is None and snat is not None and hasattr(snat, "routes"):
            routes = snat.routes
        self.routes = routes
        if path is None and snat is not None and callable(getattr(snat, "path", None)):
            path = snat.path
        self.path = path
        self._path_view: PathView | None = None
        self.hosts = hosts  # probes.ingress.resolve.HostResolver: answers(), version
        self._ingress_in: tuple[Any, ...] = ()
        self._ingress_view: IngressView | None = None
        self.findings = findings
        self.interval = interval
        self.findings_min = findings_min
        self.findings_every = findings_every
        self._judge_cpu = 0.0  # CPU seconds of the last rules run (this thread's)
        self.clock = clock
        self.wall_clock = wall_clock
        self.judge = judge
        self._feeds = {
            "dns": _ProbeFeed(dns) if dns is not None else None,
            "egress": _ProbeFeed(egress) if egress is not None else None,
            "https": _ProbeFeed(https) if https is not None else None,
        }
        self._watch: dict[str, frozenset[Hashable]] = {"dns": frozenset(), "egress": frozenset(), "https": frozenset()}
        self._watch_lock = threading.Lock()
        self._follows: dict[tuple[str, Hashable], int] = {}
        self._seq = 0
        self.latest: Frame | None = None
        self._agents_seq = 0
        self._snat_table: Any = None
        self._kube_now: Snapshot | None = None  # this step's kube part, kept for an error frame
        self._routes_in: tuple[Any, Any] = (None, None)
        self._cidrs_in: tuple[Any, tuple[str, ...]] = (None, ())
        self._cidrs_out: Snapshot | None = None
        self._routes_view: RouteView | None = None
        self._findings_in: tuple[Any, ...] | None = None
        self._findings_t = float("-inf")
        self._findings: tuple[Any, ...] | None = None
        self._findings_at = 0.0
        self.judged = 0  # how many times the rules ran (tests, benchmarks)
        self.costs: deque[float] = deque(maxlen=100_000)  # ms per frame built (benchmarks)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- what detail screens follow --------------------------------------------------------
    def follow(self, kind: str, key: Hashable) -> None:
        """Put the last results of `key` (a DNS or egress row) into every frame from now on.
        Counted: the owner's screen and attached viewers can follow the same row, and it
        stays until each of them unfollowed it."""
        with self._watch_lock:
            n = self._follows.get((kind, key), 0)
            self._follows[(kind, key)] = n + 1
            if n == 0:
                self._watch[kind] = self._watch[kind] | {key}

    def unfollow(self, kind: str, key: Hashable) -> None:
        with self._watch_lock:
            n = self._follows.pop((kind, key), 0) - 1
            if n > 0:
                self._follows[(kind, key)] = n
            else:
                self._watch[kind] = self._watch[kind] - {key}

    def _cluster_cidrs(self, kube: Snapshot, snat: Any) -> Snapshot:
        """Overlay nodes carry no podCIDR: the topology takes the managed cluster's
        networkProfile pod CIDR(s) from the Azure source then. Cached, so an unchanged
        snapshot stays the same object from frame to frame."""
        target = getattr(snat, "target", None)
        cidrs = tuple(getattr(target, "pod_cidrs", ()) or ())
        if not cidrs or kube.topology.pod_cidrs:
            return kube
        if self._cidrs_in[0] is kube and self._cidrs_in[1] == cidrs and self._cidrs_out is not None:
            return self._cidrs_out
        out = dataclasses.replace(kube, topology=dataclasses.replace(kube.topology, pod_cidrs=cidrs))
        self._cidrs_in, self._cidrs_out = (kube, cidrs), out
        return out

    # --- one frame -----------------------------------------------------------------------
    def step(self) -> Frame:
        """Build the next frame. Raises what a source raised (see `publish`)."""
        t0 = time.perf_counter()
        prev = self.latest
        self._kube_now = None
        kube = self._kube_now = self.store.snapshot()
        with self._watch_lock:
            watch = dict(self._watch)
        dns = self._feeds["dns"].step(watch["dns"]) if self._feeds["dns"] is not None else None
        egress = self._feeds["egress"].step(watch["egress"]) if self._feeds["egress"] is not None else None
        https = self._feeds["https"].step(watch["https"]) if self._feeds["https"] is not None else None
        snat = self.snat.report() if self.snat is not None else None
        table = getattr(snat, "table", None)
        if table is not None and table is not self._snat_table:
            # a SNAT refresh just freed the last one's tens of MB in small blocks: give the
            # pages back, or the process keeps every refresh's high-water mark
            self._snat_table = table
            allocator.trim()
        kube = self._kube_now = self._cluster_cidrs(kube, snat)
        routes = self._route_view(kube)
        path = self._path_of()
        agents = self._agents_view(prev.agents if prev is not None else None)
        ingress = self._ingress_of(kube)
        self._judge(kube, dns, egress, snat, routes, path, ingress, https)
        if (
            prev is not None
            and not prev.error
            and kube is prev.kube
            and dns is prev.dns
            and egress is prev.egress
            and snat is prev.snat
            and routes is prev.routes
            and path is prev.path
            and agents is prev.agents
            and ingress is prev.ingress
            and https is prev.https
            and self._findings is prev.findings
        ):
            self.costs.append((time.perf_counter() - t0) * 1000)
            return prev
        self._seq += 1
        frame = Frame(
            seq=self._seq,
            kube=kube,
            dns=dns,
            egress=egress,
            snat=snat,
            routes=routes,
            path=path,
            agents=agents,
            ingress=ingress,
            https=https,
            findings=self._findings,
            findings_at=self._findings_at,
            cost_ms=(time.perf_counter() - t0) * 1000,
        )
        self.costs.append(frame.cost_ms)
        self.latest = frame
        return frame

    def publish(self) -> Frame:
        """`step()`, except that a failure becomes a frame carrying the error (the last
        good parts, or an empty one): the views say what failed and go on."""
        try:
            return self.step()
        except Exception as e:  # noqa: BLE001 - shown in the status line, the cadence goes on
            msg = f"the snapshot publisher failed: {type(e).__name__}: {e}"[:300]
            prev = self.latest
            kube = self._kube_now or (prev.kube if prev is not None else empty_snapshot())
            self._seq += 1
            if prev is None:
                frame = Frame(seq=self._seq, kube=kube, error=msg)
            else:
                frame = Frame(
                    seq=self._seq,
                    kube=kube,
                    dns=prev.dns,
                    egress=prev.egress,
                    snat=prev.snat,
                    routes=prev.routes,
                    path=prev.path,
                    agents=prev.agents,
                    ingress=prev.ingress,
                    https=prev.https,
                    findings=prev.findings,
                    findings_at=prev.findings_at,
                    error=msg,
                )
            self.latest = frame
            return frame

    def _route_view(self, kube: Snapshot) -> RouteView | None:
        data = self.routes() if self.routes is not None else None
        if data is None:
            self._routes_in, self._routes_view = (None, None), None
            return None
        topo = kube.topology
        if self._routes_in[0] is data and self._routes_in[1] is topo:
            return self._routes_view
        by_node: Mapping[str, Any] = EMPTY
        if not getattr(data, "error", "") and topo.plugin is NetworkPlugin.KUBENET:
            by_node = MappingProxyType(dict(compare(data, topo.nodes).by_node))
        self._routes_in = (data, topo)
        self._routes_view = RouteView(data=data, by_node=by_node)
        return self._routes_view

    def _ingress_of(self, kube: Snapshot) -> IngressView:
        """The ingress rows; the previous view while its inputs are the same objects."""
        answers = self.hosts.answers() if self.hosts is not None else None
        topo = kube.topology
        inputs = (kube.ingress, answers, topo.nodes, topo.service_events)
        old = self._ingress_in
        if self._ingress_view is not None and all(a is b for a, b in zip(inputs, old)) and len(old) == 4:
            return self._ingress_view
        self._ingress_in = inputs
        self._ingress_view = ingress_view(kube, answers, self._ingress_view)
        return self._ingress_view

    def _path_of(self) -> PathView | None:
        """The path source's data in a view; the previous view while the data is the same object."""
        data = self.path() if self.path is not None else None
        if data is None:
            self._path_view = None
        elif self._path_view is None or self._path_view.data is not data:
            self._path_view = PathView(data=data, fetched_at=float(getattr(data, "fetched_at", 0.0) or 0.0))
        return self._path_view

    def _agents_view(self, prev: AgentsView | None) -> AgentsView | None:
        a = self.agents
        if a is None:
            return None
        by_node = a.statuses()
        head = (bool(a.discovered), a.error or "", a.stale_after(), getattr(a, "version", 0))
        if prev is None:
            changed = frozenset(by_node)
        else:
            old = prev.by_node
            changed = frozenset(
                [k for k, v in by_node.items() if old.get(k) is not v] + [k for k in old if k not in by_node]
            )
            if not changed and head == (prev.discovered, prev.error, prev.stale, prev.version):
                return prev
        self._agents_seq += 1
        return AgentsView(
            by_node=MappingProxyType(by_node),
            discovered=head[0],
            error=head[1],
            stale=head[2],
            version=head[3],
            seq=self._agents_seq,
            since=prev.seq if prev is not None else -1,
            changed=changed,
        )

    def _judge(
        self,
        kube: Snapshot,
        dns: ProbeView | None,
        egress: ProbeView | None,
        snat: Any,
        routes: RouteView | None,
        path: PathView | None = None,
        ingress: IngressView | None = None,
        https: ProbeView | None = None,
    ) -> None:
        """Run the rules when an input moved (at most every `findings_min` s), or every
        `findings_every` s for their time-based marks. Never before the nodes are listed."""
        if not self.findings or "nodes" not in kube.synced:
            return
        inputs = (
            kube.version,
            dns.version if dns else None,
            dns.plan if dns else None,
            egress.version if egress else None,
            egress.plan if egress else None,
            getattr(snat, "version", None),
            routes.data if routes else None,
            path.data if path else None,
            ingress,
            https.version if https else None,
        )
        now = self.clock()
        age = now - self._findings_t
        if inputs == self._findings_in and age < self.findings_every:
            return
        # the rules' own share of a core stays under JUDGE_SHARE: at 5,000 nodes and 51
        # vantages a run costs tens of ms and the inputs move with every probe answer
        spacing = min(self.findings_every, max(self.findings_min, self._judge_cpu / JUDGE_SHARE))
        if inputs != self._findings_in and self._findings is not None and age < spacing:
            return
        cpu0 = time.thread_time()
        obs = observations_of(
            kube,
            dns.stats if dns else None,
            egress.stats if egress else None,
            snat,
            routes.data if routes else None,
            self.wall_clock(),
            dns.plan if dns else None,
            egress.plan if egress else None,
            path.data if path else None,
            ingress,
            https.stats if https else None,
        )
        found = self.judge(obs)
        stale = kube.stale_since()
        if stale is not None:  # built from data that is not current: each finding says how old
            data_age = round(max(0.0, now - stale))
            found = [dataclasses.replace(f, evidence={**f.evidence, "kube_data_age_s": data_age}) for f in found]
        self._findings = tuple(found)
        self._findings_at = obs.now
        self._findings_in = inputs
        self._findings_t = now
        self._judge_cpu = time.thread_time() - cpu0
        self.judged += 1

    # --- the cadence ---------------------------------------------------------------------
    def start(self, on_frame: Callable[[Frame], None]) -> None:
        """Publish a frame every `interval` s on a thread; `on_frame` must not block."""
        if self._thread is not None:
            return
        self._stop.clear()

        def run() -> None:
            next_at = time.monotonic()
            while not self._stop.is_set():
                frame = self.publish()
                try:
                    on_frame(frame)
                except Exception:  # noqa: BLE001 - a closing app; the next frame tries again
                    pass
                next_at += self.interval
                delay = next_at - time.monotonic()
                if delay < 0:  # a slow frame: the cadence moves on, frames never pile up
                    next_at, delay = time.monotonic(), 0.0
                self._stop.wait(delay)

        self._thread = threading.Thread(target=run, name="snapshot-publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None and t is not threading.current_thread():
            t.join(timeout)


__all__ = ["Publisher", "observations_of", "empty_snapshot"]
