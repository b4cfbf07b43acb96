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


BUILDERS: list[Callable[[Config, Store, Any], Feature]] = [dns_feature]


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
    return total


def run_cleanups(feature: Feature) -> None:
    for fn in feature.cleanups:
        try:
            fn()
        except Exception:
            pass
