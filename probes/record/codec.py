"""How a frame's parts become a recording's channels, and back.

A recording is a map channel -> value (msgpack-able builtins) that moves in time. The
channels are small on purpose, so a frame's change is a few rows:

- ``kube``: the topology's header (cluster, plugin, CIDRs, …), the sources' statuses,
  the synced collections and the target;  ``pods``: CoreDNS, NodeLocal DNS, services;
- ``n\\t<node>``: one node's record (a node added, changed, or — value None — removed);
- ``dns.plan`` / ``egress.plan``: a probe service's plan and error line;
- ``d\\t<key>`` / ``e\\t<key>``: one DNS / egress row's stats (a compact list);
- ``snat``: the SNAT report (a new one per Azure Monitor refresh); ``routes``: ARM's routes;
- ``agents`` and ``a\\t<node>``: the agent reader's header and one node's agent;
- ``findings``: the rules' verdict; ``error``: the publisher's own failure.

`Differ` (writer side) says which channels a frame changed; `Thawer` (reader side) turns
channels back into a `Frame` that the app's panes render as they rendered the original.
Every string that could carry a credential goes through `probes.record.redact`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import msgspec

from probes.agent.reader import AgentStatus
from probes.azure.routes import RouteData, compare
from probes.azure.service import SnatReport
from probes.diagnose.model import Finding, Severity
from probes.dns.result import DnsResult, ProbeKey
from probes.dns.service import DnsPlan
from probes.egress.result import EgressKey, EgressResult
from probes.egress.service import EgressPlan
from probes.engine.frame import EMPTY, AgentsView, Frame, ProbeView, RouteView
from probes.engine.history import Stats
from probes.engine.store import Snapshot
from probes.kube.model import NetworkPlugin, NodeInfo, PodState, ServiceInfo, SourceStatus, Topology
from probes.kube.topology import build_pools
from probes.record import redact

NODE, DNS, EGRESS, AGENT = "n\t", "d\t", "e\t", "a\t"
RAW_MAX = 400  # characters of a row's last raw answer kept


def _b(obj: Any) -> Any:
    return msgspec.to_builtins(obj, enc_hook=repr)


def key_text(key: Hashable) -> str:
    return json.dumps(list(key) if isinstance(key, tuple) else [key], separators=(",", ":"))


# --- kube --------------------------------------------------------------------------------
def kube_head(snap: Snapshot, now_mono: float) -> dict[str, Any]:
    t = snap.topology
    return redact.scrub(
        {
            "cluster": t.cluster,
            "plugin": t.plugin.value,
            "dataplane": t.dataplane,
            "pod_cidrs": list(t.pod_cidrs),
            "dns_service_ip": t.dns_service_ip,
            "nodelocal_enabled": t.nodelocal_enabled,
            "server_version": t.server_version,
            "version": snap.version,
            "statuses": [
                # monotonic times become ages: they mean nothing in another process
                {
                    "source": s.source,
                    "state": s.state.value,
                    "message": s.message,
                    "detail": s.detail,
                    "retry_in": None if s.retry_at is None else round(s.retry_at - now_mono, 1),
                }
                for s in snap.statuses
            ],
            "synced": sorted(snap.synced),
            "target": snap.target,
        }
    )


def pods_of(t: Topology) -> dict[str, Any]:
    return redact.scrub(
        {
            "coredns": [_b(p) for p in t.coredns],
            "nodelocal": {k: _b(p) for k, p in t.nodelocal.items()},
            "services": [_b(s) for s in t.services],
            "events": {k: list(v) for k, v in t.service_events.items()},
        }
    )


def node_row(n: NodeInfo) -> Any:
    return _b(n)


# --- probe rows --------------------------------------------------------------------------
def stats_row(st: Stats) -> list[Any]:
    last = st.last
    if isinstance(last, DnsResult):
        lastv: Any = ["dns", redact.scrub(_b(last))]
        lastv[1]["raw"] = lastv[1]["raw"][:RAW_MAX]
    elif isinstance(last, EgressResult):
        lastv = ["egress", redact.scrub(_b(last))]
    else:
        lastv = None
    return [
        st.count,
        st.attempts,
        st.successes,
        st.p50,
        st.p95,
        st.p99,
        round(st.loss_pct, 2),
        st.last_outcome,
        redact.text(st.last_error),
        redact.text(st.last_raw[:RAW_MAX]),
        st.last_ts,
        [None if x is None else round(x, 2) for x in st.recent],
        lastv,
        st.version,
    ]


def stats_signature(st: Stats) -> tuple[Any, ...]:
    """What makes a row's change worth recording at once (its health can move)."""
    return (st.last_outcome, st.attempts - st.successes, round(st.loss_pct), st.last_error)


