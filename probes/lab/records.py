"""The live state records of the lab cluster: small mutable dataclasses that
:class:`probes.lab.cluster.ClusterState` changes and :mod:`probes.lab.objects` renders as
Kubernetes objects. No behaviour here, so both can import it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

__all__ = ["AgentState", "EventState", "LabAgentPod", "LabPod", "NodeState", "ServiceState"]


@dataclass(slots=True)
class NodeState:
    name: str
    pool: str
    instance: int
    ip: str
    pod_cidr: str | None
    zone: str
    uid: str
    created: float
    ready: str = "True"
    reason: str | None = None
    message: str | None = None
    ready_since: float = 0.0
    cordoned: bool = False
    cordon_since: float = 0.0
    network_unavailable: bool = False
    route_since: float = 0.0
    next_pod_ip: int = 0  # int address for the next pod IP on this node
    kubelet_version: str | None = None  # this node's own (scenario nodes[].kubeletVersion), else its pool's


@dataclass(slots=True)
class LabPod:
    name: str
    app: str
    node: str
    ip: str
    host_ip: str
    uid: str
    created: float
    template_hash: str
    ready: bool = True
    ready_since: float = 0.0
    restarts: int = 0
    replica: int = -1  # deployment replica slot, -1 for DaemonSet pods


@dataclass(slots=True)
class ServiceState:
    namespace: str
    name: str
    type: str
    cluster_ip: str
    ports: list[dict[str, Any]]
    selector: dict[str, str]
    external_ip: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    uid: str
    created: float


@dataclass(slots=True)
class EventState:
    namespace: str
    name: str
    involved_kind: str
    involved_name: str
    involved_uid: str
    reason: str
    message: str
    type: str
    count: int
    component: str
    first: float
    last: float
    uid: str


@dataclass(frozen=True, slots=True)
class LabAgentPod:
    """How one node's aksnet-top agent pod should look (``ClusterState.set_agent_pods``).

    ``ip=None`` allocates a pod IP from the node like the other lab pods; a given ``ip``
    is the pod's real address (network-namespace tests) and the proxy dials it directly.
    ``endpoint`` is where the lab really dials for the agent's port when the pod IP is only
    a lookalike (the demo runs its agents on 127.0.0.1 ephemeral ports). ``phase="Pending"``
    is a pod that has no IP yet (ContainerCreating).
    """

    ip: str | None = None
    endpoint: tuple[str, int] | None = None
    ready: bool = True
    phase: str = "Running"
    port: int = 9102
    restarts: int = 0

    def __post_init__(self) -> None:
        if self.phase not in ("Running", "Pending"):
            raise ValueError(f"agent pod phase must be Running or Pending, not {self.phase!r}")
        if self.ip is not None:
            ipaddress.ip_address(self.ip)  # ValueError on garbage
        if not 0 < self.port < 65536:
            raise ValueError(f"agent port {self.port} is out of range")


@dataclass(slots=True)
class AgentState:
    node: str
    name: str
    uid: str
    spec: LabAgentPod
    ip: str | None  # None while Pending
    created: float
    ready_since: float
