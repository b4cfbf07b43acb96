"""Records of the network policies a cluster enforces, and what they are evaluated against.

Kubernetes NetworkPolicies (networking.k8s.io/v1), Calico NetworkPolicies and
GlobalNetworkPolicies (crd.projectcalico.org/v1), namespaces with their labels, and the
pods' label sets, each a frozen dataclass parsed from raw JSON by
`probes.kube.policyparse`. `PolicyInputs` is all of it at one moment, in the store's
snapshot; `probes.diagnose.netpol` evaluates it. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]  # sorted (key, value) pairs: hashable, comparable


@dataclass(frozen=True, slots=True)
class Selector:
    """A Kubernetes LabelSelector: matchLabels AND matchExpressions; empty selects all."""

    match_labels: Labels = ()
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (key, In|NotIn|Exists|DoesNotExist, values)


@dataclass(frozen=True, slots=True)
class IpBlock:
    cidr: str
    excepts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Peer:
    """One `to` entry: podSelector and/or namespaceSelector, or an ipBlock."""

    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IpBlock | None = None


@dataclass(frozen=True, slots=True)
class Port:
    """One `ports` entry. `port` None: every port of the protocol; a str: a named port."""

    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None


@dataclass(frozen=True, slots=True)
class EgressRule:
    ports: tuple[Port, ...] = ()  # empty: every port and protocol
    to: tuple[Peer, ...] = ()  # empty: every destination


@dataclass(frozen=True, slots=True)
class KubePolicy:
    namespace: str
    name: str
    pod_selector: Selector
    egress_type: bool  # policyTypes holds Egress (explicitly, or defaulted from egress rules)
    egress: tuple[EgressRule, ...] = ()
    problem: str = ""  # why it cannot be evaluated ("" when it can)


@dataclass(frozen=True, slots=True)
class CalicoEntity:
    """A Calico rule's source or destination (crd.projectcalico.org/v1 EntityRule)."""

    nets: tuple[str, ...] = ()
    not_nets: tuple[str, ...] = ()
    selector: str = ""
    not_selector: str = ""
    namespace_selector: str | None = None  # None: not given (the policy's namespace, or any for a GNP)
    ports: tuple[str, ...] = ()  # "53", "1000:2000", "dns" (named)
    not_ports: tuple[str, ...] = ()
    services: tuple[tuple[str, str], ...] = ()  # (namespace, name); "" namespace: the policy's
    other: tuple[str, ...] = ()  # fields we do not evaluate (serviceAccounts…): the rule cannot be evaluated

    @property
    def empty(self) -> bool:
        return self == CalicoEntity()


@dataclass(frozen=True, slots=True)
class CalicoRule:
    action: str  # Allow | Deny | Pass | Log
    protocol: str = ""  # "" any; TCP, UDP, ICMP… or a number as text
    not_protocol: str = ""
    source: CalicoEntity = field(default_factory=CalicoEntity)
    destination: CalicoEntity = field(default_factory=CalicoEntity)
    ip_version: int = 0  # 0: both


@dataclass(frozen=True, slots=True)
class CalicoPolicy:
    kind: str  # NetworkPolicy | GlobalNetworkPolicy
    namespace: str  # "" for a GlobalNetworkPolicy
    name: str
    order: float | None  # None: after every ordered policy
    selector: str  # Calico selector syntax; "" = all()
    namespace_selector: str  # GlobalNetworkPolicy only; "" = every namespace
    egress_type: bool
    egress: tuple[CalicoRule, ...] = ()
    tier: str = "default"
    workload: bool = True  # False: doNotTrack / preDNAT (host endpoints only, never a pod's egress)
    problem: str = ""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class PodLabels:
    """A pod as the policies see it: where it is, its labels; IP and named ports for the
    kube-dns pods (the destinations), empty for the others."""

    namespace: str
    name: str
    labels: Labels
    host_network: bool = False
    running: bool = True  # Pending or Running (a finished pod sends nothing)
    ip: str = ""
    ports: tuple[tuple[str, str, int], ...] = ()  # (name, protocol, containerPort) of named ports


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    """What the NetworkPolicy evaluation reads, at one moment."""

    kube_policies: tuple[KubePolicy, ...] = ()
    calico_policies: tuple[CalicoPolicy, ...] = ()
    namespaces: tuple[tuple[str, Labels], ...] = ()  # (name, labels), sorted by name
    label_sets: tuple[tuple[str, tuple[Labels, ...]], ...] = ()  # namespace -> distinct label sets of its pods
    kube_dns: tuple[PodLabels, ...] = ()  # the CoreDNS pods (kube-system, k8s-app=kube-dns)
    kube_synced: bool = False  # the NetworkPolicies, namespaces and pods were listed
    calico: str = "absent"  # absent | present | unknown (not yet listed, or not readable)

    @property
    def empty(self) -> bool:
        return not self.kube_policies and not self.calico_policies


def labels_of(value: object) -> Labels:
    """A `metadata.labels` object as sorted pairs (non-string values as text)."""
    if not isinstance(value, dict):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


def label_sets(pods: Iterable[PodLabels]) -> tuple[tuple[str, tuple[Labels, ...]], ...]:
    """namespace -> the distinct label sets of its pods that policies apply to (running,
    not on the host network: a hostNetwork pod is the node's traffic, no policy selects it)."""
    acc: dict[str, set[Labels]] = {}
    for p in pods:
        if p.running and not p.host_network:
            acc.setdefault(p.namespace, set()).add(p.labels)
    return tuple((ns, tuple(sorted(s))) for ns, s in sorted(acc.items()))
