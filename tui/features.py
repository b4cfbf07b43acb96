"""What the app shows besides the topology: one pane per observing service, findings last.

The services themselves (and the demo's stand-ins for the cluster's remote ends) are
built by probes.engine.services, the same way `aksnet-top check` builds them; this module only
puts a pane on each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from probes.config import Config, KubeConfig
from probes.engine.services import ServiceError, build
from probes.engine.store import Store

FeatureError = ServiceError  # a service cannot start; the message is for the user


@dataclass
class Feature:
    sources: list[Any] = field(default_factory=list)
    panes: list[Any] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    route_source: Callable[[], Any] | None = None  # route-table data for the topology tree
    agents: Any = None  # the agent reader, for the tree's per-node agent lines


def build_all(cfg: Config, store: Store, lab: Any | None, kube: KubeConfig | None = None) -> Feature:
    """Services and their panes: DNS, SNAT, Egress, then Findings over all of them."""
    from tui.dns_pane import DnsPane
    from tui.egress_pane import EgressPane
    from tui.findings_pane import FindingsPane
    from tui.snat_pane import SnatPane

    services = build(cfg, store, lab, kube)
    panes = [DnsPane(services.dns), SnatPane(services.snat), EgressPane(services.egress),
             FindingsPane(observations=services.observations)]
    return Feature(sources=services.sources, panes=panes, cleanups=[services.stop], route_source=services.snat.routes,
                   agents=services.agents)


def run_cleanups(feature: Feature) -> None:
    for fn in feature.cleanups:
        try:
            fn()
        except Exception:
            pass
