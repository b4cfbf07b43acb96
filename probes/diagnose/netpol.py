"""Do the network policies let a namespace's pods reach DNS? Pure: no I/O.

For each namespace, for each distinct label set of its pods (the representative pod set:
pods with the same labels are selected by the same policies), decide whether egress to
port 53 over UDP and over TCP is allowed to each DNS target:

- the kube-dns pods (CoreDNS, kube-system, k8s-app=kube-dns): matched by podSelector /
  namespaceSelector, or an ipBlock covering the pod IP;
- the kube-dns ClusterIP. Assumption: NetworkPolicy is enforced *after* the service
  translation — Azure NPM and Calico filter in iptables after kube-proxy's DNAT, Cilium
  translates at the socket before its policy — so a packet to the ClusterIP is judged by
  the CoreDNS pod it was sent to, and the ClusterIP as such needs no rule. Except with the
  upstream NodeLocal DNS add-on: it binds the ClusterIP on every node as well and
  NOTRACKs it, so there is no DNAT and the policy sees the ClusterIP itself (an ipBlock
  must cover it; the add-on's README says so);
- the node-level cache: NodeLocal DNS at 169.254.20.10, AKS LocalDNS at 169.254.10.11 (the
  address pods use). Only an ipBlock can match them: they are no pod's IP. With a node
  cache the pods talk to it, so a policy that allows only the kube-dns pods blocks DNS —
  the classic. Not modelled: Cilium does not match an ipBlock against addresses it
  manages (pod IPs, the host), so there an ipBlock of the CoreDNS pod IPs or of a
  node-local address may allow less than it says here (AKS runs Cilium without NodeLocal).

Semantics. Kubernetes: a pod no Egress policy selects may send anything; otherwise what
the union of the selecting policies' egress rules allows (empty `to` = everywhere, empty
`ports` = every port; protocol defaults to TCP; named ports resolve against the
destination pod's container ports, so they never match an address that is no pod; endPort
ranges). Calico (when its CRDs exist): the default tier's policies in order (`order`, then
name; none = last; Kubernetes policies take order 1000 there, as Calico converts them), the
first matching rule decides — Allow, Deny, Pass (to the profiles: allowed), Log (go on);
a policy that selects the pod and matches no rule denies at the end of the tier.
GlobalNetworkPolicies apply in every namespace their namespaceSelector selects. Selectors
outside the supported subset, other tiers, serviceAccount matches and rules with a source
make the verdict "cannot evaluate" (None), never a guess.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from probes.kube.calicoselector import Unsupported, compile_selector
from probes.kube.policymodel import (
    CalicoEntity,
    CalicoPolicy,
    CalicoRule,
    KubePolicy,
    Labels,
    Peer,
    PodLabels,
    PolicyInputs,
    Port,
    Selector,
)

NODELOCAL_IP = "169.254.20.10"
LOCALDNS_IP = "169.254.10.11"  # the address AKS LocalDNS gives pods (ClusterFirst)
DNS_PORT = 53
PROTOCOLS = ("UDP", "TCP")
KUBE_ORDER = 1000.0  # where Calico puts a Kubernetes NetworkPolicy in the default tier
_PROTO_NUMBERS = {"6": "TCP", "17": "UDP", "132": "SCTP"}


class CannotEvaluate(Exception):
    """Something the evaluation does not model; its message says what."""


@dataclass(frozen=True, slots=True)
class Dest:
    """Where a DNS packet goes: a pod (selectors and its IP can match) or an address."""

    ip: str
    pod: PodLabels | None = None


@dataclass(frozen=True, slots=True)
class DnsTarget:
    key: str  # kube-dns-pods | cluster-ip | nodelocal | localdns
    label: str  # words for a finding
    dests: tuple[Dest, ...]
    needed: bool  # the pods' DNS goes there now (else: only when the node cache is down)


@dataclass(frozen=True, slots=True)
class PolicyVerdict:
    allowed: bool | None  # None: cannot evaluate
    policies: tuple[str, ...] = ()  # who decided: "networkpolicy/<ns>/<name>", "globalnetworkpolicy/<name>"…
    why: str = ""
    rule_index: int | None = None  # Calico: the deny rule's position in its policy


@dataclass(frozen=True, slots=True)
class Blocked:
    """DNS blocked for some of a namespace's pods, by one set of policies."""

    namespace: str
    policies: tuple[str, ...]
    targets: tuple[str, ...]  # DnsTarget.key, needed ones first
    protocols: tuple[str, ...]
    label_sets: int  # how many of the namespace's label sets
    of_label_sets: int
    example: Labels  # one blocked label set
    why: str
    needed: bool  # a target the pods use now is blocked
    rule_index: int | None = None


