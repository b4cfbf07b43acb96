"""Immutable records that flow from sources to views.

Everything here is a frozen dataclass: a view can hold a snapshot for as long as it
likes without a source changing it underneath.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

LOCAL_VANTAGE = "local"
DEFAULT_NODELOCAL_IP = "169.254.20.10"  # the upstream node-local-dns manifest's and AKS's -localip


def node_vantage(node: str) -> str:
    """The vantage name of probes run on `node` (by the agent, or the demo's stand-in)."""
    return f"node/{node}"


class NetworkPlugin(str, Enum):
    KUBENET = "kubenet"
    AZURE_CNI = "azure-cni"
    AZURE_CNI_OVERLAY = "azure-cni-overlay"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PodState:
    """A kube-system pod we care about (CoreDNS, node-local-dns)."""

    namespace: str
    name: str
    node: str
    ip: str
    phase: str
    ready: bool
    restarts: int = 0
    reason: str = ""
    local_ip: str = ""  # node-local-dns: the first address of its -localip argument


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    internal_ip: str
    pod_cidrs: tuple[str, ...]
    pool: str
    ready: bool | None  # None: the node reports no Ready condition
    ready_reason: str
    cordoned: bool
    network_unavailable: bool | None  # None: no NetworkUnavailable condition
    network_reason: str
    kubelet_version: str
    zone: str
    provider_id: str
    vmss: str
    instance_id: str
    created: float  # epoch seconds, 0.0 when unknown
    os_image: str = ""
    instance_type: str = ""
    mode: str = ""  # System / User pool mode
    overlay: bool = False
    cilium: bool = False
    localdns: bool = False  # AKS managed LocalDNS enabled on this node
    taints: tuple[str, ...] = ()
    draining: bool = False  # cordoned and carrying the eviction taint of a drain
    resource_group: str = ""  # kubernetes.azure.com/cluster: cut to 63 chars by AKS, never a resource group name
    os: str = ""  # kubernetes.io/os: linux | windows
    network_resource_group: str = ""  # kubernetes.azure.com/network-resourcegroup (the VNet's)
    network_name: str = ""  # kubernetes.azure.com/network-name (the VNet)
    network_subnet: str = ""  # kubernetes.azure.com/network-subnet
    network_subscription: str = ""  # kubernetes.azure.com/network-subscription ("" = the cluster's)


@dataclass(frozen=True, slots=True)
class PoolInfo:
    name: str
    mode: str
    nodes: int
    ready: int
    instance_type: str
    kubelet_versions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    namespace: str
    name: str
    type: str
    cluster_ip: str
    external_ips: tuple[str, ...]
    ports: tuple[str, ...]
    internal_lb: bool = False

    @property
    def pending(self) -> bool:
        return self.type == "LoadBalancer" and not self.external_ips


@dataclass(frozen=True, slots=True)
class Topology:
    """The cluster as the Kubernetes API describes it, at one moment."""

    cluster: str  # node resource group (kubernetes.azure.com/cluster) or context name
    plugin: NetworkPlugin
    dataplane: str  # "azure", "cilium" or ""
    pod_cidrs: tuple[str, ...]  # summarised cluster pod CIDR(s), from node pod CIDRs (else the managed cluster's)
    dns_service_ip: str  # kube-dns ClusterIP, "" when unknown
    nodes: tuple[NodeInfo, ...]  # sorted by pool, then name
    pools: tuple[PoolInfo, ...]
    coredns: tuple[PodState, ...]
    nodelocal: dict[str, PodState] = field(default_factory=dict)  # node name -> pod
    nodelocal_enabled: bool = False
    services: tuple[ServiceInfo, ...] = ()  # LoadBalancer services, cluster-wide
    server_version: str = ""
    service_events: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "ns/name" -> event messages
    # name -> node, built on the first lookup (rules, panes and the tree look nodes up by
    # name per row: a scan each was O(n²) per frame at 5,000 nodes); never compared or copied
    _by_name: dict[str, NodeInfo] = field(default_factory=dict, init=False, compare=False, repr=False)

    def nodelocal_address(self, node: str | None = None) -> str:
        """NodeLocal DNS's address: what `node`'s node-local-dns pod listens on (its
        ``-localip`` argument), else the address most of its pods give, else the
        upstream manifest's and AKS's 169.254.20.10."""
        pod = self.nodelocal.get(node) if node is not None else None
        if pod is not None and pod.local_ip:
            return pod.local_ip
        counts: dict[str, int] = {}
        for p in self.nodelocal.values():
            if p.local_ip:
                counts[p.local_ip] = counts.get(p.local_ip, 0) + 1
        if counts:
            return max(sorted(counts), key=lambda ip: counts[ip])
        return DEFAULT_NODELOCAL_IP

    def node(self, name: str) -> NodeInfo | None:
        idx = self._by_name
        if not idx and self.nodes:  # the nodes never change: built once
            idx.update((n.name, n) for n in self.nodes)
        return idx.get(name)

    @property
    def ready_nodes(self) -> int:
        return sum(1 for n in self.nodes if n.ready)


class SourceState(str, Enum):
    CONNECTING = "connecting"
    SYNCING = "syncing"
    LIVE = "live"  # the watch is up and delivered an event or bookmark within its deadline
    STALE = "stale"  # the watch went quiet past its deadline: the data is as old as `stale_since`
    FORBIDDEN = "forbidden"
    UNAUTHORIZED = "unauthorized"
    UNREACHABLE = "unreachable"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """What a source is doing now, in words an operator can act on."""

    source: str  # e.g. "kubernetes"
    state: SourceState
    message: str = ""
    detail: str = ""  # e.g. the missing permission, or the server address
    retry_at: float | None = None  # monotonic time of the next retry
    since: float = 0.0  # monotonic time the state began
    stale_since: float | None = None  # monotonic time the data held was last known current; None: current or none
    fatal: bool = False  # retrying will not fix it soon (refused, no DNS name, 401, 403): a headless run ends
