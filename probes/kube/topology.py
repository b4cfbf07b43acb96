"""Raw Kubernetes JSON -> topology records. Pure: no I/O, no clients.

The parsers take plain dicts (as decoded from the API server's JSON) and keep only what
the views need, so a 5,000-node list never lives in memory as full objects.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from probes.kube.model import NetworkPlugin, NodeInfo, PodState, PoolInfo, ServiceInfo, Topology

LABEL_POOL = ("kubernetes.azure.com/agentpool", "agentpool")
LABEL_CLUSTER = "kubernetes.azure.com/cluster"
LABEL_MODE = "kubernetes.azure.com/mode"
LABEL_ZONE = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
LABEL_INSTANCE_TYPE = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
LABEL_OVERLAY = "kubernetes.azure.com/azure-cni-overlay"
LABEL_PODNETWORK = "kubernetes.azure.com/podnetwork-type"
LABEL_DATAPLANE = "kubernetes.azure.com/ebpf-dataplane"
LABEL_LOCALDNS = "kubernetes.azure.com/localdns-state"
LABEL_OS = ("kubernetes.io/os", "beta.kubernetes.io/os")
LABEL_NET_RG = "kubernetes.azure.com/network-resourcegroup"
LABEL_NET_NAME = "kubernetes.azure.com/network-name"
LABEL_NET_SUBNET = "kubernetes.azure.com/network-subnet"
LABEL_NET_SUB = "kubernetes.azure.com/network-subscription"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
ANNOTATION_INTERNAL_LB = "service.beta.kubernetes.io/azure-load-balancer-internal"


def _first(labels: Mapping[str, Any], keys: Iterable[str]) -> str:
    for k in keys:
        v = labels.get(k)
        if v:
            return str(v)
    return ""


def parse_time(value: Any) -> float:
    """RFC 3339 timestamp -> epoch seconds; 0.0 for anything unparseable."""
    if not isinstance(value, str) or not value:
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def parse_provider_id(provider_id: str) -> tuple[str, str]:
    """azure:///subscriptions/…/virtualMachineScaleSets/<vmss>/virtualMachines/<n> -> (vmss, n)."""
    low = provider_id.lower()
    i = low.find("/virtualmachinescalesets/")
    vmss = provider_id[i + 25 :].split("/", 1)[0] if i >= 0 else ""
    j = low.rfind("/virtualmachines/")
    instance = provider_id[j + 17 :].split("/", 1)[0] if j >= 0 else ""
    return vmss, instance


def _conditions(conditions: list[Any]) -> dict[str, tuple[bool | None, str]]:
    """type -> (True/False/None for Unknown, reason), in one pass."""
    out: dict[str, tuple[bool | None, str]] = {}
    for c in conditions:
        if isinstance(c, dict):
            status = c.get("status")
            out[str(c.get("type"))] = (
                True if status == "True" else False if status == "False" else None,
                str(c.get("reason") or ""),
            )
    return out


