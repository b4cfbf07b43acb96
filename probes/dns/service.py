"""The DNS service: probes every resolver of the cluster from every vantage, forever.

A Source (``start()``/``stop(timeout)``) for the app and ``check``. It runs the DNS
scheduler on a :class:`~probes.engine.scheduler.BackgroundLoop`, follows the store's topology
(polling ``Store.version``, at most every ``poll`` seconds), recomputes the resolvers of
each vantage with :func:`~probes.dns.resolvers.resolvers_for` when the topology changes,
swaps the scheduler's jobs (unchanged keys keep their cadence) and records results in
``history``. Views read ``history`` and :meth:`DnsService.plan`; they never call the
service otherwise.

Vantages: ``local`` (this host) always. Per-node vantages come from a
:class:`VantageMap` — **the seam where the per-node agent plugs in**. Today the demo's
map (:class:`probes.lab.dnsdemo.DnsDemo`) says, per node, which loopback responder
stands for each production address, and the probes run in-process. The agent issue
replaces it with a map whose vantages are probed *by the agent on that node*; the plan,
the history keys (``ProbeKey(vantage, resolver, name, type)``) and the pane stay as they
are.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from probes.dns.probe import DnsProbe, dns_jobs
from probes.dns.resolvers import DEFAULT_NAMES, Resolver, ResolverOptions, parse_override, resolvers_for
from probes.engine.following import FollowingService
from probes.engine.history import History
from probes.kube.model import LOCAL_VANTAGE, Topology, node_vantage


@dataclass(frozen=True, slots=True)
class Vantage:
    """Where queries start from, and how production addresses are reached from there."""

    name: str  # "local" or node_vantage(node)
    node: str | None = None  # the node (its LocalDNS label decides); None for local
    # production address or resolver key -> (host, port) actually dialled
    overrides: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    # probe only resolvers that have an override: the lab never dials a real address
    confine: bool = False
    # probed by the aksnet-top agent on that node and read through the API server: the
    # plan shows it, the results arrive in `history` from probes.agent.reader, no job here
    agent: bool = False


class VantageMap(Protocol):
    """Supplies the per-node vantages for a topology (and optionally refines `local`).

    Called on the service's loop thread whenever the topology changes, and every
    `poll` seconds when ``version`` changes; must be quick and must not block.
    Implementations: the demo's lab responders (probes.lab.dnsdemo.DnsDemo); later, the
    per-node agents' results.
    """

    version: int  # bump when the vantages change without a topology change

    def vantages(self, topology: Topology) -> Sequence[Vantage]: ...


@dataclass(frozen=True, slots=True)
class DnsSettings:
    interval: float = 5.0
    timeout: float = 2.0
    names: tuple[str, ...] = DEFAULT_NAMES
    resolvers: tuple[str, ...] = ()  # extra servers ("10.1.0.4", "[fd00::53]:5353")
    azure_dns: bool = False
    overrides: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    jitter: float = 0.1
    concurrency: int = 64
    qtype: str = "A"

    @staticmethod
    def from_config(dns: Any) -> DnsSettings:
        """From a validated probes.config.DnsConfig."""
        over = dict(parse_override(t) for t in getattr(dns, "overrides", ()))
        return DnsSettings(
            interval=dns.interval,
            timeout=dns.timeout,
            names=tuple(dns.names),
            resolvers=tuple(dns.resolvers),
            azure_dns=dns.azure_dns,
            overrides=over,
        )


@dataclass(frozen=True, slots=True)
class VantagePlan:
    vantage: Vantage
    resolvers: tuple[Resolver, ...]


@dataclass(frozen=True, slots=True)
class DnsPlan:
    """What is probed now: vantages in display order (local first), their resolvers in
    path order, and the names. Immutable; a new one replaces it on every change."""

    version: int
    vantages: tuple[VantagePlan, ...]
    names: tuple[str, ...]
    qtype: str = "A"
    interval: float = 5.0
    error: str = ""  # why the plan could not be (re)built, shown by views

    @property
    def jobs(self) -> int:
        return sum(1 for v in self.vantages for r in v.resolvers if r.reachable) * len(self.names)

    @property
    def unreachable(self) -> int:
        """Rows not reachable from their vantage (shown grey, never probed)."""
        return sum(1 for v in self.vantages for r in v.resolvers if not r.reachable) * len(self.names)

    @property
    def agents(self) -> int:
        return sum(1 for v in self.vantages if v.vantage.agent)


EMPTY_PLAN = DnsPlan(0, (), DEFAULT_NAMES)


def build_plan(
    topology: Topology,
    settings: DnsSettings,
    vantages: Sequence[Vantage],
    version: int,
    agents: Sequence[VantagePlan] = (),
    reach: Callable[[str], str] | None = None,
) -> DnsPlan:
    """Pure: the resolvers of every vantage. `local` comes first and always exists.
    `agents`: the nodes' agents, with the resolvers each reports probing; a node with an
    agent is probed by its agent, not from here. `reach`: address dialled -> why this
    host cannot reach it ("" when it can; probes.engine.reach), for the vantages probed
    from here: such resolvers stay in the plan, marked, and get no job."""
    by_name: dict[str, Vantage] = {}
    remote = {a.vantage.name: a for a in agents if a.vantage.name != LOCAL_VANTAGE}
    for v in vantages:
        if v.name not in remote:
            by_name.setdefault(v.name, v)
    local = by_name.pop(LOCAL_VANTAGE, None) or Vantage(LOCAL_VANTAGE)
    ordered = [local, *sorted(by_name.values(), key=lambda v: v.name)]
    plans = []
    for v in ordered:
        overrides = {**settings.overrides, **v.overrides}
        opts = ResolverOptions(
            azure_dns=settings.azure_dns,
            custom=settings.resolvers,
            overrides=overrides,
            node=v.node,
            names=settings.names,
        )
        rs = resolvers_for(topology, opts)
        if reach is not None:
            rs = [_classified(r, reach) for r in rs]
        if v.confine:  # the lab dials only what it maps; what is out of reach is shown anyway
            rs = [r for r in rs if r.target is not None or r.unreachable]
        plans.append(VantagePlan(v, tuple(rs)))
    plans[1:] = sorted([*plans[1:], *remote.values()], key=lambda p: p.vantage.name)
    return DnsPlan(version, tuple(plans), tuple(settings.names), settings.qtype, settings.interval)


def _classified(r: Resolver, reach: Callable[[str], str]) -> Resolver:
    why = reach(r.dest[0])
    return dataclasses.replace(r, unreachable=why) if why != r.unreachable else r


class DnsService(FollowingService):
    """Source for the app: start() returns at once; stop(timeout) joins the loop thread."""

    name = "dns"
    what = "DNS probes"

    def __init__(
        self,
        store: object,
        settings: DnsSettings | None = None,
        *,
        vantage_map: VantageMap | None = None,
        history: History | None = None,
        poll: float = 0.5,
        agents: Any = None,
        reach: Callable[[Topology], Any] | None = None,
    ) -> None:
        super().__init__(store, EMPTY_PLAN, vantage_map=vantage_map, history=history, poll=poll, agents=agents)
        self.settings = settings or DnsSettings()
        # this host's classifier for a topology (probes.engine.reach.for_topology, which
        # reads the routing table); None: everything is probed
        self.reach = reach

    def plan(self) -> DnsPlan:
        plan: DnsPlan = super().plan()
        return plan

    def _concurrency_now(self) -> int:
        return self.settings.concurrency

    def _with_error(self, plan: DnsPlan, error: str) -> DnsPlan:
        return DnsPlan(plan.version, plan.vantages, plan.names, plan.qtype, plan.interval, error)

    def _replan(self) -> None:
        snap = self.store.snapshot()  # type: ignore[attr-defined]
        topo: Topology = snap.topology
        vantages = list(self.vantage_map.vantages(topo)) if self.vantage_map is not None else []
        old = self.plan()
        reach = self.reach(topo) if self.reach is not None else None
        why = reach.why_not if reach is not None else None
        plan = build_plan(topo, self.settings, vantages, old.version + 1, agent_plans(self.agents), why)
        if (plan.vantages, plan.names) == (old.vantages, old.names) and not old.error:
            return
        s = self.settings
        jobs = []
        for vp in plan.vantages:
            if vp.vantage.agent:
                continue
            probe = DnsProbe(vp.vantage.name, timeout=s.timeout)
            jobs += dns_jobs(
                vp.resolvers, plan.names, probe=probe, rdtype=s.qtype, interval=s.interval, jitter=s.jitter
            )
        self._commit(plan, jobs)


def agent_plans(agents: Any) -> list[VantagePlan]:
    """The nodes whose agent has been read, with the resolvers it reports."""
    if agents is None:
        return []
    out = []
    for node, st in agents.statuses().items():
        if st.resolvers:
            out.append(VantagePlan(Vantage(node_vantage(node), node, agent=True), tuple(st.resolvers)))
    return out


def wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll `cond` until true or `timeout` s (tests and scripts)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()