def decode_stats(v: list[Any]) -> Stats:
    last: Any = None
    if v[12] is not None:
        kind, body = v[12]
        try:
            last = msgspec.convert(body, DnsResult if kind == "dns" else EgressResult)
        except msgspec.ValidationError:
            last = None
    return Stats(
        count=v[0],
        attempts=v[1],
        successes=v[2],
        p50=v[3],
        p95=v[4],
        p99=v[5],
        loss_pct=v[6],
        last_outcome=v[7],
        last_error=v[8],
        last_raw=v[9],
        last_ts=v[10],
        last=last,
        recent=tuple(v[11]),
        version=v[13],
    )


def plan_row(view: ProbeView) -> dict[str, Any]:
    return {"plan": redact.scrub(_b(view.plan)), "error": redact.text(view.error)}


def agent_row(a: AgentStatus, now_mono: float) -> dict[str, Any]:
    row = redact.scrub(_b(a))
    row["read_at"] = None if a.read_at is None else round(now_mono - a.read_at, 2)  # an age
    return row


def findings_row(findings: tuple[Any, ...] | None, at: float) -> dict[str, Any] | None:
    if findings is None:
        return None
    return {"at": at, "list": [redact.scrub(_b(f)) for f in findings]}


def finding_key(f: Any) -> str:
    return f"{f.rule}\t{f.subject}"


# --- the writer's side: which channels a frame changed ------------------------------------
@dataclass
class Change:
    """One frame's changes: channel -> new value (None: gone), and what a person would
    call a change (timeline marks), as (kind, text)."""

    channels: dict[str, Any] = field(default_factory=dict)
    marks: list[tuple[str, str]] = field(default_factory=list)
    opened: list[Any] = field(default_factory=list)  # findings that started
    closed: list[str] = field(default_factory=list)  # finding keys that ended


