"""The scenario file format as typed structs: every section, every key (docs/scenarios.md).

:func:`decode` checks a YAML-loaded document against :class:`ScenarioDoc` with msgspec
and raises :class:`~.model.ScenarioError` with the file and key path on the first
problem; :mod:`.loader` then builds the :class:`~.model.Scenario` and checks what needs
more than one key. :func:`json_schema` is what ``scripts/scenario_schema.py`` writes to
docs/scenario.schema.json. The ``dns``, ``egress``, ``azure`` and ``routes`` sections
are declared next to the records they become (probes/lab/*spec.py).
"""

from __future__ import annotations

from typing import Any, ClassVar, Union

import msgspec

from ..azurespec import AzureDoc
from ..dnsspec import DnsDoc
from ..egressspec import EgressDoc
from ..routespec import RoutesDoc
from ..schemabase import UNSET, Doc, F, UnsetType, convert
from .model import DATAPLANES, NODE_ACTIONS, PLUGINS, ScenarioError

__all__ = ["ScenarioDoc", "decode", "json_schema", "SECTION_NAMES"]

# numbers are taken as their text (a name like 1234, a version written 1.30.6 stays a string)
Text = Union[str, int, float]


def S(description: str | None = None) -> Any:
    return F(Text, "a string", description=description)


def E(choices: tuple[str, ...], description: str | None = None) -> Any:
    """One of ``choices``; the loader also accepts other letter cases."""
    return F(str, f"one of {', '.join(choices)}", description=description,
             extra_json_schema={"enum": list(choices)})


Duration = F(Union[str, int, float], "a duration like 30s, 5m, 2h or 3d",
             description="30s, 5m, 1h30m, 2d or a number of seconds")
Cidr = F(str, "an IPv4 CIDR like 10.244.0.0/16", description="an IPv4 CIDR, strict: 10.244.0.0/16")
IPv4 = F(str, "an IPv4 address")
NodeRef = F(Union[int, str], "a node index, 'pool/N' or a node name",
            description="an index over all nodes, 'pool/N' (VMSS instance N) or a node name")
StrMap = F(dict[str, F(Union[str, int, float, bool], "a string")], "a mapping of strings")


def Count(min: int = 0, max: int | None = None, what: str | None = None, description: str | None = None) -> Any:
    desc = what or ("a positive integer" if min == 1 else
                    "a non-negative integer" if min == 0 else f"an integer >= {min}")
    if max is not None:
        desc += f" <= {max}"
    return F(int, desc, description=description, ge=min, **({"le": max} if max is not None else {}))


class ClusterDoc(Doc, rename="camel", kw_only=True):
    name: S("the AKS cluster name")
    resource_group: S()
    subscription_id: S() = "00000000-0000-0000-0000-000000000000"
    location: S() = "westeurope"
    node_resource_group: S("default MC_<resourceGroup>_<name>_<location>") | UnsetType = UNSET
    kubernetes_version: S() = "1.30.6"
    network_plugin: E(PLUGINS) = "kubenet"
    network_dataplane: E(DATAPLANES, "cilium needs networkPlugin azure or azure-overlay") = "azure"
    vnet_cidr: Cidr = "10.224.0.0/12"
    subnet_cidr: F(str, "an IPv4 CIDR like 10.244.0.0/16", description="the node subnet, inside vnetCidr") \
        = "10.224.0.0/16"
    pod_cidr: F(str, "an IPv4 CIDR like 10.244.0.0/16",
                description="kubenet and azure-overlay (default 10.244.0.0/16); absent for azure") | UnsetType = UNSET
    service_cidr: Cidr = "10.0.0.0/16"
    dns_service_ip: F(str, "an IPv4 address", description="inside serviceCidr (default: .10 of it)") \
        | UnsetType = msgspec.field(default=UNSET, name="dnsServiceIP")
    node_local_dns: F(bool, "true or false", description="the upstream node-local-dns DaemonSet") \
        = msgspec.field(default=False, name="nodeLocalDNS")
    local_dns: F(bool, "true or false", description="AKS managed LocalDNS") \
        = msgspec.field(default=False, name="localDNS")
    node_image_version: S() = "AKSUbuntu-2204gen2containerd-202501.12.0"
    age: Duration = "30d"


class PoolDoc(Doc, rename="camel", kw_only=True):
    name: S("[a-z][a-z0-9]{0,11}, unique")
    mode: E(("System", "User")) = "User"
    count: Count(what="a non-negative integer")
    vm_size: S("capacity from a small table; unknown sizes: vCPUs from the name") = "Standard_DS2_v2"
    zones: F(list[Union[int, str]], "a list of zones from 1, 2, 3",
             description="nodes spread round-robin; [] = non-zonal") = []
    max_pods: Count(10, 250) = 110
    os_sku: E(("Ubuntu", "AzureLinux")) = "Ubuntu"
    kubelet_version: S("this pool lags the control plane") | UnsetType = UNSET


class NodeOverrideDoc(Doc, rename="camel", kw_only=True):
    name: NodeRef | UnsetType = UNSET
    index: NodeRef | UnsetType = UNSET
    ready: F(Union[bool, str], "true, false or unknown") = True
    reason: S() | UnsetType = UNSET
    message: S() | UnsetType = UNSET
    cordoned: F(bool, "true or false") = False
    network_unavailable: F(bool, "true or false") = False
    node_local_dns_ready: F(bool, "true or false") = msgspec.field(default=True, name="nodeLocalDNSReady")
    age: Duration | UnsetType = UNSET


