"""The observing services (DNS, egress, SNAT), built once for the app and for `check`.

`build(cfg, store, lab)` returns every service wired to the store, plus what the demo
needs beside them: on a lab (`--demo`) the per-node agents (with the DNS responders and
egress targets that stand for the cluster's remote ends, in their own process, read
through the lab API server's pod proxy) and the ARM endpoint (the lab reads the
scenario; the services see only API objects, DNS answers, packets and ARM responses). On a real cluster `lab` is
None and nothing extra starts. Never imports textual.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from probes.config import Config, KubeConfig
from probes.diagnose import Observations
from probes.engine.publisher import observations_of
from probes.engine.store import Snapshot, Store


class ServiceError(Exception):
    """A service cannot start for a reason the user can act on (one line)."""


@dataclass
class Services:
    dns: Any
    egress: Any
    snat: Any
    cleanups: list[Callable[[], None]] = field(default_factory=list)  # demo ends, in order
    agents: Any = None  # probes.agent.reader.AgentReader, or None when agents.enabled is off

    @property
    def sources(self) -> list[Any]:
        return [self.dns, self.snat, self.egress] + ([self.agents] if self.agents is not None else [])

    def observations(self, snap: Snapshot, now: float | None = None) -> Observations:
        """Everything the rules need, joined from the store and every service's history."""
        routes = self.snat.routes() if hasattr(self.snat, "routes") else None
        return observations_of(snap, self.dns.history.snapshot(), self.egress.history.snapshot(), self.snat.report(),
                               routes, now)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop every service at once, then the demo's stand-ins at once (each joins its own
        threads; one after the other they would add up to a noticeable pause at exit)."""
        _all_at_once([lambda s=s: s.stop(timeout) for s in self.sources], timeout + 1.0)
        _all_at_once(list(self.cleanups), timeout + 1.0)
        self.cleanups.clear()


def _all_at_once(calls: list[Callable[[], Any]], timeout: float) -> None:
    import threading

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


def build(cfg: Config, store: Store, lab: Any | None, kube: KubeConfig | None = None) -> Services:
    """Every service; on a failure what was already started is stopped first. `kube`: how
    to reach the API server (the demo's kubeconfig); the agents are read through it."""
    from probes.agent.reader import AgentReader, ReaderSettings
    from probes.azure.service import AzureSettings, AzureSnatService
    from probes.dns.service import DnsService, DnsSettings
    from probes.egress.service import EgressService, EgressSettings
    from probes.engine.history import History

    cleanups: list[Callable[[], None]] = []

    def fail(what: str, e: Exception) -> ServiceError:
        for fn in reversed(cleanups):
            try:
                fn()
            except Exception:  # noqa: BLE001
                pass
        return ServiceError(f"cannot start the demo {what}: {e}")

    dns_map = egress_map = None
    dns_settings = DnsSettings.from_config(cfg.dns)
    egress_settings = EgressSettings.from_config(cfg.egress)
    azure_settings = AzureSettings.from_config(cfg.azure)
    if lab is not None:
        from probes.lab import demoagents
        from probes.lab.arm import LabArmServer, LabCredential

        try:  # the simulated nodes' agents, with the scenario's DNS responders and targets
            farm = demoagents.start(lab, cfg.dns, cfg.egress)
        except Exception as e:  # a bad dns:/egress: section, no free port
            raise fail("agents", e) from None
        cleanups.append(farm.stop)
        dns_map, egress_map = farm.local_dns, farm.local_egress
        extra = tuple(t for t in farm.extra_targets if t not in egress_settings.targets)
        egress_settings = dataclasses.replace(egress_settings, targets=egress_settings.targets + extra)

        def backends() -> list[tuple[str, str, str]]:
            with lab.state.lock:
                return [(n.name, n.ip, n.pool) for n in lab.state.nodes.values()]

        def route_nodes() -> list[tuple[str, str, str | None, bool]]:
            with lab.state.lock:
                return [(n.name, n.ip, n.pod_cidr, n.network_unavailable) for n in lab.state.nodes.values()]

        try:
            arm = LabArmServer(lab.scenario, backends=backends, route_nodes=route_nodes).start()
        except Exception as e:  # no free port
            raise fail("ARM endpoint", e) from None
        cleanups.append(arm.stop)
        azure_settings = AzureSettings.from_config(cfg.azure, base_url=arm.url, credential=LabCredential)
        azure_settings = dataclasses.replace(azure_settings, subscription="", node_resource_group="", firewall_id="")
    dns_history, egress_history = History(), History()
    reader = None
    if cfg.agents.enabled and kube is not None:
        reader = AgentReader(kube, ReaderSettings.from_config(cfg.agents), dns_history=dns_history,
                             egress_history=egress_history)
    # poll: how soon a service notices a new topology (a version compare, cheap)
    return Services(
        dns=DnsService(store, dns_settings, vantage_map=dns_map, poll=0.1, history=dns_history, agents=reader),
        egress=EgressService(store, egress_settings, vantage_map=egress_map, poll=0.1, history=egress_history,
                             agents=reader),
        snat=AzureSnatService(store, azure_settings, poll=0.1),
        cleanups=cleanups,
        agents=reader,
    )
