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
from typing import Any, NamedTuple

from probes.engine.store import (
    CALICO_GNPS,
    CALICO_NPS,
    COREDNS,
    DNS_POD_LABELS,
    NAMESPACES,
    NETPOLS,
    NODELOCAL,
    NODES,
    SERVICES,
)
from probes.ingress.model import LB_SERVICES
from probes.ingress.parse import is_load_balancer, parse_lb_service
from probes.kube.gatewaymodel import GATEWAY_CONFIGS, GATEWAY_PODS, SGC_GROUP_VERSION, SGC_PLURAL
from probes.kube.gatewayparse import gateway_of, parse_gateway_config, parse_gateway_pod
from probes.kube.nodepage import decode_node_page
from probes.kube.policyparse import parse_calico_policy, parse_kube_policy, parse_namespace, parse_pod_labels
from probes.kube.topology import parse_node, parse_pod, parse_service

DNS_POD_SELECTOR = "k8s-app in (kube-dns,node-local-dns)"


class DecodedPage(NamedTuple):
    """A list page a kind's own decoder read straight into records."""

    records: list[tuple[str, str, Any]]  # (collection, key, record), as a route gives them
    objects: int  # objects on the page
    resource_version: str
    cont: str


@dataclass(frozen=True, slots=True)
class WatchedKind:
    """One resource kind to reflect: where to list it and how to file its objects."""

    name: str  # status source suffix and log name: "nodes", "pods", "services"
    path: str
    selector: str
    route: Callable[[dict[str, Any]], list[tuple[str, str, Any]]]  # obj -> [(collection, key, record)]
    collections: tuple[str, ...]
    verb_scope: str  # for the forbidden message: "nodes at the cluster scope"
    # not needed for the topology: a 403 is said, never fatal to a run (the NetworkPolicy kinds)
    required: bool = True
    # an API group that may be absent (CRDs): discovered first; absent is a state, not an error
    group_version: str = ""
    # the RBAC resource when it differs from `name` ("networkpolicies.crd.projectcalico.org"),
    # or the plural name `discovery` lists ("certificates")
    resource: str = ""
    source: str = "kubernetes"  # the status source's prefix: "kubernetes/<name>"
    # optional (the ingress path's kinds): not served (404, or a CRD discovery does not list)
    # is a state, not an error; a 403 is said but never fatal (the topology does not depend on it)
    optional: bool = False
    discovery: str = ""  # "/apis/<group>/<version>" that must list `resource` before a list is tried
    # the plural `group_version` must serve before this kind is read, when it is not the
    # kind's own (the pods annotated for a static egress gateway: read only where its CRD is)
    served_by: str = ""
    without: str = ""  # what a 403 costs, for a kind that is not required ("" : the NetworkPolicy evaluation)
    # a typed decoder for a whole list page (None: the page is read the general way, object
    # by object through `route`); it declines (None) any page it cannot read exactly
    decode_page: Callable[[bytes], DecodedPage | None] | None = None

    @property
    def singular(self) -> str:
        return self.name[:-1]

    @property
    def rbac(self) -> str:
        return self.resource or self.name


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


def _node_page(body: bytes) -> DecodedPage | None:
    page = decode_node_page(body)
    if page is None:
        return None
    return DecodedPage(
        [(NODES, name, info) for name, info in page.nodes], len(page.nodes), page.resource_version, page.cont
    )


