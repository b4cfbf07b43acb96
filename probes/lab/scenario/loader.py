"""Loading a scenario: find the file (a built-in name or a path), read the YAML, check it
against the schema (:mod:`.schema`), then build the :class:`~.model.Scenario` and check
what needs more than one key (CIDRs inside each other, patterns, unique names, node
references). Every error is one line naming the file and the key path.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import yaml

from ..azurespec import build_azure_section
from ..dnsspec import parse_dns_section
from ..egressspec import parse_egress_section
from ..gatewayspec import build_gateway_section
from ..ingressspec import build_ingress_section
from ..networkspec import build_network_section
from ..policyspec import build_policy_section
from ..routespec import build_routes_section
from ..schemabase import UNSET, show
from .model import (
    ALL_ACTIONS,
    DATAPLANES,
    PLUGINS,
    ClusterSpec,
    CoreDNSSpec,
    EventSpec,
    NodeOverride,
    PoolSpec,
    PortSpec,
    Scenario,
    ScenarioError,
    ServiceSpec,
    TimedEvent,
    parse_duration,
)
from .scaling import generator_notes, scale_document
from .schema import (
    ClusterDoc,
    CoreDNSDoc,
    NodeAddDoc,
    NodeNotReadyDoc,
    NodeOverrideDoc,
    PodEventDoc,
    PoolDoc,
    ScenarioDoc,
    ServiceDoc,
    ServiceExternalIPDoc,
    TimelineEventDoc,
    decode,
)

__all__ = ["SECTIONS", "builtin_names", "load_scenario", "parse_scenario"]


class _Where:
    """File and key path of one mapping, for errors raised while building."""

    __slots__ = ("file", "path")

    def __init__(self, file: str, path: str):
        self.file, self.path = file, path

    def error(self, msg: str, key: str | None = None) -> ScenarioError:
        where = f"{self.path}.{key}" if key and self.path else key or self.path
        return ScenarioError(f"{self.file}: {where}: {msg}" if where else f"{self.file}: {msg}")

    def text(self, v: Any, key: str, pattern: str | None = None) -> str:
        s = str(v)
        if pattern and not re.fullmatch(pattern, s):
            raise self.error(f"invalid value {s!r} (expected {pattern})", key)
        return s

    def choice(self, v: str, key: str, choices: tuple[str, ...]) -> str:
        for c in choices:
            if v.lower() == c.lower():
                return c
        raise self.error(f"expected one of {', '.join(choices)}, got {show(v)}", key)

    def duration(self, v: Any, key: str) -> float:
        try:
            return parse_duration(v)
        except ValueError:
            raise self.error(
                f"expected a duration like 30s, 5m, 2h or 3d (at most 3650d), got {show(v)}", key
            ) from None

    def net(self, v: Any, key: str) -> ipaddress.IPv4Network:
        try:
            n = ipaddress.ip_network(str(v), strict=True)
        except ValueError:
            raise self.error(f"expected an IPv4 CIDR like 10.244.0.0/16, got {show(v)}", key) from None
        if not isinstance(n, ipaddress.IPv4Network):
            raise self.error(f"only IPv4 CIDRs are supported, got {show(v)}", key)
        return n

    def ip(self, v: Any, key: str) -> ipaddress.IPv4Address:
        try:
            return ipaddress.IPv4Address(str(v))
        except ValueError:
            raise self.error(f"expected an IPv4 address, got {show(v)}", key) from None

    def node_ref(self, v: Any, key: str) -> int | str:
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            return v
        if isinstance(v, str) and v:
            return v
        raise self.error(f"expected a node index, 'pool/N' or a node name, got {show(v)}", key)


def _str_map(m: dict[str, Any]) -> dict[str, str]:
    return {k: ("true" if x is True else "false" if x is False else str(x)) for k, x in m.items()}


# --------------------------------------------------------------------------- sections


def _cluster(d: ClusterDoc, w: _Where) -> ClusterSpec:
    name = w.text(d.name, "name", r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}")
    rg = w.text(d.resource_group, "resourceGroup", r"[\w.()-]{1,90}")
    location = w.text(d.location, "location", r"[a-z0-9]+")
    plugin = w.choice(d.network_plugin, "networkPlugin", PLUGINS)
    dataplane = w.choice(d.network_dataplane, "networkDataplane", DATAPLANES)
    if dataplane == "cilium" and plugin == "kubenet":
        raise w.error("the cilium dataplane needs networkPlugin azure or azure-overlay", "networkDataplane")
    if d.pod_cidr is UNSET:
        pod_cidr = None if plugin == "azure" else ipaddress.IPv4Network("10.244.0.0/16")
    else:
        pod_cidr = w.net(d.pod_cidr, "podCidr")
    if plugin == "azure" and pod_cidr is not None:
        raise w.error("flat Azure CNI takes pod IPs from the subnet: remove podCidr", "podCidr")
    service_cidr = w.net(d.service_cidr, "serviceCidr")
    dns_ip = service_cidr[10] if d.dns_service_ip is UNSET else w.ip(d.dns_service_ip, "dnsServiceIP")
    if dns_ip not in service_cidr:
        raise w.error(f"{dns_ip} is not inside serviceCidr {service_cidr}", "dnsServiceIP")
    vnet = w.net(d.vnet_cidr, "vnetCidr")
    subnet = w.net(d.subnet_cidr, "subnetCidr")
    if not subnet.subnet_of(vnet):
        raise w.error(f"{subnet} is not inside vnetCidr {vnet}", "subnetCidr")
    if subnet.prefixlen > 29:
        raise w.error("subnet too small (Azure reserves 5 addresses)", "subnetCidr")
    for key, net in (("podCidr", pod_cidr), ("serviceCidr", service_cidr)):
        if net is not None and net.overlaps(vnet):
            raise w.error(f"{net} overlaps vnetCidr {vnet}", key)
    if pod_cidr is not None and pod_cidr.overlaps(service_cidr):
        raise w.error(f"{pod_cidr} overlaps serviceCidr {service_cidr}", "podCidr")
    return ClusterSpec(
        name=name,
        subscription_id=w.text(d.subscription_id, "subscriptionId", r"[0-9a-fA-F-]{36}"),
        resource_group=rg,
        location=location,
        node_resource_group=(
            f"MC_{rg}_{name}_{location}" if d.node_resource_group is UNSET else str(d.node_resource_group)
        ),
        kubernetes_version=w.text(d.kubernetes_version, "kubernetesVersion", r"\d+\.\d+\.\d+"),
        network_plugin=plugin,
        network_dataplane=dataplane,
        pod_cidr=pod_cidr,
        service_cidr=service_cidr,
        dns_service_ip=dns_ip,
        vnet_cidr=vnet,
        subnet_cidr=subnet,
        node_local_dns=d.node_local_dns,
        local_dns=d.local_dns,
        node_image_version=str(d.node_image_version),
        age=w.duration(d.age, "age"),
        node_local_dns_ip=w.ip(d.node_local_dns_ip, "nodeLocalDNSIP"),
    )


def _pool(d: PoolDoc, w: _Where) -> PoolSpec:
    if not all(str(z) in ("1", "2", "3") for z in d.zones):
        raise w.error(f"expected a list of zones from 1, 2, 3, got {show(d.zones)}", "zones")
    return PoolSpec(
        # AKS: lowercase letters and digits, starting with a letter, 1-12 chars
        name=w.text(d.name, "name", r"[a-z][a-z0-9]{0,11}"),
        mode=w.choice(d.mode, "mode", ("System", "User", "Gateway")),
        count=d.count,
        vm_size=w.text(d.vm_size, "vmSize", r"Standard_\w+"),
        zones=tuple(str(z) for z in d.zones),
        max_pods=d.max_pods,
        os_sku=w.choice(d.os_sku, "osSku", ("Ubuntu", "AzureLinux", "Windows2019", "Windows2022")),
        kubelet_version=(
            None if d.kubelet_version is UNSET else w.text(d.kubelet_version, "kubeletVersion", r"\d+\.\d+\.\d+")
        ),
        vm_type=w.choice(d.type, "type", ("VirtualMachineScaleSets", "AvailabilitySet")),
    )


def _ready_value(v: Any, w: _Where, key: str) -> str:
    if v is True or v == "True":
        return "True"
    if v is False or v == "False":
        return "False"
    if isinstance(v, str) and v.lower() == "unknown":
        return "Unknown"
    raise w.error(f"expected true, false or unknown, got {show(v)}", key)


def _node_override(d: NodeOverrideDoc, w: _Where) -> NodeOverride:
    if (d.name is UNSET) == (d.index is UNSET):
        raise w.error("give exactly one of name ('pool/N' or a node name) or index")
    key, ref = ("name", d.name) if d.name is not UNSET else ("index", d.index)
    return NodeOverride(
        ref=w.node_ref(ref, key),
        ready=_ready_value(d.ready, w, "ready"),
        reason=None if d.reason is UNSET else str(d.reason),
        message=None if d.message is UNSET else str(d.message),
        cordoned=d.cordoned,
        network_unavailable=d.network_unavailable,
        node_local_dns_ready=d.node_local_dns_ready,
        age=None if d.age is UNSET else w.duration(d.age, "age"),
        kubelet_version=(
            None if d.kubelet_version is UNSET else w.text(d.kubelet_version, "kubeletVersion", r"\d+\.\d+\.\d+")
        ),
        ip=None if d.ip is UNSET else w.ip(d.ip, "ip"),
    )


def _coredns(d: CoreDNSDoc | Any, w: _Where) -> CoreDNSSpec:
    if d is UNSET:
        return CoreDNSSpec()
    ready = d.replicas if d.ready is UNSET else d.ready
    if ready > d.replicas:
        raise w.error(f"ready ({ready}) cannot exceed replicas ({d.replicas})", "ready")
    return CoreDNSSpec(d.replicas, ready)


_DNS1123 = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"


def _service(d: ServiceDoc, w: _Where, cluster: ClusterSpec) -> ServiceSpec:
    ports = []
    for i, p in enumerate(d.ports):
        pw = _Where(w.file, f"{w.path}.ports[{i}]")
        ports.append(
            PortSpec(
                port=p.port,
                protocol=pw.choice(p.protocol, "protocol", ("TCP", "UDP", "SCTP")),
                target_port=None if p.target_port is UNSET else p.target_port,
                name=None if p.name is UNSET else pw.text(p.name, "name", _DNS1123),
                node_port=None if p.node_port is UNSET else p.node_port,
            )
        )
    if not ports:
        raise w.error("a service needs at least one port", "ports")
    stype = w.choice(d.type, "type", ("ClusterIP", "LoadBalancer", "NodePort"))
    ext: Any = ("pending" if stype == "LoadBalancer" else None) if d.external_ip is UNSET else d.external_ip
    if ext is not None:
        if stype != "LoadBalancer":
            raise w.error("only LoadBalancer services have an externalIP", "externalIP")
        if ext == "pending":
            ext = None
        else:
            try:
                ext = str(ipaddress.IPv4Address(str(ext)))
            except ValueError:
                raise w.error(f"expected an IPv4 address or 'pending', got {show(ext)}", "externalIP") from None
    cip = None if d.cluster_ip is UNSET else w.ip(d.cluster_ip, "clusterIP")
    if cip is not None and cip not in cluster.service_cidr:
        raise w.error(f"{cip} is not inside serviceCidr {cluster.service_cidr}", "clusterIP")
    events = []
    for i, e in enumerate(d.events):
        ew = _Where(w.file, f"{w.path}.events[{i}]")
        events.append(
            EventSpec(
                reason=str(e.reason),
                message=str(e.message),
                type=ew.choice(e.type, "type", ("Normal", "Warning")),
                count=e.count,
                component=str(e.component),
            )
        )
    return ServiceSpec(
        namespace=w.text(d.namespace, "namespace", _DNS1123),
        name=w.text(d.name, "name", _DNS1123),
        type=stype,
        ports=tuple(ports),
        selector=_str_map(d.selector),
        cluster_ip=cip,
        external_ip=ext,
        internal=d.internal,
        labels=_str_map(d.labels),
        annotations=_str_map(d.annotations),
        events=tuple(events),
    )


def _event(d: TimelineEventDoc, w: _Where, pool_names: set[str]) -> TimedEvent:
    action = type(d).__struct_config__.tag
    assert isinstance(action, str) and action in ALL_ACTIONS
    at = w.duration(d.at, "at")
    kw: dict[str, Any] = {}
    if isinstance(d, NodeAddDoc):
        kw["pool"] = str(d.pool)
        if kw["pool"] not in pool_names:
            raise w.error(f"unknown pool {kw['pool']!r} (pools: {', '.join(sorted(pool_names))})", "pool")
        kw["ready"] = d.ready
    elif isinstance(d, ServiceExternalIPDoc):
        kw["service"] = w.text(d.service, "service", rf"{_DNS1123}/{_DNS1123}")
        ip = d.ip
        if ip is not None:
            try:
                ip = str(ipaddress.IPv4Address(str(ip)))
            except ValueError:
                raise w.error(f"expected an IPv4 address or null, got {show(ip)}", "ip") from None
        kw["ip"] = ip
    elif isinstance(d, PodEventDoc):
        kw["pod"] = str(d.pod)
        allowed = {"action", "at", "pod"}
        if kw["pod"] == "node-local-dns":
            allowed.add("node")
            if d.node is UNSET:
                raise w.error("required key is missing", "node")
            kw["node"] = w.node_ref(d.node, "node")
        elif kw["pod"] == "coredns":
            allowed.add("index")
            kw["index"] = 0 if d.index is UNSET else d.index
        for key in ("node", "index"):
            if key not in allowed and getattr(d, key) is not UNSET:
                raise w.error(f"unknown key (allowed: {', '.join(sorted(allowed))})", key)
    else:  # a node event
        kw["node"] = w.node_ref(d.node, "node")  # type: ignore[attr-defined]
        if isinstance(d, NodeNotReadyDoc):
            kw["reason"] = None if d.reason is UNSET else str(d.reason)
            kw["message"] = None if d.message is UNSET else str(d.message)
            if d.status not in ("False", "Unknown", False):
                raise w.error(f"expected False or Unknown, got {show(d.status)}", "status")
            kw["ready"] = False
            kw["pod"] = "Unknown" if d.status == "Unknown" else None  # reuse slot: condition status
    return TimedEvent(at=at, action=action, **kw)


# Extra top-level sections: name -> builder(decoded section, file name) -> Scenario.extra[name]
SECTIONS: dict[str, Callable[[Any, str], Any]] = {
    "dns": lambda doc, file: _plain(parse_dns_section, doc, file),
    "azure": build_azure_section,
    "egress": lambda doc, file: _plain(parse_egress_section, doc, file),
    "routes": build_routes_section,
    "network": build_network_section,
    "policies": build_policy_section,
    "ingress": build_ingress_section,
    "egress_gateway": build_gateway_section,
}


def _plain(parse: Callable[[Any, str], Any], data: Any, file: str) -> Any:
    try:
        return parse(data, file)
    except ValueError as e:
        if isinstance(e, ScenarioError):
            raise
        raise ScenarioError(str(e)) from None


# --------------------------------------------------------------------------- the file


def parse_scenario(data: Any, source: str = "<scenario>", name: str | None = None) -> Scenario:
    """Validate a decoded YAML document. ``source`` is the file name used in messages."""
    doc: ScenarioDoc = decode(data, source)
    top = _Where(source, "")
    cluster = _cluster(doc.cluster, _Where(source, "cluster"))
    pools = tuple(_pool(p, _Where(source, f"pools[{i}]")) for i, p in enumerate(doc.pools))
    if not pools:
        raise top.error("at least one pool is required", "pools")
    seen: set[str] = set()
    for i, p in enumerate(pools):
        if p.name in seen:
            raise ScenarioError(f"{source}: pools[{i}].name: duplicate pool name {p.name!r}")
        seen.add(p.name)
    if not any(p.mode == "System" for p in pools):
        raise ScenarioError(f"{source}: pools: AKS needs at least one pool with mode: System")
    for i, p in enumerate(pools):
        if p.windows and (p.mode == "System" or len(p.name) > 6 or p.vmas or cluster.network_plugin == "kubenet"):
            raise ScenarioError(
                f"{source}: pools[{i}]: a Windows pool is a User pool of a VMSS, named in at most 6 characters, "
                "on Azure CNI (AKS's rules)"
            )
        if p.vmas and len(pools) > 1:
            raise ScenarioError(f"{source}: pools[{i}]: an AvailabilitySet cluster has exactly one pool")
    overrides = tuple(_node_override(o, _Where(source, f"nodes[{i}]")) for i, o in enumerate(doc.nodes))
    coredns = _coredns(doc.coredns, _Where(source, "coredns"))
    services = tuple(_service(s, _Where(source, f"services[{i}]"), cluster) for i, s in enumerate(doc.services))
    keys = set()
    for i, s in enumerate(services):
        if (s.namespace, s.name) in keys or (s.namespace, s.name) in (
            ("default", "kubernetes"),
            ("kube-system", "kube-dns"),
            ("kube-system", "metrics-server"),
        ):
            raise ScenarioError(f"{source}: services[{i}].name: duplicate service {s.namespace}/{s.name}")
        keys.add((s.namespace, s.name))
    timeline = tuple(
        sorted(
            (_event(e, _Where(source, f"timeline[{i}]"), seen) for i, e in enumerate(doc.timeline)), key=lambda e: e.at
        )
    )
    extra = {}
    for k, build in SECTIONS.items():
        section = getattr(doc, k, UNSET)
        if section is not UNSET:
            extra[k] = build(section, source)
    sc = Scenario(
        name=name or (os.path.splitext(os.path.basename(source))[0] if doc.name is UNSET else str(doc.name)),
        source=source,
        cluster=cluster,
        pools=pools,
        overrides=overrides,
        coredns=coredns,
        services=services,
        timeline=timeline,
        description=str(doc.description),
        extra=extra,
        notes=generator_notes(data, cluster.network_plugin, sum(p.count for p in pools)),
    )
    sc.nodes()  # validates overrides and address room now, with the file name
    return sc


def builtin_names() -> list[str]:
    d = resources.files("probes.lab").joinpath("scenarios")
    return sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".yaml"))


def _read_source(name_or_path: str) -> tuple[str, str, str]:
    """-> (text, file name for messages, scenario name)."""
    looks_like_path = os.sep in name_or_path or name_or_path.endswith((".yaml", ".yml"))
    if not looks_like_path and re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name_or_path):
        res = resources.files("probes.lab").joinpath("scenarios", f"{name_or_path}.yaml")
        if res.is_file():
            return res.read_text("utf-8"), f"{name_or_path}.yaml", name_or_path
        if not os.path.exists(name_or_path):
            raise ScenarioError(
                f"unknown scenario {name_or_path!r}: built-ins are "
                f"{', '.join(builtin_names())}, or give a path to a .yaml file"
            )
    try:
        with open(name_or_path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ScenarioError(f"{name_or_path}: cannot read scenario: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ScenarioError(f"{name_or_path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except ValueError as e:  # a path with a NUL byte
        raise ScenarioError(f"{name_or_path!r}: cannot read scenario: {e}") from None
    base = os.path.basename(name_or_path)
    return text, base, os.path.splitext(base)[0]


def read_document(name_or_path: str) -> tuple[Any, str, str]:
    """The YAML document of a scenario -> (data, file name for messages, scenario name)."""
    text, source, stem = _read_source(name_or_path)
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        what = " ".join(str(getattr(e, "problem", None) or e).split())  # a ReaderError's text has line breaks
        raise ScenarioError(f"{source}: {where}invalid YAML: {what}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: invalid YAML: lists or mappings nested too deeply") from None
    return data, source, stem


def load_scenario(name_or_path: str, nodes: int | None = None) -> Scenario:
    """Load a built-in scenario by name or a YAML file by path.

    ``nodes=N`` rescales the pools to N nodes in total (system pools keep a realistic
    share: 3 nodes up to 100 nodes, then about 3%); per-node overrides keep applying by
    reference. If the pod CIDR or the subnet cannot hold N nodes, the prefix is widened
    (same base address) and a note is recorded in ``Scenario.notes``.
    """
    data, source, stem = read_document(name_or_path)
    name = None if isinstance(data, dict) and "name" in data else stem
    if nodes is None:
        return parse_scenario(data, source, name)
    if isinstance(nodes, bool) or not isinstance(nodes, int) or not 1 <= nodes <= 5000:
        raise ScenarioError(f"{source}: --nodes: expected 1..5000, got {nodes!r}")
    return parse_scenario(scale_document(data, nodes), source, name)
