"""The scenario's ``ingress:`` section: the ingress path the lab's API server serves.

Plain data, validated, no sockets (docs/scenarios.md)::

    ingress:
      crds: [cert-manager]              # CRDs installed: cert-manager, gateway-api (absent otherwise)
      controllers:
        - class: nginx                  # the IngressClass
          kind: ingress-nginx           # ingress-nginx | app-routing | agic
          ip: 20.31.150.10              # the controller's LoadBalancer IP, or pending
          replicas: 2
          annotations: {service.beta.kubernetes.io/azure-load-balancer-health-probe-request-path: /healthz}
      hosts:
        - host: shop.contoso.com
          class: nginx
          namespace: shop
          dns: lb                       # lb (the controller's IP) | nxdomain | an IPv4 address
          certificate: {ready: true, notAfter: 60d}
          challenge: {state: pending, age: 30m}
      services:                         # more LoadBalancer services (section 2 of the pane)
        - {name: api, namespace: default, ip: 10.224.5.10, internal: true, externalTrafficPolicy: Local}
      generate: {count: 1000, class: nginx, domain: bench.contoso.com}
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Annotated, Any

from .schemabase import UNSET, Doc, M, ScenarioError, UnsetType, parse_duration, show

FAMILIES = ("ingress-nginx", "app-routing", "agic")
ENDPOINTS = ("tls", "refused", "hang", "plaintext", "garbage")  # a controller's 443 (probes/lab/tlshosts.py)
SERVED = ("valid", "expiring", "expired", "wrong-host", "self-signed", "fake")  # fake: the controller's default
CRDS = ("cert-manager", "gateway-api")
Str = Annotated[str | int | float, M("a string")]
StrMap = Annotated[dict[str, Annotated[str | int | float | bool, M("a string")]], M("a mapping of strings")]
Dur = Annotated[str | int | float, M("a duration like 30s, 5m, 2h or 3d; a leading - for the past")]


@dataclass(frozen=True, slots=True)
class ControllerSpec:
    class_name: str
    family: str
    ip: str  # "" = pending
    replicas: int = 2
    ready: int = 2
    default: bool = False
    internal: bool = False
    annotations: dict[str, str] = field(default_factory=dict)
    app_protocol: bool = True
    external_traffic_policy: str = "Cluster"
    https: str = "tls"  # what its load balancer's 443 does from outside: tls | refused | hang | plaintext | garbage


UP_TO_DATE = "Certificate is up to date and has not expired"


@dataclass(frozen=True, slots=True)
class CertSpec:
    ready: bool = True
    reason: str = "Ready"
    message: str = UP_TO_DATE
    not_after: float = 60 * 86400.0  # seconds from now (negative: expired)


@dataclass(frozen=True, slots=True)
class ChallengeSpec:
    type: str = "DNS-01"
    state: str = "pending"
    age: float = 1800.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class HostSpec:
    host: str
    class_name: str
    namespace: str
    ingress: str
    service: str
    endpoints: int = 2
    ready: int = 2
    dns: str = "lb"  # lb | nxdomain | an IPv4 address
    tls: bool = True
    issuer: str = "letsencrypt-prod"
    certificate: CertSpec | None = CertSpec()
    challenge: ChallengeSpec | None = None
    served: str = ""  # the certificate its controller serves ("" = what the Certificate says)


@dataclass(frozen=True, slots=True)
class LbServiceSpec:
    namespace: str
    name: str
    ip: str  # "" = pending
    internal: bool = False
    annotations: dict[str, str] = field(default_factory=dict)
    external_traffic_policy: str = "Cluster"
    ports: tuple[tuple[int, str], ...] = ((443, ""),)  # (port, appProtocol)
    endpoints: int = 2
    ready: int = 2
    source_ranges: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    namespace: str
    name: str
    class_name: str
    ip: str
    hosts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IngressLabSpec:
    crds: frozenset[str] = frozenset()
    controllers: tuple[ControllerSpec, ...] = ()
    hosts: tuple[HostSpec, ...] = ()
    services: tuple[LbServiceSpec, ...] = ()
    gateways: tuple[GatewaySpec, ...] = ()

    def controller(self, class_name: str) -> ControllerSpec | None:
        return next((c for c in self.controllers if c.class_name == class_name), None)


# --- the format ----------------------------------------------------------------------------


class ControllerDoc(Doc, rename="camel", kw_only=True):
    class_: Str | UnsetType = UNSET
    kind: Annotated[str, M("one of " + ", ".join(FAMILIES), extra_json_schema={"enum": list(FAMILIES)})] = (
        "ingress-nginx"
    )
    ip: Annotated[str, M("an IPv4 address or 'pending'")] = "pending"
    replicas: Annotated[int, M("a non-negative integer", ge=0, le=50)] = 2
    ready: Annotated[int, M("a non-negative integer", ge=0, le=50)] | UnsetType = UNSET
    default: Annotated[bool, M("true or false")] = False
    internal: Annotated[bool, M("true or false")] = False
    annotations: StrMap = {}
    app_protocol: Annotated[
        bool, M("true or false", description="the ports' appProtocol http/https (the Helm chart's)")
    ] = True
    external_traffic_policy: Annotated[str, M("Cluster or Local", extra_json_schema={"enum": ["Cluster", "Local"]})] = (
        "Cluster"
    )
    https: Annotated[
        str,
        M(
            "one of " + ", ".join(ENDPOINTS),
            extra_json_schema={"enum": list(ENDPOINTS)},
            description="what the load balancer's port 443 does for the HTTPS probe",
        ),
    ] = "tls"


class CertDoc(Doc, rename="camel", kw_only=True):
    ready: Annotated[bool, M("true or false")] = True
    reason: Str | UnsetType = UNSET
    message: Str | UnsetType = UNSET
    not_after: Dur = "60d"


class ChallengeDoc(Doc, kw_only=True):
    type: Annotated[str, M("DNS-01 or HTTP-01", extra_json_schema={"enum": ["DNS-01", "HTTP-01"]})] = "DNS-01"
    state: Annotated[
        str, M("pending, invalid or errored", extra_json_schema={"enum": ["pending", "invalid", "errored"]})
    ] = "pending"
    age: Dur = "30m"
    reason: Str | UnsetType = UNSET


class HostDoc(Doc, rename="camel", kw_only=True):
    host: Str
    class_: Str | UnsetType = UNSET
    namespace: Str = "default"
    ingress: Str | UnsetType = UNSET
    service: Str | UnsetType = UNSET
    endpoints: Annotated[int, M("a non-negative integer", ge=0, le=100)] = 2
    ready: Annotated[int, M("a non-negative integer", ge=0, le=100)] | UnsetType = UNSET
    dns: Annotated[str, M("lb, nxdomain or an IPv4 address")] = "lb"
    tls: Annotated[bool, M("true or false")] = True
    issuer: Str = "letsencrypt-prod"
    certificate: CertDoc | UnsetType = UNSET
    challenge: ChallengeDoc | UnsetType = UNSET
    served: (
        Annotated[
            str,
            M(
                "one of " + ", ".join(SERVED),
                extra_json_schema={"enum": list(SERVED)},
                description="the certificate the controller serves (default: what the Certificate says)",
            ),
        ]
        | UnsetType
    ) = UNSET


class LbPortDoc(Doc, rename="camel", kw_only=True):
    port: Annotated[int, M("a port number", ge=1, le=65535)]
    app_protocol: Str = ""


class LbServiceDoc(Doc, rename="camel", kw_only=True):
    name: Str
    namespace: Str = "default"
    ip: Annotated[str, M("an IPv4 address or 'pending'")] = "pending"
    internal: Annotated[bool, M("true or false")] = False
    annotations: StrMap = {}
    external_traffic_policy: Annotated[str, M("Cluster or Local", extra_json_schema={"enum": ["Cluster", "Local"]})] = (
        "Cluster"
    )
    ports: Annotated[list[LbPortDoc], M("a list")] = []
    endpoints: Annotated[int, M("a non-negative integer", ge=0, le=100)] = 2
    ready: Annotated[int, M("a non-negative integer", ge=0, le=100)] | UnsetType = UNSET
    load_balancer_source_ranges: Annotated[list[str], M("a list of CIDRs")] = []


class GatewayDoc(Doc, rename="camel", kw_only=True):
    name: Str
    namespace: Str = "default"
    class_: Str = "azure-alb-external"
    ip: Annotated[str, M("an IPv4 address")]
    hosts: Annotated[list[Str], M("a list of host names")] = []


class GenerateDoc(Doc, kw_only=True):
    count: Annotated[int, M("a non-negative integer", ge=0, le=20000)]
    domain: Str = "example.com"
    services: Annotated[int, M("a non-negative integer", ge=0, le=2000)] = 0  # extra LoadBalancer services


class IngressDoc(Doc, kw_only=True):
    crds: Annotated[list[str], M("a list of cert-manager, gateway-api")] = []
    controllers: Annotated[list[ControllerDoc], M("a list")] = []
    hosts: Annotated[list[HostDoc], M("a list")] = []
    services: Annotated[list[LbServiceDoc], M("a list")] = []
    gateways: Annotated[list[GatewayDoc], M("a list")] = []
    generate: GenerateDoc | UnsetType = UNSET


def _err(file: str, path: str, msg: str) -> ScenarioError:
    return ScenarioError(f"{file}: {path}: {msg}")


def _ip(file: str, v: Any, path: str, allow: tuple[str, ...] = ("pending",)) -> str:
    s = str(v)
    if s in allow:
        return "" if s == "pending" else s
    try:
        return str(ipaddress.IPv4Address(s))
    except ValueError:
        raise _err(
            file, path, f"expected an IPv4 address{' or ' + ', '.join(allow) if allow else ''}, got {show(v)}"
        ) from None


def _one_of(file: str, path: str, v: str, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise _err(file, path, f"expected one of {', '.join(allowed)}, got {show(v)}")
    return v


def _dur(file: str, v: Any, path: str) -> float:
    s = str(v).strip()
    neg = s.startswith("-")
    try:
        d = parse_duration(s[1:] if neg else v)
    except ValueError:
        raise _err(file, path, f"expected a duration like 30s, 5m, 2h or 3d, got {show(v)}") from None
    return -d if neg else d


def build_ingress_section(doc: IngressDoc, file: str) -> IngressLabSpec:
    """The ``ingress:`` section of ``file``; errors name the key."""
    crds = set()
    for i, name in enumerate(doc.crds):
        if name not in CRDS:
            raise _err(file, f"ingress.crds[{i}]", f"expected one of {', '.join(CRDS)}, got {show(name)}")
        crds.add(name)
    controllers = []
    for i, c in enumerate(doc.controllers):
        path = f"ingress.controllers[{i}]"
        if c.class_ is UNSET:
            raise _err(file, f"{path}.class", "required")
        if c.kind not in FAMILIES:
            raise _err(file, f"{path}.kind", f"expected one of {', '.join(FAMILIES)}, got {show(c.kind)}")
        controllers.append(
            ControllerSpec(
                class_name=str(c.class_),
                family=c.kind,
                ip=_ip(file, c.ip, f"{path}.ip"),
                replicas=c.replicas,
                ready=c.replicas if c.ready is UNSET else min(c.ready, c.replicas),
                default=c.default,
                internal=c.internal,
                annotations={
                    str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in c.annotations.items()
                },
                app_protocol=c.app_protocol,
                external_traffic_policy=c.external_traffic_policy,
                https=_one_of(file, f"{path}.https", c.https, ENDPOINTS),
            )
        )
    names = {c.class_name for c in controllers}
    if len(names) != len(controllers):
        raise _err(file, "ingress.controllers", "duplicate class")
    first = controllers[0].class_name if controllers else ""
    hosts: list[HostSpec] = []
    for i, h in enumerate(doc.hosts):
        path = f"ingress.hosts[{i}]"
        host = str(h.host).lower()
        cls = first if h.class_ is UNSET else str(h.class_)
        if cls not in names:
            raise _err(file, f"{path}.class", f"no controller with class {show(cls)}")
        dns = h.dns if h.dns in ("lb", "nxdomain") else _ip(file, h.dns, f"{path}.dns", ("lb", "nxdomain"))
        label = host.split(".", 1)[0]
        cert = None
        if h.tls:
            cd = h.certificate if h.certificate is not UNSET else CertDoc()
            cert = CertSpec(
                ready=cd.ready,
                reason=str(cd.reason) if cd.reason is not UNSET else ("Ready" if cd.ready else "Failed"),
                message=str(cd.message)
                if cd.message is not UNSET
                else (UP_TO_DATE if cd.ready else "The certificate request has failed to complete and will be retried"),
                not_after=_dur(file, cd.not_after, f"{path}.certificate.notAfter"),
            )
        ch = None
        if h.challenge is not UNSET:
            cg = h.challenge
            ch = ChallengeSpec(
                cg.type,
                cg.state,
                _dur(file, cg.age, f"{path}.challenge.age"),
                str(cg.reason)
                if cg.reason is not UNSET
                else f'Waiting for {cg.type} challenge propagation: DNS record for "{host}" not yet propagated',
            )
        hosts.append(
            HostSpec(
                host=host,
                class_name=cls,
                namespace=str(h.namespace),
                ingress=str(h.ingress) if h.ingress is not UNSET else label,
                service=str(h.service) if h.service is not UNSET else label,
                endpoints=h.endpoints,
                ready=h.endpoints if h.ready is UNSET else min(h.ready, h.endpoints),
                dns=dns,
                tls=h.tls,
                issuer=str(h.issuer),
                certificate=cert,
                challenge=ch,
                served="" if h.served is UNSET else _one_of(file, f"{path}.served", h.served, SERVED),
            )
        )
    services = []
    for i, s in enumerate(doc.services):
        path = f"ingress.services[{i}]"
        ports = tuple((p.port, str(p.app_protocol)) for p in s.ports) or ((443, ""),)
        services.append(
            LbServiceSpec(
                namespace=str(s.namespace),
                name=str(s.name),
                ip=_ip(file, s.ip, f"{path}.ip"),
                internal=s.internal,
                annotations={
                    str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in s.annotations.items()
                },
                external_traffic_policy=s.external_traffic_policy,
                ports=ports,
                endpoints=s.endpoints,
                ready=s.endpoints if s.ready is UNSET else min(s.ready, s.endpoints),
                source_ranges=tuple(str(r) for r in s.load_balancer_source_ranges),
            )
        )
    if doc.generate is not UNSET:
        g = doc.generate
        if not controllers:
            raise _err(file, "ingress.generate", "needs a controller")
        for k in range(g.count):
            hosts.append(
                HostSpec(
                    host=f"h{k:05d}.{g.domain}",
                    class_name=first,
                    namespace=f"app{k % 50:02d}",
                    ingress=f"h{k:05d}",
                    service=f"h{k:05d}",
                    certificate=CertSpec() if "cert-manager" in crds else None,
                    tls="cert-manager" in crds,
                )
            )
        for k in range(g.services):
            services.append(
                LbServiceSpec(
                    namespace=f"svc{k % 20:02d}",
                    name=f"lb{k:04d}",
                    ip=f"20.40.{k // 250}.{k % 250 + 1}",
                    annotations={"service.beta.kubernetes.io/azure-dns-label-name": f"lb{k:04d}"},
                )
            )
    gateways = []
    for i, gd in enumerate(doc.gateways):
        gateways.append(
            GatewaySpec(
                str(gd.namespace),
                str(gd.name),
                str(gd.class_),
                _ip(file, gd.ip, f"ingress.gateways[{i}].ip", ()),
                tuple(str(x).lower() for x in gd.hosts),
            )
        )
    if gateways and "gateway-api" not in crds:
        raise _err(file, "ingress.gateways", "needs crds: [gateway-api]")
    seen: set[tuple[str, str]] = set()
    for hs in hosts:
        if (hs.namespace, hs.ingress) in seen:
            raise _err(file, "ingress.hosts", f"duplicate ingress {hs.namespace}/{hs.ingress}")
        seen.add((hs.namespace, hs.ingress))
    return IngressLabSpec(frozenset(crds), tuple(controllers), tuple(hosts), tuple(services), tuple(gateways))