def _condition(conditions: list[dict[str, Any]], kind: str) -> tuple[bool | None, str]:
    return _conditions(conditions).get(kind, (None, ""))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def parse_node(obj: Mapping[str, Any]) -> NodeInfo:
    """One v1 Node as JSON -> NodeInfo. Missing fields become empty values, never errors.

    Runs once per node of every watch event and of a list page that the typed page decoder
    (probes.kube.nodepage) declined: written for speed, one pass over each part."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    spec = obj.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    status = obj.get("status")
    status = status if isinstance(status, dict) else {}
    labels = meta.get("labels")
    labels = labels if isinstance(labels, dict) else {}
    ip = ""
    addresses = status.get("addresses")
    if isinstance(addresses, list):
        for addr in addresses:
            if isinstance(addr, dict) and addr.get("type") == "InternalIP":
                ip = str(addr.get("address") or "")
                break
    pod_cidrs = spec.get("podCIDRs")
    cidrs = tuple([str(c) for c in pod_cidrs if c]) if isinstance(pod_cidrs, list) else ()
    if not cidrs and spec.get("podCIDR"):
        cidrs = (str(spec["podCIDR"]),)
    ready: bool | None = None
    net_unavail: bool | None = None
    ready_reason = net_reason = ""
    conditions = status.get("conditions")
    if isinstance(conditions, list):
        for c in conditions:  # the last of a type wins, as in _conditions
            if isinstance(c, dict):
                typ = c.get("type")
                if typ == "Ready" or typ == "NetworkUnavailable":
                    st = c.get("status")
                    value = True if st == "True" else False if st == "False" else None
                    if typ == "Ready":
                        ready, ready_reason = value, str(c.get("reason") or "")
                    else:
                        net_unavail, net_reason = value, str(c.get("reason") or "")
    raw_taints = spec.get("taints")
    taints = (
        tuple([f"{t.get('key', '')}:{t.get('effect', '')}" for t in raw_taints if isinstance(t, dict)])
        if isinstance(raw_taints, list) and raw_taints
        else ()
    )
    node_info = status.get("nodeInfo")
    node_info = node_info if isinstance(node_info, dict) else {}
    return node_record(
        name=str(meta.get("name") or ""),
        labels=labels,
        internal_ip=ip,
        pod_cidrs=cidrs,
        ready=(ready, ready_reason),
        network_unavailable=(net_unavail, net_reason),
        taints=taints,
        provider_id=str(spec.get("providerID") or ""),
        cordoned=bool(spec.get("unschedulable")),
        created=parse_time(meta.get("creationTimestamp")),
        kubelet_version=str(node_info.get("kubeletVersion") or ""),
        os_image=str(node_info.get("osImage") or ""),
        reported_os=str(node_info.get("operatingSystem") or ""),
    )


def node_record(
    *,
    name: str,
    labels: Mapping[str, Any],
    internal_ip: str,
    pod_cidrs: tuple[str, ...],
    ready: tuple[bool | None, str],
    network_unavailable: tuple[bool | None, str],
    taints: tuple[str, ...],
    provider_id: str,
    cordoned: bool,
    created: float,
    kubelet_version: str,
    os_image: str,
    reported_os: str,
) -> NodeInfo:
    """The NodeInfo of a node's extracted fields: what its labels, taints and provider id
    mean. One place for both readers of a Node (parse_node's dict, the page decoder's
    typed struct), so the two cannot drift."""
    vmss, instance = parse_provider_id(provider_id)
    get = labels.get
    return NodeInfo(
        name=name,
        internal_ip=internal_ip,
        pod_cidrs=pod_cidrs,
        pool=_first(labels, LABEL_POOL) or "(no pool)",
        ready=ready[0],
        ready_reason=ready[1],
        cordoned=cordoned,
        network_unavailable=network_unavailable[0],
        network_reason=network_unavailable[1],
        kubelet_version=kubelet_version,
        zone=_first(labels, LABEL_ZONE),
        provider_id=provider_id,
        vmss=vmss,
        instance_id=instance,
        created=created,
        os_image=os_image,
        instance_type=_first(labels, LABEL_INSTANCE_TYPE),
        mode=str(get(LABEL_MODE, "")),
        overlay=get(LABEL_OVERLAY) == "true" or get(LABEL_PODNETWORK) == "overlay",
        cilium=get(LABEL_DATAPLANE) == "cilium",
        localdns=get(LABEL_LOCALDNS) == "enabled",
        taints=taints,
        draining=cordoned
        and any(t.startswith("ToBeDeletedByClusterAutoscaler") or "drain" in t.lower() for t in taints),
        resource_group=str(get(LABEL_CLUSTER, "")),
        os=_first(labels, LABEL_OS) or reported_os,
        network_resource_group=str(get(LABEL_NET_RG) or ""),
        network_name=str(get(LABEL_NET_NAME) or ""),
        network_subnet=str(get(LABEL_NET_SUBNET) or ""),
        network_subscription=str(get(LABEL_NET_SUB) or ""),
    )


NODE_LABELS: tuple[str, ...] = (
    *LABEL_POOL,
    LABEL_CLUSTER,
    LABEL_MODE,
    *LABEL_ZONE,
    *LABEL_INSTANCE_TYPE,
    LABEL_OVERLAY,
    LABEL_PODNETWORK,
    LABEL_DATAPLANE,
    LABEL_LOCALDNS,
    *LABEL_OS,
    LABEL_NET_RG,
    LABEL_NET_NAME,
    LABEL_NET_SUBNET,
    LABEL_NET_SUB,
)  # every label node_record reads


def parse_pod(obj: Mapping[str, Any]) -> PodState:
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    ready, _ = _condition(_list(status.get("conditions")), "Ready")
    restarts = 0
    reason = str(status.get("reason") or "")
    for cs in _list(status.get("containerStatuses")):
        if not isinstance(cs, dict):
            continue
        try:
            restarts += int(cs.get("restartCount") or 0)
        except (TypeError, ValueError):
            pass
        waiting = _dict(_dict(cs.get("state")).get("waiting"))
        if waiting.get("reason") and not reason:
            reason = str(waiting["reason"])
    return PodState(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        node=str(spec.get("nodeName") or ""),
        ip=str(status.get("podIP") or ""),
        phase=str(status.get("phase") or "Unknown"),
        ready=bool(ready),
        restarts=restarts,
        reason=reason,
        local_ip=local_ip(spec),
    )


def local_ip(pod_spec: Mapping[str, Any]) -> str:
    """node-local-dns's listening address: the first IP of a container's ``-localip``
    argument (``-localip 169.254.20.10,10.0.0.10`` or ``-localip=…``, in args or
    command), "" when no container has one."""
    for c in _list(pod_spec.get("containers")):
        if not isinstance(c, dict):
            continue
        words = [str(w) for w in (_list(c.get("command")) + _list(c.get("args")))]
        for i, w in enumerate(words):
            flag, eq, val = w.partition("=")
            if flag.lstrip("-") != "localip" or not flag.startswith("-"):
                continue
            if not eq:
                val = words[i + 1] if i + 1 < len(words) else ""
            for part in val.split(","):
                try:
                    return str(ipaddress.ip_address(part.strip()))
                except ValueError:
                    continue
    return ""


def parse_service(obj: Mapping[str, Any]) -> ServiceInfo:
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    ingress = _list(_dict(_dict(obj.get("status")).get("loadBalancer")).get("ingress"))
    external = tuple(
        str(i.get("ip") or i.get("hostname"))
        for i in ingress
        if isinstance(i, dict) and (i.get("ip") or i.get("hostname"))
    )
    ports = tuple(
        f"{p.get('port', '?')}/{p.get('protocol', 'TCP')}" for p in _list(spec.get("ports")) if isinstance(p, dict)
    )
    annotations = _dict(meta.get("annotations"))
    return ServiceInfo(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        type=str(spec.get("type") or "ClusterIP"),
        cluster_ip=str(spec.get("clusterIP") or ""),
        external_ips=external,
        ports=ports,
        internal_lb=str(annotations.get(ANNOTATION_INTERNAL_LB, "")).lower() == "true",
    )


def infer_plugin(nodes: Iterable[NodeInfo]) -> tuple[NetworkPlugin, str]:
    """Network plugin and dataplane from node labels and pod CIDRs.

    Overlay nodes say so in a label; kubenet nodes have a pod CIDR and no overlay label;
    Azure CNI (flat) nodes have no pod CIDR since pods take VNet IPs. The dataplane is
    Cilium when any node carries the eBPF dataplane label.
    """
    any_nodes = overlay = cidr = cilium = False
    for n in nodes:
        any_nodes = True
        overlay |= n.overlay
        cidr |= bool(n.pod_cidrs)
        cilium |= n.cilium
    dataplane = "cilium" if cilium else ("azure" if any_nodes else "")
    if not any_nodes:
        return NetworkPlugin.UNKNOWN, dataplane
    if overlay:
        return NetworkPlugin.AZURE_CNI_OVERLAY, dataplane
    if cidr:
        return NetworkPlugin.KUBENET, dataplane
    return NetworkPlugin.AZURE_CNI, dataplane


@functools.lru_cache(maxsize=16384)
def _enclosing(cidr: str, max_prefix: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None
    prefix = max_prefix if net.version == 4 else min(net.prefixlen, 64)
    return net.supernet(new_prefix=prefix) if net.prefixlen > prefix else net


@functools.lru_cache(maxsize=16384)
def _enclosing_text(cidr: str, max_prefix: int) -> str | None:
    """`_enclosing` as text, for the common IPv4 "a.b.c.d/n" with plain arithmetic.

    The first topology of a 5,000-node cluster has 5,000 distinct /24s: building an
    `ip_network` and its supernet for each cost ~100 ms before the first frame; only
    the few distinct enclosing ranges are built as networks now. Anything else (IPv6,
    netmask notation, what `ipaddress` would reject) goes through `_enclosing`."""
    addr, sep, plen = cidr.partition("/")
    parts = addr.split(".")
    if sep and len(parts) == 4 and plen.isascii() and plen.isdigit() and int(plen) <= 32:
        value = 0
        for part in parts:
            if not (part.isascii() and part.isdigit()) or len(part) > 3 or (part[0] == "0" and len(part) > 1):
                break
            octet = int(part)
            if octet > 255:
                break
            value = value << 8 | octet
        else:
            prefix = min(int(plen), max_prefix)
            value &= (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
            return f"{value >> 24}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}/{prefix}"
    net = _enclosing(cidr, max_prefix)
    return None if net is None else str(net)


def summarise_cidrs(cidrs: Iterable[str], max_prefix: int = 16) -> tuple[str, ...]:
    """Collapse per-node pod CIDRs into the enclosing cluster range(s).

    AKS hands out /24s from one pod CIDR (default 10.244.0.0/16); the supernet at
    `max_prefix` is what the operator configured in nearly every cluster. Cached per
    CIDR: snapshots are rebuilt on every change and node CIDRs rarely change.
    """
    texts = {t for t in (_enclosing_text(c, max_prefix) for c in set(cidrs)) if t is not None}
    nets = {ipaddress.ip_network(t) for t in texts}
    out: list[str] = []
    # contiguous ranges merge: 100.64.0.0/16 + 100.65.0.0/16 -> 100.64.0.0/15
    v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in nets if isinstance(n, ipaddress.IPv6Network)]
    out += [str(n) for n in ipaddress.collapse_addresses(v4)]
    out += [str(n) for n in ipaddress.collapse_addresses(v6)]
    return tuple(out)


def build_pools(nodes: Iterable[NodeInfo]) -> tuple[PoolInfo, ...]:
    acc: dict[str, list[NodeInfo]] = {}
    for n in nodes:
        acc.setdefault(n.pool, []).append(n)
    pools = []
    for name in sorted(acc):
        members = acc[name]
        modes = {m.mode for m in members if m.mode}
        types = {m.instance_type for m in members if m.instance_type}
        pools.append(
            PoolInfo(
                name=name,
                mode="/".join(sorted(modes)),
                nodes=len(members),
                ready=sum(1 for m in members if m.ready),
                instance_type="/".join(sorted(types)),
                kubelet_versions=tuple(sorted({m.kubelet_version for m in members if m.kubelet_version})),
            )
        )
    return tuple(pools)


def build_topology(
    nodes: Mapping[str, NodeInfo],
    cluster: str,
    coredns: Iterable[PodState] = (),
    nodelocal: Iterable[PodState] = (),
    services: Iterable[ServiceInfo] = (),
    dns_service_ip: str = "",
    server_version: str = "",
    service_events: Mapping[str, tuple[str, ...]] | None = None,
) -> Topology:
    ordered = tuple(sorted(nodes.values(), key=lambda n: (n.pool, n.name)))
    plugin, dataplane = infer_plugin(ordered)
    nl_pods = list(nodelocal)
    nl_by_node: dict[str, PodState] = {}
    for p in sorted(nl_pods, key=lambda p: (p.ready, p.name)):
        nl_by_node[p.node] = p  # a ready pod wins over a stale one on the same node
    return Topology(
        cluster=cluster,
        plugin=plugin,
        dataplane=dataplane,
        pod_cidrs=summarise_cidrs(c for n in ordered for c in n.pod_cidrs),
        dns_service_ip=dns_service_ip,
        nodes=ordered,
        pools=build_pools(ordered),
        coredns=tuple(sorted(coredns, key=lambda p: p.name)),
        nodelocal=nl_by_node,
        nodelocal_enabled=bool(nl_pods),
        services=tuple(sorted((s for s in services if s.type == "LoadBalancer"), key=lambda s: (s.namespace, s.name))),
        server_version=server_version,
        service_events=dict(service_events or {}),
    )
