"""What the app shows besides the topology: one pane per observing service, findings last.

The services themselves (and the demo's stand-ins for the cluster's remote ends) are
built by probes.engine.services, the same way `aksnet-top check` builds them; this module only
puts a pane on each and says what the app's publisher reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from probes.config import Config, KubeConfig
from probes.engine.services import ServiceError, build
from probes.engine.store import Store
from tui.dns_pane import DnsPane
from tui.egress_pane import EgressPane
from tui.findings_pane import FindingsPane
from tui.ingress_pane import IngressPane
from tui.snat_pane import SnatPane

FeatureError = ServiceError  # a service cannot start; the message is for the user


@dataclass
class Feature:
    sources: list[Any] = field(default_factory=list)
    panes: list[Any] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    feeds: dict[str, Any] = field(default_factory=dict)  # what the app's publisher reads: dns, egress, snat, agents


def build_all(cfg: Config, store: Store, endpoints: Any | None, kube: KubeConfig | None = None) -> Feature:
    """Services and their panes: DNS, SNAT, Egress, Findings over all of them, then the
    ingress path (the last tab: the others keep their keys). The
    panes get nothing from the services: the app's publisher reads `feeds` and hands the
    panes frames."""
    services = build(cfg, store, endpoints, kube)
    panes = [DnsPane(), SnatPane(), EgressPane(), FindingsPane(), IngressPane()]
    feeds = {
        "dns": services.dns,
        "egress": services.egress,
        "snat": services.snat,
        "agents": services.agents,
        "hosts": services.hosts,
        "https": services.https,
    }
    return Feature(sources=services.sources, panes=panes, cleanups=[services.stop], feeds=feeds)


def run_cleanups(feature: Feature) -> None:
    for fn in feature.cleanups:
        try:
            fn()
        except Exception:
            pass
