"""The ingress path's kinds, watched by the Kubernetes source with the topology's rules
(paged raw-JSON lists, watches with bookmarks, per-kind backoff).

Each is optional: its statuses are `ingress/<kind>`, not `kubernetes/<kind>`, so a
missing permission or an API the server does not serve never makes the topology
untrusted; cert-manager and Gateway API kinds are listed only when discovery shows their
CRDs (absent: a state the pane shows). RBAC: get, list, watch on every resource below
(README, "Permissions").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from probes.ingress.model import (
    AGIC_PODS,
    CERT_REQUESTS,
    CERTIFICATES,
    CHALLENGES,
    CONTROLLER_PODS,
    ENDPOINT_SLICES,
    GATEWAYS,
    HTTP_ROUTES,
    INGRESS_CLASSES,
    INGRESSES,
    LB_SERVICES,
    ORDERS,
)
from probes.ingress.parse import (
    AGIC_POD_SELECTOR,
    NGINX_POD_SELECTOR,
    parse_certificate,
    parse_certificate_request,
    parse_challenge,
    parse_controller_pod,
    parse_endpoint_slice,
    parse_gateway,
    parse_http_route,
    parse_ingress,
    parse_ingress_class,
    parse_order,
)
from probes.kube.kinds import WatchedKind, object_key

SOURCE = "ingress"
CERT_MANAGER = "/apis/cert-manager.io/v1"
ACME = "/apis/acme.cert-manager.io/v1"
GATEWAY_API = "/apis/gateway.networking.k8s.io/v1"


def _to(coll: str, parse: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], list[tuple[str, str, Any]]]:
    def route(obj: dict[str, Any]) -> list[tuple[str, str, Any]]:
        return [(coll, object_key(obj), parse(obj))]

    return route


def _kind(
    name: str, path: str, coll: str, parse: Callable[[dict[str, Any]], Any], selector: str = "", discovery: str = ""
) -> WatchedKind:
    scope = f"{name} at the cluster scope"
    return WatchedKind(
        name,
        path,
        selector,
        _to(coll, parse),
        (coll,),
        scope,
        source=SOURCE,
        optional=True,
        discovery=discovery,
        resource=path.rsplit("/", 1)[-1],
    )


INGRESS_KINDS = (
    _kind("ingressclasses", "/apis/networking.k8s.io/v1/ingressclasses", INGRESS_CLASSES, parse_ingress_class),
    _kind("ingresses", "/apis/networking.k8s.io/v1/ingresses", INGRESSES, parse_ingress),
    _kind("endpointslices", "/apis/discovery.k8s.io/v1/endpointslices", ENDPOINT_SLICES, parse_endpoint_slice),
    _kind("controller-pods", "/api/v1/pods", CONTROLLER_PODS, parse_controller_pod, NGINX_POD_SELECTOR),
    _kind("agic-pods", "/api/v1/pods", AGIC_PODS, parse_controller_pod, AGIC_POD_SELECTOR),
    _kind("certificates", f"{CERT_MANAGER}/certificates", CERTIFICATES, parse_certificate, discovery=CERT_MANAGER),
    _kind(
        "certificaterequests",
        f"{CERT_MANAGER}/certificaterequests",
        CERT_REQUESTS,
        parse_certificate_request,
        discovery=CERT_MANAGER,
    ),
    _kind("orders", f"{ACME}/orders", ORDERS, parse_order, discovery=ACME),
    _kind("challenges", f"{ACME}/challenges", CHALLENGES, parse_challenge, discovery=ACME),
    _kind("gateways", f"{GATEWAY_API}/gateways", GATEWAYS, parse_gateway, discovery=GATEWAY_API),
    _kind("httproutes", f"{GATEWAY_API}/httproutes", HTTP_ROUTES, parse_http_route, discovery=GATEWAY_API),
)

__all__ = ["INGRESS_KINDS", "SOURCE", "LB_SERVICES"]
