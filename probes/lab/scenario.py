"""Scenario files: a simulated AKS cluster described as data.

A scenario is YAML with a few top-level sections (``cluster``, ``pools``, ``nodes``,
``coredns``, ``services``, ``timeline``). Each section is parsed by a small function
into a frozen dataclass through a :class:`_Reader` that knows the file name and the
key path, so every error reads like ``healthy.yaml: pools[1].count: expected a
positive integer, got 'x'``. Unknown keys are errors everywhere: a typo must never
silently produce a healthy cluster.

Later sections (dns, egress, azure, routes) register a parser in ``SECTIONS``; the
parsed value lands in ``Scenario.extra[name]``.

The loader also expands pools into node specs (names, IPs, pod CIDRs) the way AKS
allocates them; :mod:`probes.lab.cluster` turns those into live state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = [
    "ScenarioError", "Scenario", "ClusterSpec", "PoolSpec", "NodeOverride",
    "CoreDNSSpec", "ServiceSpec", "PortSpec", "EventSpec", "TimedEvent", "NodeSpec",
    "load_scenario", "parse_scenario", "builtin_names", "SECTIONS", "parse_duration",
    "NODE_ACTIONS", "ALL_ACTIONS",
]


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or invalid. The message names file and key."""


# --------------------------------------------------------------------------- reader


_MISSING = object()


class _Reader:
    """Typed access to one mapping of the YAML document, tracking the key path."""

    __slots__ = ("file", "path", "data", "_seen")

    def __init__(self, file: str, path: str, data: Any):
        self.file = file
        self.path = path
        if not isinstance(data, dict):
            raise self.error(f"expected a mapping, got {_show(data)}", here=True)
        self.data = data
        self._seen: set[str] = set()

    def error(self, msg: str, key: str | None = None, here: bool = False) -> ScenarioError:
        where = self.path if (here or key is None) else self.sub(key)
        return ScenarioError(f"{self.file}: {where}: {msg}" if where else f"{self.file}: {msg}")

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self._seen.add(key)
        if key not in self.data or self.data[key] is None:
            if default is _MISSING:
                raise self.error("required key is missing", key)
            return default
        return self.data[key]

    def str(self, key: str, default: Any = _MISSING, pattern: str | None = None) -> Any:
        v = self.raw(key, default)
        if v is default and default is not _MISSING:
            return v
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise self.error(f"expected a string, got {_show(v)}", key)
        v = str(v)
        if pattern and not re.fullmatch(pattern, v):
            raise self.error(f"invalid value {v!r} (expected {pattern})", key)
        return v

    def enum(self, key: str, choices: tuple[str, ...], default: Any = _MISSING) -> Any:
        v = self.raw(key, default)
        if v is default and default is not _MISSING:
            return v
        for c in choices:
            if isinstance(v, str) and v.lower() == c.lower():
                return c
        raise self.error(f"expected one of {', '.join(choices)}, got {_show(v)}", key)

    def int(self, key: str, default: Any = _MISSING, min: int = 0, max: int | None = None,
            what: str | None = None) -> Any:
        v = self.raw(key, default)
        if v is default and default is not _MISSING:
            return v
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= min and (max is None or v <= max)
        if not ok:
            desc = what or ("a positive integer" if min == 1 else
                            "a non-negative integer" if min == 0 else f"an integer >= {min}")
            if max is not None:
                desc += f" <= {max}"
            raise self.error(f"expected {desc}, got {_show(v)}", key)
        return v

    def bool(self, key: str, default: Any = _MISSING) -> Any:
        v = self.raw(key, default)
        if v is default and default is not _MISSING:
            return v
        if not isinstance(v, bool):
            raise self.error(f"expected true or false, got {_show(v)}", key)
        return v

    def duration(self, key: str, default: Any = _MISSING) -> Any:
        v = self.raw(key, default)
        if v is default and default is not _MISSING:
            return v
        try:
            return parse_duration(v)
        except ValueError:
            raise self.error(f"expected a duration like 30s, 5m, 2h or 3d, got {_show(v)}", key) from None

    def net(self, key: str, default: Any = _MISSING) -> Any:
        v = self.raw(key, default)
        if v is default and default is not _MISSING:
            return v
        try:
            n = ipaddress.ip_network(str(v), strict=True)
        except ValueError:
            raise self.error(f"expected an IPv4 CIDR like 10.244.0.0/16, got {_show(v)}", key) from None
        if n.version != 4:
            raise self.error(f"only IPv4 CIDRs are supported, got {_show(v)}", key)
        return n

    def ip(self, key: str, default: Any = _MISSING) -> Any:
        v = self.raw(key, default)
        if v is default and default is not _MISSING:
            return v
        try:
            return ipaddress.IPv4Address(str(v))
        except ValueError:
            raise self.error(f"expected an IPv4 address, got {_show(v)}", key) from None

    def mapping(self, key: str) -> _Reader:
        return _Reader(self.file, self.sub(key), self.raw(key))

    def readers(self, key: str, default: Any = _MISSING) -> list[_Reader]:
        v = self.raw(key, default)
        if v is default and default is not _MISSING:
            return []
        if not isinstance(v, list):
            raise self.error(f"expected a list, got {_show(v)}", key)
        return [_Reader(self.file, f"{self.sub(key)}[{i}]", item) for i, item in enumerate(v)]

    def str_map(self, key: str) -> dict[str, str]:
        v = self.raw(key, {})
        if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
            raise self.error(f"expected a mapping of strings, got {_show(v)}", key)
        return {k: ("true" if x is True else "false" if x is False else str(x)) for k, x in v.items()}

    def done(self) -> None:
        extra = [k for k in self.data if k not in self._seen]
        if extra:
            k = extra[0]
            raise self.error(f"unknown key (allowed: {', '.join(sorted(self._seen))})", str(k))


