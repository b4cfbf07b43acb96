"""What the rules share: findings, severities, the observations they read, and the small
judgements every domain's rules make the same way (a node's upgrade phase, a cluster name).

Pure: plain data in, plain data out, no I/O. Rules never read a lab scenario: they see what
production sources see.

Vantage rule: from the host aksnet-top runs on (`local`, usually a jumpbox), NodeLocal
DNS and ClusterIPs are normally out of reach, so failures seen only from `local` are
reported as info, never as a cluster fault; cluster faults need a node vantage or
API evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from probes.azure.routes import compare
from probes.dns.result import DnsOutcome
from probes.egress.result import EgressOutcome
from probes.engine.health import Health
from probes.engine.history import Stats, outcome_of
from probes.kube.model import NetworkPlugin, NodeInfo, Topology

NEW_NODE_SECONDS = 600  # a node younger than this is still joining: marked, not alarmed


class Severity(IntEnum):
    INFO = 0
    WARNING = 1
    CRITICAL = 2

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # stable rule id, e.g. "nodelocal-down"
    fault: str | None  # FAULTS.md id ("F4") where one applies
    severity: Severity
    subject: str  # "node/<name>", "resolver/<key>", "service/<ns>/<name>", "cluster"
    cause: str  # one line
    evidence: Mapping[str, Any] = field(default_factory=dict)
    next_step: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "fault": self.fault,
            "severity": str(self.severity),
            "subject": self.subject,
            "cause": self.cause,
            "evidence": dict(self.evidence),
            "next_step": self.next_step,
        }


@dataclass(frozen=True, slots=True)
class Observations:
    """Everything the rules may look at, at one moment."""

    topology: Topology
    dns: Mapping[Any, Stats] = field(default_factory=dict)  # ProbeKey -> Stats
    now: float = 0.0  # wall clock, epoch seconds
    egress: Mapping[Any, Stats] = field(default_factory=dict)  # EgressKey(vantage, "host:port") -> Stats
    snat: Any = None  # probes.azure.snat.SnatTable, when Azure metrics are available
    snat_allocation: Any = None  # probes.azure.snat.Allocation, when the outbound configuration is known
    routes: Any = None  # probes.azure.routes.RouteData, when the route tables and subnet were read from ARM
    # rows a vantage cannot reach and so never probes (probes.engine.reach), as
    # (vantage, "resolver/<key>" or "target/<host:port>", why): never failures
    not_probed: tuple[tuple[str, str, str], ...] = ()
    path: Any = None  # probes.azure.path.PathData: NSGs, the subnet's route table, VNet DNS servers, peerings
    policies: Any = None  # probes.kube.policymodel.PolicyInputs: NetworkPolicies, namespaces, pods' labels
    ingress: Any = None  # probes.ingress.view.IngressView: hosts with their answers, LoadBalancer services
    gateways: Any = None  # probes.kube.gatewaymodel.GatewayData: StaticGatewayConfigurations, annotated pods
    https: Mapping[Any, Stats] = field(default_factory=dict)  # TlsKey(vantage, host, address, port) -> Stats


def is_cluster_name(name: str) -> bool:
    return name.rstrip(".").endswith(".cluster.local")


def node_rg(obs: Observations) -> str:
    """The node resource group for a command a finding suggests: from the nodes' provider
    IDs (or the `kubernetes.azure.com/cluster` label); `<node-rg>` only when unknown."""
    for n in obs.topology.nodes:
        if n.resource_group:
            return n.resource_group
    return "<node-rg>"


def route_table(obs: Observations) -> str:
    """The route table's name when ARM was read, else `<rt>`."""
    tables = getattr(obs.routes, "tables", None)
    return str(tables[0]) if tables else "<rt>"


def _failing(st: Stats) -> bool:
    """Mostly lost, or the resolver is down now (DnsOutcome.down): what an operator calls
    'not answering'."""
    out = outcome_of(st, DnsOutcome)
    return st.attempts > 0 and (st.loss_pct >= 50 or (out is not None and out.down))


def _answering(st: Stats) -> bool:
    """Answered in the window, and the last outcome is an answer (not a failure)."""
    out = outcome_of(st, DnsOutcome)
    return st.successes > 0 and out is not None and out.health is not Health.FAILING


def _node_of(vantage: str) -> str | None:
    return vantage[len("node/") :] if vantage.startswith("node/") else None


def _kube_dns_from(obs: Observations, node: str) -> dict[str, Any]:
    """Evidence for a route fault: how kube-dns (CoreDNS on other nodes) answers from the
    node itself, when its agent reports it."""
    rows = [st for k, st in obs.dns.items() if k.vantage == f"node/{node}" and k.resolver == "kube-dns" and st.attempts]
    if not rows:
        return {}
    loss = max(st.loss_pct for st in rows)
    return {
        "kube_dns_from_node": f"{loss:.0f}% lost" + (" (cross-node traffic to CoreDNS fails)" if loss >= 50 else "")
    }


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} ms"


# --- node rules --------------------------------------------------------------------------
def node_phase(node: NodeInfo, now: float) -> str:
    """'new', 'draining', 'cordoned' or '' — the upgrade-aware marks."""
    if node.draining:
        return "draining"
    if node.cordoned:
        return "cordoned"
    if node.created and now - node.created < NEW_NODE_SECONDS:
        return "new"
    return ""


_ROUTE_MEMO: list[Any] = [None, None, None]  # route data, nodes, their RouteCheck


def _route_check(obs: Observations) -> Any:
    """probes.azure.routes.RouteCheck for kubenet when the route table was read, else None.
    Two rules ask for it in every diagnosis, and the publisher diagnoses every few seconds
    with the same route data and topology: the last comparison is kept (O(nodes) with an
    address parse per route, 0.1–1 s at 5,000 nodes)."""
    data = obs.routes
    if data is None or bool(getattr(data, "error", "")) or obs.topology.plugin != NetworkPlugin.KUBENET:
        return None
    nodes = obs.topology.nodes
    memo = _ROUTE_MEMO
    if memo[0] is data and memo[1] is nodes:
        return memo[2]

    check = compare(data, nodes)
    _ROUTE_MEMO[:] = [data, nodes, check]
    return check


# --- egress ------------------------------------------------------------------------------
EGRESS_DOWN = tuple(o.value for o in EgressOutcome if o.down)  # timeout, unreachable, refused


def _egress_failing(st: Stats) -> bool:
    """Down now (EgressOutcome.down), mostly down in the window, and down more than once
    (one lost SYN on a busy path is not a fault)."""
    out = outcome_of(st, EgressOutcome)
    lost = st.attempts - st.successes
    return out is not None and out.down and st.loss_pct >= 50 and lost >= min(2, st.attempts)


def _snat_of(obs: Observations, node: str) -> dict[str, Any] | None:
    """The node's SNAT usage from the SNAT table, if Azure metrics are in."""
    table = obs.snat
    if table is None:
        return None
    for row in getattr(table, "nodes", ()):
        if getattr(row, "node", None) == node:
            return {
                "pct": row.pct,
                "used": getattr(row, "used", None),
                "allocated": getattr(row, "allocated", None),
                "failed": getattr(row, "failed", None),
            }
    return None
