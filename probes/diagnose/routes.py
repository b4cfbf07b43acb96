"""Route-table rules (kubenet): missing, stale and orphaned routes (F1-F3), blackholes,
shadowing user routes, the UDR default route, the 400-route headroom, and F13."""

from __future__ import annotations

from collections.abc import Iterable

from probes.azure.routes import HEADROOM_WARN, MAX_ROUTES, cni_headroom
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
from probes.kube.model import NetworkPlugin


# --- routes ------------------------------------------------------------------------------
def rule_routes(obs: Observations) -> Iterable[Finding]:
    """F1 missing, F2 stale, F3 orphaned routes from the route table; blackholes and user
    routes that shadow a pod CIDR; the 0.0.0.0/0 route for userDefinedRouting; kubenet's
    400-route headroom; F13 for flat Azure CNI subnets."""
    data = obs.routes
    if data is None:
        return
    topo = obs.topology
    rg = node_rg(obs)
    rt = f"`az network route-table route list -g {rg} --route-table-name {route_table(obs)}`"
    if topo.plugin == NetworkPlugin.AZURE_CNI and not data.error:
        head = cni_headroom(data.subnet, data.max_pods, data.surge)
        if head is not None:
            free, need = head
            if free < need:
                yield Finding(
                    "cni-subnet-small",
                    "F13",
                    Severity.WARNING,
                    "cluster",
                    f"the node subnet has {free} free addresses, an upgrade surge needs {need}: the upgrade will fail to add nodes",
                    {
                        "subnet": data.subnet.prefix,
                        "free_ips": free,
                        "ip_configurations": data.subnet.ip_configurations,
                        "max_pods": data.max_pods,
                        "surge_nodes": data.surge,
                        "needed": need,
                    },
                    "lower maxSurge (or maxPods) before upgrading, free addresses in the subnet, or move to Azure CNI overlay",
                )
    chk = _route_check(obs)
    if chk is None:
        return
    for nr in chk.nodes:
        n = topo.node(nr.node)
        subject = f"node/{nr.node}"
        phase = node_phase(n, obs.now) if n is not None else ""
        cond = (
            f"NetworkUnavailable={'True' if n.network_unavailable else 'False'}/{n.network_reason}"
            if n is not None and n.network_unavailable is not None
            else "no NetworkUnavailable condition"
        )
        if nr.state == "missing":
            sev = Severity.INFO if phase == "new" else Severity.CRITICAL
            yield Finding(
                "route-missing",
                "F1",
                sev,
                subject,
                f"the route table has no route for this node's pod CIDR {nr.prefix}: cross-node pod traffic to and from it is broken"
                + (" (new node: the cloud provider is still creating it)" if sev == Severity.INFO else ""),
                {
                    "prefix": nr.prefix,
                    "expected_next_hop": nr.expected_next_hop,
                    "route_name": nr.node,
                    "route_tables": ", ".join(data.tables) or "none",
                    "condition": cond,
                    **_kube_dns_from(obs, nr.node),
                },
                f"{rt}; the cloud provider recreates the route when it can write to the table (check the cluster "
                f"identity's Network Contributor on it), or `az network route-table route create … --name {nr.node} "
                f"--address-prefix {nr.prefix} --next-hop-type VirtualAppliance --next-hop-ip-address {nr.expected_next_hop}`",
            )
        elif nr.state == "stale" and nr.route is not None:
            r = nr.route
            yield Finding(
                "route-stale",
                "F2",
                Severity.CRITICAL,
                subject,
                f"the route named after this node is stale: {r.prefix} via {r.next_hop_ip or r.next_hop_type}, "
                f"must be {nr.prefix} via {nr.expected_next_hop}",
                {
                    "route": r.name,
                    "is_prefix": r.prefix,
                    "is_next_hop": r.next_hop_ip or r.next_hop_type,
                    "must_prefix": nr.prefix,
                    "must_next_hop": nr.expected_next_hop,
                    "condition": cond,
                },
                f"fix it: `az network route-table route update … --name {r.name} --address-prefix {nr.prefix} "
                f"--next-hop-ip-address {nr.expected_next_hop}` (or delete it and let the cloud provider recreate it)",
            )
    for r in chk.orphans:
        yield Finding(
            "route-orphaned",
            "F3",
            Severity.WARNING,
            f"route/{r.name}",
            f"route {r.name} ({r.prefix} via {r.next_hop_ip}) belongs to no node: harmless until its CIDR is reused",
            {"prefix": r.prefix, "next_hop": r.next_hop_ip, "table": r.table},
            f"delete it: `az network route-table route delete -g {rg} --route-table-name {r.table} --name {r.name}`",
        )
    for r, cidr in chk.blackholes:
        yield Finding(
            "route-blackhole",
            "F9",
            Severity.CRITICAL,
            f"route/{r.name}",
            f"route {r.name} sends {r.prefix} to next hop None (blackhole)"
            + (
                f": it covers the pod CIDR {cidr}, pod traffic to it is dropped"
                if cidr
                else ": traffic to it is dropped"
            ),
            {
                "prefix": r.prefix,
                "next_hop_type": r.next_hop_type,
                "table": r.table,
                **({"pod_cidr": cidr} if cidr else {}),
            },
            f"remove or fix the user route: `az network route-table route delete … --route-table-name {r.table} --name {r.name}`",
        )
    for r, cidr, node in chk.overlaps:
        yield Finding(
            "route-overlap",
            None,
            Severity.CRITICAL,
            f"route/{r.name}",
            f"user route {r.name} ({r.prefix} via {r.next_hop_ip or r.next_hop_type}) shadows node {node}'s pod CIDR {cidr}",
            {"prefix": r.prefix, "next_hop": r.next_hop_ip or r.next_hop_type, "pod_cidr": cidr, "node": node},
            "remove the user route or make it less specific than the node routes",
        )
    d = chk.default_route
    if data.outbound_type == "userDefinedRouting":
        if d is None:
            yield Finding(
                "udr-default-missing",
                "F9",
                Severity.CRITICAL,
                "cluster",
                "outbound type userDefinedRouting but the route table has no 0.0.0.0/0 route: egress has no next hop",
                {"route_tables": ", ".join(data.tables) or "none"},
                "add 0.0.0.0/0 → VirtualAppliance at the firewall's private IP",
            )
        elif d.next_hop_type.lower() != "none":
            yield Finding(
                "udr-default-route",
                None,
                Severity.INFO,
                "cluster",
                f"egress goes to {d.next_hop_ip or d.next_hop_type} (0.0.0.0/0 route {d.name})",
                {"next_hop_type": d.next_hop_type, "next_hop": d.next_hop_ip},
                "",
            )
    nodes_with_cidr = sum(1 for n in topo.nodes if n.pod_cidrs)
    worst = max(chk.route_count, nodes_with_cidr + max(data.surge, 0))
    if worst >= HEADROOM_WARN * MAX_ROUTES:
        yield Finding(
            "route-headroom",
            None,
            Severity.WARNING,
            "cluster",
            f"{chk.route_count} of {MAX_ROUTES} routes used ({nodes_with_cidr} kubenet nodes + {data.surge} surge): "
            f"{'over' if worst > MAX_ROUTES else 'near'} the route-table limit, new nodes will get no route",
            {"routes": chk.route_count, "max_routes": MAX_ROUTES, "nodes": nodes_with_cidr, "surge": data.surge},
            "kubenet stops at 400 nodes: plan the move to Azure CNI overlay, remove orphaned routes",
        )