def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


_DUR = re.compile(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(v: Any) -> float:
    """'30s', '5m', '1h30m', '2d' or a number of seconds -> seconds."""
    if isinstance(v, bool):
        raise ValueError(v)
    if isinstance(v, (int, float)):
        if v < 0:
            raise ValueError(v)
        return float(v)
    if not isinstance(v, str) or not v.strip():
        raise ValueError(v)
    m = _DUR.fullmatch(v.strip())
    if not m or not any(m.groups()):
        raise ValueError(v)
    d, h, mi, s = (float(x) if x else 0.0 for x in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


# --------------------------------------------------------------------------- sections

PLUGINS = ("kubenet", "azure", "azure-overlay")
DATAPLANES = ("azure", "cilium")


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    name: str
    subscription_id: str
    resource_group: str
    location: str
    node_resource_group: str
    kubernetes_version: str
    network_plugin: str
    network_dataplane: str
    pod_cidr: ipaddress.IPv4Network | None
    service_cidr: ipaddress.IPv4Network
    dns_service_ip: ipaddress.IPv4Address
    vnet_cidr: ipaddress.IPv4Network
    subnet_cidr: ipaddress.IPv4Network
    node_local_dns: bool
    local_dns: bool
    node_image_version: str
    age: float


def _parse_cluster(r: _Reader) -> ClusterSpec:
    name = r.str("name", pattern=r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}")
    rg = r.str("resourceGroup", pattern=r"[\w.()-]{1,90}")
    location = r.str("location", "westeurope", pattern=r"[a-z0-9]+")
    plugin = r.enum("networkPlugin", PLUGINS, "kubenet")
    dataplane = r.enum("networkDataplane", DATAPLANES, "azure")
    if dataplane == "cilium" and plugin == "kubenet":
        raise r.error("the cilium dataplane needs networkPlugin azure or azure-overlay", "networkDataplane")
    pod_default = None if plugin == "azure" else ipaddress.ip_network("10.244.0.0/16")
    pod_cidr = r.net("podCidr", pod_default)
    if plugin == "azure" and pod_cidr is not None:
        raise r.error("flat Azure CNI takes pod IPs from the subnet: remove podCidr", "podCidr")
    service_cidr = r.net("serviceCidr", ipaddress.ip_network("10.0.0.0/16"))
    dns_ip = r.ip("dnsServiceIP", service_cidr[10])
    if dns_ip not in service_cidr:
        raise r.error(f"{dns_ip} is not inside serviceCidr {service_cidr}", "dnsServiceIP")
    vnet = r.net("vnetCidr", ipaddress.ip_network("10.224.0.0/12"))
    subnet = r.net("subnetCidr", ipaddress.ip_network("10.224.0.0/16"))
    if not subnet.subnet_of(vnet):
        raise r.error(f"{subnet} is not inside vnetCidr {vnet}", "subnetCidr")
    if subnet.prefixlen > 29:
        raise r.error("subnet too small (Azure reserves 5 addresses)", "subnetCidr")
    for key, net in (("podCidr", pod_cidr), ("serviceCidr", service_cidr)):
        if net is not None and net.overlaps(vnet):
            raise r.error(f"{net} overlaps vnetCidr {vnet}", key)
    if pod_cidr is not None and pod_cidr.overlaps(service_cidr):
        raise r.error(f"{pod_cidr} overlaps serviceCidr {service_cidr}", "podCidr")
    spec = ClusterSpec(
        name=name,
        subscription_id=r.str("subscriptionId", "00000000-0000-0000-0000-000000000000",
                              pattern=r"[0-9a-fA-F-]{36}"),
        resource_group=rg,
        location=location,
        node_resource_group=r.str("nodeResourceGroup", f"MC_{rg}_{name}_{location}"),
        kubernetes_version=r.str("kubernetesVersion", "1.30.6", pattern=r"\d+\.\d+\.\d+"),
        network_plugin=plugin,
        network_dataplane=dataplane,
        pod_cidr=pod_cidr,
        service_cidr=service_cidr,
        dns_service_ip=dns_ip,
        vnet_cidr=vnet,
        subnet_cidr=subnet,
        node_local_dns=r.bool("nodeLocalDNS", False),
        local_dns=r.bool("localDNS", False),
        node_image_version=r.str("nodeImageVersion", "AKSUbuntu-2204gen2containerd-202501.12.0"),
        age=r.duration("age", 30 * 86400.0),
    )
    r.done()
    return spec


@dataclass(frozen=True, slots=True)
class PoolSpec:
    name: str
    mode: str
    count: int
    vm_size: str
    zones: tuple[str, ...]
    max_pods: int
    os_sku: str
    kubelet_version: str | None


def _parse_pool(r: _Reader) -> PoolSpec:
    zones = r.raw("zones", [])
    if not isinstance(zones, list) or not all(isinstance(z, (int, str)) and str(z) in "123" and str(z)
                                              for z in zones):
        raise r.error(f"expected a list of zones from 1, 2, 3, got {_show(zones)}", "zones")
    spec = PoolSpec(
        # AKS: lowercase letters and digits, starting with a letter, 1-12 chars
        name=r.str("name", pattern=r"[a-z][a-z0-9]{0,11}"),
        mode=r.enum("mode", ("System", "User"), "User"),
        count=r.int("count", min=0, what="a non-negative integer"),
        vm_size=r.str("vmSize", "Standard_DS2_v2", pattern=r"Standard_\w+"),
        zones=tuple(str(z) for z in zones),
        max_pods=r.int("maxPods", 110, min=10, max=250),
        os_sku=r.enum("osSku", ("Ubuntu", "AzureLinux"), "Ubuntu"),
        kubelet_version=r.str("kubeletVersion", None, pattern=r"\d+\.\d+\.\d+"),
    )
    r.done()
    return spec


@dataclass(frozen=True, slots=True)
class NodeOverride:
    """Per-node state. ``ref`` is an int (index over all nodes), 'pool/N' or a node name."""

    ref: int | str
    ready: str = "True"            # True | False | Unknown
    reason: str | None = None
    message: str | None = None
    cordoned: bool = False
    network_unavailable: bool = False
    node_local_dns_ready: bool = True
    age: float | None = None


def _parse_node_ref(r: _Reader, key: str) -> int | str:
    v = r.raw(key)
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    if isinstance(v, str) and v:
        return v
    raise r.error(f"expected a node index, 'pool/N' or a node name, got {_show(v)}", key)


def _ready_value(r: _Reader, key: str, default: str) -> str:
    v = r.raw(key, default)
    if v is True or v == "True":
        return "True"
    if v is False or v == "False":
        return "False"
    if isinstance(v, str) and v.lower() == "unknown":
        return "Unknown"
    raise r.error(f"expected true, false or unknown, got {_show(v)}", key)


def _parse_node_override(r: _Reader) -> NodeOverride:
    if r.has("name") == r.has("index"):
        raise r.error("give exactly one of name ('pool/N' or a node name) or index", here=True)
    ref = _parse_node_ref(r, "name" if r.has("name") else "index")
    o = NodeOverride(
        ref=ref,
        ready=_ready_value(r, "ready", "True"),
        reason=r.str("reason", None),
        message=r.str("message", None),
        cordoned=r.bool("cordoned", False),
        network_unavailable=r.bool("networkUnavailable", False),
        node_local_dns_ready=r.bool("nodeLocalDNSReady", True),
        age=r.duration("age", None),
    )
    r.done()
    return o


@dataclass(frozen=True, slots=True)
class CoreDNSSpec:
    replicas: int = 2
    ready: int = 2


def _parse_coredns(r: _Reader) -> CoreDNSSpec:
    replicas = r.int("replicas", 2, min=0, max=100)
    ready = r.int("ready", replicas, min=0)
    if ready > replicas:
        raise r.error(f"ready ({ready}) cannot exceed replicas ({replicas})", "ready")
    r.done()
    return CoreDNSSpec(replicas, ready)


@dataclass(frozen=True, slots=True)
class PortSpec:
    port: int
    protocol: str = "TCP"
    target_port: int | str | None = None
    name: str | None = None
    node_port: int | None = None


@dataclass(frozen=True, slots=True)
class EventSpec:
    reason: str
    message: str
    type: str = "Warning"
    count: int = 1
    component: str = "service-controller"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    namespace: str
    name: str
    type: str
    ports: tuple[PortSpec, ...]
    selector: dict[str, str]
    cluster_ip: ipaddress.IPv4Address | None
    external_ip: str | None            # None = pending (LoadBalancer only)
    internal: bool
    labels: dict[str, str]
    annotations: dict[str, str]
    events: tuple[EventSpec, ...]


_DNS1123 = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"


def _parse_service(r: _Reader, cluster: ClusterSpec) -> ServiceSpec:
    ports = []
    for pr in r.readers("ports"):
        tp = pr.raw("targetPort", None)
        if tp is not None and not (isinstance(tp, (int, str)) and not isinstance(tp, bool)):
            raise pr.error(f"expected a port number or name, got {_show(tp)}", "targetPort")
        ports.append(PortSpec(
            port=pr.int("port", min=1, max=65535),
            protocol=pr.enum("protocol", ("TCP", "UDP", "SCTP"), "TCP"),
            target_port=tp,
            name=pr.str("name", None, pattern=_DNS1123),
            node_port=pr.int("nodePort", None, min=30000, max=32767),
        ))
        pr.done()
    if not ports:
        raise r.error("a service needs at least one port", "ports")
    stype = r.enum("type", ("ClusterIP", "LoadBalancer", "NodePort"), "ClusterIP")
    ext = r.raw("externalIP", "pending" if stype == "LoadBalancer" else None)
    if ext is not None:
        if stype != "LoadBalancer":
            raise r.error("only LoadBalancer services have an externalIP", "externalIP")
        if ext == "pending":
            ext = None
        else:
            try:
                ext = str(ipaddress.IPv4Address(str(ext)))
            except ValueError:
                raise r.error(f"expected an IPv4 address or 'pending', got {_show(ext)}", "externalIP") from None
    cip = r.ip("clusterIP", None)
    if cip is not None and cip not in cluster.service_cidr:
        raise r.error(f"{cip} is not inside serviceCidr {cluster.service_cidr}", "clusterIP")
    events = []
    for er in r.readers("events", []):
        events.append(EventSpec(
            reason=er.str("reason"),
            message=er.str("message"),
            type=er.enum("type", ("Normal", "Warning"), "Warning"),
            count=er.int("count", 1, min=1),
            component=er.str("component", "service-controller"),
        ))
        er.done()
    spec = ServiceSpec(
        namespace=r.str("namespace", "default", pattern=_DNS1123),
        name=r.str("name", pattern=_DNS1123),
        type=stype,
        ports=tuple(ports),
        selector=r.str_map("selector"),
        cluster_ip=cip,
        external_ip=ext,
        internal=r.bool("internal", False),
        labels=r.str_map("labels"),
        annotations=r.str_map("annotations"),
        events=tuple(events),
    )
    r.done()
    return spec


NODE_ACTIONS = ("node-remove", "node-ready", "node-notready", "node-cordon", "node-uncordon",
                "node-route-missing", "node-route-created")
ALL_ACTIONS = ("node-add", *NODE_ACTIONS, "pod-ready", "pod-notready", "service-external-ip")


@dataclass(frozen=True, slots=True)
class TimedEvent:
    at: float
    action: str
    pool: str | None = None
    node: int | str | None = None
    ready: bool = True
    reason: str | None = None
    message: str | None = None
    pod: str | None = None            # node-local-dns | coredns | a pod name
    index: int | None = None          # coredns replica index
    service: str | None = None        # namespace/name
    ip: str | None = None             # service-external-ip; null = back to pending


def _parse_event(r: _Reader, pool_names: set[str]) -> TimedEvent:
    at = r.duration("at")
    action = r.enum("action", ALL_ACTIONS)
    kw: dict[str, Any] = {}
    if action == "node-add":
        kw["pool"] = r.str("pool")
        if kw["pool"] not in pool_names:
            raise r.error(f"unknown pool {kw['pool']!r} (pools: {', '.join(sorted(pool_names))})", "pool")
        kw["ready"] = r.bool("ready", True)
    elif action in NODE_ACTIONS:
        kw["node"] = _parse_node_ref(r, "node")
        if action == "node-notready":
            kw["reason"] = r.str("reason", None)
            kw["message"] = r.str("message", None)
            v = r.raw("status", "False")
            if v not in ("False", "Unknown", False):
                raise r.error(f"expected False or Unknown, got {_show(v)}", "status")
            kw["ready"] = False
            kw["pod"] = "Unknown" if v == "Unknown" else None  # reuse slot: condition status
    elif action in ("pod-ready", "pod-notready"):
        kw["pod"] = r.str("pod")
        if kw["pod"] == "node-local-dns":
            kw["node"] = _parse_node_ref(r, "node")
        elif kw["pod"] == "coredns":
            kw["index"] = r.int("index", 0, min=0)
    elif action == "service-external-ip":
        kw["service"] = r.str("service", pattern=rf"{_DNS1123}/{_DNS1123}")
        ip = r.raw("ip", None)
        if ip is not None:
            try:
                ip = str(ipaddress.IPv4Address(str(ip)))
            except ValueError:
                raise r.error(f"expected an IPv4 address or null, got {_show(ip)}", "ip") from None
        kw["ip"] = ip
    r.done()
    return TimedEvent(at=at, action=action, **kw)


# Later issues register extra top-level sections here: name -> parser(reader) -> value.
SECTIONS: dict[str, Callable[[_Reader], Any]] = {}


# --------------------------------------------------------------------------- nodes

@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One generated node: identity and addresses as AKS allocates them."""

    name: str
    pool: str
    instance: int            # VMSS instance id
    ip: str
    pod_cidr: str | None
    zone: str                # "westeurope-1" or "0"
    override: NodeOverride | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str                 # file stem, e.g. "healthy"
    source: str               # file name used in messages
    cluster: ClusterSpec
    pools: tuple[PoolSpec, ...]
    overrides: tuple[NodeOverride, ...]
    coredns: CoreDNSSpec
    services: tuple[ServiceSpec, ...]
    timeline: tuple[TimedEvent, ...]
    description: str = ""
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def node_count(self) -> int:
        return sum(p.count for p in self.pools)

    def pool(self, name: str) -> PoolSpec:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    def vmss_id(self, pool: str) -> str:
        """The 8-digit number in AKS VMSS names: stable per cluster and pool."""
        h = hashlib.sha256(f"{self.cluster.subscription_id}/{self.cluster.resource_group}/"
                           f"{self.cluster.name}/{pool}".encode()).digest()
        return f"{int.from_bytes(h[:8], 'big') % 100_000_000:08d}"

    def node_name(self, pool: str, instance: int) -> str:
        return f"aks-{pool}-{self.vmss_id(pool)}-vmss{_base36(instance, 6)}"

    def ip_stride(self, pool: str) -> int:
        """Addresses a node takes from the subnet: 1, or maxPods+1 with flat Azure CNI."""
        return self.pool(pool).max_pods + 1 if self.cluster.network_plugin == "azure" else 1

    def nodes(self) -> list[NodeSpec]:
        """Initial nodes: pools in order, IPs from .4 of the subnet, /24s in order."""
        c = self.cluster
        out: list[NodeSpec] = []
        ip = int(c.subnet_cidr.network_address) + 4
        last_ip = int(c.subnet_cidr.broadcast_address) - 1
        pod_base = int(c.pod_cidr.network_address) if c.pod_cidr is not None else 0
        pod_slots = (2 ** (24 - c.pod_cidr.prefixlen)) if c.pod_cidr is not None else 0
        total = self.node_count
        if c.pod_cidr is not None and total > pod_slots:
            raise ScenarioError(f"{self.source}: cluster.podCidr: {c.pod_cidr} holds {pod_slots} node "
                                f"/24 ranges, the pools need {total}")
        i = 0
        for p in self.pools:
            vid = self.vmss_id(p.name)
            stride = self.ip_stride(p.name)
            prefix = f"aks-{p.name}-{vid}-vmss"
            for n in range(p.count):
                if ip + stride - 1 > last_ip:
                    raise ScenarioError(f"{self.source}: cluster.subnetCidr: {c.subnet_cidr} has no room "
                                        f"for node {i + 1} of {total} ({stride} addresses each)")
                zone = f"{c.location}-{p.zones[n % len(p.zones)]}" if p.zones else "0"
                out.append(NodeSpec(
                    name=prefix + _base36(n, 6), pool=p.name, instance=n,
                    ip=_ntoa(ip),
                    pod_cidr=f"{_ntoa(pod_base + (i << 8))}/24" if pod_slots else None,
                    zone=zone,
                ))
                ip += stride
                i += 1
        return _apply_overrides(self, out)


def _apply_overrides(sc: Scenario, nodes: list[NodeSpec]) -> list[NodeSpec]:
    if not sc.overrides:
        return nodes
    for k, o in enumerate(sc.overrides):
        idx = resolve_node_ref(sc, nodes, o.ref)
        if idx is None:
            raise ScenarioError(f"{sc.source}: nodes[{k}]: no node {o.ref!r} in this cluster")
        nodes[idx] = dataclasses.replace(nodes[idx], override=o)
    return nodes


def resolve_node_ref(sc: Scenario, nodes: list[Any], ref: int | str) -> int | None:
    """Index into ``nodes`` (anything with .name) for an int, 'pool/N' or a name."""
    if isinstance(ref, int):
        return ref if ref < len(nodes) else None
    name = ref
    if "/" in ref:
        pool, _, n = ref.partition("/")
        if not n.isdigit() or not any(p.name == pool for p in sc.pools):
            return None
        name = sc.node_name(pool, int(n))
    for i, nd in enumerate(nodes):
        if nd.name == name:
            return i
    return None


_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int, width: int) -> str:
    s = ""
    while n:
        n, r = divmod(n, 36)
        s = _B36[r] + s
    return s.rjust(width, "0")


def _ntoa(n: int) -> str:
    return f"{n >> 24 & 255}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


# --------------------------------------------------------------------------- loading

_TOP = ("name", "description", "cluster", "pools", "nodes", "coredns", "services", "timeline")


def parse_scenario(data: Any, source: str = "<scenario>", name: str | None = None) -> Scenario:
    """Validate a decoded YAML document. ``source`` is the file name used in messages."""
    if data is None:
        raise ScenarioError(f"{source}: the file is empty")
    r = _Reader(source, "", data)
    for k in data:
        if k not in _TOP and k not in SECTIONS:
            allowed = ", ".join(sorted((*_TOP, *SECTIONS)))
            raise ScenarioError(f"{source}: {k}: unknown top-level key (allowed: {allowed})")
    cluster = _parse_cluster(r.mapping("cluster"))
    pools = tuple(_parse_pool(p) for p in r.readers("pools"))
    if not pools:
        raise r.error("at least one pool is required", "pools")
    seen: set[str] = set()
    for i, p in enumerate(pools):
        if p.name in seen:
            raise ScenarioError(f"{source}: pools[{i}].name: duplicate pool name {p.name!r}")
        seen.add(p.name)
    if not any(p.mode == "System" for p in pools):
        raise ScenarioError(f"{source}: pools: AKS needs at least one pool with mode: System")
    overrides = tuple(_parse_node_override(x) for x in r.readers("nodes", []))
    coredns = _parse_coredns(r.mapping("coredns")) if r.has("coredns") and data["coredns"] is not None \
        else CoreDNSSpec()
    r._seen.add("coredns")
    services = tuple(_parse_service(x, cluster) for x in r.readers("services", []))
    keys = set()
    for i, s in enumerate(services):
        if (s.namespace, s.name) in keys or (s.namespace, s.name) in (("default", "kubernetes"),
                                                                       ("kube-system", "kube-dns"),
                                                                       ("kube-system", "metrics-server")):
            raise ScenarioError(f"{source}: services[{i}].name: duplicate service {s.namespace}/{s.name}")
        keys.add((s.namespace, s.name))
    timeline = tuple(sorted((_parse_event(x, seen) for x in r.readers("timeline", [])),
                            key=lambda e: e.at))
    extra = {k: fn(_Reader(source, k, data[k])) for k, fn in SECTIONS.items() if k in data}
    sc = Scenario(
        name=name or str(r.str("name", os.path.splitext(os.path.basename(source))[0])),
        source=source, cluster=cluster, pools=pools, overrides=overrides, coredns=coredns,
        services=services, timeline=timeline,
        description=str(r.str("description", "")), extra=extra,
        notes=_notes(data, cluster, sum(p.count for p in pools)),
    )
    sc.nodes()  # validates overrides and address room now, with the file name
    return sc


def builtin_names() -> list[str]:
    from importlib import resources
    d = resources.files("probes.lab").joinpath("scenarios")
    return sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".yaml"))


def _read_source(name_or_path: str) -> tuple[str, str, str]:
    """-> (text, file name for messages, scenario name)."""
    looks_like_path = os.sep in name_or_path or name_or_path.endswith((".yaml", ".yml"))
    if not looks_like_path and re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name_or_path):
        from importlib import resources
        res = resources.files("probes.lab").joinpath("scenarios", f"{name_or_path}.yaml")
        if res.is_file():
            return res.read_text("utf-8"), f"{name_or_path}.yaml", name_or_path
        if not os.path.exists(name_or_path):
            raise ScenarioError(f"unknown scenario {name_or_path!r}: built-ins are "
                                f"{', '.join(builtin_names())}, or give a path to a .yaml file")
    try:
        with open(name_or_path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ScenarioError(f"{name_or_path}: cannot read scenario: {e.strerror or e}") from None
    base = os.path.basename(name_or_path)
    return text, base, os.path.splitext(base)[0]


def load_scenario(name_or_path: str, nodes: int | None = None) -> Scenario:
    """Load a built-in scenario by name or a YAML file by path.

    ``nodes=N`` rescales the pools to N nodes in total (system pools keep a realistic
    share: 3 nodes up to 100 nodes, then about 3%); per-node overrides keep applying by
    reference. If the pod CIDR or the subnet cannot hold N nodes, the prefix is widened
    (same base address) and a note is recorded in ``Scenario.notes``.
    """
    import yaml
    text, source, stem = _read_source(name_or_path)
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ScenarioError(f"{source}: {where}invalid YAML: {getattr(e, 'problem', None) or e}") from None
    if nodes is None:
        return parse_scenario(data, source, None if isinstance(data, dict) and "name" in data else stem)
    if isinstance(nodes, bool) or not isinstance(nodes, int) or not 1 <= nodes <= 5000:
        raise ScenarioError(f"{source}: --nodes: expected 1..5000, got {nodes!r}")
    sc = parse_scenario(_scaled_doc(data, nodes), source,
                        None if isinstance(data, dict) and "name" in data else stem)
    return sc


def _scaled_doc(data: Any, total: int) -> Any:
    """Rewrite pools[].count (and widen CIDRs) in the raw document, then re-validate."""
    if not isinstance(data, dict) or not isinstance(data.get("pools"), list) or not data["pools"]:
        return data  # let parse_scenario report it
    doc = dict(data)
    pools = [dict(p) if isinstance(p, dict) else p for p in doc["pools"]]
    doc["pools"] = pools
    if not all(isinstance(p, dict) for p in pools):
        return doc
    system = [i for i, p in enumerate(pools) if str(p.get("mode", "User")).lower() == "system"]
    user = [i for i in range(len(pools)) if i not in system]
    if not system:
        system, user = [0], list(range(1, len(pools)))
    sys_total = min(total, 3 if total <= 100 else max(3, round(total * 0.03)))
    if not user:
        sys_total = total
    counts = [0] * len(pools)
    for k, i in enumerate(system):
        counts[i] = sys_total // len(system) + (1 if k < sys_total % len(system) else 0)
    rest = total - sys_total
    if user:
        weights = [max(1, p.get("count", 1) if isinstance(p.get("count"), int) else 1) for p in
                   (pools[i] for i in user)]
        wsum = sum(weights)
        alloc = [rest * w // wsum for w in weights]
        for k in range(rest - sum(alloc)):
            alloc[k % len(alloc)] += 1
        for i, a in zip(user, alloc):
            counts[i] = a
    for p, c in zip(pools, counts):
        p["count"] = c
    cl = doc.get("cluster")
    if isinstance(cl, dict):
        cl = dict(cl)
        doc["cluster"] = cl
        plugin = str(cl.get("networkPlugin", "kubenet")).lower()
        notes = []
        if plugin in ("kubenet", "azure-overlay"):
            want = 24 - max(0, (total - 1).bit_length())
            cur = cl.get("podCidr", "10.244.0.0/16")
            widened = _widen_pod(cur, want, cl)
            if widened != cur:
                cl["podCidr"] = widened
                notes.append(f"podCidr widened {cur} -> {widened} for {total} nodes")
        max_pods = max((p.get("maxPods", 110) for p in pools if isinstance(p.get("maxPods", 110), int)),
                       default=110)
        per_node = max_pods + 1 if plugin == "azure" else 1
        need = total * per_node + 5
        want = 32 - max(0, (need - 1).bit_length())
        cur = cl.get("subnetCidr", "10.224.0.0/16")
        widened = _widen(cur, want)
        if widened != cur:
            cl["subnetCidr"] = widened
            notes.append(f"subnetCidr widened {cur} -> {widened} for {total} nodes")
            vnet = cl.get("vnetCidr", "10.224.0.0/12")
            try:
                if not ipaddress.ip_network(widened).subnet_of(ipaddress.ip_network(vnet)):
                    cl["vnetCidr"] = widened
            except (ValueError, TypeError):
                pass
        if "azure" not in doc and total > 50:
            # a scenario that says nothing of outbound traffic means "outbound is fine": at
            # scale AKS's default tier would leave 32–512 ports a node, so give the scaled
            # cluster what an operator of that size sets (ports, and IPs to back them)
            ports = 1024
            while ports > 64 and -(-ports * (total + total // 10 + 1) // 64000) > 16:
                ports //= 2
            ips = max(1, -(-ports * (total + total // 10 + 1) // 64000))
            doc["azure"] = {"allocatedOutboundPorts": ports, "outboundIPs": min(ips, 16)}
            notes.append(f"azure: allocatedOutboundPorts {ports} with {min(ips, 16)} outbound IPs "
                         f"for {total} nodes (the default tier would leave fewer ports a node)")
        if notes:
            doc["_notes"] = notes
    return _NotesDoc(doc)


def _notes(data: Any, cluster: ClusterSpec, total: int) -> tuple[str, ...]:
    notes = list(getattr(data, "notes", ()))
    if cluster.network_plugin == "kubenet" and total > 400:
        notes.append(f"{total} nodes with kubenet: AKS stops at 400 (one route per node, "
                     "400 routes per route table); the lab generates them anyway")
    return tuple(notes)


class _NotesDoc(dict):
    """A document carrying generator notes outside the validated keys."""

    def __init__(self, doc: dict):
        notes = doc.pop("_notes", [])
        super().__init__(doc)
        self.notes = tuple(notes)


def _widen(cidr: Any, want_prefix: int) -> Any:
    try:
        n = ipaddress.ip_network(str(cidr), strict=True)
    except ValueError:
        return cidr
    if n.prefixlen <= want_prefix:
        return cidr
    return str(n.supernet(new_prefix=max(want_prefix, 8)))


def _widen_pod(cidr: Any, want_prefix: int, cl: dict) -> Any:
    """A pod CIDR for more nodes: the same base widened, else a CGNAT range (100.64.0.0/10)."""
    w = _widen(cidr, want_prefix)
    if w == cidr:
        return cidr
    taken = []
    for k, d in (("vnetCidr", "10.224.0.0/12"), ("serviceCidr", "10.0.0.0/16")):
        try:
            taken.append(ipaddress.ip_network(str(cl.get(k, d))))
        except ValueError:
            return w
    cgnat = ipaddress.ip_network("100.64.0.0/10")
    for cand in (w, f"100.64.0.0/{max(want_prefix, 10)}"):
        n = ipaddress.ip_network(cand)
        if (n.is_private or n.subnet_of(cgnat)) and not any(n.overlaps(t) for t in taken):
            return cand
    return w


# --------------------------------------------------------------------------- sections

def _dns_section(r: _Reader) -> Any:
    """``dns:``: how the lab's DNS responders behave (probes.lab.dnsspec; docs/scenarios.md)."""
    from .dnsspec import parse_dns_section

    try:
        return parse_dns_section(r.data, r.file)
    except ValueError as e:
        raise ScenarioError(str(e)) from None


SECTIONS["dns"] = _dns_section


def _azure_section(r: _Reader) -> Any:
    """``azure:``: what the lab ARM endpoint serves (probes.lab.azurespec; docs/scenarios.md)."""
    from .azurespec import parse_azure_section

    return parse_azure_section(r)


SECTIONS["azure"] = _azure_section


def _egress_section(r: _Reader) -> Any:
    """``egress:``: how each node sees names and ports (probes.lab.egressspec; docs/scenarios.md)."""
    from .egressspec import parse_egress_section

    try:
        return parse_egress_section(r.data, r.file)
    except ValueError as e:
        raise ScenarioError(str(e)) from None


SECTIONS["egress"] = _egress_section


def _routes_section(r: _Reader) -> Any:
    """``routes:``: the route table and subnet the lab ARM endpoint serves (probes.lab.routespec)."""
    from .routespec import parse_routes_section

    return parse_routes_section(r)


SECTIONS["routes"] = _routes_section
