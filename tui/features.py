"""What the app runs besides the topology: one builder per feature (DNS, egress, SNAT, …).

Each builder gets the configuration, the store and the demo lab (None on a real cluster)
and returns a Feature: sources to start, panes to show, and clean-ups to run at exit.
A builder raises FeatureError for a problem the user must fix (one line, no traceback).
Adding a feature = one builder here (or in its own module) and one entry in BUILDERS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from probes.config import Config
from probes.state import Store


class FeatureError(Exception):
    """A feature cannot start for a reason the user can act on."""


@dataclass
class Feature:
    sources: list[Any] = field(default_factory=list)
    panes: list[Any] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)


def dns_feature(cfg: Config, store: Store, lab: Any | None) -> Feature:
    """DNS probes per vantage. The demo maps every node's resolvers to loopback responders
    (the lab reads the scenario, the probes see packets); a real cluster has `local` only
    until the per-node agent supplies its own VantageMap."""
    from probes.dnsservice import DnsService, DnsSettings
    from tui.dns_pane import DnsPane

    feature = Feature()
    dns_demo = None
    if lab is not None:
        from probes.lab.dnsdemo import DnsDemo

        try:
            dns_demo = DnsDemo(lab.scenario).start()
        except Exception as e:  # a bad dns: section, no free port
            raise FeatureError(f"cannot start the demo DNS responders: {e}") from None
        feature.cleanups.append(dns_demo.stop)
    dns = DnsService(store, DnsSettings.from_config(cfg.dns), vantage_map=dns_demo)
    feature.sources.append(dns)
    feature.panes.append(DnsPane(dns))
    feature.cleanups.insert(0, lambda: dns.stop(2.0))  # a no-op when the app already stopped it
    return feature


def egress_feature(cfg: Config, store: Store, lab: Any | None) -> Feature:
    """TCP egress checks per vantage. The demo answers every node's view of each name with
    a loopback target that accepts, refuses or drops (the lab reads the scenario, the
    probes see DNS answers and packets); a real cluster has `local` only until the
    per-node agent supplies its own vantage map."""
    import dataclasses

    from probes.egressservice import EgressService, EgressSettings
    from tui.egress_pane import EgressPane

    feature = Feature()
    settings = EgressSettings.from_config(cfg.egress)
    demo = None
    if lab is not None:
        from probes.lab.egressdemo import EgressDemo

        try:
            demo = EgressDemo(lab.scenario).start()
        except Exception as e:  # a bad egress: section, no free port
            raise FeatureError(f"cannot start the demo egress targets: {e}") from None
        feature.cleanups.append(demo.stop)
        extra = tuple(t for t in demo.extra_targets() if t not in settings.targets)
        settings = dataclasses.replace(settings, targets=settings.targets + extra)
    egress = EgressService(store, settings, vantage_map=demo)
    feature.sources.append(egress)
    feature.panes.append(EgressPane(egress))
    feature.cleanups.insert(0, lambda: egress.stop(2.0))
    return feature


def snat_feature(cfg: Config, store: Store, lab: Any | None) -> Feature:
    """Per-node SNAT from Azure Monitor. The demo starts the lab ARM endpoint beside the lab
    API server and points the source at it with a lab credential: no real Azure call, ever.
    On a real cluster the azure SDKs load in the source's thread, not here."""
    import dataclasses

    from probes.azure import AzureSettings, AzureSnatService
    from tui.snat_pane import SnatPane

    feature = Feature()
    settings = AzureSettings.from_config(cfg.azure)
    if lab is not None:
        from probes.lab.arm import LabArmServer, LabCredential

        def backends() -> list[tuple[str, str, str]]:
            with lab.state.lock:
                return [(n.name, n.ip, n.pool) for n in lab.state.nodes.values()]

        try:
            arm = LabArmServer(lab.scenario, backends=backends).start()
        except Exception as e:  # no free port
            raise FeatureError(f"cannot start the demo ARM endpoint: {e}") from None
        feature.cleanups.append(arm.stop)
        settings = AzureSettings.from_config(cfg.azure, base_url=arm.url, credential=LabCredential)
        settings = dataclasses.replace(settings, subscription="", node_resource_group="", firewall_id="")
    snat = AzureSnatService(store, settings)
    feature.sources.append(snat)
    feature.panes.append(SnatPane(snat))
    feature.cleanups.insert(0, lambda: snat.stop(2.0))
    return feature


BUILDERS: list[Callable[[Config, Store, Any], Feature]] = [dns_feature]
BUILDERS.append(snat_feature)
BUILDERS.append(egress_feature)


def build_all(cfg: Config, store: Store, lab: Any | None) -> Feature:
    """Every feature merged; on a failure the ones already built are cleaned up first."""
    total = Feature()
    try:
        for build in BUILDERS:
            part = build(cfg, store, lab)
            total.sources += part.sources
            total.panes += part.panes
            total.cleanups += part.cleanups
    except BaseException:
        run_cleanups(total)
        raise
    total.panes.append(findings_pane(total))
    return total


def findings_pane(total: Feature) -> Any:
    """The diagnosis over what the other features observe (last tab)."""
    from tui.findings_pane import FindingsPane

    dns = next((s for s in total.sources if getattr(s, "name", "") == "dns"), None)
    return FindingsPane(dns_stats=(lambda: dns.history.snapshot()) if dns is not None else None)


def run_cleanups(feature: Feature) -> None:
    for fn in feature.cleanups:
        try:
            fn()
        except Exception:
            pass
