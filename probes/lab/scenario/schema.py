"""The scenario file format as typed structs: every section, every key (docs/scenarios.md).

:func:`decode` checks a YAML-loaded document against :class:`ScenarioDoc` with msgspec
and raises :class:`~.model.ScenarioError` with the file and key path on the first
problem; :mod:`.loader` then builds the :class:`~.model.Scenario` and checks what needs
more than one key. :func:`json_schema` is what ``scripts/scenario_schema.py`` writes to
docs/scenario.schema.json. The ``dns``, ``egress``, ``azure`` and ``routes`` sections
are declared next to the records they become (probes/lab/*spec.py).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Union

import msgspec

from ..azurespec import AzureDoc
from ..dnsspec import DnsDoc
from ..egressspec import EgressDoc
from ..gatewayspec import EgressGatewayDoc
from ..ingressspec import IngressDoc
from ..networkspec import NetworkDoc
from ..policyspec import PolicyDoc
from ..routespec import RoutesDoc
from ..schemabase import UNSET, Doc, M, UnsetType, convert
from .model import DATAPLANES, NODE_ACTIONS, PLUGINS, ScenarioError

__all__ = ["ScenarioDoc", "decode", "json_schema", "SECTION_NAMES"]

# numbers are taken as their text (a name like 1234, a version written 1.30.6 stays a string)
Text = Union[str, int, float]  # noqa: UP007 - a runtime alias msgspec reads


Str = Annotated[Text, M("a string")]


def one_of(choices: tuple[str, ...], description: str | None = None) -> msgspec.Meta:
    """One of ``choices``; the loader also accepts other letter cases."""
    return M(f"one of {', '.join(choices)}", description=description, extra_json_schema={"enum": list(choices)})


Duration = Annotated[
    str | int | float, M("a duration like 30s, 5m, 2h or 3d", description="30s, 5m, 1h30m, 2d or a number of seconds")
]
Cidr = Annotated[str, M("an IPv4 CIDR like 10.244.0.0/16", description="an IPv4 CIDR, strict: 10.244.0.0/16")]
IPv4 = Annotated[str, M("an IPv4 address")]
NodeRef = Annotated[
    int | str,
    M(
        "a node index, 'pool/N' or a node name",
        description="an index over all nodes, 'pool/N' (VMSS instance N) or a node name",
    ),
]
StrMap = Annotated[dict[str, Annotated[str | int | float | bool, M("a string")]], M("a mapping of strings")]


def count(
    min: int = 0, max: int | None = None, what: str | None = None, description: str | None = None
) -> msgspec.Meta:
    """An integer from ``min`` (to ``max``), said the way the loader always said it."""
    desc = what or (
        "a positive integer" if min == 1 else "a non-negative integer" if min == 0 else f"an integer >= {min}"
    )
    if max is not None:
        desc += f" <= {max}"
    return M(desc, description=description, ge=min, le=max)


class ClusterDoc(Doc, rename="camel", kw_only=True):
    name: Annotated[Text, M("a string", description="the AKS cluster name")]
    resource_group: Str
    subscription_id: Str = "00000000-0000-0000-0000-000000000000"
    location: Str = "westeurope"
    node_resource_group: (
        Annotated[Text, M("a string", description="default MC_<resourceGroup>_<name>_<location>")] | UnsetType
    ) = UNSET
    kubernetes_version: Str = "1.30.6"
    network_plugin: Annotated[str, one_of(PLUGINS)] = "kubenet"
    network_dataplane: Annotated[str, one_of(DATAPLANES, "cilium needs networkPlugin azure or azure-overlay")] = "azure"
    vnet_cidr: Cidr = "10.224.0.0/12"
    subnet_cidr: Annotated[
        str, M("an IPv4 CIDR like 10.244.0.0/16", description="the node subnet, inside vnetCidr")
    ] = "10.224.0.0/16"
    pod_cidr: (
        Annotated[
            str,
            M(
                "an IPv4 CIDR like 10.244.0.0/16",
                description="kubenet and azure-overlay (default 10.244.0.0/16); absent for azure",
            ),
        ]
        | UnsetType
    ) = UNSET
    service_cidr: Cidr = "10.0.0.0/16"
    dns_service_ip: (
        Annotated[str, M("an IPv4 address", description="inside serviceCidr (default: .10 of it)")] | UnsetType
    ) = msgspec.field(default=UNSET, name="dnsServiceIP")
    node_local_dns: Annotated[bool, M("true or false", description="the upstream node-local-dns DaemonSet")] = (
        msgspec.field(default=False, name="nodeLocalDNS")
    )
    node_local_dns_ip: Annotated[
        str, M("an IPv4 address", description="node-local-dns's -localip (default 169.254.20.10)")
    ] = msgspec.field(default="169.254.20.10", name="nodeLocalDNSIP")
    local_dns: Annotated[bool, M("true or false", description="AKS managed LocalDNS")] = msgspec.field(
        default=False, name="localDNS"
    )
    node_image_version: Str = "AKSUbuntu-2204gen2containerd-202501.12.0"
    age: Duration = "30d"


class PoolDoc(Doc, rename="camel", kw_only=True):
    name: Annotated[Text, M("a string", description="[a-z][a-z0-9]{0,11}, unique")]
    mode: Annotated[
        str, one_of(("System", "User", "Gateway"), "Gateway: a static egress gateway pool (egressGateway)")
    ] = "User"
    count: Annotated[int, count(what="a non-negative integer")]
    vm_size: Annotated[
        Text, M("a string", description="capacity from a small table; unknown sizes: vCPUs from the name")
    ] = "Standard_DS2_v2"
    zones: Annotated[
        list[int | str], M("a list of zones from 1, 2, 3", description="nodes spread round-robin; [] = non-zonal")
    ] = []
    max_pods: Annotated[int, count(10, 250)] = 110
    os_sku: Annotated[
        str,
        one_of(
            ("Ubuntu", "AzureLinux", "Windows2019", "Windows2022"),
            "Windows pools: mode User, names of at most 6 characters, Azure CNI; no agent runs there",
        ),
    ] = "Ubuntu"
    type: Annotated[
        str,
        one_of(
            ("VirtualMachineScaleSets", "AvailabilitySet"),
            "AvailabilitySet: a legacy single-pool cluster of standalone VMs (providerID .../virtualMachines/<name>)",
        ),
    ] = "VirtualMachineScaleSets"
    kubelet_version: Annotated[Text, M("a string", description="this pool lags the control plane")] | UnsetType = UNSET


class NodeOverrideDoc(Doc, rename="camel", kw_only=True):
    name: NodeRef | UnsetType = UNSET
    index: NodeRef | UnsetType = UNSET
    ready: Annotated[bool | str, M("true, false or unknown")] = True
    reason: Str | UnsetType = UNSET
    message: Str | UnsetType = UNSET
    cordoned: Annotated[bool, M("true or false")] = False
    network_unavailable: Annotated[bool, M("true or false")] = False
    node_local_dns_ready: Annotated[bool, M("true or false")] = msgspec.field(default=True, name="nodeLocalDNSReady")
    age: Duration | UnsetType = UNSET
    kubelet_version: (
        Annotated[Text, M("a string", description="this node's kubelet (mixed versions in a pool mid-upgrade)")]
        | UnsetType
    ) = UNSET
    ip: (
        Annotated[
            Text, M("an IPv4 address", description="this node's address in the subnet (default: allocated in order)")
        ]
        | UnsetType
    ) = UNSET


class CoreDNSDoc(Doc, kw_only=True):
    replicas: Annotated[int, count(0, 100)] = 2
    ready: Annotated[int, count(description="default: all replicas")] | UnsetType = UNSET


class PortDoc(Doc, rename="camel", kw_only=True):
    port: Annotated[int, count(1, 65535)]
    protocol: Annotated[str, one_of(("TCP", "UDP", "SCTP"))] = "TCP"
    target_port: Annotated[int | str, M("a port number or name")] | UnsetType = UNSET
    name: Str | UnsetType = UNSET
    node_port: Annotated[int, count(30000, 32767)] | UnsetType = UNSET


class EventDoc(Doc, kw_only=True):
    reason: Str
    message: Str
    type: Annotated[str, one_of(("Normal", "Warning"))] = "Warning"
    count: Annotated[int, count(1)] = 1
    component: Str = "service-controller"


class ServiceDoc(Doc, rename="camel", kw_only=True):
    namespace: Str = "default"
    name: Str
    type: Annotated[str, one_of(("ClusterIP", "LoadBalancer", "NodePort"))] = "ClusterIP"
    selector: StrMap = {}
    labels: StrMap = {}
    annotations: StrMap = {}
    cluster_ip: Annotated[str, M("an IPv4 address")] | UnsetType = msgspec.field(default=UNSET, name="clusterIP")
    internal: Annotated[bool, M("true or false")] = False
    external_ip: (
        Annotated[Text, M("an IPv4 address or 'pending'", description="LoadBalancer only; pending = no ingress yet")]
        | UnsetType
    ) = msgspec.field(default=UNSET, name="externalIP")
    ports: Annotated[list[PortDoc], M("a list")]
    events: Annotated[list[EventDoc], M("a list")] = []


# --------------------------------------------------------------------------- timeline: one struct per action


class TimelineEventDoc(Doc, tag_field="action", kw_only=True):
    at: Duration


class NodeAddDoc(TimelineEventDoc, tag="node-add", kw_only=True):
    """A new VMSS instance (next IP, next /24)."""

    pool: Str
    ready: Annotated[bool, M("true or false")] = True


class NodeEventDoc(TimelineEventDoc, kw_only=True):
    node: NodeRef


class NodeNotReadyDoc(NodeEventDoc, tag="node-notready", kw_only=True):
    status: Annotated[str | bool, M("False or Unknown", extra_json_schema={"enum": ["False", "Unknown", False]})] = (
        "False"
    )
    reason: Str | UnsetType = UNSET
    message: Str | UnsetType = UNSET


class PodEventDoc(TimelineEventDoc, kw_only=True):
    pod: Annotated[Text, M("a string", description="node-local-dns (give node), coredns (give index) or a pod name")]
    node: NodeRef | UnsetType = UNSET
    index: Annotated[int, count()] | UnsetType = UNSET


class ServiceExternalIPDoc(TimelineEventDoc, tag="service-external-ip", kw_only=True):
    service: Annotated[Text, M("a string", description="namespace/name")]
    ip: Annotated[str | None, M("an IPv4 address or null", description="null = back to pending")] = None


def _tagged(base: type, tag: str) -> type:
    name = "".join(w.capitalize() for w in tag.split("-")) + "Doc"
    return msgspec.defstruct(
        name, [], bases=(base,), tag=tag, tag_field="action", forbid_unknown_fields=True, kw_only=True
    )


_NODE_EVENTS = tuple(NodeNotReadyDoc if a == "node-notready" else _tagged(NodeEventDoc, a) for a in NODE_ACTIONS)
_POD_EVENTS = (_tagged(PodEventDoc, "pod-ready"), _tagged(PodEventDoc, "pod-notready"))
EVENT_DOCS = (NodeAddDoc, *_NODE_EVENTS, *_POD_EVENTS, ServiceExternalIPDoc)
TimelineItem = Union[EVENT_DOCS]  # type: ignore[valid-type]  # noqa: UP007 - built from a tuple


# --------------------------------------------------------------------------- the file

SECTION_NAMES = ("dns", "egress", "azure", "routes", "network", "policies", "ingress", "egressGateway")


class ScenarioDoc(Doc, kw_only=True):
    """A simulated AKS cluster (docs/scenarios.md)."""

    unknown_key: ClassVar[str] = "unknown top-level key (allowed: {allowed})"

    name: Annotated[Text, M("a string", description="default: the file name without .yaml")] | UnsetType = UNSET
    description: Str = ""
    cluster: ClusterDoc
    pools: Annotated[list[PoolDoc], M("a list", description="at least one pool with mode: System")]
    nodes: Annotated[list[NodeOverrideDoc], M("a list", description="per-node overrides")] = []
    coredns: CoreDNSDoc | UnsetType = UNSET
    services: Annotated[list[ServiceDoc], M("a list")] = []
    timeline: Annotated[
        list[TimelineItem], M("a list", description="applied in time order after the server starts")
    ] = []
    dns: DnsDoc | UnsetType = UNSET
    egress: EgressDoc | UnsetType = UNSET
    azure: AzureDoc | UnsetType = UNSET
    routes: RoutesDoc | UnsetType = UNSET
    network: NetworkDoc | UnsetType = UNSET
    policies: PolicyDoc | UnsetType = UNSET
    ingress: IngressDoc | UnsetType = UNSET
    egress_gateway: EgressGatewayDoc | UnsetType = msgspec.field(default=UNSET, name="egressGateway")


def decode(data: Any, source: str) -> ScenarioDoc:
    """Check the document's shape and types; errors name ``source`` and the key path."""
    if data is None:
        raise ScenarioError(f"{source}: the file is empty")
    return convert(data, ScenarioDoc, source, error=ScenarioError)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file."""
    schema = msgspec.json.schema(ScenarioDoc)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "aksnet-top lab scenario", **schema}
