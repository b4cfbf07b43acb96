"""The observing services (DNS, egress, SNAT), built once for the app and for `check`.

`build(cfg, store, endpoints, kube)` returns every service wired to the store. On a real
cluster `endpoints` is None and every service reaches what the configuration says. Where
the cluster's remote ends are elsewhere (the demo: probes.demo hands over where its lab
serves them) :class:`Endpoints` says so as plain settings: the ARM endpoint and its
credential, the `local` vantage's DNS and egress maps, extra egress targets. The engine
never knows who serves them. Never imports textual.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from probes.config import Config, KubeConfig
from probes.diagnose import Observations
from probes.engine.history import History
from probes.engine.publisher import observations_of
from probes.engine.store import COREDNS, Snapshot, Store


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the services reach the cluster's remote ends, when not where the configuration
    says (the demo's stand-ins, from probes.demo)."""

    arm_url: str = ""  # "" = azure.arm_endpoint / azure.cloud; the demo's lab sets it (plain HTTP on loopback)
    arm_credential: Callable[[], Any] | None = None  # a TokenCredential factory; None = the configured one
    arm_discover: bool = False  # find subscription, node resource group, firewall at the endpoint
    dns_map: Any = None  # VantageMap of the DNS probes' vantages; None = the host's own resolvers
    egress_map: Any = None  # VantageMap of the egress probes' vantages
    extra_targets: tuple[str, ...] = ()  # egress targets to check beside egress.targets
    # the HTTPS probe's "addr:port" -> (address, port) actually dialled (None: dial what the
    # hosts resolve to); when set, nothing beyond loopback is ever dialled
    https_dial: Any = None
    https_ca: str = ""  # PEM file of the CAs the HTTPS probe trusts instead of https.ca_bundle


class ServiceError(Exception):
    """A service cannot start for a reason the user can act on (one line)."""


@dataclass
class Services:
    dns: Any
    egress: Any
    snat: Any
    cleanups: list[Callable[[], None]] = field(default_factory=list)  # run once the services stopped
    agents: Any = None  # probes.agent.reader.AgentReader, or None when agents.enabled is off
    hosts: Any = None  # probes.ingress.resolve.HostResolver: what the ingress hosts resolve to
    https: Any = None  # probes.ingress.httpsservice.HttpsService, or None when https.enabled is off

    @property
    def sources(self) -> list[Any]:
        return (
            [self.dns, self.snat, self.egress]
            + ([self.agents] if self.agents is not None else [])
            + ([self.hosts] if self.hosts is not None else [])
            + ([self.https] if self.https is not None else [])
        )

    def observations(self, snap: Snapshot, now: float | None = None) -> Observations:
        """Everything the rules need, joined from the store and every service's history."""
        routes = self.snat.routes() if hasattr(self.snat, "routes") else None
        return observations_of(
            snap,
            self.dns.history.snapshot(),
            self.egress.history.snapshot(),
            self.snat.report(),
            routes,
            now,
            self.dns.plan(),
            self.egress.plan(),
            https=self.https.history.snapshot() if self.https is not None else None,
        )

    def stop(self, timeout: float = 2.0) -> None:
        """Stop every service at once, then the cleanups at once (each joins its own
        threads; one after the other they would add up to a noticeable pause at exit)."""
        _all_at_once([functools.partial(s.stop, timeout) for s in self.sources], timeout + 1.0)
        _all_at_once(list(self.cleanups), timeout + 1.0)
        self.cleanups.clear()


