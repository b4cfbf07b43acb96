"""The ingress path joined into rows: one per host, grouped by ingress class and its
controller, and one per LoadBalancer service with what Azure makes of it. Pure: the pane,
the rules and `check` read the same rows.

A host's expected addresses are its controller's: the external IPs of the LoadBalancer
service whose selector matches the class's controller pods, else what the Ingress's
status says the controller published. What it resolves to comes from the host resolver
(`probes.ingress.resolve`), per vantage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from probes.ingress.azurelb import Effect, Probe, effects, probes
from probes.ingress.model import (
    AGIC,
    APP_ROUTING,
    GATEWAY,
    NGINX,
    CertificateInfo,
    ChallengeInfo,
    ControllerPod,
    HostAnswer,
    IngressData,
    LbService,
)

# IngressClass spec.controller -> controller family
CONTROLLERS = {
    "k8s.io/ingress-nginx": NGINX,
    "webapprouting.kubernetes.azure.com/nginx": APP_ROUTING,
    "azure/application-gateway": AGIC,
}
DNS_OK, DNS_ELSEWHERE, DNS_NXDOMAIN, DNS_FAILING, DNS_UNKNOWN, DNS_NO_LB = (
    "ok",
    "elsewhere",
    "nxdomain",
    "failing",
    "unknown",
    "no-lb",
)
NOT_FOUND = ("nxdomain", "nodata")
ANSWER_FAILED = ("servfail", "timeout", "error", "refused")


@dataclass(frozen=True, slots=True)
class TlsState:
    certificate: str  # "ns/name", "" when no Certificate covers the host
    secret: str
    issuer: str
    ready: bool | None
    reason: str
    message: str
    not_after: float
    challenge: ChallengeInfo | None = None  # a challenge for the host not yet valid


@dataclass(frozen=True, slots=True)
class HostRow:
    host: str
    class_name: str
    source: str  # "ingress ns/name" or "httproute ns/name"
    expected: tuple[str, ...]  # the controller's load balancer addresses
    answers: tuple[HostAnswer, ...]
    dns: str  # DNS_OK, DNS_ELSEWHERE, …
    tls: TlsState | None  # None: the host has no TLS entry
    backends: tuple[tuple[str, int, int], ...]  # ("ns/svc", ready, total)
    paths: tuple[str, ...] = ()

    @property
    def resolved(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for a in self.answers:
            for ip in a.addresses:
                seen.setdefault(ip)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class ClassGroup:
    class_name: str
    controller: str  # spec.controller ("" when the class object is missing)
    family: str
    service: str  # "ns/name" of the controller's LoadBalancer service, "" when none found
    lb_ips: tuple[str, ...]
    pods_ready: int
    pods_total: int
    hosts: tuple[HostRow, ...]


@dataclass(frozen=True, slots=True)
class LbRow:
    service: LbService
    effects: tuple[Effect, ...]
    probes: tuple[Probe, ...]
    events: tuple[str, ...]
    ready: int  # ready endpoints
    total: int
    ready_nodes: int  # distinct nodes with a ready endpoint
    nodes: int  # nodes in the cluster
    controller: str  # the controller family its selector picks, "" for an application
    sliced: bool  # an EndpointSlice was seen for it (else the counts mean "unknown")


@dataclass(frozen=True, slots=True)
class IngressView:
    groups: tuple[ClassGroup, ...] = ()
    lbs: tuple[LbRow, ...] = ()
    absent: tuple[tuple[str, str], ...] = ()
    hosts: int = 0
    data: IngressData = field(default_factory=IngressData)
    inputs: tuple[Any, ...] = field(default=(), compare=False)  # (nodes, region, events) it was built with

    def host_rows(self) -> Iterable[HostRow]:
        for g in self.groups:
            yield from g.hosts


def region_of(zones: Iterable[str]) -> str:
    """The Azure region from the nodes' zone labels ("westeurope-1" -> "westeurope")."""
    for z in zones:
        if z and "-" in z:
            head, _, tail = z.rpartition("-")
            if tail.isdigit():
                return head
        elif z and not z.isdigit():
            return z
    return ""


def _answer_state(expected: tuple[str, ...], answers: tuple[HostAnswer, ...]) -> str:
    if not expected:
        return DNS_NO_LB if answers else DNS_UNKNOWN
    if not answers:
        return DNS_UNKNOWN
    ips = set(expected)
    by_name = not any(_is_ip(e) for e in expected)  # a hostname frontend: not comparable to A records
    state = ""
    for a in answers:
        if a.outcome in NOT_FOUND:
            state = DNS_NXDOMAIN
        elif a.outcome == "ok" and not by_name and not ips & set(a.addresses) and state != DNS_NXDOMAIN:
            state = DNS_ELSEWHERE
    if state:
        return state
    if any(a.outcome == "ok" for a in answers):
        return DNS_OK
    return DNS_FAILING


def _is_ip(s: str) -> bool:
    parts = s.split(".")
    return (len(parts) == 4 and all(p.isdigit() for p in parts)) or ":" in s