class Differ:
    """Follows the frames (on the recorder's thread) and keeps the recording's state: the
    current value of every channel (what a keyframe holds). A probe row whose health
    cannot have moved is recorded at most every `stats_every` seconds."""

    def __init__(self, stats_every: float = 30.0, mono: Callable[[], float] = time.monotonic) -> None:
        self.state: dict[str, Any] = {}
        self.stats_every = stats_every
        self.mono = mono
        self._prev: Frame | None = None
        self._sig: dict[str, tuple[float, tuple[Any, ...]]] = {}
        self._open: dict[str, Any] = {}

    def _put(self, ch: Change, name: str, value: Any) -> None:
        if value is None:
            if self.state.pop(name, None) is not None:
                ch.channels[name] = None
        elif self.state.get(name) != value:
            self.state[name] = value
            ch.channels[name] = value

    def step(self, t: float, f: Frame) -> Change:
        ch = Change()
        p = self._prev
        now_mono = self.mono()
        if p is None or f.kube is not p.kube:
            self._kube(ch, f, p, now_mono)
        for name, prefix, view, old in (
            ("dns", DNS, f.dns, p.dns if p else None),
            ("egress", EGRESS, f.egress, p.egress if p else None),
        ):
            if view is not None and view is not old:
                self._probe(ch, t, name, prefix, view, old)
        if f.snat is not None and (p is None or f.snat is not p.snat):
            old_state = (self.state.get("snat") or {}).get("state")
            self._put(ch, "snat", redact.scrub(_b(f.snat)))
            if f.snat.state.value != old_state:
                ch.marks.append(("snat", f"SNAT source {f.snat.state.value}"))
        if f.routes is not None and (p is None or p.routes is None or f.routes.data is not p.routes.data):
            self._put(ch, "routes", redact.scrub(_b(f.routes.data)))
        if f.agents is not None and (p is None or f.agents is not p.agents):
            self._agents(ch, f.agents, p.agents if p else None, now_mono)
        if p is None or f.findings is not p.findings:
            self._findings(ch, f)
        self._put(ch, "error", redact.text(f.error) or None)
        self._prev = f
        return ch

    def _kube(self, ch: Change, f: Frame, p: Frame | None, now_mono: float) -> None:
        head = kube_head(f.kube, now_mono)
        old_head = self.state.get("kube")
        # statuses carry ages that move every frame: compare without them
        if old_head is None or {**head, "statuses": _st(head), "version": 0} != {
            **old_head,
            "statuses": _st(old_head),
            "version": 0,
        }:
            self.state["kube"] = head
            ch.channels["kube"] = head
            if old_head is None or _st(head) != _st(old_head):
                for s in head["statuses"]:
                    ch.marks.append(("source", f"{s['source']}: {s['state']}"))
        topo, old = f.topology, (p.topology if p is not None else None)
        if old is topo:
            return
        if old is None or (topo.coredns, topo.nodelocal, topo.services, topo.service_events) != (
            old.coredns,
            old.nodelocal,
            old.services,
            old.service_events,
        ):
            self._put(ch, "pods", pods_of(topo))
        if old is not None and topo.nodes is old.nodes:
            return
        before = {n.name: n for n in old.nodes} if old is not None else {}
        listed = bool(before)  # a first listing is one mark, not one per node
        if not listed and topo.nodes:
            ch.marks.append(("node", f"{len(topo.nodes)} nodes listed"))
        for n in topo.nodes:
            o = before.pop(n.name, None)
            if o is None or o != n:
                self._put(ch, NODE + n.name, node_row(n))
                if listed:
                    if o is None:
                        ch.marks.append(("node", f"node {n.name} added"))
                    elif (o.ready, o.cordoned, o.network_unavailable) != (n.ready, n.cordoned, n.network_unavailable):
                        what = "Ready" if n.ready else "NotReady"
                        ch.marks.append(("node", f"node {n.name} {what}{', cordoned' if n.cordoned else ''}"))
        for name in before:
            self._put(ch, NODE + name, None)
            ch.marks.append(("node", f"node {name} removed"))

    def _probe(self, ch: Change, t: float, name: str, prefix: str, view: ProbeView, old: ProbeView | None) -> None:
        if old is None or view.plan is not old.plan or view.error != old.error:
            self._put(ch, name + ".plan", plan_row(view))
        if old is not None and view.since == old.version:
            keys: Any = view.changed
        elif old is not None:  # a frame was skipped: compare the rows themselves
            keys = [k for k, st in view.stats.items() if old.stats.get(k) is not st]
        else:
            keys = view.stats.keys()
        for k in keys:
            st = view.stats.get(k)
            if st is None:
                continue
            chan = prefix + key_text(k)
            sig = stats_signature(st)
            seen = self._sig.get(chan)
            if seen is not None and seen[1] == sig and t - seen[0] < self.stats_every:
                continue
            self._sig[chan] = (t, sig)
            row = stats_row(st)
            self.state[chan] = row
            ch.channels[chan] = row

    def _agents(self, ch: Change, v: AgentsView, old: AgentsView | None, now_mono: float) -> None:
        self._put(ch, "agents", {"discovered": v.discovered, "error": redact.text(v.error), "stale": v.stale})
        changed = (
            v.changed
            if old is not None and v.since == old.seq
            else frozenset(v.by_node) | (frozenset(old.by_node) if old is not None else frozenset())
        )
        for node in changed:
            a = v.by_node.get(node)
            self._put(ch, AGENT + node, None if a is None else agent_row(a, now_mono))

    def _findings(self, ch: Change, f: Frame) -> None:
        row = findings_row(f.findings, f.findings_at)
        if row is None:
            return
        old = self.state.get("findings")
        if old is None or old["list"] != row["list"]:
            self.state["findings"] = row
            ch.channels["findings"] = row
        now = {finding_key(x): x for x in (f.findings or ())}
        for k, x in now.items():
            if k not in self._open:
                ch.opened.append(x)
                ch.marks.append(("finding", f"{x.severity} {x.subject}: {x.cause}"[:200]))
        for k, x in self._open.items():
            if k not in now:
                ch.closed.append(k)
                ch.marks.append(("finding", f"cleared {x.subject}: {x.rule}"[:200]))
        self._open = now


