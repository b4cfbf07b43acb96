"""Finding the cluster's outbound setup in ARM with the least privilege: which calls, in
which order, and what each answer means.

1. The outbound load balancer ``kubernetes`` in the node resource group (from the
   providerID): its ``aks-managed-cluster-name`` / ``aks-managed-cluster-rg`` tags name the
   managed cluster; the outbound rule names the backend pool (``aksOutboundBackendPool``;
   the other pool, ``kubernetes``, serves inbound rules), the frontends (GUID-named) and
   ``allocatedOutboundPorts`` (0: the default tier table).
2. The managed cluster, read with one GET when the tags name it. Without tags: the
   resource groups the node resource group's ``MC_<rg>_<name>_<location>`` name and the
   nodes' ``kubernetes.azure.com/network-resourcegroup`` label point at, one GET or list
   each; a list across the subscription comes last (it needs a subscription-scope role).
3. A NAT gateway: the user-assigned one from the node subnet (the cluster's
   ``vnetSubnetID`` or the nodes' ``network-*`` labels; it lives in the VNet's resource
   group), the managed one from the node resource group.

The ``kubernetes.azure.com/cluster`` label is never used as a resource group here: AKS
cuts it to 63 characters. Parsing is pure; the ``read_*`` functions make calls through
``call(name, scope, fn, *args)``, which counts them and turns SDK errors into
:class:`~probes.azure.target.AzureCallError` naming the permission.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from probes.azure.egressid import nat_ip_ids, outbound_ip_ids
from probes.azure.snat import parse_surge
from probes.azure.target import LB_NAME, AzureCallError, AzureTarget

NAT_TYPES = ("managedNATGateway", "userAssignedNATGateway")
TAG_NAME = "aks-managed-cluster-name"
TAG_RG = "aks-managed-cluster-rg"
OUTBOUND_POOL = "aksOutboundBackendPool"
MAX_GUESSES = 4  # resource groups tried before the subscription-wide list

Call = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class NodeHints:
    """What the nodes' AKS labels say about the network (any node that has them)."""

    network_resource_group: str = ""  # kubernetes.azure.com/network-resourcegroup
    vnet: str = ""  # kubernetes.azure.com/network-name
    subnet: str = ""  # kubernetes.azure.com/network-subnet
    network_subscription: str = ""  # kubernetes.azure.com/network-subscription (often empty)


def hints_of(nodes: Iterable[Any]) -> NodeHints:
    for n in nodes:
        rg = getattr(n, "network_resource_group", "")
        if rg:
            return NodeHints(
                rg,
                getattr(n, "network_name", ""),
                getattr(n, "network_subnet", ""),
                getattr(n, "network_subscription", ""),
            )
    return NodeHints()


def _props(d: Mapping[str, Any]) -> Mapping[str, Any]:
    p = d.get("properties")
    return p if isinstance(p, Mapping) else {}


def _ends_with(ref: Any, name: str) -> bool:
    rid = str((ref or {}).get("id", "")) if isinstance(ref, Mapping) else ""
    return rid.rstrip("/").rsplit("/", 1)[-1].lower() == name.lower()


