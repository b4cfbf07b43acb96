"""The resource kinds the topology needs, where to list them and how to file their objects.

Nodes; kube-system DNS pods by label; services (LoadBalancer ones also into the
ingress path's collection). A route may file None under a key: that key leaves the
collection. Each object from a list or a watch is
checked for the little the store relies on (an object with a `metadata` object naming
it) before it is parsed: a malformed one is skipped and said, never fatal to its list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from probes.engine.store import COREDNS, NODELOCAL, NODES, SERVICES
from probes.ingress.model import LB_SERVICES
from probes.ingress.parse import is_load_balancer, parse_lb_service
from probes.kube.topology import parse_node, parse_pod, parse_service

DNS_POD_SELECTOR = "k8s-app in (kube-dns,node-local-dns)"


@dataclass(frozen=True, slots=True)
class WatchedKind:
    """One resource kind to reflect: where to list it and how to file its objects."""

    name: str  # status source suffix and log name: "nodes", "pods", "services"
    path: str
    selector: str
    route: Callable[[dict[str, Any]], list[tuple[str, str, Any]]]  # obj -> [(collection, key, record)]
    collections: tuple[str, ...]
    verb_scope: str  # for the forbidden message: "nodes at the cluster scope"
    source: str = "kubernetes"  # the status source's prefix: "kubernetes/<name>"
    # optional: not served (404, or a CRD discovery does not list) is a state, not an error;
    # a 403 is said but never fatal (the topology does not depend on it)
    optional: bool = False
    discovery: str = ""  # "/apis/<group>/<version>" that must list `resource` before a list is tried
    resource: str = ""  # the plural name discovery lists ("certificates")

    @property
    def singular(self) -> str:
        return self.name[:-1]


def object_key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


def object_problem(obj: Any) -> str:
    """Why `obj` cannot be filed ("" when it can): what the store needs is a name."""
    if not isinstance(obj, dict):
        return "not an object"
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return "metadata is not an object"
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return "metadata.name is missing"
    ns = meta.get("namespace")
    if ns is not None and not isinstance(ns, str):
        return "metadata.namespace is not a string"
    return ""


def _labels(obj: dict[str, Any]) -> dict[str, Any]:
    labels = obj["metadata"].get("labels")
    return labels if isinstance(labels, dict) else {}


def _route_node(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(NODES, object_key(obj), parse_node(obj))]


def _route_pod(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    app = _labels(obj).get("k8s-app")
    coll = COREDNS if app == "kube-dns" else NODELOCAL if app == "node-local-dns" else None
    return [(coll, object_key(obj), parse_pod(obj))] if coll else []


def _route_service(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """Every service for the topology; a LoadBalancer one also with what Azure reads of it
    (None for the others: a service that stops being a LoadBalancer leaves that collection)."""
    key = object_key(obj)
    lb = parse_lb_service(obj) if is_load_balancer(obj) else None
    return [(SERVICES, key, parse_service(obj)), (LB_SERVICES, key, lb)]


KINDS = (
    WatchedKind("nodes", "/api/v1/nodes", "", _route_node, (NODES,), "nodes at the cluster scope"),
    WatchedKind(
        "pods",
        "/api/v1/namespaces/kube-system/pods",
        DNS_POD_SELECTOR,
        _route_pod,
        (COREDNS, NODELOCAL),
        "pods in namespace kube-system",
    ),
    WatchedKind(
        "services", "/api/v1/services", "", _route_service, (SERVICES, LB_SERVICES), "services at the cluster scope"
    ),
)