def _st(head: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    return [(s["source"], s["state"], s["message"], s["detail"]) for s in head["statuses"]]


# --- the reader's side: channels back into a frame ----------------------------------------
def _typed(value: Any, typ: type, default: Any = None) -> Any:
    try:
        return msgspec.convert(value, typ)
    except (msgspec.ValidationError, TypeError):
        return default


class Thawer:
    """Builds frames from channel states. Parts whose channels did not move are the
    previous frame's objects, so the panes' identity checks skip them as in the app."""

    def __init__(self) -> None:
        self._seq = 0
        self._cache: dict[str, tuple[Any, Any]] = {}  # channel -> (value it was decoded from, object)
        self._prev: Frame | None = None
        self._probe_version = {"dns": 0, "egress": 0}
        self._agents_seq = 0

    def _get(self, state: Mapping[str, Any], name: str, decode: Callable[[Any], Any]) -> Any:
        v = state.get(name)
        hit = self._cache.get(name)
        if hit is not None and hit[0] is v:
            return hit[1]
        obj = None if v is None else decode(v)
        self._cache[name] = (v, obj)
        return obj

    def frame(self, state: Mapping[str, Any], at: float) -> Frame:
        p = self._prev
        kube = self._kube(state, p)
        dns = self._probe(state, "dns", DNS, DnsPlan, ProbeKey, p.dns if p else None)
        egress = self._probe(state, "egress", EGRESS, EgressPlan, EgressKey, p.egress if p else None)
        snat = self._get(state, "snat", lambda v: _typed(v, SnatReport))
        data = self._get(state, "routes", lambda v: _typed(v, RouteData))
        routes = p.routes if p is not None and p.routes is not None and p.routes.data is data else None
        if data is not None and (routes is None or p is None or p.kube.topology is not kube.topology):
            by_node: Mapping[str, Any] = EMPTY
            if not data.error and kube.topology.plugin is NetworkPlugin.KUBENET:
                by_node = MappingProxyType(dict(compare(data, kube.topology.nodes).by_node))
            routes = RouteView(data=data, by_node=by_node)
        agents = self._agents(state, p.agents if p else None)
        frow = state.get("findings")
        findings = self._get(state, "findings", lambda v: tuple(_finding(x) for x in v["list"]))
        error = state.get("error") or ""
        if p is not None and (kube, dns, egress, snat, routes, agents, findings, error) == (
            p.kube,
            p.dns,
            p.egress,
            p.snat,
            p.routes,
            p.agents,
            p.findings,
            p.error,
        ):
            return p
        self._seq += 1
        frame = Frame(
            seq=self._seq,
            kube=kube,
            dns=dns,
            egress=egress,
            snat=snat,
            routes=routes,
            agents=agents,
            findings=findings,
            findings_at=frow["at"] if frow else at,
            error=error,
        )
        self._prev = frame
        return frame

    def _kube(self, state: Mapping[str, Any], p: Frame | None) -> Snapshot:
        head = state.get("kube")
        pods = state.get("pods")
        nodes = [name for name in state if name.startswith(NODE)]
        sig = (head, pods, tuple(state[n] for n in nodes))
        hit = self._cache.get("\tkube")
        if hit is not None and p is not None and len(hit[0][2]) == len(sig[2]):
            if hit[0][0] is head and hit[0][1] is pods and all(a is b for a, b in zip(hit[0][2], sig[2])):
                return p.kube
        infos = [self._get(state, n, lambda v: _typed(v, NodeInfo)) for n in nodes]
        infos = sorted((i for i in infos if i is not None), key=lambda n: (n.pool, n.name))
        h = head or {}
        pd = pods or {}
        nodelocal = {k: x for k, v in (pd.get("nodelocal") or {}).items() if (x := _typed(v, PodState)) is not None}
        topo = Topology(
            cluster=h.get("cluster", ""),
            plugin=_typed(h.get("plugin", "unknown"), NetworkPlugin, NetworkPlugin.UNKNOWN),
            dataplane=h.get("dataplane", ""),
            pod_cidrs=tuple(h.get("pod_cidrs", ())),
            dns_service_ip=h.get("dns_service_ip", ""),
            nodes=tuple(infos),
            pools=build_pools(infos),
            coredns=tuple(x for v in pd.get("coredns", ()) if (x := _typed(v, PodState)) is not None),
            nodelocal=nodelocal,
            nodelocal_enabled=h.get("nodelocal_enabled", False),
            services=tuple(x for v in pd.get("services", ()) if (x := _typed(v, ServiceInfo)) is not None),
            server_version=h.get("server_version", ""),
            service_events={k: tuple(v) for k, v in (pd.get("events") or {}).items()},
        )
        now = time.monotonic()
        statuses = tuple(
            x
            for s in h.get("statuses", ())
            if (
                x := _typed(
                    {
                        "source": s["source"],
                        "state": s["state"],
                        "message": s["message"],
                        "detail": s["detail"],
                        "retry_at": None if s.get("retry_in") is None else now + s["retry_in"],
                    },
                    SourceStatus,
                )
            )
            is not None
        )
        snap = Snapshot(
            version=h.get("version", 0),
            topology=topo,
            statuses=statuses,
            synced=frozenset(h.get("synced", ())),
            target=h.get("target", ""),
            taken=now,
        )
        self._cache["\tkube"] = (sig, snap)
        return snap

    def _probe(
        self, state: Mapping[str, Any], name: str, prefix: str, plan_t: type, key_t: Any, old: ProbeView | None
    ) -> ProbeView | None:
        prow = state.get(name + ".plan")
        if prow is None:
            return None
        plan = self._get(state, name + ".plan", lambda v: _typed(v["plan"], plan_t))
        stats: dict[Hashable, Stats] = {}
        changed = []
        for ch in state:
            if not ch.startswith(prefix):
                continue

            def row(v: Any, ch: str = ch) -> tuple[Any, Stats]:
                return key_t(*json.loads(ch[len(prefix) :])), decode_stats(v)

            k, st = self._get(state, ch, row)
            stats[k] = st
            if old is None or old.stats.get(k) is not st:
                changed.append(k)
        gone = old is not None and any(k not in stats for k in old.stats)
        error = prow.get("error", "")
        if old is not None and not changed and not gone and old.plan is plan and old.error == error:
            return old
        version = self._probe_version[name] + 1
        self._probe_version[name] = version
        since = old.version if old is not None and not gone else -1
        return ProbeView(
            plan=plan,
            stats=MappingProxyType(stats),
            changed=frozenset(changed if since != -1 else stats),
            since=since,
            version=version,
            error=error,
        )

    def _agents(self, state: Mapping[str, Any], old: AgentsView | None) -> AgentsView | None:
        head = state.get("agents")
        if head is None:
            return None
        now = time.monotonic()
        by_node: dict[str, Any] = {}
        for ch in state:
            if ch.startswith(AGENT):
                a = self._get(state, ch, lambda v: _agent(v, now))
                if a is not None:
                    by_node[a.node] = a
        if old is not None:
            changed = frozenset(
                [k for k, v in by_node.items() if old.by_node.get(k) is not v]
                + [k for k in old.by_node if k not in by_node]
            )
            if not changed and (head["discovered"], head["error"], head["stale"]) == (
                old.discovered,
                old.error,
                old.stale,
            ):
                return old
        else:
            changed = frozenset(by_node)
        self._agents_seq += 1
        return AgentsView(
            by_node=MappingProxyType(by_node),
            discovered=head["discovered"],
            error=head["error"],
            stale=head["stale"],
            version=0,
            seq=self._agents_seq,
            since=old.seq if old is not None else -1,
            changed=changed,
        )


def _agent(v: Mapping[str, Any], now: float) -> AgentStatus | None:
    v = dict(v)
    age = v.get("read_at")
    v["read_at"] = None if age is None else now - age
    return _typed(v, AgentStatus)


def _finding(v: Mapping[str, Any]) -> Finding:
    try:
        sev = Severity(v.get("severity", 0))
    except ValueError:
        sev = Severity.INFO
    return Finding(
        rule=v.get("rule", ""),
        fault=v.get("fault"),
        severity=sev,
        subject=v.get("subject", ""),
        cause=v.get("cause", ""),
        evidence=v.get("evidence") or {},
        next_step=v.get("next_step", ""),
    )