@dataclass(frozen=True, slots=True)
class NamespaceResult:
    namespace: str
    label_sets: int
    blocked: tuple[Blocked, ...] = ()
    unknown: tuple[str, ...] = ()  # why some verdicts could not be made


# --- matching ------------------------------------------------------------------------------
def selector_matches(sel: Selector, labels: Mapping[str, str]) -> bool:
    for k, v in sel.match_labels:
        if labels.get(k) != v:
            return False
    for key, op, values in sel.expressions:
        have = labels.get(key)
        if op == "In" and (have is None or have not in values):
            return False
        if op == "NotIn" and have is not None and have in values:
            return False
        if op == "Exists" and have is None:
            return False
        if op == "DoesNotExist" and have is not None:
            return False
    return True


@functools.lru_cache(maxsize=4096)
def _net(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


@functools.lru_cache(maxsize=16384)
def _in(ip: str, cidr: str) -> bool:
    net = _net(cidr)
    if net is None or not ip:
        return False
    try:
        return ipaddress.ip_address(ip) in net
    except ValueError:
        return False


def _named(dest: Dest, name: str, proto: str, port: int) -> bool:
    pod = dest.pod
    return pod is not None and any(n == name and p == proto and cp == port for n, p, cp in pod.ports)


class _Context:
    def __init__(self, inputs: PolicyInputs, dns_ip: str = "") -> None:
        self.ns_labels: dict[str, dict[str, str]] = {n: dict(labels) for n, labels in inputs.namespaces}
        self.kube: dict[str, list[KubePolicy]] = {}
        for p in inputs.kube_policies:
            self.kube.setdefault(p.namespace, []).append(p)
        self.calico = inputs.calico == "present"
        self.calico_policies = [p for p in inputs.calico_policies if p.workload and p.egress_type]
        self.dns_ip = dns_ip  # the kube-dns ClusterIP (a Calico `services` match of kube-dns covers it)
        self._entries: dict[str, list[KubePolicy | CalicoPolicy]] = {}
        self._dest_labels: dict[tuple[str, str], dict[str, str]] = {}

    def entries(self, ns: str) -> list[KubePolicy | CalicoPolicy]:
        """Calico's default tier as it applies in `ns`, in order: the namespace's Kubernetes
        policies (order 1000, named knp.default.<name>), its Calico policies, every
        GlobalNetworkPolicy; by order (none = last), then name."""
        got = self._entries.get(ns)
        if got is None:
            keyed: list[tuple[bool, float, str, KubePolicy | CalicoPolicy]] = [
                (False, KUBE_ORDER, f"knp.default.{k.name}", k) for k in self.kube.get(ns, ()) if k.egress_type
            ]
            keyed += [
                (c.order is None, c.order or 0.0, c.name, c)
                for c in self.calico_policies
                if c.kind == "GlobalNetworkPolicy" or c.namespace == ns
            ]
            keyed.sort(key=lambda e: e[:3])
            got = self._entries[ns] = [e[3] for e in keyed]
        return got

    def dest_labels(self, pod: PodLabels) -> dict[str, str]:
        """A destination pod's labels as Calico's selectors see them (a few CoreDNS pods)."""
        key = (pod.namespace, pod.name)
        got = self._dest_labels.get(key)
        if got is None:
            got = self._dest_labels[key] = self.calico_labels(pod.namespace, dict(pod.labels))
        return got

    def ns(self, name: str) -> dict[str, str]:
        return self.ns_labels.get(name, {"kubernetes.io/metadata.name": name})

    def calico_labels(self, ns: str, labels: Mapping[str, str]) -> dict[str, str]:
        """A workload's labels as Calico's selectors see them (its namespace's too)."""
        out = dict(labels)
        out["projectcalico.org/namespace"] = ns
        out["projectcalico.org/orchestrator"] = "k8s"
        for k, v in self.ns(ns).items():
            out[f"pcns.{k}"] = v
        return out

    def calico_ns_labels(self, ns: str) -> dict[str, str]:
        return {**self.ns(ns), "projectcalico.org/name": ns}


def _kube_peer(peer: Peer, policy_ns: str, dest: Dest, ctx: _Context) -> bool:
    if peer.ip_block is not None:
        b = peer.ip_block
        return _in(dest.ip, b.cidr) and not any(_in(dest.ip, e) for e in b.excepts)
    pod = dest.pod
    if pod is None:
        return False  # selectors select pods, never a node-local or service address
    if peer.namespace_selector is None:
        ns_ok = pod.namespace == policy_ns
    else:
        ns_ok = selector_matches(peer.namespace_selector, ctx.ns(pod.namespace))
    return ns_ok and (peer.pod_selector is None or selector_matches(peer.pod_selector, dict(pod.labels)))


def _kube_port(port: Port, dest: Dest, proto: str, number: int) -> bool:
    if port.protocol != proto:
        return False
    if port.port is None:
        return True
    if isinstance(port.port, int):
        return port.port <= number <= (port.end_port or port.port)
    return _named(dest, port.port, proto, number)


def kube_allows(p: KubePolicy, dest: Dest, proto: str, number: int, ctx: _Context) -> bool:
    """Whether one of the policy's egress rules allows the packet."""
    for rule in p.egress:
        if rule.ports and not any(_kube_port(x, dest, proto, number) for x in rule.ports):
            continue
        if not rule.to or any(_kube_peer(peer, p.namespace, dest, ctx) for peer in rule.to):
            return True
    return False


def _sel(text: str, labels: Mapping[str, str], what: str) -> bool:
    try:
        return compile_selector(text)(labels)
    except Unsupported as e:
        raise CannotEvaluate(f"{what} selector {text!r}: {e}") from None


def _calico_ports(specs: tuple[str, ...], dest: Dest, proto: str, number: int) -> bool:
    for s in specs:
        lo, sep, hi = s.partition(":")
        if lo.isdigit() and (not sep or hi.isdigit()):
            if int(lo) <= number <= int(hi if sep else lo):
                return True
        elif _named(dest, s, proto, number):
            return True
    return False


def _calico_dest(e: CalicoEntity, p: CalicoPolicy, dest: Dest, proto: str, ctx: _Context) -> bool:
    where = f"{_ref(p)} egress destination"
    if e.other:
        raise CannotEvaluate(f"{where}: {', '.join(e.other)} is not evaluated")
    if e.nets and not any(_in(dest.ip, n) for n in e.nets):
        return False
    if e.not_nets and any(_in(dest.ip, n) for n in e.not_nets):
        return False
    if e.ports and not _calico_ports(e.ports, dest, proto, DNS_PORT):
        return False
    if e.not_ports and _calico_ports(e.not_ports, dest, proto, DNS_PORT):
        return False
    pod = dest.pod
    for svc_ns, svc_name in e.services:
        ns = svc_ns or p.namespace
        if (ns, svc_name) != ("kube-system", "kube-dns"):
            return False  # another service: not the DNS pods
        if not (pod is not None or (ctx.dns_ip and dest.ip == ctx.dns_ip)):
            return False
    if e.selector or e.namespace_selector is not None:
        if pod is None:
            return False
        labels = ctx.dest_labels(pod)
        if e.namespace_selector is not None:
            if not _sel(e.namespace_selector, ctx.calico_ns_labels(pod.namespace), f"{where} namespace"):
                return False
        elif p.kind == "NetworkPolicy" and pod.namespace != p.namespace:
            return False
        if e.selector and not _sel(e.selector, labels, where):
            return False
    if e.not_selector and pod is not None:
        if _sel(e.not_selector, ctx.dest_labels(pod), where):
            return False
    return True


def _calico_rule(r: CalicoRule, p: CalicoPolicy, dest: Dest, proto: str, ctx: _Context) -> bool:
    if r.protocol and _PROTO_NUMBERS.get(r.protocol, r.protocol) != proto:
        return False
    if r.not_protocol and _PROTO_NUMBERS.get(r.not_protocol, r.not_protocol) == proto:
        return False
    if r.ip_version and r.ip_version != (6 if ":" in dest.ip else 4):
        return False
    if not r.source.empty:
        raise CannotEvaluate(f"{_ref(p)}: an egress rule with a source is not evaluated")
    return _calico_dest(r.destination, p, dest, proto, ctx)


def _ref(p: KubePolicy | CalicoPolicy) -> str:
    if isinstance(p, KubePolicy):
        return f"networkpolicy/{p.namespace}/{p.name}"
    if p.kind == "GlobalNetworkPolicy":
        return f"globalnetworkpolicy/{p.name}"
    return f"calico-networkpolicy/{p.namespace}/{p.name}"


def _calico_applies(p: CalicoPolicy, ns: str, calico_labels: Mapping[str, str], ctx: _Context) -> bool:
    if p.kind == "NetworkPolicy":
        if p.namespace != ns:
            return False
    elif p.namespace_selector and not _sel(p.namespace_selector, ctx.calico_ns_labels(ns), f"{_ref(p)} namespace"):
        return False
    return _sel(p.selector, calico_labels, _ref(p))


# --- one verdict ---------------------------------------------------------------------------
def _applicable(ctx: _Context, ns: str, labels: Mapping[str, str]) -> list[KubePolicy | CalicoPolicy]:
    """The policies that restrict the egress of a pod of `ns` with `labels`, in the order
    they are evaluated (Calico: the default tier's; Kubernetes: any, it is a union).
    Depends on the pod only, so `evaluate` asks once per label set."""
    out: list[KubePolicy | CalicoPolicy] = []
    if not ctx.calico:
        for k in ctx.kube.get(ns, ()):
            if not k.egress_type:
                continue
            if k.problem:
                raise CannotEvaluate(f"{_ref(k)}: {k.problem}")
            if selector_matches(k.pod_selector, labels):
                out.append(k)
        return out
    calico_labels = ctx.calico_labels(ns, labels)
    for p in ctx.entries(ns):
        if p.problem:
            raise CannotEvaluate(f"{_ref(p)}: {p.problem}")
        if isinstance(p, KubePolicy):
            if selector_matches(p.pod_selector, labels):
                out.append(p)
            continue
        if not _calico_applies(p, ns, calico_labels, ctx):
            continue
        if p.tier != "default":
            raise CannotEvaluate(f"{_ref(p)} is in tier {p.tier!r}: the order of tiers is not read")
        out.append(p)
    return out


def _decide(ctx: _Context, applicable: list[KubePolicy | CalicoPolicy], dest: Dest, proto: str) -> PolicyVerdict:
    """The verdict for one destination and protocol, from the policies that apply.
    Kubernetes: allowed when any rule of any of them allows (none apply: allowed). Calico:
    the first matching rule in order decides; none matching: denied at the tier's end."""
    if not applicable:
        return PolicyVerdict(True, (), "no egress policy selects these pods")
    for p in applicable:
        if isinstance(p, KubePolicy):
            if kube_allows(p, dest, proto, DNS_PORT, ctx):
                return PolicyVerdict(True, (_ref(p),), "allowed by an egress rule")
            continue
        for i, r in enumerate(p.egress):
            if not _calico_rule(r, p, dest, proto, ctx):
                continue
            if r.action == "Allow":
                return PolicyVerdict(True, (_ref(p),), f"allowed by egress rule #{i + 1}")
            if r.action == "Deny":
                return PolicyVerdict(False, (_ref(p),), f"denied by egress rule #{i + 1}", rule_index=i)
            if r.action == "Pass":
                return PolicyVerdict(True, (_ref(p),), f"passed to the profiles by egress rule #{i + 1}")
    refs = tuple(_ref(p) for p in applicable)
    return PolicyVerdict(False, refs, "selected by an egress policy, and no egress rule allows it")


def verdict(
    inputs: PolicyInputs, ns: str, labels: Labels | Mapping[str, str], dest: Dest, proto: str, dns_ip: str = ""
) -> PolicyVerdict:
    """Is egress from a pod of `ns` with `labels` to `dest` port 53 over `proto` allowed?"""
    ctx = _context(inputs, dns_ip)
    return _verdict(ctx, ns, dict(labels), dest, proto)


def _verdict(ctx: _Context, ns: str, labels: Mapping[str, str], dest: Dest, proto: str) -> PolicyVerdict:
    try:
        return _decide(ctx, _applicable(ctx, ns, labels), dest, proto)
    except CannotEvaluate as e:
        return PolicyVerdict(None, (), str(e))


_CTX: list[Any] = [None, "", None]  # the last inputs, ClusterIP and their _Context


def _context(inputs: PolicyInputs, dns_ip: str) -> _Context:
    """The indexes of `inputs`, kept while the same inputs are asked about again."""
    if _CTX[0] is not inputs or _CTX[1] != dns_ip:
        _CTX[:] = [inputs, dns_ip, _Context(inputs, dns_ip)]
    ctx: _Context = _CTX[2]
    return ctx


# --- per namespace -------------------------------------------------------------------------
def dns_targets(inputs: PolicyInputs, dns_service_ip: str, nodelocal: bool, localdns: bool) -> tuple[DnsTarget, ...]:
    """What the pods' DNS packets go to, needed ones first."""
    pods = tuple(Dest(p.ip, p) for p in inputs.kube_dns if p.running and not p.host_network)
    cache = nodelocal or localdns
    out: list[DnsTarget] = []
    if nodelocal:
        out.append(DnsTarget("nodelocal", f"NodeLocal DNS {NODELOCAL_IP}", (Dest(NODELOCAL_IP),), True))
        if dns_service_ip:
            out.append(
                DnsTarget(
                    "cluster-ip",
                    f"the kube-dns ClusterIP {dns_service_ip} (NodeLocal binds it: not translated)",
                    (Dest(dns_service_ip),),
                    True,
                )
            )
    if localdns:
        out.append(DnsTarget("localdns", f"AKS LocalDNS {LOCALDNS_IP}", (Dest(LOCALDNS_IP),), True))
    if pods:
        names = ", ".join(p.pod.name for p in pods if p.pod is not None)
        label = f"the kube-dns pods ({names})" + ("" if cache else " behind the ClusterIP")
        out.append(DnsTarget("kube-dns-pods", label, pods, not cache))
    return tuple(out)


def evaluate(
    inputs: PolicyInputs, dns_service_ip: str = "", nodelocal: bool = False, localdns: bool = False
) -> tuple[NamespaceResult, ...]:
    """Every namespace with pods that an egress policy could select, judged."""
    ctx = _context(inputs, dns_service_ip)
    targets = dns_targets(inputs, dns_service_ip, nodelocal, localdns)
    out: list[NamespaceResult] = []
    decided: dict[tuple[tuple[int, ...], Dest, str], PolicyVerdict] = {}
    for ns, sets in inputs.label_sets:
        if not sets or not _may_apply(ctx, ns):
            continue
        groups: dict[tuple[tuple[str, ...], int], dict[str, Any]] = {}
        unknown: list[str] = []
        for labels in sets:
            try:
                applicable = _applicable(ctx, ns, dict(labels))
            except CannotEvaluate as e:
                if str(e) not in unknown:
                    unknown.append(str(e))
                continue
            ids = tuple(id(p) for p in applicable)  # the same policies decide alike: judged once
            for t in targets:
                for proto in PROTOCOLS:
                    for d in t.dests:
                        key = (ids, d, proto)
                        v = decided.get(key)
                        if v is None:
                            try:
                                v = _decide(ctx, applicable, d, proto)
                            except CannotEvaluate as e:
                                v = PolicyVerdict(None, (), str(e))
                            decided[key] = v
                        if v.allowed is None:
                            if v.why not in unknown:
                                unknown.append(v.why)
                        elif not v.allowed:
                            g = groups.setdefault(
                                (v.policies, -1 if v.rule_index is None else v.rule_index),
                                {"targets": [], "protocols": [], "sets": [], "why": v.why, "rule": v.rule_index},
                            )
                            _add(g["targets"], t.key)
                            _add(g["protocols"], proto)
                            if labels not in g["sets"]:
                                g["sets"].append(labels)
                            break
        needed = {t.key for t in targets if t.needed}
        blocked = tuple(
            Blocked(
                namespace=ns,
                policies=refs[0],
                targets=tuple(sorted(g["targets"], key=lambda k: (k not in needed, k))),
                protocols=tuple(p for p in PROTOCOLS if p in g["protocols"]),
                label_sets=len(g["sets"]),
                of_label_sets=len(sets),
                example=g["sets"][0],
                why=g["why"],
                needed=any(k in needed for k in g["targets"]),
                rule_index=g["rule"],
            )
            for refs, g in sorted(groups.items())
        )
        if blocked or unknown:
            out.append(NamespaceResult(ns, len(sets), blocked, tuple(unknown)))
    return tuple(out)


def _add(items: list[str], v: str) -> None:
    if v not in items:
        items.append(v)


def _may_apply(ctx: _Context, ns: str) -> bool:
    """A cheap first cut: no Kubernetes policy in the namespace and no Calico policy that
    could reach it: every pod there may send anything."""
    if any(p.egress_type for p in ctx.kube.get(ns, ())):
        return True
    return ctx.calico and any(p.kind == "GlobalNetworkPolicy" or p.namespace == ns for p in ctx.calico_policies)
