"""Node rules: NotReady nodes, NetworkUnavailable, upgrade marks, and the node side of F1."""

from __future__ import annotations

from collections.abc import Iterable

from probes.diagnose.model import (
    Finding,
    Observations,
    Severity,
    _kube_dns_from,
    _route_check,
    node_phase,
    node_rg,
    route_table,
)


def rule_nodes(obs: Observations) -> Iterable[Finding]:
    chk = _route_check(obs)
    for n in obs.topology.nodes:
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