def _matches(host: str, name: str) -> bool:
    if name.startswith("*."):
        return host.endswith(name[1:]) and host.count(".") == name.count(".")
    return host == name


_T = TypeVar("_T")
OBJECTS = ("classes", "ingresses", "slices", "pods", "certificates", "challenges", "gateways", "routes")
LB_OBJECTS = ("services", "slices", "pods")


def _same(a: IngressData, b: IngressData, fields: tuple[str, ...]) -> bool:
    return all(getattr(a, f) is getattr(b, f) for f in fields)


def _answered(r: HostRow, by_host: Mapping[str, list[HostAnswer]]) -> HostRow:
    got = tuple(sorted(by_host.get(r.host, ()), key=lambda a: a.vantage))
    if got == r.answers:
        return r
    return dataclasses.replace(r, answers=got, dns=_answer_state(r.expected, got))


def _reanswered(g: ClassGroup, by_host: Mapping[str, list[HostAnswer]]) -> ClassGroup:
    """The group with its hosts' new answers; the same group when no host's moved."""
    hosts = tuple(_answered(r, by_host) for r in g.hosts)
    return g if all(a is b for a, b in zip(hosts, g.hosts)) else dataclasses.replace(g, hosts=hosts)


def _kept(new: _T, old: _T | None) -> _T:
    """`old` when it equals `new` (the same rows stay the same objects), else `new`."""
    return old if old is not None and old == new else new


