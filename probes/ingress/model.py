"""Immutable records of the ingress path, as parsed from the API server's JSON.

Frozen msgspec Structs of plain values (tuples, not lists): the store compares a watch
event's record with the one it holds and skips an unchanged one. Structs, not frozen
dataclasses: a Struct class is made in microseconds at import, a frozen dataclass in about
a millisecond, and this path loads before the first request (probes.kube.model stays
dataclasses: the agent's zipapp, which has no msgspec, builds a Topology).
"""

from __future__ import annotations

import msgspec

# the collections' names in probes.engine.store
INGRESS_CLASSES = "ingress_classes"
INGRESSES = "ingresses"
LB_SERVICES = "lb_services"
ENDPOINT_SLICES = "endpoint_slices"
CONTROLLER_PODS = "controller_pods"
AGIC_PODS = "agic_pods"
CERTIFICATES = "certificates"
CERT_REQUESTS = "certificate_requests"
ORDERS = "orders"
CHALLENGES = "challenges"
GATEWAYS = "gateways"
HTTP_ROUTES = "http_routes"
ABSENT = "ingress_absent"  # kind name -> why it is not served (a CRD not installed)
COLLECTIONS = (
    INGRESS_CLASSES,
    INGRESSES,
    LB_SERVICES,
    ENDPOINT_SLICES,
    CONTROLLER_PODS,
    AGIC_PODS,
    CERTIFICATES,
    CERT_REQUESTS,
    ORDERS,
    CHALLENGES,
    GATEWAYS,
    HTTP_ROUTES,
    ABSENT,
)

# controller families, as the pane names them
NGINX = "ingress-nginx"
APP_ROUTING = "app-routing"
AGIC = "agic"
GATEWAY = "gateway"


class IngressClassInfo(msgspec.Struct, frozen=True):
    name: str
    controller: str  # spec.controller: "k8s.io/ingress-nginx", "webapprouting.kubernetes.azure.com/nginx", …
    default: bool = False  # ingressclass.kubernetes.io/is-default-class


class Backend(msgspec.Struct, frozen=True):
    service: str  # "ns/name"
    port: str  # number or name


class IngressRule(msgspec.Struct, frozen=True):
    host: str  # "" = every host
    path: str
    backend: Backend | None


class IngressInfo(msgspec.Struct, frozen=True):
    namespace: str
    name: str
    class_name: str  # spec.ingressClassName, else the kubernetes.io/ingress.class annotation, else ""
    rules: tuple[IngressRule, ...]
    tls: tuple[tuple[str, tuple[str, ...]], ...]  # (secretName, hosts)
    lb: tuple[str, ...]  # status.loadBalancer.ingress: what the controller published
    issuer: str = ""  # cert-manager.io/cluster-issuer or /issuer annotation
    default_backend: Backend | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def hosts(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for r in self.rules:
            if r.host:
                seen.setdefault(r.host)
        for _, hosts in self.tls:
            for h in hosts:
                seen.setdefault(h)
        return tuple(seen)


class PortInfo(msgspec.Struct, frozen=True):
    port: int
    protocol: str
    node_port: int = 0
    app_protocol: str = ""
    name: str = ""
    target: str = ""


class LbService(msgspec.Struct, frozen=True):
    """A Service of type LoadBalancer, with what the Azure cloud provider reads."""

    namespace: str
    name: str
    cluster_ip: str
    external: tuple[str, ...]  # status.loadBalancer.ingress ips / hostnames
    ports: tuple[PortInfo, ...]
    selector: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]  # every annotation, sorted (the detail shows the Azure ones)
    external_traffic_policy: str = "Cluster"
    health_check_node_port: int = 0
    source_ranges: tuple[str, ...] = ()  # spec.loadBalancerSourceRanges
    load_balancer_ip: str = ""  # spec.loadBalancerIP (deprecated, still read by AKS)
    lb_class: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def pending(self) -> bool:
        return not self.external

    def annotation(self, name: str) -> str:
        for k, v in self.annotations:
            if k == name:
                return v
        return ""