def _route_pod(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    app = _labels(obj).get("k8s-app")
    coll = COREDNS if app == "kube-dns" else NODELOCAL if app == "node-local-dns" else None
    if coll is None:
        return []
    out: list[tuple[str, str, Any]] = [(coll, object_key(obj), parse_pod(obj))]
    if app == "kube-dns":  # as the NetworkPolicies see it: labels, IP, named ports (F21)
        out.append((DNS_POD_LABELS, object_key(obj), parse_pod_labels(obj)))
    return out


def _route_service(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """Every service for the topology; a LoadBalancer one also with what Azure reads of it
    (None for the others: a service that stops being a LoadBalancer leaves that collection)."""
    key = object_key(obj)
    lb = parse_lb_service(obj) if is_load_balancer(obj) else None
    return [(SERVICES, key, parse_service(obj)), (LB_SERVICES, key, lb)]


KINDS: tuple[WatchedKind, ...] = (
    WatchedKind(
        "nodes", "/api/v1/nodes", "", _route_node, (NODES,), "nodes at the cluster scope", decode_page=_node_page
    ),
    WatchedKind(
        "pods",
        "/api/v1/namespaces/kube-system/pods",
        DNS_POD_SELECTOR,
        _route_pod,
        (COREDNS, NODELOCAL, DNS_POD_LABELS),
        "pods in namespace kube-system",
    ),
    WatchedKind(
        "services", "/api/v1/services", "", _route_service, (SERVICES, LB_SERVICES), "services at the cluster scope"
    ),
)


def _route_netpol(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(NETPOLS, object_key(obj), parse_kube_policy(obj))]


def _route_namespace(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(NAMESPACES, object_key(obj), parse_namespace(obj))]


def _route_calico_np(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(CALICO_NPS, object_key(obj), parse_calico_policy(obj, "NetworkPolicy"))]


def _route_calico_gnp(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(CALICO_GNPS, object_key(obj), parse_calico_policy(obj, "GlobalNetworkPolicy"))]


CALICO_CRD = "crd.projectcalico.org/v1"

# What the NetworkPolicy evaluation (F21) watches: Kubernetes NetworkPolicies, the namespaces'
# labels and, where the CRDs exist, Calico's policies (the pods the policies select are read
# on demand: probes.kube.policypods). None is needed for the topology: a role without them
# still runs, and says what it cannot see.
POLICY_KINDS = (
    WatchedKind(
        "networkpolicies",
        "/apis/networking.k8s.io/v1/networkpolicies",
        "",
        _route_netpol,
        (NETPOLS,),
        "networkpolicies at the cluster scope",
        required=False,
        resource="networkpolicies.networking.k8s.io",
    ),
    WatchedKind("namespaces", "/api/v1/namespaces", "", _route_namespace, (NAMESPACES,), "namespaces", required=False),
    WatchedKind(
        "calico-networkpolicies",
        f"/apis/{CALICO_CRD}/networkpolicies",
        "",
        _route_calico_np,
        (CALICO_NPS,),
        "Calico networkpolicies at the cluster scope",
        required=False,
        group_version=CALICO_CRD,
        resource="networkpolicies.crd.projectcalico.org",
    ),
    WatchedKind(
        "calico-globalnetworkpolicies",
        f"/apis/{CALICO_CRD}/globalnetworkpolicies",
        "",
        _route_calico_gnp,
        (CALICO_GNPS,),
        "Calico globalnetworkpolicies",
        required=False,
        group_version=CALICO_CRD,
        resource="globalnetworkpolicies.crd.projectcalico.org",
    ),
)


def _route_gateway_config(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(GATEWAY_CONFIGS, object_key(obj), parse_gateway_config(obj))]


def _route_gateway_pod(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """Only the annotated pods are kept (a few fields each); a pod that ends leaves."""
    if not gateway_of(obj):
        return []
    return [(GATEWAY_PODS, object_key(obj), parse_gateway_pod(obj))]


_GATEWAY_WITHOUT = "without it, the static egress gateway is not judged"
# The static egress gateway (AKS): its configurations where the CRD is served (discovered,
# never assumed: absent is a state), and the pods annotated for one. Pods cannot be selected
# by annotation, so the pods are watched at the cluster scope, but only where the CRD is
# served (a cluster that never enabled the feature pays nothing) and only annotated pods
# are kept. RBAC: get, list, watch on staticgatewayconfigurations and pods.
GATEWAY_KINDS = (
    WatchedKind(
        "staticgatewayconfigurations",
        f"/apis/{SGC_GROUP_VERSION}/{SGC_PLURAL}",
        "",
        _route_gateway_config,
        (GATEWAY_CONFIGS,),
        "staticgatewayconfigurations at the cluster scope",
        required=False,
        group_version=SGC_GROUP_VERSION,
        resource=f"{SGC_PLURAL}.egressgateway.kubernetes.azure.com",
        without=_GATEWAY_WITHOUT,
    ),
    WatchedKind(
        "gateway-pods",
        "/api/v1/pods",
        "",
        _route_gateway_pod,
        (GATEWAY_PODS,),
        "pods at the cluster scope",
        required=False,
        group_version=SGC_GROUP_VERSION,
        resource="pods",
        served_by=SGC_PLURAL,
        without=_GATEWAY_WITHOUT,
    ),
)
KINDS = (*KINDS, *POLICY_KINDS, *GATEWAY_KINDS)
POLICY_PODS_SOURCE = "kubernetes/policy-pods"  # the status of probes.kube.policypods
OPTIONAL_SOURCES = frozenset(
    [*(f"{k.source}/{k.name}" for k in KINDS if not k.required or k.optional), POLICY_PODS_SOURCE]
)
