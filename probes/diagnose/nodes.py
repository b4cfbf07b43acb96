"""Node rules: NotReady nodes, NetworkUnavailable, upgrade marks, and the node side of F1."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from probes.diagnose.model import (
    NEW_NODE_SECONDS,
    Finding,
    Observations,
    Severity,
    _kube_dns_from,
    _route_check,
    node_phase,
    node_rg,
    route_table,
)
from probes.kube.model import NodeInfo

# per topology (its nodes tuple): the nodes that can raise a finding whatever the time,
# and the others by creation, newest first. The publisher diagnoses every second or so
# with the same topology: each run then reads only those, not 5,000 healthy nodes.
_MEMO: list[Any] = [None, (), ()]


def _notable(obs: Observations) -> list[NodeInfo]:
    """The nodes this rule can say something about now, in the topology's order."""
    nodes = obs.topology.nodes
    if _MEMO[0] is not nodes:
        steady = [n for n in nodes if n.network_unavailable or n.ready is not True or n.draining or n.cordoned]
        picked = {id(n) for n in steady}
        by_age = sorted((n for n in nodes if n.created and id(n) not in picked), key=lambda n: -n.created)
        _MEMO[:] = [nodes, steady, by_age]
    steady, by_age = _MEMO[1], _MEMO[2]
    fresh: list[NodeInfo] = []
    for n in by_age:
        if obs.now - n.created >= NEW_NODE_SECONDS:
            break  # older than every node after it
        fresh.append(n)
    if not fresh:
        return list(steady)
    order = {id(n): i for i, n in enumerate(nodes)} if len(fresh) + len(steady) > 1 else {}
    return sorted([*steady, *fresh], key=lambda n: order.get(id(n), 0))


def rule_nodes(obs: Observations) -> Iterable[Finding]:
    chk = _route_check(obs)
    for n in _notable(obs):
        phase = node_phase(n, obs.now)
        subject = f"node/{n.name}"
        nr = chk.by_node.get(n.name) if chk is not None else None
        if n.network_unavailable and nr is not None and nr.state in ("missing", "stale"):
            pass  # rule_routes names it from the route table, with this condition as evidence
        elif n.network_unavailable:
            yield Finding(
                "route-missing",
                "F1",
                Severity.CRITICAL,
                subject,
                f"the node reports no route for its pod CIDR ({n.network_reason or 'NetworkUnavailable'}): cross-node pod traffic to and from it is broken",
                {
                    "pod_cidrs": ", ".join(n.pod_cidrs),
                    "expected_next_hop": n.internal_ip,
                    "condition": f"NetworkUnavailable=True/{n.network_reason}",
                    **_kube_dns_from(obs, n.name),
                },
                "check the route table on the cluster subnet for a route named after the node "
                f"(`az network route-table route list -g {node_rg(obs)} --route-table-name {route_table(obs)}`); "
                "the cloud provider recreates it when it can write to the table",
            )
        if n.ready is False or n.ready is None:
            if phase in ("draining", "cordoned", "new"):
                yield Finding(
                    "node-not-ready",
                    None,
                    Severity.INFO,
                    subject,
                    f"{phase} node is not Ready ({n.ready_reason or 'no reason'}): expected during an upgrade or scale-out",
                    {"phase": phase, "reason": n.ready_reason},
                    "wait for the upgrade to finish; it should leave or turn Ready",
                )
            else:
                yield Finding(
                    "node-not-ready",
                    None,
                    Severity.WARNING,
                    subject,
                    f"node is not Ready ({n.ready_reason or 'no Ready condition'})",
                    {"reason": n.ready_reason, "kubelet": n.kubelet_version},
                    f"`kubectl describe node {n.name}`; check the VMSS instance {n.vmss} #{n.instance_id}",
                )
        elif phase:
            yield Finding("node-in-transition", None, Severity.INFO, subject, f"node is {phase}", {"phase": phase}, "")
