"""The one store: latest objects from the sources, their statuses, and immutable snapshots.

Sources write small records under a lock; the publisher (and the services' planners) ask
for `snapshot()` and get a frozen object, rebuilt only when something changed since the
last one, outside the writers' lock.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from probes.engine.nudge import Nudges
from probes.ingress import model as im
from probes.ingress.model import IngressData
from probes.kube.gatewaymodel import GATEWAY_CONFIGS, GATEWAY_PODS, SGC_GROUP_VERSION, GatewayData
from probes.kube.model import NodeInfo, PodState, ServiceInfo, SourceState, SourceStatus, Topology
from probes.kube.policymodel import PolicyInputs, label_sets
from probes.kube.topology import build_topology

NODES = "nodes"
COREDNS = "coredns"
NODELOCAL = "nodelocal"
SERVICES = "services"
SERVICE_EVENTS = "service_events"  # "ns/name" -> warning event messages of a pending LoadBalancer service
# what the NetworkPolicy evaluation reads (F21): never part of the topology, so a pod
# starting anywhere in the cluster does not rebuild it
NETPOLS = "networkpolicies"
CALICO_NPS = "calico_networkpolicies"
CALICO_GNPS = "calico_globalnetworkpolicies"
NAMESPACES = "namespaces"
DNS_POD_LABELS = "dns_pod_labels"  # the CoreDNS pods as the policies see them (labels, IP, named ports)
POLICY_PODS = "policy_pods"  # "<ns>\x00<label selector>" -> the PodLabels of a few pods it selects
APIS = "apis"  # group/version -> served (True) or not (False), for the API groups that may be absent
POLICY_COLLECTIONS = frozenset((NETPOLS, CALICO_NPS, CALICO_GNPS, NAMESPACES, DNS_POD_LABELS, POLICY_PODS, APIS))
# the static egress gateway's (probes.kube.gatewaymodel): never part of the topology either
GATEWAY_COLLECTIONS = frozenset((GATEWAY_CONFIGS, GATEWAY_PODS))
COLLECTIONS = (
    NODES,
    COREDNS,
    NODELOCAL,
    SERVICES,
    SERVICE_EVENTS,
    *sorted(POLICY_COLLECTIONS),
    *im.COLLECTIONS,
    *sorted(GATEWAY_COLLECTIONS),
)
INGRESS = frozenset(im.COLLECTIONS)  # the ingress path's: a change there leaves the topology as it is
STATUS_LOG = 512  # status changes kept for `status_log` (check reads what happened during its run)


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    topology: Topology
    statuses: tuple[SourceStatus, ...]
    synced: frozenset[str]  # collections whose first list completed
    target: str  # "context @ server", or "" before a connection is set up
    taken: float  # monotonic
    policies: PolicyInputs = PolicyInputs()  # what the NetworkPolicy evaluation reads
    ingress: IngressData = IngressData()  # the ingress path's records (probes.ingress)
    gateways: GatewayData = GatewayData()  # the static egress gateway (probes.kube.gatewaymodel)

    def status(self, source: str) -> SourceStatus | None:
        for s in self.statuses:
            if s.source == source:
                return s
        return None

    def stale_since(self, prefix: str = "kubernetes") -> float | None:
        """Since when (monotonic) the oldest stale part of the data held by `prefix`'s sources
        was last known current; None when all of it is current."""
        return min(
            (s.stale_since for s in self.statuses if s.stale_since is not None and s.source.startswith(prefix)),
            default=None,
        )


class Store:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {c: {} for c in COLLECTIONS}
        self._statuses: dict[str, SourceStatus] = {}
        self._synced: set[str] = set()
        self._version = 0
        self._data_version = 0  # moves with what the topology is built from (not statuses)
        self._policy_version = 0  # moves with POLICY_COLLECTIONS
        self._policies: tuple[tuple[int, frozenset[str], str], PolicyInputs] | None = None
        self._topology: tuple[int, Topology] | None = None
        self._ingress_version = 0  # moves with the ingress path's collections only
        self._ingress: tuple[int, IngressData] | None = None
        # per ingress collection: its version and its sorted values (the same tuple while unchanged)
        self._coll_version: dict[str, int] = dict.fromkeys(INGRESS, 0)
        self._coll_values: dict[str, tuple[int, tuple[Any, ...]]] = {}
        self._pods_both: tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]] | None = None
        self._gateway_version = 0  # moves with GATEWAY_COLLECTIONS
        self._gateways: tuple[tuple[Any, ...], GatewayData] | None = None
        self._snapshot: Snapshot | None = None
        self._build_lock = threading.Lock()
        self._cluster = ""
        self._server_version = ""
        self._target = ""
        self._log: deque[tuple[float, SourceStatus]] = deque(maxlen=STATUS_LOG)
        self.nudges = Nudges()  # fired on every change (under the lock): followers wake on it

    # --- writes (sources) -------------------------------------------------------------
    def _bump(self, data: bool = True, collection: str = "") -> None:
        self._version += 1
        if collection in POLICY_COLLECTIONS:
            self._policy_version += 1
        elif collection in GATEWAY_COLLECTIONS:
            self._gateway_version += 1
        elif collection in INGRESS:
            self._ingress_version += 1
            self._coll_version[collection] += 1
        elif data:
            self._data_version += 1
        self.nudges.fire()

    def replace(self, collection: str, items: Mapping[str, Any]) -> None:
        """Swap a whole collection after a (re)list, and mark it synced. None items are left out."""
        with self._lock:
            self._data[collection] = {k: v for k, v in items.items() if v is not None}
            self._synced.add(collection)
            self._bump(collection=collection)

    def upsert(self, collection: str, key: str, item: Any) -> None:
        """File `item` under `key`; None deletes the key."""
        if item is None:
            self.delete(collection, key)
            return
        with self._lock:
            if self._data[collection].get(key) == item:
                return
            self._data[collection][key] = item
            self._bump(collection=collection)

    def delete(self, collection: str, key: str) -> None:
        with self._lock:
            if self._data[collection].pop(key, None) is not None:
                self._bump(collection=collection)

    def set_status(self, status: SourceStatus) -> None:
        with self._lock:
            old = self._statuses.get(status.source)
            if old is not None and dataclasses.replace(old, since=status.since) == status:
                return
            if old is not None and old.state == status.state:
                status = dataclasses.replace(status, since=old.since)
            elif not status.since:
                status = dataclasses.replace(status, since=self._clock())
            self._statuses[status.source] = status
            self._log.append((self._clock(), status))
            self._bump(data=False)

    def status_log(self, after: float = float("-inf")) -> list[SourceStatus]:
        """The statuses set at or after `after` (monotonic), oldest first; the last
        STATUS_LOG changes at most."""
        with self._lock:
            return [s for t, s in self._log if t >= after]

    def set_meta(
        self, *, cluster: str | None = None, server_version: str | None = None, target: str | None = None
    ) -> None:
        with self._lock:
            if cluster is not None:
                self._cluster = cluster
            if server_version is not None:
                self._server_version = server_version
            if target is not None:
                self._target = target
            self._bump()

    # --- reads (views) ----------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._version

    def statuses(self) -> tuple[SourceStatus, ...]:
        """Every source's status, by source, without building a snapshot."""
        with self._lock:
            return tuple(sorted(self._statuses.values(), key=lambda s: s.source))

    def synced(self) -> frozenset[str]:
        """Collections whose first list completed, without building a snapshot."""
        with self._lock:
            return frozenset(self._synced)

    def snapshot(self) -> Snapshot:
        """The latest snapshot, rebuilt only when something changed. The rebuild (O(nodes))
        runs outside the writers' lock, so sources never wait for it; one builder at a
        time, and a second asker gets the first one's result."""
        with self._lock:
            if self._snapshot is not None and self._snapshot.version == self._version:
                return self._snapshot
        with self._build_lock:
            with self._lock:
                if self._snapshot is not None and self._snapshot.version == self._version:
                    return self._snapshot
                version, data_version = self._version, self._data_version
                statuses = tuple(sorted(self._statuses.values(), key=lambda s: s.source))
                synced = frozenset(self._synced)
                target = self._target
                kept = self._topology
                policies = self._policy_inputs(synced)
                ingress = self._ingress_locked()
                gateways = self._gateways_locked(synced)
                if kept is not None and kept[0] == data_version:  # only statuses moved: same topology
                    snap = Snapshot(
                        version=version,
                        topology=kept[1],
                        statuses=statuses,
                        synced=synced,
                        target=target,
                        taken=self._clock(),
                        policies=policies,
                        ingress=ingress,
                        gateways=gateways,
                    )
                    self._snapshot = snap
                    return snap
                nodes: dict[str, NodeInfo] = dict(self._data[NODES])
                coredns = tuple(self._data[COREDNS].values())
                nodelocal = tuple(self._data[NODELOCAL].values())
                services: dict[str, ServiceInfo] = dict(self._data[SERVICES])
                events = dict(self._data[SERVICE_EVENTS])
                cluster_name, server_version = self._cluster, self._server_version
            cluster = cluster_name or next((n.resource_group for n in nodes.values() if n.resource_group), "")
            dns = services.get("kube-system/kube-dns")
            topo = build_topology(
                nodes,
                cluster=cluster,
                coredns=coredns,
                nodelocal=nodelocal,
                services=tuple(services.values()),
                dns_service_ip=dns.cluster_ip if dns else "",
                server_version=server_version,
                service_events=events,
            )
            snap = Snapshot(
                version=version,
                topology=topo,
                statuses=statuses,
                synced=synced,
                target=target,
                taken=self._clock(),
                policies=policies,
                ingress=ingress,
                gateways=gateways,
            )
            with self._lock:
                if self._snapshot is None or self._snapshot.version < version:
                    self._snapshot = snap
                if self._topology is None or self._topology[0] < data_version:
                    self._topology = (data_version, topo)
            return snap

    def _policy_inputs(self, synced: frozenset[str]) -> PolicyInputs:
        """The NetworkPolicy evaluation's inputs, rebuilt only when a policy collection or
        Calico's state moved (O(pods) to group the label sets). Called under the lock."""
        served = self._data[APIS].get("crd.projectcalico.org/v1")
        if served is False:
            calico = "absent"
        elif served and {CALICO_NPS, CALICO_GNPS} <= synced:
            calico = "present"
        elif any(
            s.state is SourceState.FORBIDDEN and s.source.startswith("kubernetes/calico-")
            for s in self._statuses.values()
        ):
            calico = "forbidden"
        else:
            calico = "unknown"
        key = (self._policy_version, synced, calico)
        kept = self._policies
        if kept is not None and kept[0] == key:
            return kept[1]
        pods = {(p.namespace, p.name): p for group in self._data[POLICY_PODS].values() for p in group}
        out = PolicyInputs(
            kube_policies=tuple(sorted(self._data[NETPOLS].values(), key=lambda p: (p.namespace, p.name))),
            calico_policies=tuple(
                sorted(
                    (*self._data[CALICO_NPS].values(), *self._data[CALICO_GNPS].values()),
                    key=lambda p: (p.namespace, p.name),
                )
            ),
            namespaces=tuple(sorted(self._data[NAMESPACES].items())),
            label_sets=label_sets(pods.values()),
            kube_dns=tuple(sorted(self._data[DNS_POD_LABELS].values(), key=lambda p: p.name)),
            kube_synced={NETPOLS, NAMESPACES, DNS_POD_LABELS, POLICY_PODS} <= synced,
            calico=calico,
        )
        self._policies = (key, out)
        return out

    def _gateways_locked(self, synced: frozenset[str]) -> GatewayData:
        """The static egress gateway's records, rebuilt only when its collections, the CRD's
        discovery or its kinds' permission moved. Called under the lock."""
        served = self._data[APIS].get(SGC_GROUP_VERSION)
        forbidden = any(
            s.state is SourceState.FORBIDDEN and s.source == "kubernetes/staticgatewayconfigurations"
            for s in self._statuses.values()
        )
        if served is False:
            state = "absent"
        elif forbidden:
            state = "forbidden"
        elif served and GATEWAY_CONFIGS in synced:
            state = "present"
        else:
            state = "unknown"
        pods_read = state == "present" and GATEWAY_PODS in synced
        key = (self._gateway_version, state, pods_read)
        kept = self._gateways
        if kept is not None and kept[0] == key:
            return kept[1]
        d = self._data
        out = GatewayData(
            state=state,
            configs=tuple(d[GATEWAY_CONFIGS][k] for k in sorted(d[GATEWAY_CONFIGS])) if state == "present" else (),
            pods=tuple(d[GATEWAY_PODS][k] for k in sorted(d[GATEWAY_PODS])) if pods_read else (),
            pods_read=pods_read,
        )
        self._gateways = (key, out)
        return out

    def _ingress_locked(self) -> IngressData:
        """The ingress path's records, rebuilt only when one of its collections changed
        (sorting 1,000 ingresses is cheap; doing it on every topology change is not needed)."""
        kept = self._ingress
        if kept is not None and kept[0] == self._ingress_version:
            return kept[1]
        d = self._data

        def vals(coll: str) -> tuple[Any, ...]:
            """The collection's records by key; the same tuple as last time when it did not
            change (the view's builder skips what is the same object)."""
            v = self._coll_version[coll]
            kept = self._coll_values.get(coll)
            if kept is not None and kept[0] == v:
                return kept[1]
            items = d[coll]
            out = tuple(items[k] for k in sorted(items))
            self._coll_values[coll] = (v, out)
            return out

        data = IngressData(
            classes=vals(im.INGRESS_CLASSES),
            ingresses=vals(im.INGRESSES),
            services=vals(im.LB_SERVICES),
            slices=vals(im.ENDPOINT_SLICES),
            pods=self._pods_locked(vals(im.CONTROLLER_PODS), vals(im.AGIC_PODS)),
            certificates=vals(im.CERTIFICATES),
            requests=vals(im.CERT_REQUESTS),
            orders=vals(im.ORDERS),
            challenges=vals(im.CHALLENGES),
            gateways=vals(im.GATEWAYS),
            routes=vals(im.HTTP_ROUTES),
            absent=tuple(sorted(d[im.ABSENT].items())),
            synced=frozenset(c for c in self._synced if c in INGRESS),
        )
        self._ingress = (self._ingress_version, data)
        return data

    def _pods_locked(self, nginx: tuple[Any, ...], agic: tuple[Any, ...]) -> tuple[Any, ...]:
        """Both controller-pod collections in one tuple, the same one while neither changed."""
        kept = self._pods_both
        if kept is not None and kept[0] is nginx and kept[1] is agic:
            return kept[2]
        both = nginx + agic
        self._pods_both = (nginx, agic, both)
        return both


