"""The lab's object store: Kubernetes JSON objects by resource and key, resource versions,
and a bounded watch log, like the API server's watch cache.

One condition variable guards everything and wakes watchers; :mod:`.cluster` writes,
the API server's lists and watches read.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "KINDS",
    "NAMESPACED",
    "RESOURCES",
    "GROUP_RESOURCES",
    "API_VERSIONS",
    "GROUP_VERSION",
    "CRD_GROUPS",
    "Entry",
    "LabStore",
    "WatchEvent",
    "api_version",
]

# resource -> "group/version" of the resources served under /apis (the ingress path's)
GROUP_VERSION = {
    "endpointslices": "discovery.k8s.io/v1",
    "ingressclasses": "networking.k8s.io/v1",
    "ingresses": "networking.k8s.io/v1",
    "certificates": "cert-manager.io/v1",
    "certificaterequests": "cert-manager.io/v1",
    "orders": "acme.cert-manager.io/v1",
    "challenges": "acme.cert-manager.io/v1",
    "gateways": "gateway.networking.k8s.io/v1",
    "httproutes": "gateway.networking.k8s.io/v1",
}
# the groups a scenario installs as CRDs (ingress.crds): absent unless it says so
CRD_GROUPS = {
    "cert-manager": ("cert-manager.io/v1", "acme.cert-manager.io/v1"),
    "gateway-api": ("gateway.networking.k8s.io/v1",),
}
# core/v1 and the ingress path's resources
RESOURCES = ("nodes", "namespaces", "pods", "services", "events", *GROUP_VERSION)
# resources of the groups the lab reads (NetworkPolicies): store id -> (group, version, plural);
# Calico's share a plural with Kubernetes'
GROUP_RESOURCES = {
    "networkpolicies": ("networking.k8s.io", "v1", "networkpolicies"),
    "calico.networkpolicies": ("crd.projectcalico.org", "v1", "networkpolicies"),
    "calico.globalnetworkpolicies": ("crd.projectcalico.org", "v1", "globalnetworkpolicies"),
    # AKS's static egress gateway, when the scenario has an egressGateway section
    "staticgatewayconfigurations": ("egressgateway.kubernetes.azure.com", "v1alpha1", "staticgatewayconfigurations"),
}
NAMESPACED = {
    "pods",
    "services",
    "events",
    "networkpolicies",
    "calico.networkpolicies",
    "staticgatewayconfigurations",
    *(r for r in GROUP_VERSION if r != "ingressclasses"),
}
KINDS = {
    "nodes": "Node",
    "namespaces": "Namespace",
    "pods": "Pod",
    "services": "Service",
    "events": "Event",
    "networkpolicies": "NetworkPolicy",
    "calico.networkpolicies": "NetworkPolicy",
    "calico.globalnetworkpolicies": "GlobalNetworkPolicy",
    "staticgatewayconfigurations": "StaticGatewayConfiguration",
    "endpointslices": "EndpointSlice",
    "ingressclasses": "IngressClass",
    "ingresses": "Ingress",
    "certificates": "Certificate",
    "certificaterequests": "CertificateRequest",
    "orders": "Order",
    "challenges": "Challenge",
    "gateways": "Gateway",
    "httproutes": "HTTPRoute",
}
API_VERSIONS = {r: f"{g}/{v}" for r, (g, v, _) in GROUP_RESOURCES.items()}  # the rest: api_version
_ALL = (*RESOURCES, *GROUP_RESOURCES)


def api_version(resource: str) -> str:
    return GROUP_VERSION.get(resource) or API_VERSIONS.get(resource, "v1")


class Entry:
    """One stored object; immutable once stored. ``raw`` is its JSON, serialized once."""

    __slots__ = ("resource", "namespace", "name", "key", "obj", "rv", "_raw")

    def __init__(self, resource: str, obj: dict[str, Any], rv: int):
        md = obj["metadata"]
        md["resourceVersion"] = str(rv)
        self.resource = resource
        self.namespace = md.get("namespace", "")
        self.name = md["name"]
        self.key = f"{self.namespace}/{self.name}" if self.namespace else self.name
        self.obj = obj
        self.rv = rv
        self._raw: bytes | None = None

    @property
    def labels(self) -> dict[str, str]:
        return self.obj["metadata"].get("labels") or {}

    @property
    def raw(self) -> bytes:
        r = self._raw
        if r is None:
            r = self._raw = orjson.dumps(self.obj)
        return r


@dataclass(slots=True)
class WatchEvent:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    entry: Entry
    prev: Entry | None = None  # the object before this change (label-selector watches)
    _line: bytes | None = None

    @property
    def line(self) -> bytes:
        if self._line is None:
            self._line = b'{"type":"' + self.type.encode() + b'","object":' + self.entry.raw + b"}\n"
        return self._line


class LabStore:
    def __init__(self, log_size: int = 10_000, first_rv: int = 1000):
        self.cond = threading.Condition(threading.RLock())
        self.rv = first_rv
        self.items: dict[str, dict[str, Entry]] = {r: {} for r in _ALL}
        self._sorted: dict[str, list[str] | None] = {r: None for r in _ALL}
        self.log: deque[WatchEvent] = deque()
        self.log_size = log_size
        self.floor = first_rv  # every change with rv > floor is still in the log
        self.recording = False

    def put(self, resource: str, obj: dict[str, Any]) -> Entry:
        with self.cond:
            self.rv += 1
            e = Entry(resource, obj, self.rv)
            items = self.items[resource]
            prev = items.get(e.key)
            typ = "MODIFIED" if prev is not None else "ADDED"
            if typ == "ADDED":
                self._sorted[resource] = None
            items[e.key] = e
            self._record(WatchEvent(self.rv, typ, e, prev))
            return e

    def delete(self, resource: str, key: str) -> Entry | None:
        with self.cond:
            old = self.items[resource].pop(key, None)
            if old is None:
                return None
            self._sorted[resource] = None
            self.rv += 1
            obj = dict(old.obj)
            obj["metadata"] = dict(obj["metadata"])
            e = Entry(resource, obj, self.rv)
            self._record(WatchEvent(self.rv, "DELETED", e, old))
            return e

    def _record(self, ev: WatchEvent) -> None:
        if not self.recording:
            self.floor = ev.rv
            return
        self.log.append(ev)
        while len(self.log) > self.log_size:
            self.floor = self.log.popleft().rv
        self.cond.notify_all()

    def expire_log(self) -> None:
        """Forget all logged changes: any watch from an older RV gets 410 Expired."""
        with self.cond:
            self.log.clear()
            self.floor = self.rv

    def get(self, resource: str, key: str) -> Entry | None:
        return self.items[resource].get(key)

    def sorted_keys(self, resource: str) -> list[str]:
        with self.cond:
            keys = self._sorted[resource]
            if keys is None:
                keys = self._sorted[resource] = sorted(self.items[resource])
            return keys

    def snapshot(self, resource: str) -> tuple[int, list[str], dict[str, Entry]]:
        with self.cond:
            return self.rv, self.sorted_keys(resource), dict(self.items[resource])

    def since(self, rv: int) -> list[WatchEvent] | None:
        """Changes after ``rv``; None if ``rv`` is older than the log keeps."""
        with self.cond:
            if rv < self.floor:
                return None
            if not self.log or self.log[-1].rv <= rv:
                return []
            # log is sorted by rv: skip from the right end (watchers are usually close)
            out = []
            for ev in reversed(self.log):
                if ev.rv <= rv:
                    break
                out.append(ev)
            out.reverse()
            return out
