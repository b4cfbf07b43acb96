"""A page of a Node list decoded straight into NodeInfo records, with a typed schema.

A Node is about 12 KB of JSON of which the topology reads a few hundred bytes: its
name, the labels `node_record` looks at, addresses, pod CIDRs, two conditions, taints,
the provider id and three nodeInfo strings. msgspec decodes a page against a schema of
just those fields and skips the rest (images, managedFields, the other labels and
annotations) without building Python objects for them: a 500-node page costs about a
third of trimming the images and decoding the whole of it with orjson, and the records
are built without a second pass over dicts.

The schema is strict about the types of what it keeps: a page whose kept fields do not
have the API's types (a null taint key, a label that is not a string), or that holds a
node without a name or with a namespace, is declined (None) and the reflector reads it
the general way, where such objects are counted and named. The records are the ones
`parse_node` gives for the same objects (both go through `node_record`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import msgspec.structs

from probes.kube.model import NodeInfo
from probes.kube.topology import NODE_LABELS, node_record, parse_time

_LABEL_FIELDS = [f"l{i}" for i in range(len(NODE_LABELS))]

# The labels node_record reads, as fields (the other labels are skipped, not built).
if TYPE_CHECKING:
    _Labels = msgspec.Struct
else:
    _Labels = msgspec.defstruct(
        "_Labels", [(f, str, "") for f in _LABEL_FIELDS], rename=dict(zip(_LABEL_FIELDS, NODE_LABELS, strict=True))
    )


class _Meta(msgspec.Struct, rename="camel"):
    name: str = ""
    namespace: str = ""
    creation_timestamp: str = ""
    labels: _Labels = msgspec.field(default_factory=_Labels)


class _Taint(msgspec.Struct):
    key: str = ""
    effect: str = ""


class _Spec(msgspec.Struct, rename={"pod_cidr": "podCIDR", "pod_cidrs": "podCIDRs", "provider_id": "providerID"}):
    pod_cidr: str = ""
    pod_cidrs: list[str] = []
    provider_id: str = ""
    unschedulable: bool = False
    taints: list[_Taint] = []


class _Address(msgspec.Struct):
    type: str = ""
    address: str = ""


class _Condition(msgspec.Struct):
    type: str = ""
    status: str = ""
    reason: str = ""


class _SystemInfo(msgspec.Struct, rename="camel"):
    kubelet_version: str = ""
    os_image: str = ""
    operating_system: str = ""


class _Status(msgspec.Struct, rename={"node_info": "nodeInfo"}):
    addresses: list[_Address] = []
    conditions: list[_Condition] = []
    node_info: _SystemInfo = msgspec.field(default_factory=_SystemInfo)


class _Node(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)
    spec: _Spec = msgspec.field(default_factory=_Spec)
    status: _Status = msgspec.field(default_factory=_Status)


class _ListMeta(msgspec.Struct, rename={"resource_version": "resourceVersion", "cont": "continue"}):
    resource_version: str = ""
    cont: str = ""


class _NodeList(msgspec.Struct):
    metadata: _ListMeta = msgspec.field(default_factory=_ListMeta)
    items: list[_Node] | None = None


_DECODER = msgspec.json.Decoder(_NodeList)


class NodePage(msgspec.Struct, frozen=True):
    """One decoded page: (name, NodeInfo) per node in list order, and the list's metadata."""

    nodes: list[tuple[str, NodeInfo]]
    resource_version: str
    cont: str


def _record(node: _Node) -> NodeInfo:
    meta, spec, status = node.metadata, node.spec, node.status
    values = msgspec.structs.astuple(meta.labels)
    labels = {NODE_LABELS[i]: v for i, v in enumerate(values) if v}
    ip = ""
    for addr in status.addresses:
        if addr.type == "InternalIP":
            ip = addr.address
            break
    cidrs = tuple([c for c in spec.pod_cidrs if c])
    if not cidrs and spec.pod_cidr:
        cidrs = (spec.pod_cidr,)
    ready: tuple[bool | None, str] = (None, "")
    net: tuple[bool | None, str] = (None, "")
    for c in status.conditions:  # the last of a type wins, as in parse_node
        if c.type == "Ready" or c.type == "NetworkUnavailable":
            value = True if c.status == "True" else False if c.status == "False" else None
            if c.type == "Ready":
                ready = (value, c.reason)
            else:
                net = (value, c.reason)
    info = status.node_info
    return node_record(
        name=meta.name,
        labels=labels,
        internal_ip=ip,
        pod_cidrs=cidrs,
        ready=ready,
        network_unavailable=net,
        taints=tuple([f"{t.key}:{t.effect}" for t in spec.taints]),
        provider_id=spec.provider_id,
        cordoned=spec.unschedulable,
        created=parse_time(meta.creation_timestamp),
        kubelet_version=info.kubelet_version,
        os_image=info.os_image,
        reported_os=info.operating_system,
    )


def decode_node_page(body: bytes) -> NodePage | None:
    """The page's records, or None when the page is not of the shape the schema keeps
    (the caller then decodes it the general way, which says what is wrong)."""
    try:
        page = _DECODER.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    items = page.items or []
    for node in items:
        if not node.metadata.name or node.metadata.namespace:
            return None
    return NodePage(
        nodes=[(node.metadata.name, _record(node)) for node in items],
        resource_version=page.metadata.resource_version,
        cont=page.metadata.cont,
    )
