"""Observations -> findings: every rule of every domain, most severe first.

One module per domain (nodes, dns, replicas, dnsslow, nodedns, dnspolicy, egress, snat, routes, services,
ingress, path, gateway); what they share is in
`probes.diagnose.model`. Pure: plain data in, plain data out, no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from probes.diagnose.dns import (
    rule_cluster_dns,
    rule_local_not_probed,
    rule_local_unreachable,
    rule_nodelocal,
    rule_truncation,
    rule_upstream,
)
from probes.diagnose.dnspolicy import rule_netpol_dns
from probes.diagnose.dnsslow import rule_dns_5s_delays, rule_slow_resolver
from probes.diagnose.egress import rule_egress
from probes.diagnose.gateway import rule_gateway_missing, rule_gateway_pool, rule_gateway_unprovisioned
from probes.diagnose.ingress import rule_certificates, rule_host_dns, rule_lb_probe, rule_served_certificates
from probes.diagnose.model import Finding, Observations, Severity, node_phase
from probes.diagnose.nodedns import rule_localdns_down, rule_upstream_one_node
from probes.diagnose.nodes import rule_nodes
from probes.diagnose.path import rule_custom_dns, rule_firewall, rule_nsg, rule_peering, rule_proxy
from probes.diagnose.replicas import rule_replica_failing, rule_replica_unready_answering
from probes.diagnose.routes import rule_routes
from probes.diagnose.services import rule_lb_pending
from probes.diagnose.snat import rule_snat
from probes.engine.history import Stats
from probes.kube.model import Topology

RULES: tuple[Callable[[Observations], Iterable[Finding]], ...] = (
    rule_nodes,
    rule_nodelocal,
    rule_cluster_dns,
    rule_upstream,
    rule_truncation,
    rule_replica_failing,
    rule_replica_unready_answering,
    rule_slow_resolver,
    rule_dns_5s_delays,
    rule_upstream_one_node,
    rule_localdns_down,
    rule_netpol_dns,
    rule_local_unreachable,
    rule_local_not_probed,
    rule_lb_pending,
    rule_host_dns,
    rule_certificates,
    rule_served_certificates,
    rule_lb_probe,
    rule_egress,
    rule_snat,
    rule_routes,
    rule_nsg,
    rule_custom_dns,
    rule_peering,
    rule_firewall,
    rule_proxy,
    rule_gateway_missing,
    rule_gateway_unprovisioned,
    rule_gateway_pool,
)


def diagnose(obs: Observations) -> list[Finding]:
    """Every finding, most severe first, then by subject."""
    out: list[Finding] = []
    for rule in RULES:
        out.extend(rule(obs))
    return sorted(out, key=lambda f: (-f.severity, f.fault or "F99", f.subject, f.rule))


def observe(
    topology: Topology,
    dns: Mapping[Any, Stats] | None = None,
    now: float | None = None,
    egress: Mapping[Any, Stats] | None = None,
    snat: Any = None,
    snat_allocation: Any = None,
    routes: Any = None,
    not_probed: Iterable[tuple[str, str, str]] = (),
    path: Any = None,
    policies: Any = None,
    ingress: Any = None,
    gateways: Any = None,
    https: Mapping[Any, Stats] | None = None,
) -> Observations:
    return Observations(
        topology=topology,
        dns=dict(dns or {}),
        egress=dict(egress or {}),
        snat=snat,
        snat_allocation=snat_allocation,
        routes=routes,
        path=path,
        policies=policies,
        ingress=ingress,
        gateways=gateways,
        https=dict(https or {}),
        now=time.time() if now is None else now,
        not_probed=tuple(not_probed),
    )


__all__ = ["RULES", "Finding", "Observations", "Severity", "diagnose", "node_phase", "observe"]
