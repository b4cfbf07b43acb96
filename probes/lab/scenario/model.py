"""What a scenario is once loaded: frozen records of every section, and the node
generator that expands pools the way AKS allocates them (names, IPs, pod CIDRs).

The file format and its checks are :mod:`.schema` and :mod:`.loader`; rescaling to
``--nodes N`` is :mod:`.scaling`; :mod:`probes.lab.cluster` turns a Scenario into live state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from ..schemabase import ScenarioError, parse_duration, show

__all__ = [
    "ALL_ACTIONS",
    "DATAPLANES",
    "NODE_ACTIONS",
    "PLUGINS",
    "ClusterSpec",
    "CoreDNSSpec",
    "EventSpec",
    "NodeOverride",
    "NodeSpec",
    "PoolSpec",
    "PortSpec",
    "Scenario",
    "ScenarioError",
    "ServiceSpec",
    "TimedEvent",
    "base36",
    "ntoa",
    "parse_duration",
    "resolve_node_ref",
    "show",
]


PLUGINS = ("kubenet", "azure", "azure-overlay")
DATAPLANES = ("azure", "cilium")


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    name: str
    subscription_id: str
    resource_group: str
    location: str
    node_resource_group: str
    kubernetes_version: str
    network_plugin: str
    network_dataplane: str
    pod_cidr: ipaddress.IPv4Network | None
    service_cidr: ipaddress.IPv4Network
    dns_service_ip: ipaddress.IPv4Address
    vnet_cidr: ipaddress.IPv4Network
    subnet_cidr: ipaddress.IPv4Network
    node_local_dns: bool
    local_dns: bool
    node_image_version: str
    age: float
    node_local_dns_ip: ipaddress.IPv4Address = ipaddress.IPv4Address("169.254.20.10")


@dataclass(frozen=True, slots=True)
class PoolSpec:
    name: str
    mode: str
    count: int
    vm_size: str
    zones: tuple[str, ...]
    max_pods: int
    os_sku: str
    kubelet_version: str | None
    vm_type: str = "VirtualMachineScaleSets"  # or AvailabilitySet

    @property
    def windows(self) -> bool:
        return self.os_sku.startswith("Windows")

    @property
    def vmas(self) -> bool:
        return self.vm_type == "AvailabilitySet"


@dataclass(frozen=True, slots=True)
class NodeOverride:
    """Per-node state. ``ref`` is an int (index over all nodes), 'pool/N' or a node name."""

    ref: int | str
    ready: str = "True"  # True | False | Unknown
    reason: str | None = None
    message: str | None = None
    cordoned: bool = False
    network_unavailable: bool = False
    node_local_dns_ready: bool = True
    age: float | None = None
    kubelet_version: str | None = None  # this node's kubelet, else its pool's
    ip: ipaddress.IPv4Address | None = None  # a fixed address, else allocated in order


@dataclass(frozen=True, slots=True)
class CoreDNSSpec:
    replicas: int = 2
    ready: int = 2


@dataclass(frozen=True, slots=True)
class PortSpec:
    port: int
    protocol: str = "TCP"
    target_port: int | str | None = None
    name: str | None = None
    node_port: int | None = None


@dataclass(frozen=True, slots=True)
class EventSpec:
    reason: str
    message: str
    type: str = "Warning"
    count: int = 1
    component: str = "service-controller"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    namespace: str
    name: str
    type: str
    ports: tuple[PortSpec, ...]
    selector: dict[str, str]
    cluster_ip: ipaddress.IPv4Address | None
    external_ip: str | None  # None = pending (LoadBalancer only)
    internal: bool
    labels: dict[str, str]
    annotations: dict[str, str]
    events: tuple[EventSpec, ...]


_DNS1123 = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"


NODE_ACTIONS = (
    "node-remove",
    "node-ready",
    "node-notready",
    "node-cordon",
    "node-uncordon",
    "node-route-missing",
    "node-route-created",
)
ALL_ACTIONS = ("node-add", *NODE_ACTIONS, "pod-ready", "pod-notready", "service-external-ip")


@dataclass(frozen=True, slots=True)
class TimedEvent:
    at: float
    action: str
    pool: str | None = None
    node: int | str | None = None
    ready: bool = True
    reason: str | None = None
    message: str | None = None
    pod: str | None = None  # node-local-dns | coredns | a pod name
    index: int | None = None  # coredns replica index
    service: str | None = None  # namespace/name
    ip: str | None = None  # service-external-ip; null = back to pending


# --------------------------------------------------------------------------- nodes


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One generated node: identity and addresses as AKS allocates them."""

    name: str
    pool: str
    instance: int  # VMSS instance id
    ip: str
    pod_cidr: str | None
    zone: str  # "westeurope-1" or "0"
    override: NodeOverride | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str  # file stem, e.g. "healthy"
    source: str  # file name used in messages
    cluster: ClusterSpec
    pools: tuple[PoolSpec, ...]
    overrides: tuple[NodeOverride, ...]
    coredns: CoreDNSSpec
    services: tuple[ServiceSpec, ...]
    timeline: tuple[TimedEvent, ...]
    description: str = ""
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def node_count(self) -> int:
        return sum(p.count for p in self.pools)

    def pool(self, name: str) -> PoolSpec:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    def vmss_id(self, pool: str) -> str:
        """The 8-digit number in AKS VMSS names: stable per cluster and pool."""
        h = hashlib.sha256(
            f"{self.cluster.subscription_id}/{self.cluster.resource_group}/{self.cluster.name}/{pool}".encode()
        ).digest()
        return f"{int.from_bytes(h[:8], 'big') % 100_000_000:08d}"

    def node_name(self, pool: str, instance: int) -> str:
        """AKS's computer names: ``aks-<pool>-<id>-vmss<base36>`` (Linux VMSS),
        ``aks<pool><base36>`` (Windows VMSS: 15 characters at most),
        ``aks-<pool>-<id>-<n>`` (an availability-set VM)."""
        prefix, vmas = self._name_prefix(self.pool(pool))
        return prefix + (str(instance) if vmas else base36(instance, 6))

    def _name_prefix(self, p: PoolSpec) -> tuple[str, bool]:
        if p.vmas:
            return f"aks-{p.name}-{self.vmss_id(p.name)}-", True
        if p.windows:
            return f"aks{p.name}", False
        return f"aks-{p.name}-{self.vmss_id(p.name)}-vmss", False

    def scale_set(self, pool: str) -> str:
        """The pool's VMSS name ("" for an availability set)."""
        p = self.pool(pool)
        if p.vmas:
            return ""
        return f"aks{pool}" if p.windows else f"aks-{pool}-{self.vmss_id(pool)}-vmss"

    def ip_stride(self, pool: str) -> int:
        """Addresses a node takes from the subnet: 1, or maxPods+1 with flat Azure CNI."""
        return self.pool(pool).max_pods + 1 if self.cluster.network_plugin == "azure" else 1

    def nodes(self) -> list[NodeSpec]:
        """Initial nodes: pools in order, IPs from .4 of the subnet, /24s in order."""
        c = self.cluster
        out: list[NodeSpec] = []
        ip = int(c.subnet_cidr.network_address) + 4
        last_ip = int(c.subnet_cidr.broadcast_address) - 1
        pod_base = int(c.pod_cidr.network_address) if c.pod_cidr is not None else 0
        pod_slots = (2 ** (24 - c.pod_cidr.prefixlen)) if c.pod_cidr is not None else 0
        total = self.node_count
        if c.pod_cidr is not None and total > pod_slots:
            raise ScenarioError(
                f"{self.source}: cluster.podCidr: {c.pod_cidr} holds {pod_slots} node "
                f"/24 ranges, the pools need {total}"
            )
        i = 0
        for p in self.pools:
            stride = self.ip_stride(p.name)
            prefix, vmas = self._name_prefix(p)  # once per pool: 5,000 nodes in well under a second
            for n in range(p.count):
                if ip + stride - 1 > last_ip:
                    raise ScenarioError(
                        f"{self.source}: cluster.subnetCidr: {c.subnet_cidr} has no room "
                        f"for node {i + 1} of {total} ({stride} addresses each)"
                    )
                zone = f"{c.location}-{p.zones[n % len(p.zones)]}" if p.zones else "0"
                out.append(
                    NodeSpec(
                        name=prefix + (str(n) if vmas else base36(n, 6)),
                        pool=p.name,
                        instance=n,
                        ip=ntoa(ip),
                        pod_cidr=f"{ntoa(pod_base + (i << 8))}/24" if pod_slots else None,
                        zone=zone,
                    )
                )
                ip += stride
                i += 1
        return _apply_overrides(self, out)