def pick_outbound_rule(rules: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The rule AKS writes (its pool is aksOutboundBackendPool), else the first one."""
    for r in rules:
        if _ends_with(_props(r).get("backendAddressPool"), OUTBOUND_POOL):
            return r
    return rules[0] if rules else None


def parse_load_balancer(lb: Mapping[str, Any], t: AzureTarget, lb_scope: str) -> AzureTarget:
    """The outbound rule's pool, frontends, ports and idle timeout; the cluster named by the tags."""
    tags = lb.get("tags") if isinstance(lb.get("tags"), Mapping) else {}
    tags = {str(k).lower(): str(v) for k, v in (tags or {}).items()}
    t = replace(
        t,
        lb_id=str(lb.get("id", lb_scope)),
        cluster_name=t.cluster_name or tags.get(TAG_NAME, ""),
        cluster_resource_group=t.cluster_resource_group or tags.get(TAG_RG, ""),
    )
    rule = pick_outbound_rule(list(_props(lb).get("outboundRules") or []))
    if rule is None:
        return replace(t, outbound_rule="", backend_pool="", outbound_ip_ids=())
    rp = _props(rule)
    pool = str((rp.get("backendAddressPool") or {}).get("id", "")).rstrip("/").rsplit("/", 1)[-1]
    ports = rp.get("allocatedOutboundPorts")
    return replace(
        t,
        outbound_rule=str(rule.get("name", "")),
        backend_pool=pool,
        # the rule is what the load balancer enforces; 0 (or absent) = the default tier table
        fixed_ports=int(ports) if isinstance(ports, int) else 0,
        outbound_ips=len(rp.get("frontendIPConfigurations") or ()) or t.outbound_ips,
        idle_timeout=int(rp.get("idleTimeoutInMinutes") or t.idle_timeout),
        outbound_ip_ids=outbound_ip_ids(lb, rule),
    )


def _rg_of(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    low = [p.lower() for p in parts]
    return parts[low.index("resourcegroups") + 1] if "resourcegroups" in low[:-1] else ""


def parse_managed_cluster(d: Mapping[str, Any], t: AzureTarget, found_by: str) -> AzureTarget:
    props = _props(d)
    net = props.get("networkProfile") or {}
    lbp = net.get("loadBalancerProfile") or {}
    pools = props.get("agentPoolProfiles") or ()
    surge = max(
        (parse_surge((p.get("upgradeSettings") or {}).get("maxSurge"), int(p.get("count") or 0)) for p in pools),
        default=0,
    )  # pools upgrade one at a time
    cidrs = tuple(str(c) for c in net.get("podCidrs") or () if c) or (
        (str(net["podCidr"]),) if net.get("podCidr") else ()
    )
    proxy = props.get("httpProxyConfig") or {}
    t = replace(
        t,
        http_proxy=str(proxy.get("httpProxy") or ""),
        https_proxy=str(proxy.get("httpsProxy") or ""),
        no_proxy=tuple(str(x) for x in proxy.get("noProxy") or ()),
        trusted_ca=str(proxy.get("trustedCa") or ""),
        cluster_id=str(d.get("id", "")),
        cluster_name=str(d.get("name", "")) or t.cluster_name,
        cluster_resource_group=_rg_of(str(d.get("id", ""))) or t.cluster_resource_group,
        found_by=found_by,
        max_pods=max((int(p.get("maxPods") or 0) for p in pools), default=0),
        subnet_id=next((str(p["vnetSubnetID"]) for p in pools if p.get("vnetSubnetID")), ""),
        outbound_type=str(net.get("outboundType") or "loadBalancer"),
        surge=surge or 1,
        pod_cidrs=cidrs,
        cluster_note="",
    )
    if not t.outbound_rule:  # the load balancer's own rule, when read, is what counts
        ips = len(lbp.get("effectiveOutboundIPs") or ()) or (lbp.get("managedOutboundIPs") or {}).get("count") or 1
        t = replace(
            t,
            fixed_ports=int(lbp.get("allocatedOutboundPorts") or 0),
            outbound_ips=int(ips),
            idle_timeout=int(lbp.get("idleTimeoutInMinutes") or t.idle_timeout),
        )
    return t


def guess_clusters(node_rg: str, hints: NodeHints) -> list[tuple[str, str]]:
    """(resource group, cluster name or "") pairs to try, most likely first.

    ``MC_<rg>_<name>_<location>``: resource group and cluster names may hold ``_`` too, so
    each split is a guess; the network resource group (bring-your-own VNet, often the
    cluster's own group) is listed. A custom node resource group gives no name guess."""
    out: list[tuple[str, str]] = []
    if node_rg.lower().startswith("mc_"):
        parts = node_rg[3:].split("_")
        for i in range(1, len(parts) - 1):
            rg, name = "_".join(parts[:i]), "_".join(parts[i:-1])
            if rg and name:
                out.append((rg, name))
    if hints.network_resource_group and hints.network_resource_group.lower() != node_rg.lower():
        out.append((hints.network_resource_group, ""))
    seen: set[tuple[str, str]] = set()
    uniq = []
    for rg, name in out:
        key = (rg.lower(), name.lower())
        if key not in seen:
            seen.add(key)
            uniq.append((rg, name))
    return uniq[:MAX_GUESSES]


def _as_dict(x: Any) -> dict[str, Any]:
    return x.as_dict() if hasattr(x, "as_dict") else dict(x)


def read_load_balancer(call: Call, net: Any, t: AzureTarget) -> AzureTarget:
    """GET the load balancer `kubernetes`; absent (404) leaves the target without one."""
    rg = t.node_resource_group
    scope = f"/subscriptions/{t.subscription}/resourceGroups/{rg}/providers/Microsoft.Network/loadBalancers/{LB_NAME}"
    try:
        lb = _as_dict(call("lb", scope, net.load_balancers.get, rg, LB_NAME))
    except AzureCallError as e:
        if e.kind != "not-found":
            raise
        return replace(t, lb_id="", outbound_rule="", backend_pool="")
    return parse_load_balancer(lb, t, scope)


def read_cluster(call: Call, cs: Any, t: AzureTarget, hints: NodeHints) -> AzureTarget:
    """The managed cluster: by the tags' name, else by guesses, else across the subscription."""
    sub, node_rg = t.subscription, t.node_resource_group
    refused: list[str] = []
    named = [(t.cluster_resource_group, t.cluster_name)] if t.cluster_name and t.cluster_resource_group else []
    guesses = named + [g for g in guess_clusters(node_rg, hints) if g not in named]
    for i, (rg, name) in enumerate(guesses):
        found_by = "load balancer tags" if named and i == 0 else f"resource group {rg}"
        try:
            if name:
                scope = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}"
                d = _as_dict(call("cluster", scope, cs.managed_clusters.get, rg, name))
                if str(_props(d).get("nodeResourceGroup", "")).lower() == node_rg.lower():
                    return parse_managed_cluster(d, t, found_by)
                continue
            scope = f"/subscriptions/{sub}/resourceGroups/{rg}"
            items = call(
                "clusters", scope, lambda rg=rg, **kw: list(cs.managed_clusters.list_by_resource_group(rg, **kw))
            )
        except AzureCallError as e:
            if e.kind == "forbidden":
                refused.append(e.need or e.message)
            elif e.kind != "not-found":
                raise
            continue
        for c in items:
            d = _as_dict(c)
            if str(_props(d).get("nodeResourceGroup", "")).lower() == node_rg.lower():
                return parse_managed_cluster(d, t, found_by)
    scope = f"/subscriptions/{sub}"
    try:
        items = call("clusters", scope, lambda **kw: list(cs.managed_clusters.list(**kw)))
    except AzureCallError as e:
        if e.kind != "forbidden":
            raise
        refused.append(e.need or e.message)
        return replace(
            t,
            cluster_note=f"cannot read the managed cluster ({'; '.join(refused)}): the outbound type and upgrade "
            "surge are unknown; using the load balancer alone",
        )
    for c in items:
        d = _as_dict(c)
        if str(_props(d).get("nodeResourceGroup", "")).lower() == node_rg.lower():
            return parse_managed_cluster(d, t, f"subscription {sub}")
    return replace(
        t,
        cluster_note=f"no managed cluster in subscription {sub} uses node resource group {node_rg}; "
        "using the load balancer alone",
    )


def node_subnet_id(t: AzureTarget, hints: NodeHints) -> str:
    """The node subnet's id: the cluster's vnetSubnetID, else built from the nodes' labels."""
    if t.subnet_id:
        return t.subnet_id
    if hints.network_resource_group and hints.vnet and hints.subnet:
        sub = hints.network_subscription or t.subscription
        return (
            f"/subscriptions/{sub}/resourceGroups/{hints.network_resource_group}/providers/"
            f"Microsoft.Network/virtualNetworks/{hints.vnet}/subnets/{hints.subnet}"
        )
    return ""


def read_nat_gateway(call: Call, net: Any, t: AzureTarget, hints: NodeHints) -> AzureTarget:
    """The NAT gateway on the node subnet (user-assigned: in the VNet's resource group), else
    the one in the node resource group (managed)."""
    if t.outbound_type == "userAssignedNATGateway":
        sid = node_subnet_id(t, hints)
        parts = sid.strip("/").split("/") if sid else []
        if len(parts) >= 10:
            low = [p.lower() for p in parts]
            try:
                rg = parts[low.index("resourcegroups") + 1]
                vnet = parts[low.index("virtualnetworks") + 1]
                name = parts[low.index("subnets") + 1]
            except (ValueError, IndexError):
                rg = vnet = name = ""
            if rg and vnet and name:
                d = _as_dict(call("subnet", sid, net.subnets.get, rg, vnet, name))
                gw = str((_props(d).get("natGateway") or {}).get("id", ""))
                if gw:
                    ids: tuple[str, ...] = ()
                    gparts = gw.strip("/").split("/")
                    glow = [x.lower() for x in gparts]
                    if "resourcegroups" in glow and "natgateways" in glow:
                        try:
                            body = _as_dict(
                                call(
                                    "natgw",
                                    gw,
                                    net.nat_gateways.get,
                                    gparts[glow.index("resourcegroups") + 1],
                                    gparts[glow.index("natgateways") + 1],
                                )
                            )
                            ids = nat_ip_ids(body)
                        except AzureCallError as e:
                            if e.kind not in ("forbidden", "not-found"):
                                raise
                    return replace(t, nat_gateway_id=gw, nat_ip_ids=ids)
    rg = t.node_resource_group
    gws = call(
        "natgws",
        f"/subscriptions/{t.subscription}/resourceGroups/{rg}",
        lambda **kw: list(net.nat_gateways.list(rg, **kw)),
    )
    first = next(iter(gws), None)
    if first is None:
        return replace(t, nat_gateway_id="", nat_ip_ids=())
    body = _as_dict(first)
    return replace(t, nat_gateway_id=str(body.get("id", "")), nat_ip_ids=nat_ip_ids(body))


__all__ = [
    "NAT_TYPES",
    "NodeHints",
    "guess_clusters",
    "hints_of",
    "node_subnet_id",
    "parse_load_balancer",
    "parse_managed_cluster",
    "pick_outbound_rule",
    "read_cluster",
    "read_load_balancer",
    "read_nat_gateway",
]
