"""Raw Kubernetes JSON -> ingress-path records. Pure: no I/O, no clients.

Missing or mistyped fields become empty values, never errors (the reflector counts an
object a parser cannot read as ignored and goes on).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from probes.ingress.model import (
    AGIC,
    APP_ROUTING,
    NGINX,
    Backend,
    CertificateInfo,
    CertificateRequestInfo,
    ChallengeInfo,
    ControllerPod,
    EndpointSliceInfo,
    GatewayInfo,
    HTTPRouteInfo,
    IngressClassInfo,
    IngressInfo,
    IngressRule,
    LbService,
    OrderInfo,
    PortInfo,
)
from probes.kube.topology import parse_time

ANN_CLASS = "kubernetes.io/ingress.class"
ANN_DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"
ANN_CLUSTER_ISSUER = "cert-manager.io/cluster-issuer"
ANN_ISSUER = "cert-manager.io/issuer"
ANN_CERT_NAME = "cert-manager.io/certificate-name"
LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_APP = "app"
KEPT_LABELS = (LABEL_NAME, LABEL_APP, "app.kubernetes.io/instance", "app.kubernetes.io/component", "component")
# the label selectors of the two controller-pod watches (probes/ingress/kinds.py)
NGINX_POD_SELECTOR = f"{LABEL_NAME} in (ingress-nginx,nginx)"
AGIC_POD_SELECTOR = f"{LABEL_APP} in (ingress-appgw,ingress-azure)"


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _s(v: Any) -> str:
    return v if isinstance(v, str) else "" if v is None or isinstance(v, (dict, list)) else str(v)


def _meta(obj: Mapping[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    m = _d(obj.get("metadata"))
    return _s(m.get("namespace")), _s(m.get("name")), _d(m.get("annotations")), _d(m.get("labels"))


def _strs(v: Any) -> tuple[str, ...]:
    return tuple(_s(x) for x in _l(v) if isinstance(x, (str, int)) and _s(x))


def _ready(conditions: Any, kind: str = "Ready") -> tuple[bool | None, str, str, float]:
    """(status, reason, message, lastTransitionTime) of a condition; (None, "", "", 0) when absent."""
    out: tuple[bool | None, str, str, float] = (None, "", "", 0.0)
    for c in _l(conditions):
        if isinstance(c, dict) and c.get("type") == kind:
            st = c.get("status")
            out = (
                True if st == "True" else False if st == "False" else None,
                _s(c.get("reason")),
                _s(c.get("message"))[:400],
                parse_time(c.get("lastTransitionTime")),
            )
    return out


def _int(v: Any) -> int:
    if isinstance(v, bool):
        return 0
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return 0


def parse_ingress_class(obj: Mapping[str, Any]) -> IngressClassInfo:
    _, name, ann, _ = _meta(obj)
    spec = _d(obj.get("spec"))
    return IngressClassInfo(name, _s(spec.get("controller")), _s(ann.get(ANN_DEFAULT_CLASS)).lower() == "true")


def _backend(ns: str, b: Any) -> Backend | None:
    svc = _d(_d(b).get("service"))
    name = _s(svc.get("name"))
    if not name:
        return None
    port = _d(svc.get("port"))
    return Backend(f"{ns}/{name}", _s(port.get("number") or port.get("name")))


def _lb_ingress(status: Any) -> tuple[str, ...]:
    ing = _l(_d(_d(status).get("loadBalancer")).get("ingress"))
    return tuple(
        _s(i.get("ip") or i.get("hostname")) for i in ing if isinstance(i, dict) and (i.get("ip") or i.get("hostname"))
    )


def parse_ingress(obj: Mapping[str, Any]) -> IngressInfo:
    ns, name, ann, _ = _meta(obj)
    spec = _d(obj.get("spec"))
    rules: list[IngressRule] = []
    for r in _l(spec.get("rules")):
        if not isinstance(r, dict):
            continue
        host = _s(r.get("host")).lower()
        paths = _l(_d(r.get("http")).get("paths"))
        if not paths:
            rules.append(IngressRule(host, "", None))
        for p in paths:
            if isinstance(p, dict):
                rules.append(IngressRule(host, _s(p.get("path")) or "/", _backend(ns, p.get("backend"))))
    tls = tuple(
        (_s(t.get("secretName")), tuple(h.lower() for h in _strs(t.get("hosts"))))
        for t in _l(spec.get("tls"))
        if isinstance(t, dict)
    )
    return IngressInfo(
        namespace=ns,
        name=name,
        class_name=_s(spec.get("ingressClassName")) or _s(ann.get(ANN_CLASS)),
        rules=tuple(rules),
        tls=tls,
        lb=_lb_ingress(obj.get("status")),
        issuer=(
            f"ClusterIssuer/{_s(ann[ANN_CLUSTER_ISSUER])}"
            if ann.get(ANN_CLUSTER_ISSUER)
            else f"Issuer/{_s(ann[ANN_ISSUER])}"
            if ann.get(ANN_ISSUER)
            else ""
        ),
        default_backend=_backend(ns, spec.get("defaultBackend")),
    )


def is_load_balancer(obj: Mapping[str, Any]) -> bool:
    return _d(obj.get("spec")).get("type") == "LoadBalancer"


def parse_lb_service(obj: Mapping[str, Any]) -> LbService:
    ns, name, ann, _ = _meta(obj)
    spec = _d(obj.get("spec"))
    ports = tuple(
        PortInfo(
            port=_int(p.get("port")),
            protocol=_s(p.get("protocol")) or "TCP",
            node_port=_int(p.get("nodePort")),
            app_protocol=_s(p.get("appProtocol")),
            name=_s(p.get("name")),
            target=_s(p.get("targetPort")),
        )
        for p in _l(spec.get("ports"))
        if isinstance(p, dict)
    )
    return LbService(
        namespace=ns,
        name=name,
        cluster_ip=_s(spec.get("clusterIP")),
        external=_lb_ingress(obj.get("status")),
        ports=ports,
        selector=tuple(sorted((_s(k), _s(v)) for k, v in _d(spec.get("selector")).items())),
        annotations=tuple(sorted((_s(k), _s(v)[:1000]) for k, v in ann.items())),
        external_traffic_policy=_s(spec.get("externalTrafficPolicy")) or "Cluster",
        health_check_node_port=_int(spec.get("healthCheckNodePort")),
        source_ranges=_strs(spec.get("loadBalancerSourceRanges")),
        load_balancer_ip=_s(spec.get("loadBalancerIP")),
        lb_class=_s(spec.get("loadBalancerClass")),
    )


def parse_endpoint_slice(obj: Mapping[str, Any]) -> EndpointSliceInfo:
    ns, name, _, labels = _meta(obj)
    eps = []
    for e in _l(obj.get("endpoints")):
        if isinstance(e, dict):
            cond = _d(e.get("conditions"))
            ready = cond.get("ready")
            eps.append((ready is not False, _s(e.get("nodeName"))))  # unset ready means ready (the API's rule)
    svc = _s(labels.get(LABEL_SERVICE_NAME))
    return EndpointSliceInfo(ns, name, f"{ns}/{svc}" if svc else "", tuple(eps))


def controller_family(labels: Mapping[str, Any]) -> str:
    name, app = labels.get(LABEL_NAME), labels.get(LABEL_APP)
    if name == "ingress-nginx":
        return NGINX
    if name == "nginx":
        return APP_ROUTING
    if app in ("ingress-appgw", "ingress-azure"):
        return AGIC
    return ""


def parse_controller_pod(obj: Mapping[str, Any]) -> ControllerPod:
    ns, name, _, labels = _meta(obj)
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    ready, _, _, _ = _ready(status.get("conditions"))
    restarts = sum(_int(_d(c).get("restartCount")) for c in _l(status.get("containerStatuses")))
    return ControllerPod(
        namespace=ns,
        name=name,
        family=controller_family(labels),
        node=_s(spec.get("nodeName")),
        ready=bool(ready),
        phase=_s(status.get("phase")) or "Unknown",
        labels=tuple(sorted((k, _s(v)) for k, v in labels.items() if isinstance(k, str))),
        restarts=restarts,
    )


def _issuer(ref: Any) -> str:
    r = _d(ref)
    return f"{_s(r.get('kind')) or 'Issuer'}/{_s(r.get('name'))}" if r.get("name") else ""


def parse_certificate(obj: Mapping[str, Any]) -> CertificateInfo:
    ns, name, _, _ = _meta(obj)
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    ready, reason, message, since = _ready(status.get("conditions"))
    names = _strs(spec.get("dnsNames"))
    if not names and spec.get("commonName"):
        names = (_s(spec.get("commonName")),)
    return CertificateInfo(
        namespace=ns,
        name=name,
        secret=_s(spec.get("secretName")),
        dns_names=tuple(n.lower() for n in names),
        issuer=_issuer(spec.get("issuerRef")),
        ready=ready,
        reason=reason,
        message=message,
        not_after=parse_time(status.get("notAfter")),
        renewal=parse_time(status.get("renewalTime")),
        ready_since=since,
    )


def parse_certificate_request(obj: Mapping[str, Any]) -> CertificateRequestInfo:
    ns, name, ann, _ = _meta(obj)
    status = _d(obj.get("status"))
    ready, reason, _, _ = _ready(status.get("conditions"))
    approved, _, _, _ = _ready(status.get("conditions"), "Approved")
    return CertificateRequestInfo(ns, name, _s(ann.get(ANN_CERT_NAME)), ready, reason, approved)


def parse_order(obj: Mapping[str, Any]) -> OrderInfo:
    ns, name, ann, _ = _meta(obj)
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    return OrderInfo(
        ns,
        name,
        _s(status.get("state")),
        _s(status.get("reason"))[:400],
        tuple(n.lower() for n in _strs(spec.get("dnsNames"))),
        _s(ann.get(ANN_CERT_NAME)),
    )


def _owner(obj: Mapping[str, Any], kind: str) -> str:
    for o in _l(_d(obj.get("metadata")).get("ownerReferences")):
        if isinstance(o, dict) and o.get("kind") == kind:
            return _s(o.get("name"))
    return ""


def parse_challenge(obj: Mapping[str, Any]) -> ChallengeInfo:
    ns, name, _, _ = _meta(obj)
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    typ = _s(spec.get("type")).upper().replace("DNS01", "DNS-01").replace("HTTP01", "HTTP-01")
    return ChallengeInfo(
        namespace=ns,
        name=name,
        type=typ,
        dns_name=_s(spec.get("dnsName")).lower(),
        state=_s(status.get("state")),
        reason=_s(status.get("reason"))[:400],
        presented=status.get("presented") is True,
        processing=status.get("processing") is True,
        created=parse_time(_d(obj.get("metadata")).get("creationTimestamp")),
        order=_owner(obj, "Order"),
    )


def parse_gateway(obj: Mapping[str, Any]) -> GatewayInfo:
    ns, name, _, _ = _meta(obj)
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    listeners = tuple(
        (_s(x.get("name")), _s(x.get("hostname")).lower(), _int(x.get("port")), _s(x.get("protocol")))
        for x in _l(spec.get("listeners"))
        if isinstance(x, dict)
    )
    addresses = tuple(_s(a.get("value")) for a in _l(status.get("addresses")) if isinstance(a, dict) and a.get("value"))
    programmed, _, _, _ = _ready(status.get("conditions"), "Programmed")
    return GatewayInfo(ns, name, _s(spec.get("gatewayClassName")), addresses, listeners, programmed)


def parse_http_route(obj: Mapping[str, Any]) -> HTTPRouteInfo:
    ns, name, _, _ = _meta(obj)
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    parents = tuple(
        f"{_s(p.get('namespace')) or ns}/{_s(p.get('name'))}" for p in _l(spec.get("parentRefs")) if isinstance(p, dict)
    )
    backends: list[Backend] = []
    for r in _l(spec.get("rules")):
        for b in _l(_d(r).get("backendRefs")):
            if isinstance(b, dict) and b.get("name") and _s(b.get("kind") or "Service") == "Service":
                backends.append(Backend(f"{_s(b.get('namespace')) or ns}/{_s(b.get('name'))}", _s(b.get("port"))))
    accepted: bool | None = None
    for p in _l(status.get("parents")):
        a, _, _, _ = _ready(_d(p).get("conditions"), "Accepted")
        if a is not None:
            accepted = a if accepted is None else accepted and a
    return HTTPRouteInfo(
        ns, name, tuple(h.lower() for h in _strs(spec.get("hostnames"))), parents, tuple(backends), accepted
    )


__all__ = [
    "APP_ROUTING",
    "AGIC_POD_SELECTOR",
    "NGINX_POD_SELECTOR",
    "controller_family",
    "is_load_balancer",
    "parse_certificate",
    "parse_certificate_request",
    "parse_challenge",
    "parse_controller_pod",
    "parse_endpoint_slice",
    "parse_gateway",
    "parse_http_route",
    "parse_ingress",
    "parse_ingress_class",
    "parse_lb_service",
    "parse_order",
]