def _apply_overrides(sc: Scenario, nodes: list[NodeSpec]) -> list[NodeSpec]:
    if not sc.overrides:
        return nodes
    for k, o in enumerate(sc.overrides):
        idx = resolve_node_ref(sc, nodes, o.ref)
        if idx is None:
            raise ScenarioError(f"{sc.source}: nodes[{k}]: no node {o.ref!r} in this cluster")
        nodes[idx] = dataclasses.replace(nodes[idx], override=o)
        if o.ip is not None:
            nodes[idx] = dataclasses.replace(nodes[idx], ip=_fixed_ip(sc, nodes, idx, o.ip, f"nodes[{k}].ip"))
    return nodes


def _fixed_ip(sc: Scenario, nodes: list[NodeSpec], idx: int, ip: ipaddress.IPv4Address, key: str) -> str:
    """A node's fixed address: usable in the subnet (Azure keeps .0-.3 and the last), and
    its block (maxPods+1 addresses with flat Azure CNI) clear of every other node's."""
    net = sc.cluster.subnet_cidr
    stride = sc.ip_stride(nodes[idx].pool)
    first, last = int(net.network_address) + 4, int(net.broadcast_address) - 1
    if not (first <= int(ip) and int(ip) + stride - 1 <= last):
        raise ScenarioError(
            f"{sc.source}: {key}: {ip} is not usable in subnetCidr {net} (from {ntoa(first)}"
            + (f", {stride} addresses for the node and its pods)" if stride > 1 else ")")
        )
    for j, other in enumerate(nodes):
        if j == idx:
            continue
        lo = int(ipaddress.IPv4Address(other.ip))
        if lo < int(ip) + stride and int(ip) < lo + sc.ip_stride(other.pool):
            raise ScenarioError(f"{sc.source}: {key}: {ip} overlaps node {other.name} ({other.ip})")
    return str(ip)


def resolve_node_ref(sc: Scenario, nodes: list[Any], ref: int | str) -> int | None:
    """Index into ``nodes`` (anything with .name) for an int, 'pool/N' or a name."""
    if isinstance(ref, int):
        return ref if ref < len(nodes) else None
    name = ref
    if "/" in ref:
        pool, _, n = ref.partition("/")
        if not n.isdigit() or not any(p.name == pool for p in sc.pools):
            return None
        name = sc.node_name(pool, int(n))
    for i, nd in enumerate(nodes):
        if nd.name == name:
            return i
    return None


_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(n: int, width: int) -> str:
    s = ""
    while n:
        n, r = divmod(n, 36)
        s = _B36[r] + s
    return s.rjust(width, "0")


def ntoa(n: int) -> str:
    return f"{n >> 24 & 255}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
