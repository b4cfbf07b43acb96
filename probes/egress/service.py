"""The egress service: checks every TCP target from every vantage, forever.

A Source (``start()``/``stop(timeout)``) for the app and ``check``, built like
:class:`probes.dns.service.DnsService`: the scheduler runs on a
:class:`~probes.engine.scheduler.BackgroundLoop`, the service follows the store (polling
``Store.version`` at most every ``poll`` seconds), rebuilds the plan when the topology,
the API server or the vantages change, swaps the scheduler's jobs (unchanged keys keep
their cadence) and records results in ``history`` keyed by
``EgressKey(vantage, 'host:port')``. Views read ``history`` and :meth:`EgressService.plan`.

Targets: AKS's required outbound endpoints (``[egress] aks_defaults``), the cluster's API
server host:port (from the kubeconfig the kube source connected with:
``Snapshot.target`` is "context @ server"), then ``[egress] targets``. Names resolve
through the DNS module (dnspython: the host's resolv.conf for ``local``, the vantage's
DNS server otherwise), so a DNS failure is its own outcome.

Vantages: ``local`` (this host) always. Per-node vantages come from an
:class:`EgressVantageMap` — **the seam where the per-node agent plugs in**. Today the
demo's map (:class:`probes.lab.egressdemo.EgressDemo`) gives each node the lab DNS server
that answers its view of every name with a loopback target; the probes run in-process.
The agent issue replaces it with a map whose vantages are checked by the agent on that
node; the plan, the history keys and the pane stay as they are.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from probes.egress.probe import (
    DEFAULT_DNS_TIMEOUT,
    DEFAULT_INTERVAL,
    DEFAULT_TIMEOUT,
    DnsFailure,
    EgressProbe,
    Resolve,
    default_concurrency,
    egress_jobs,
    raise_nofile_limit,
    resolver_at,
)
from probes.egress.targets import Target, egress_targets, parse_target
from probes.engine.following import FollowingService
from probes.engine.history import History
from probes.kube.model import LOCAL_VANTAGE, Topology, node_vantage

_nofile_lock = threading.Lock()
_nofile_raised = False


def raise_nofile_once() -> None:
    """Lift the open-files soft limit to the hard one, once per process (egress checks
    hold one descriptor each; many shells start at 1024)."""
    global _nofile_raised
    with _nofile_lock:
        if not _nofile_raised:
            raise_nofile_limit()
            _nofile_raised = True


@dataclass(frozen=True, slots=True)
class EgressVantage:
    """Where checks start from, and how names and addresses are reached from there."""

    name: str  # "local" or node_vantage(node)
    node: str | None = None
    dns: tuple[str, int] | None = None  # DNS server this vantage resolves through; None: resolv.conf
    # the lab's DNAT: 'addr' or 'addr:port' -> port actually dialled (probes.egress.probe.EgressProbe)
    dial_map: Mapping[str, int] = field(default_factory=dict)
    # the lab: dial loopback only (IP targets elsewhere are left out, DNS answers elsewhere
    # become a dns-failure), and never fall back to this host's resolv.conf
    confine: bool = False
    # checked by the aksnet-top agent on that node (read by probes.agent.reader), not here
    agent: bool = False


class EgressVantageMap(Protocol):
    """Supplies the vantages for a topology (may include a refined `local`).

    Called on the service's loop thread when the topology changes, and every `poll`
    seconds when ``version`` changes; must be quick and must not block. Implementations:
    the demo (probes.lab.egressdemo.EgressDemo); later, the per-node agents.
    """

    version: int

    def vantages(self, topology: Topology) -> Sequence[EgressVantage]: ...


@dataclass(frozen=True, slots=True)
class EgressSettings:
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    dns_timeout: float = DEFAULT_DNS_TIMEOUT
    mode: str = "auto"
    targets: tuple[str, ...] = ()  # extra "host:port" (validated by probes.config)
    aks_defaults: bool = True
    apiserver: bool = True
    jitter: float = 0.1
    concurrency: int | None = None  # None: what the descriptor limit allows (≤ 1024)

    @staticmethod
    def from_config(egress: object) -> EgressSettings:
        """From a validated probes.config.EgressConfig."""
        e: Any = egress
        return EgressSettings(
            interval=e.interval,
            timeout=e.timeout,
            mode=e.mode,
            targets=tuple(e.targets),
            aks_defaults=e.aks_defaults,
            apiserver=e.apiserver,
        )


@dataclass(frozen=True, slots=True)
class EgressVantagePlan:
    vantage: EgressVantage
    targets: tuple[Target, ...]
    left_out: int = 0  # targets a confined (lab) vantage does not dial


@dataclass(frozen=True, slots=True)
class EgressPlan:
    """What is checked now: vantages in display order (local first) and the targets of
    each. Immutable; a new one replaces it on every change."""

    version: int
    vantages: tuple[EgressVantagePlan, ...]
    targets: tuple[Target, ...]
    interval: float = DEFAULT_INTERVAL
    mode: str = "auto"
    server: str = ""  # the API server URL the apiserver target came from
    note: str = ""  # something left out, said plainly (a bad API server URL)
    error: str = ""  # why the plan could not be (re)built, shown by views

    @property
    def jobs(self) -> int:
        return sum(1 for v in self.vantages for t in v.targets if t.reachable)

    @property
    def unreachable(self) -> int:
        """Rows not reachable from their vantage (shown grey, never checked)."""
        return sum(1 for v in self.vantages for t in v.targets if not t.reachable)

    @property
    def agents(self) -> int:
        return sum(1 for v in self.vantages if v.vantage.agent)

    def target(self, text: str) -> Target | None:
        for t in self.targets:
            if t.text == text:
                return t
        for vp in self.vantages:
            for t in vp.targets:
                if t.text == text:
                    return t
        return None


EMPTY_PLAN = EgressPlan(0, (), ())


def server_of(target: str) -> str:
    """The server URL out of Snapshot.target ("context @ server"); "" before connecting."""
    return target.rpartition(" @ ")[2].strip() if target else ""


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_plan(
    settings: EgressSettings,
    vantages: Sequence[EgressVantage],
    server: str,
    version: int,
    agents: Sequence[EgressVantagePlan] = (),
    reach: Callable[[str], str] | None = None,
) -> EgressPlan:
    """Pure: the targets of every vantage. `local` comes first and always exists.
    `agents`: the nodes' agents with the targets each reports; such a node is checked by
    its agent, not from here. `reach`: IP address -> why this host cannot reach it (""
    when it can; probes.engine.reach), for the vantages checked from here: such targets
    stay in the plan, marked, and get no job."""
    note = ""
    try:
        targets = egress_targets(
            server_url=server if settings.apiserver and server else None,
            extra=settings.targets,
            defaults=settings.aks_defaults,
        )
    except ValueError as e:  # the API server URL (config targets were validated at load)
        note = f"API server left out: {e}"
        targets = egress_targets(extra=settings.targets, defaults=settings.aks_defaults)
    by_name: dict[str, EgressVantage] = {}
    remote = {a.vantage.name: a for a in agents if a.vantage.name != LOCAL_VANTAGE}
    for v in vantages:
        if v.name not in remote:
            by_name.setdefault(v.name, v)
    local = by_name.pop(LOCAL_VANTAGE, None) or EgressVantage(LOCAL_VANTAGE)
    plans = []
    for v in [local, *sorted(by_name.values(), key=lambda v: v.name)]:
        ts = targets
        if reach is not None:
            ts = [_classified(t, reach) for t in ts]
        if v.confine:  # the lab dials loopback only; what is out of reach is shown anyway
            ts = [t for t in ts if (_loopback(t.host) or bool(t.unreachable) if t.is_ip else v.dns is not None)]
        plans.append(EgressVantagePlan(v, tuple(ts), len(targets) - len(ts)))
    known = {t.text: t for t in targets}  # an agent's target keeps what the app knows of it
    theirs = [EgressVantagePlan(a.vantage, tuple(known.get(t.text, t) for t in a.targets)) for a in remote.values()]
    plans[1:] = sorted([*plans[1:], *theirs], key=lambda p: p.vantage.name)
    return EgressPlan(version, tuple(plans), tuple(targets), settings.interval, settings.mode, server, note)


def _classified(t: Target, reach: Callable[[str], str]) -> Target:
    why = reach(t.host) if t.is_ip else ""  # a name's address is known only when resolved
    return dataclasses.replace(t, unreachable=why) if why != t.unreachable else t


def _confined(resolve: Resolve) -> Resolve:
    """Keep only loopback answers: the lab must never send a packet beyond loopback."""

    async def resolve_loopback(name: str) -> list[str]:
        addrs = [a for a in await resolve(name) if _loopback(a)]
        if not addrs:
            raise DnsFailure(f"{name}: the lab answered with no loopback address (not dialled)")
        return addrs

    return resolve_loopback


def vantage_resolve(dns: tuple[str, int] | None, confine: bool, timeout: float) -> Resolve | None:
    """How a vantage resolves egress names: through `dns` when given, else this host's
    resolv.conf (None) — except in the lab (`confine`), which never falls back to it and
    keeps only loopback answers. The app's vantages and the agent's share this."""
    resolve: Resolve | None = None
    if dns is not None:
        resolve = resolver_at(dns[0], dns[1], timeout)
    elif confine:

        async def no_dns(name: str) -> list[str]:
            raise DnsFailure(f"{name}: no lab DNS server for this vantage (not resolved)")

        resolve = no_dns
    if confine and resolve is not None:
        resolve = _confined(resolve)
    return resolve


class EgressService(FollowingService):
    """Source for the app: start() returns at once; stop(timeout) joins the loop thread."""

    name = "egress"
    what = "egress checks"

    def __init__(
        self,
        store: object,
        settings: EgressSettings | None = None,
        *,
        vantage_map: EgressVantageMap | None = None,
        history: History | None = None,
        poll: float = 0.5,
        server_url: str | None = None,
        probe_options: Mapping[str, Any] | None = None,
        agents: Any = None,
        reach: Callable[[Topology], Any] | None = None,
    ) -> None:
        super().__init__(store, EMPTY_PLAN, vantage_map=vantage_map, history=history, poll=poll, agents=agents)
        self.settings = settings or EgressSettings()
        self.server_url = server_url  # None: follow the store's "context @ server"
        self._probe_options = dict(probe_options or {})  # e.g. raw_socket (tests)
        self._probes: dict[str, tuple[EgressVantage, EgressProbe]] = {}
        self._concurrency = 1
        # this host's classifier for a topology (probes.engine.reach.for_topology); None:
        # every target is checked
        self.reach = reach

    def plan(self) -> EgressPlan:
        plan: EgressPlan = super().plan()
        return plan

    def _concurrency_now(self) -> int:
        raise_nofile_once()
        self._concurrency = default_concurrency(self.settings.concurrency)
        return self._concurrency

    async def _halt(self) -> None:
        for _, probe in list(self._probes.values()):
            await probe.close()
        self._probes.clear()

    def _with_error(self, p: EgressPlan, error: str) -> EgressPlan:
        return EgressPlan(p.version, p.vantages, p.targets, p.interval, p.mode, p.server, p.note, error)

    def _probe_for(self, v: EgressVantage) -> EgressProbe:
        s = self.settings
        resolve = vantage_resolve(v.dns, v.confine, s.dns_timeout)
        return EgressProbe(
            v.name,
            timeout=s.timeout,
            dns_timeout=s.dns_timeout,
            mode=s.mode,
            resolve=resolve,
            dial_map=v.dial_map,
            concurrency=self._concurrency,
            **self._probe_options,
        )

    def _replan(self) -> None:
        snap = self.store.snapshot()  # type: ignore[attr-defined]
        server = self.server_url if self.server_url is not None else server_of(snap.target)
        vantages = list(self.vantage_map.vantages(snap.topology)) if self.vantage_map is not None else []
        old = self.plan()
        reach = self.reach(snap.topology) if self.reach is not None else None
        why = reach.why_not if reach is not None else None
        plan = build_plan(self.settings, vantages, server, old.version + 1, agent_plans(self.agents), why)
        if (plan.vantages, plan.targets, plan.note) == (old.vantages, old.targets, old.note) and not old.error:
            return
        probes: dict[str, tuple[EgressVantage, EgressProbe]] = {}
        jobs = []
        s = self.settings
        for vp in plan.vantages:
            v = vp.vantage
            if v.agent:
                continue
            kept = self._probes.get(v.name)
            probe = kept[1] if kept is not None and kept[0] == v else self._probe_for(v)
            probes[v.name] = (v, probe)
            jobs += egress_jobs(vp.targets, probe, interval=s.interval, jitter=s.jitter)
        # replaced probes are not closed here: a cancelled check may still be unwinding on
        # them, and their SYN engine closes its raw sockets by itself once idle
        self._probes = probes
        self._commit(plan, jobs)


def agent_plans(agents: Any) -> list[EgressVantagePlan]:
    """The nodes whose agent has been read, with the targets it reports checking."""
    if agents is None:
        return []
    out = []
    for node, st in agents.statuses().items():
        if not st.targets:
            continue
        targets = []
        for text in st.targets:
            try:
                targets.append(parse_target(text, source="agent"))
            except ValueError:
                continue  # an agent's odd target is left out, never the app
        out.append(EgressVantagePlan(EgressVantage(node_vantage(node), node, agent=True), tuple(targets)))
    return out