def build_view(
    data: IngressData,
    answers: Mapping[tuple[str, str], HostAnswer] | None = None,
    *,
    nodes: int = 0,
    region: str = "",
    events: Mapping[str, tuple[str, ...]] | None = None,
    prev: IngressView | None = None,
) -> IngressView:
    """Join `data` (and the host answers, keyed (vantage, host)) into the pane's rows.

    `prev`: the view built last; what did not change is taken from it (the store keeps an
    unchanged collection the same tuple): when only the answers moved, each host row
    only gets its answers again, and the LoadBalancer rows are the previous ones while
    their services, slices and pods are."""
    by_host: dict[str, list[HostAnswer]] = {}
    for a in (answers or {}).values():
        by_host.setdefault(a.host, []).append(a)
    inputs = (nodes, region, dict(events or {}))
    if prev is not None and prev.inputs == inputs and _same(data, prev.data, OBJECTS + LB_OBJECTS):
        groups = tuple(_reanswered(g, by_host) for g in prev.groups)
        return IngressView(groups, prev.lbs, data.absent, prev.hosts, data, inputs)
    # endpoints per service
    eps: dict[str, list[tuple[bool, str]]] = {}
    for s in data.slices:
        if s.service:
            eps.setdefault(s.service, []).extend(s.endpoints)

    def ep_counts(svc: str) -> tuple[int, int]:
        e = eps.get(svc, ())
        return sum(1 for r, _ in e if r), len(e)

    pods_by_family: dict[str, list[ControllerPod]] = {}
    for p in data.pods:
        pods_by_family.setdefault(p.family, []).append(p)
    # which LoadBalancer service fronts which controller family
    svc_family: dict[str, str] = {}
    family_svc: dict[str, LbService] = {}
    for lb in data.services:
        for fam, pods in pods_by_family.items():
            if any(p.matches(lb.selector) for p in pods):
                svc_family[lb.key] = fam
                family_svc.setdefault(fam, lb)
                break
    certs_by_secret: dict[tuple[str, str], CertificateInfo] = {(c.namespace, c.secret): c for c in data.certificates}
    certs_by_ns: dict[str, list[CertificateInfo]] = {}
    for c in data.certificates:
        certs_by_ns.setdefault(c.namespace, []).append(c)
    challenges: dict[tuple[str, str], ChallengeInfo] = {}
    for ch in data.challenges:
        if ch.state != "valid":
            challenges.setdefault((ch.namespace, ch.dns_name), ch)
    classes = {c.name: c for c in data.classes}
    default_class = next((c.name for c in data.classes if c.default), "")

    def tls_for(ns: str, host: str, secret: str) -> TlsState:
        cert = certs_by_secret.get((ns, secret)) if secret else None
        if cert is None:
            cert = next((c for c in certs_by_ns.get(ns, ()) if any(_matches(host, n) for n in c.dns_names)), None)
        ch = challenges.get((ns, host)) or challenges.get((ns, "*." + host.partition(".")[2]))
        if cert is None:
            return TlsState("", secret, "", None, "", "", 0.0, ch)
        return TlsState(
            f"{cert.namespace}/{cert.name}",
            cert.secret,
            cert.issuer,
            cert.ready,
            cert.reason,
            cert.message,
            cert.not_after,
            ch,
        )

    rows_by_class: dict[str, list[HostRow]] = {}
    ingress_lb: dict[str, list[str]] = {}
    for ing in data.ingresses:
        cls = ing.class_name or default_class
        fam = CONTROLLERS.get(classes[cls].controller, "") if cls in classes else ""
        svc: LbService | None = family_svc.get(fam)
        expected = svc.external if svc is not None and svc.external else ing.lb
        for ip in ing.lb:
            if ip not in ingress_lb.setdefault(cls, []):
                ingress_lb[cls].append(ip)
        tls_hosts = {h: secret for secret, hosts in ing.tls for h in hosts}
        for host in ing.hosts:
            rules = [r for r in ing.rules if r.host == host]
            backends = tuple(
                dict.fromkeys((r.backend.service, *ep_counts(r.backend.service)) for r in rules if r.backend)
            )
            got = tuple(sorted(by_host.get(host, ()), key=lambda a: a.vantage))
            rows_by_class.setdefault(cls, []).append(
                HostRow(
                    host=host,
                    class_name=cls,
                    source=f"ingress {ing.key}",
                    expected=expected,
                    answers=got,
                    dns=_answer_state(expected, got),
                    tls=tls_for(ing.namespace, host, tls_hosts[host]) if host in tls_hosts else None,
                    backends=backends,
                    paths=tuple(r.path for r in rules if r.path),
                )
            )
    gateways = {g.key: g for g in data.gateways}
    for rt in data.routes:
        gws = [gateways[p] for p in rt.parents if p in gateways]
        expected = tuple(dict.fromkeys(a for g in gws for a in g.addresses))
        cls = "gateway:" + (gws[0].class_name if gws else "?")
        https = {h for g in gws for (_, h, _, proto) in g.listeners if proto.upper() in ("HTTPS", "TLS") and h}
        for host in rt.hostnames:
            got = tuple(sorted(by_host.get(host, ()), key=lambda a: a.vantage))
            backends = tuple(dict.fromkeys((b.service, *ep_counts(b.service)) for b in rt.backends))
            wants_tls = any(_matches(host, h) for h in https)
            rows_by_class.setdefault(cls, []).append(
                HostRow(
                    host=host,
                    class_name=cls,
                    source=f"httproute {rt.namespace}/{rt.name}",
                    expected=expected,
                    answers=got,
                    dns=_answer_state(expected, got),
                    tls=tls_for(rt.namespace, host, "") if wants_tls else None,
                    backends=backends,
                )
            )
    # what did not change stays the previous view's object (the pane redraws by identity):
    # a row, a group, a LoadBalancer row equal to the one built last is that one
    old_rows = {(r.class_name, r.host, r.source): r for r in prev.host_rows()} if prev is not None else {}
    old_groups = {g.class_name: g for g in prev.groups} if prev is not None else {}
    old_lbs = {lb.service.key: lb for lb in prev.lbs} if prev is not None else {}
    built: list[ClassGroup] = []
    for cls in sorted(rows_by_class, key=lambda c: (c.startswith("gateway:"), c)):
        if cls.startswith("gateway:"):
            fam, controller = GATEWAY, cls.partition(":")[2]
            svc = None
        else:
            controller = classes[cls].controller if cls in classes else ""
            fam = CONTROLLERS.get(controller, "")
            svc = family_svc.get(fam)
        pods = pods_by_family.get(fam, []) if fam != GATEWAY else []
        hosts = tuple(
            _kept(r, old_rows.get((r.class_name, r.host, r.source)))
            for r in sorted(rows_by_class[cls], key=lambda r: (r.host, r.source))
        )
        lb_ips = svc.external if svc is not None and svc.external else tuple(ingress_lb.get(cls, ()))
        if fam == GATEWAY:
            lb_ips = tuple(dict.fromkeys(ip for r in hosts for ip in r.expected))
        group = ClassGroup(
            class_name=cls,
            controller=controller,
            family=fam,
            service=svc.key if svc is not None else "",
            lb_ips=lb_ips,
            pods_ready=sum(1 for p in pods if p.ready),
            pods_total=len(pods),
            hosts=hosts,
        )
        built.append(_kept(group, old_groups.get(cls)))
    lbs: list[LbRow] = []
    if prev is not None and prev.inputs == inputs and _same(data, prev.data, LB_OBJECTS):
        lbs = list(prev.lbs)
    for lb in data.services if not lbs else ():
        e = eps.get(lb.key)
        ready_nodes = len({n for r, n in e or () if r and n})
        row = LbRow(
            service=lb,
            effects=effects(lb, region),
            probes=probes(lb),
            events=tuple((events or {}).get(lb.key, ())),
            ready=sum(1 for r, _ in e or () if r),
            total=len(e or ()),
            ready_nodes=ready_nodes,
            nodes=nodes,
            controller=svc_family.get(lb.key, ""),
            sliced=e is not None,
        )
        lbs.append(_kept(row, old_lbs.get(lb.key)))
    return IngressView(
        groups=tuple(built),
        lbs=tuple(lbs),
        absent=data.absent,
        hosts=sum(len(g.hosts) for g in built),
        data=data,
        inputs=inputs,
    )
