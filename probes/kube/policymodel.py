"""Records of the network policies a cluster enforces, and what they are evaluated against.

Kubernetes NetworkPolicies (networking.k8s.io/v1), Calico NetworkPolicies and
GlobalNetworkPolicies (crd.projectcalico.org/v1), namespaces with their labels, and the
pods' label sets, each a frozen msgspec Struct parsed from raw JSON by
`probes.kube.policyparse`. `PolicyInputs` is all of it at one moment, in the store's
snapshot; `probes.diagnose.netpol` evaluates it. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

Labels = tuple[tuple[str, str], ...]  # sorted (key, value) pairs: hashable, comparable


class Selector(msgspec.Struct, frozen=True):
    """A Kubernetes LabelSelector: matchLabels AND matchExpressions; empty selects all."""

    match_labels: Labels = ()
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (key, In|NotIn|Exists|DoesNotExist, values)


class IpBlock(msgspec.Struct, frozen=True):
    cidr: str
    excepts: tuple[str, ...] = ()


class Peer(msgspec.Struct, frozen=True):
    """One `to` entry: podSelector and/or namespaceSelector, or an ipBlock."""

    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IpBlock | None = None


class Port(msgspec.Struct, frozen=True):
    """One `ports` entry. `port` None: every port of the protocol; a str: a named port."""

    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None


class EgressRule(msgspec.Struct, frozen=True):
    ports: tuple[Port, ...] = ()  # empty: every port and protocol
    to: tuple[Peer, ...] = ()  # empty: every destination


class KubePolicy(msgspec.Struct, frozen=True):
    namespace: str
    name: str
    pod_selector: Selector
    egress_type: bool  # policyTypes holds Egress (explicitly, or defaulted from egress rules)
    egress: tuple[EgressRule, ...] = ()
    problem: str = ""  # why it cannot be evaluated ("" when it can)


class CalicoEntity(msgspec.Struct, frozen=True):
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


class CalicoRule(msgspec.Struct, frozen=True):
    action: str  # Allow | Deny | Pass | Log
    protocol: str = ""  # "" any; TCP, UDP, ICMP… or a number as text
    not_protocol: str = ""
    source: CalicoEntity = msgspec.field(default_factory=CalicoEntity)
    destination: CalicoEntity = msgspec.field(default_factory=CalicoEntity)
    ip_version: int = 0  # 0: both


class CalicoPolicy(msgspec.Struct, frozen=True):
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


class PodLabels(msgspec.Struct, frozen=True):
    """A pod as the policies see it: where it is, its labels; IP and named ports for the
    kube-dns pods (the destinations), empty for the others."""

    namespace: str
    name: str
    labels: Labels
    host_network: bool = False
    running: bool = True  # Pending or Running (a finished pod sends nothing)
    ip: str = ""
    ports: tuple[tuple[str, str, int], ...] = ()  # (name, protocol, containerPort) of named ports


class PolicyInputs(msgspec.Struct, frozen=True):
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