def _all_at_once(calls: list[Callable[[], Any]], timeout: float) -> None:
    def guarded(fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001 - stopping must go on
            pass

    threads = [threading.Thread(target=guarded, args=(fn,), name="services-stop") for fn in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)


def coredns_pods(store: Store) -> tuple[Any, ...] | None:
    """The CoreDNS pods the agents are to probe (probes.agent.hint), from the store's watch
    of kube-system; None until that watch has listed them once. Not-ready pods are kept:
    one that still answers is F16's evidence."""
    # lazy: the hint's record type is the agent reader's, loaded with it
    from probes.agent.hint import CorednsPod

    snap = store.snapshot()
    if COREDNS not in snap.synced:
        return None
    return tuple(CorednsPod(p.name, p.ip, p.node) for p in snap.topology.coredns if p.ip)


class HttpsRows:
    """The HTTPS probe's rows, (host, address, 443), from the store's ingress records and
    the hosts' answers here (probes.ingress.served.targets); the last rows while both are
    the same objects (the service asks every second)."""

    def __init__(self, store: Store, hosts: Any) -> None:
        self.store = store
        self.hosts = hosts
        self._in: tuple[Any, Any] = (None, None)
        self._rows: list[tuple[str, str, int]] = []

    def __call__(self) -> list[tuple[str, str, int]]:
        # lazy: the view's join and the targets load with the HTTPS service
        from probes.ingress.served import targets
        from probes.ingress.view import build_view

        data = self.store.snapshot().ingress
        answers = self.hosts.answers() if self.hosts is not None else None
        if self._in[0] is data and self._in[1] is answers:
            return self._rows
        self._rows = targets(build_view(data, answers))
        self._in = (data, answers)
        return self._rows


def build(cfg: Config, store: Store, endpoints: Endpoints | None = None, kube: KubeConfig | None = None) -> Services:
    """Every service (none starts here). `kube`: how to reach the API server; the
    per-node agents are read through it. `endpoints`: see :class:`Endpoints`."""
    # lazy: each source (Azure, the probes with asyncio and dnspython, the agent reader) loads only when it is on
    from probes.agent.reader import AgentReader, ReaderSettings
    from probes.azure.service import AzureSettings, AzureSnatService
    from probes.dns.service import DnsService, DnsSettings
    from probes.egress.service import EgressService, EgressSettings
    from probes.engine.reach import for_topology
    from probes.ingress.httpsservice import HttpsService, HttpsSettings
    from probes.ingress.resolve import HostResolver

    ends = endpoints or Endpoints()
    dns_settings = DnsSettings.from_config(cfg.dns)
    egress_settings = EgressSettings.from_config(cfg.egress)
    extra = tuple(t for t in ends.extra_targets if t not in egress_settings.targets)
    if extra:
        egress_settings = dataclasses.replace(egress_settings, targets=egress_settings.targets + extra)
    arm: dict[str, Any] = {}
    if ends.arm_url:
        arm["arm_endpoint"] = ends.arm_url
    if ends.arm_credential is not None:
        arm["credential"] = ends.arm_credential
    azure_settings = AzureSettings.from_config(cfg.azure, **arm)
    if ends.arm_discover:
        azure_settings = dataclasses.replace(azure_settings, subscription="", node_resource_group="", firewall_id="")
    dns_history, egress_history = History(), History()
    reader = None
    if cfg.agents.enabled and kube is not None:
        reader = AgentReader(
            kube,
            ReaderSettings.from_config(cfg.agents),
            dns_history=dns_history,
            egress_history=egress_history,
            coredns=lambda: coredns_pods(store),
        )
    # the store, the agents and the demo's maps nudge the services when they move
    # (probes.engine.nudge); poll: the longest a service goes without a look besides
    dns = DnsService(
        store,
        dns_settings,
        vantage_map=ends.dns_map,
        poll=1.0,
        history=dns_history,
        agents=reader,
        reach=for_topology,
    )
    hosts = HostResolver(store, dns, interval=max(15.0, 3 * dns_settings.interval), timeout=dns_settings.timeout)
    https = None
    if cfg.https.enabled:
        https = HttpsService(
            HttpsRows(store, hosts),
            HttpsSettings.from_config(cfg.https, ca_bundle=ends.https_ca or None),
            store=store,
            refresh=1.0,  # the hosts' answers move without the store: re-read them every second (cached)
            poll=1.0,
            dial_map=ends.https_dial,
            confine=ends.https_dial is not None,
        )
    return Services(
        dns=dns,
        hosts=hosts,
        https=https,
        egress=EgressService(
            store,
            egress_settings,
            vantage_map=ends.egress_map,
            poll=1.0,
            history=egress_history,
            agents=reader,
            reach=for_topology,
        ),
        snat=AzureSnatService(store, azure_settings, poll=1.0),
        agents=reader,
    )