class CoreDNSDoc(Doc, kw_only=True):
    replicas: Count(0, 100) = 2
    ready: Count(description="default: all replicas") | UnsetType = UNSET


class PortDoc(Doc, rename="camel", kw_only=True):
    port: Count(1, 65535)
    protocol: E(("TCP", "UDP", "SCTP")) = "TCP"
    target_port: F(Union[int, str], "a port number or name") | UnsetType = UNSET
    name: S() | UnsetType = UNSET
    node_port: Count(30000, 32767) | UnsetType = UNSET


class EventDoc(Doc, kw_only=True):
    reason: S()
    message: S()
    type: E(("Normal", "Warning")) = "Warning"
    count: Count(1) = 1
    component: S() = "service-controller"


class ServiceDoc(Doc, rename="camel", kw_only=True):
    namespace: S() = "default"
    name: S()
    type: E(("ClusterIP", "LoadBalancer", "NodePort")) = "ClusterIP"
    selector: StrMap = {}
    labels: StrMap = {}
    annotations: StrMap = {}
    cluster_ip: F(str, "an IPv4 address") | UnsetType = msgspec.field(default=UNSET, name="clusterIP")
    internal: F(bool, "true or false") = False
    external_ip: F(Text, "an IPv4 address or 'pending'", description="LoadBalancer only; pending = no ingress yet") \
        | UnsetType = msgspec.field(default=UNSET, name="externalIP")
    ports: F(list[PortDoc], "a list")
    events: F(list[EventDoc], "a list") = []


# --------------------------------------------------------------------------- timeline: one struct per action

class TimelineEventDoc(Doc, tag_field="action", kw_only=True):
    at: Duration


class NodeAddDoc(TimelineEventDoc, tag="node-add", kw_only=True):
    """A new VMSS instance (next IP, next /24)."""

    pool: S()
    ready: F(bool, "true or false") = True


class NodeEventDoc(TimelineEventDoc, kw_only=True):
    node: NodeRef


class NodeNotReadyDoc(NodeEventDoc, tag="node-notready", kw_only=True):
    status: F(Union[str, bool], "False or Unknown", extra_json_schema={"enum": ["False", "Unknown", False]}) = "False"
    reason: S() | UnsetType = UNSET
    message: S() | UnsetType = UNSET


class PodEventDoc(TimelineEventDoc, kw_only=True):
    pod: S("node-local-dns (give node), coredns (give index) or a pod name")
    node: NodeRef | UnsetType = UNSET
    index: Count() | UnsetType = UNSET


class ServiceExternalIPDoc(TimelineEventDoc, tag="service-external-ip", kw_only=True):
    service: S("namespace/name")
    ip: F(Union[str, None], "an IPv4 address or null", description="null = back to pending") = None


def _tagged(base: type, tag: str) -> type:
    name = "".join(w.capitalize() for w in tag.split("-")) + "Doc"
    return msgspec.defstruct(name, [], bases=(base,), tag=tag, tag_field="action", forbid_unknown_fields=True,
                             kw_only=True)


_NODE_EVENTS = tuple(NodeNotReadyDoc if a == "node-notready" else _tagged(NodeEventDoc, a) for a in NODE_ACTIONS)
_POD_EVENTS = (_tagged(PodEventDoc, "pod-ready"), _tagged(PodEventDoc, "pod-notready"))
EVENT_DOCS = (NodeAddDoc, *_NODE_EVENTS, *_POD_EVENTS, ServiceExternalIPDoc)
TimelineItem = Union[EVENT_DOCS]  # type: ignore[valid-type]


# --------------------------------------------------------------------------- the file

SECTION_NAMES = ("dns", "egress", "azure", "routes")


class ScenarioDoc(Doc, kw_only=True):
    """A simulated AKS cluster (docs/scenarios.md)."""

    unknown_key: ClassVar[str] = "unknown top-level key (allowed: {allowed})"

    name: S("default: the file name without .yaml") | UnsetType = UNSET
    description: S() = ""
    cluster: ClusterDoc
    pools: F(list[PoolDoc], "a list", description="at least one pool with mode: System")
    nodes: F(list[NodeOverrideDoc], "a list", description="per-node overrides") = []
    coredns: CoreDNSDoc | UnsetType = UNSET
    services: F(list[ServiceDoc], "a list") = []
    timeline: F(list[TimelineItem], "a list", description="applied in time order after the server starts") = []
    dns: DnsDoc | UnsetType = UNSET
    egress: EgressDoc | UnsetType = UNSET
    azure: AzureDoc | UnsetType = UNSET
    routes: RoutesDoc | UnsetType = UNSET


def decode(data: Any, source: str) -> ScenarioDoc:
    """Check the document's shape and types; errors name ``source`` and the key path."""
    if data is None:
        raise ScenarioError(f"{source}: the file is empty")
    return convert(data, ScenarioDoc, source, error=ScenarioError)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file."""
    schema = msgspec.json.schema(ScenarioDoc)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "aksnet-top lab scenario", **schema}