class EndpointSliceInfo(msgspec.Struct, frozen=True):
    namespace: str
    name: str
    service: str  # "ns/name" from kubernetes.io/service-name
    endpoints: tuple[tuple[bool, str], ...]  # (ready, nodeName)


class ControllerPod(msgspec.Struct, frozen=True):
    namespace: str
    name: str
    family: str  # NGINX, APP_ROUTING, AGIC
    node: str
    ready: bool
    phase: str
    labels: tuple[tuple[str, str], ...] = ()
    restarts: int = 0

    def matches(self, selector: tuple[tuple[str, str], ...]) -> bool:
        have = dict(self.labels)
        return bool(selector) and all(have.get(k) == v for k, v in selector)


class CertificateInfo(msgspec.Struct, frozen=True):
    namespace: str
    name: str
    secret: str
    dns_names: tuple[str, ...]
    issuer: str  # "ClusterIssuer/letsencrypt-prod"
    ready: bool | None  # None: no Ready condition yet
    reason: str
    message: str
    not_after: float  # epoch seconds, 0.0 unknown
    renewal: float = 0.0
    ready_since: float = 0.0  # the Ready condition's lastTransitionTime


class CertificateRequestInfo(msgspec.Struct, frozen=True):
    namespace: str
    name: str
    certificate: str  # cert-manager.io/certificate-name
    ready: bool | None
    reason: str
    approved: bool | None = None


class OrderInfo(msgspec.Struct, frozen=True):
    namespace: str
    name: str
    state: str  # pending, ready, valid, invalid, errored, …
    reason: str
    dns_names: tuple[str, ...]
    certificate: str = ""


class ChallengeInfo(msgspec.Struct, frozen=True):
    namespace: str
    name: str
    type: str  # DNS-01 / HTTP-01
    dns_name: str
    state: str  # "" (new), pending, valid, invalid, errored
    reason: str
    presented: bool
    processing: bool
    created: float  # epoch seconds
    order: str = ""  # the owning Order's name


class GatewayInfo(msgspec.Struct, frozen=True):
    namespace: str
    name: str
    class_name: str
    addresses: tuple[str, ...]
    listeners: tuple[tuple[str, str, int, str], ...]  # (name, hostname, port, protocol)
    programmed: bool | None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class HTTPRouteInfo(msgspec.Struct, frozen=True):
    namespace: str
    name: str
    hostnames: tuple[str, ...]
    parents: tuple[str, ...]  # "ns/gateway"
    backends: tuple[Backend, ...]
    accepted: bool | None


class IngressData(msgspec.Struct, frozen=True):
    """Every ingress-path record at one moment, sorted; `absent` names the kinds the API
    server does not serve (a CRD not installed), with why: a state, never an error."""

    classes: tuple[IngressClassInfo, ...] = ()
    ingresses: tuple[IngressInfo, ...] = ()
    services: tuple[LbService, ...] = ()
    slices: tuple[EndpointSliceInfo, ...] = ()
    pods: tuple[ControllerPod, ...] = ()
    certificates: tuple[CertificateInfo, ...] = ()
    requests: tuple[CertificateRequestInfo, ...] = ()
    orders: tuple[OrderInfo, ...] = ()
    challenges: tuple[ChallengeInfo, ...] = ()
    gateways: tuple[GatewayInfo, ...] = ()
    routes: tuple[HTTPRouteInfo, ...] = ()
    absent: tuple[tuple[str, str], ...] = ()  # (kind, why)
    synced: frozenset[str] = msgspec.field(default_factory=frozenset)  # collections listed at least once

    def is_absent(self, kind: str) -> bool:
        return any(k == kind for k, _ in self.absent)


class HostAnswer(msgspec.Struct, frozen=True):
    """What one resolver, asked from one vantage, answered for an ingress host."""

    vantage: str
    resolver: str  # the resolver's key ("kube-dns", …) and address
    host: str
    outcome: str  # "ok", "nxdomain", "nodata", "servfail", "timeout", "error"
    addresses: tuple[str, ...] = ()
    at: float = 0.0  # wall clock
    error: str = ""