ORDER = {
    SourceState.UNAUTHORIZED: 0,
    SourceState.UNREACHABLE: 1,
    SourceState.FORBIDDEN: 2,
    SourceState.ERROR: 3,
    SourceState.STALE: 4,
    SourceState.CONNECTING: 5,
    SourceState.SYNCING: 6,
    SourceState.LIVE: 7,
}


def worst_status(statuses: tuple[SourceStatus, ...]) -> SourceStatus | None:
    """The status an operator must see first: errors before stale data before progress
    before live (a relist over stale data ranks as stale; a live one with a note before a plain one;
    then the topology's kinds before the optional ingress path's)."""

    def rank(s: SourceStatus) -> tuple[int, int, int]:
        order = ORDER[s.state]
        if s.stale_since is not None:
            order = min(order, ORDER[SourceState.STALE])
        # at the same rank the topology's kinds before the ingress path's (optional) ones
        return order, 0 if s.detail else 1, 1 if s.source.startswith("ingress/") else 0

    return min(statuses, key=rank, default=None)


__all__ = [
    "Store",
    "Snapshot",
    "worst_status",
    "NODES",
    "COREDNS",
    "NODELOCAL",
    "SERVICES",
    "PodState",
    "NETPOLS",
    "CALICO_NPS",
    "CALICO_GNPS",
    "NAMESPACES",
    "DNS_POD_LABELS",
    "POLICY_PODS",
    "APIS",
]
