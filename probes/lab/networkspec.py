"""The scenario's ``network:`` section: the Azure network path the lab ARM endpoint serves
(NSGs, the subnet's user routes, the VNet's custom DNS servers and peerings, the cluster's
HTTP proxy). Plain data, validated, no sockets. :mod:`probes.lab.arm` serves it in ARM's
shapes; the probes only see those answers (docs/scenarios.md)::

    network:
      nsg:                               # the node resource group's aks-agentpool NSG, on the VMSS NICs
        - {name: deny-mcr-443, priority: 200, access: Deny, protocol: Tcp,
           destination: [name:mcr.microsoft.com], ports: [443]}
      subnetNsg: []                      # rules of an NSG on the node subnet (absent: no subnet NSG)
      dnsServers: [10.50.0.4]            # the VNet's dhcpOptions.dnsServers ([] = Azure DNS)
      peerings:
        - {name: to-hub, state: Disconnected, remoteVnet: hub-vnet, remotePrefixes: [10.50.0.0/16]}
      firewall: 10.50.1.4                # a user route 0.0.0.0/0 → VirtualAppliance at this address
      httpProxy: http://proxy.hub.example:3128   # the managed cluster's httpProxyConfig
      httpsProxy: http://proxy.hub.example:3128
      noProxy: [10.0.0.0/8]
      proxy: forbidden                   # how the lab's CONNECT proxy answers: tunnel (default),
                                         # forbidden (403), auth (407), hang, down (nothing listens)

A proxy named by a DNS name is served on loopback by the lab (probes.lab.connectproxy),
and the agents' egress checks go through it as AKS's injected ``HTTPS_PROXY`` makes pods do;
a proxy given as an IP address is only served in ARM (the lab dials loopback only).

A rule's ``destination``/``source`` items are prefixes, addresses, service tags, or
``name:<fqdn>``: the address the lab's egress DNS answers for that name (what a user would
write after resolving it), so a scenario can deny one of its egress names.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated

import msgspec

from probes.egress.proxy import parse_proxy

from .schemabase import UNSET, Doc, M, ScenarioError, UnsetType, show

ACCESS = ("Allow", "Deny")
DIRECTIONS = ("Inbound", "Outbound")
PROTOCOLS = ("*", "Tcp", "Udp", "Icmp")
STATES = ("Connected", "Initiated", "Disconnected")
PROXY_BEHAVIOURS = ("tunnel", "forbidden", "auth", "hang", "down")


@dataclass(frozen=True, slots=True)
class LabRule:
    name: str
    priority: int
    access: str
    direction: str = "Outbound"
    protocol: str = "*"
    source: tuple[str, ...] = ("*",)
    destination: tuple[str, ...] = ("*",)
    ports: tuple[str, ...] = ("*",)


@dataclass(frozen=True, slots=True)
class LabPeering:
    name: str
    state: str
    remote_vnet: str
    remote_prefixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NetworkLabSpec:
    nsg: tuple[LabRule, ...] = ()
    subnet_nsg: tuple[LabRule, ...] | None = None  # None: no NSG on the subnet
    dns_servers: tuple[str, ...] = ()
    peerings: tuple[LabPeering, ...] = ()
    firewall: str = ""
    http_proxy: str = ""
    https_proxy: str = ""
    no_proxy: tuple[str, ...] = ()
    proxy: str = "tunnel"  # PROXY_BEHAVIOURS: how the lab's CONNECT proxy answers


DEFAULT = NetworkLabSpec()


class RuleDoc(Doc, rename="camel", kw_only=True):
    name: Annotated[str, M("a string", description="[\\w.-]{1,80}")]
    priority: Annotated[int, M("an integer >= 100 <= 4096", ge=100, le=4096)]
    access: Annotated[str, M("Allow or Deny", extra_json_schema={"enum": list(ACCESS)})]
    direction: Annotated[str, M("Inbound or Outbound", extra_json_schema={"enum": list(DIRECTIONS)})] = "Outbound"
    protocol: Annotated[str, M(f"one of {', '.join(PROTOCOLS)}", extra_json_schema={"enum": list(PROTOCOLS)})] = "*"
    source: Annotated[list[str], M("a list of prefixes, addresses, service tags or name:<fqdn>")] = msgspec.field(
        default_factory=lambda: ["*"]
    )
    destination: Annotated[list[str], M("a list of prefixes, addresses, service tags or name:<fqdn>")] = msgspec.field(
        default_factory=lambda: ["*"]
    )
    ports: Annotated[list[str | int], M("a list of ports or ranges like 443 or 8000-8999")] = msgspec.field(
        default_factory=lambda: ["*"]
    )


class PeeringDoc(Doc, rename="camel", kw_only=True):
    name: Annotated[str, M("a string")]
    state: Annotated[str, M(f"one of {', '.join(STATES)}", extra_json_schema={"enum": list(STATES)})] = "Connected"
    remote_vnet: Annotated[str, M("a string", description="the remote VNet's name")] = "hub-vnet"
    remote_prefixes: Annotated[list[str], M("a list of CIDRs")] = []


class NetworkDoc(Doc, rename="camel", kw_only=True):
    """The Azure network path the lab ARM endpoint serves: NSGs, routes, VNet DNS, peerings, proxy."""

    nsg: Annotated[list[RuleDoc], M("a list of NSG rules")] = []
    subnet_nsg: Annotated[list[RuleDoc], M("a list of NSG rules")] | UnsetType = UNSET
    dns_servers: Annotated[list[str], M("a list of IP addresses")] = []
    peerings: Annotated[list[PeeringDoc], M("a list")] = []
    firewall: Annotated[str, M("an IP address", description="0.0.0.0/0 → VirtualAppliance")] = ""
    http_proxy: Annotated[str, M("a URL")] = ""
    https_proxy: Annotated[str, M("a URL")] = ""
    no_proxy: Annotated[list[str], M("a list of strings")] = []
    proxy: Annotated[
        str,
        M(
            f"one of {', '.join(PROXY_BEHAVIOURS)}",
            description="how the lab's CONNECT proxy answers",
            extra_json_schema={"enum": list(PROXY_BEHAVIOURS)},
        ),
    ] = "tunnel"


def _err(file: str, path: str, msg: str) -> ScenarioError:
    return ScenarioError(f"{file}: {path}: {msg}")


def _one_of(file: str, path: str, v: str, allowed: tuple[str, ...]) -> str:
    hit = next((a for a in allowed if a.lower() == v.lower()), None)
    if hit is None:
        raise _err(file, path, f"expected one of {', '.join(allowed)}, got {show(v)}")
    return hit


def _ip(file: str, path: str, v: str) -> str:
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        raise _err(file, path, f"expected an IP address, got {show(v)}") from None


def _proxy_url(file: str, path: str, v: str) -> str:
    if not v:
        return ""
    try:
        parse_proxy(v)
    except ValueError as e:
        raise _err(file, path, str(e)) from None
    return v


def _rules(docs: list[RuleDoc], file: str, path: str) -> tuple[LabRule, ...]:
    out: list[LabRule] = []
    seen: set[tuple[str, int]] = set()
    for i, r in enumerate(docs):
        p = f"{path}[{i}]"
        if not re.fullmatch(r"[\w.-]{1,80}", r.name):
            raise _err(file, f"{p}.name", f"invalid value {r.name!r} (expected [\\w.-]{{1,80}})")
        direction = _one_of(file, f"{p}.direction", r.direction, DIRECTIONS)
        if (direction, r.priority) in seen:
            raise _err(file, f"{p}.priority", f"priority {r.priority} is used twice for {direction}")
        seen.add((direction, r.priority))
        ports = []
        for j, port in enumerate(r.ports):
            s = str(port).strip()
            if s != "*" and not re.fullmatch(r"\d{1,5}(-\d{1,5})?", s):
                raise _err(file, f"{p}.ports[{j}]", f"expected a port or a range like 8000-8999, got {show(port)}")
            ports.append(s)
        out.append(
            LabRule(
                r.name,
                r.priority,
                _one_of(file, f"{p}.access", r.access, ACCESS),
                direction,
                _one_of(file, f"{p}.protocol", r.protocol, PROTOCOLS),
                tuple(r.source) or ("*",),
                tuple(r.destination) or ("*",),
                tuple(ports) or ("*",),
            )
        )
    return tuple(out)


def build_network_section(doc: NetworkDoc, file: str) -> NetworkLabSpec:
    """The ``network:`` section of ``file`` (decoded as :class:`NetworkDoc`); errors name the key."""
    peerings = []
    for i, p in enumerate(doc.peerings):
        for j, c in enumerate(p.remote_prefixes):
            try:
                ipaddress.ip_network(c, strict=True)
            except ValueError:
                raise _err(
                    file, f"network.peerings[{i}].remotePrefixes[{j}]", f"expected a CIDR, got {show(c)}"
                ) from None
        peerings.append(
            LabPeering(
                p.name,
                _one_of(file, f"network.peerings[{i}].state", p.state, STATES),
                p.remote_vnet,
                tuple(p.remote_prefixes),
            )
        )
    return NetworkLabSpec(
        nsg=_rules(doc.nsg, file, "network.nsg"),
        subnet_nsg=None if doc.subnet_nsg is UNSET else _rules(doc.subnet_nsg, file, "network.subnetNsg"),
        dns_servers=tuple(_ip(file, f"network.dnsServers[{i}]", s) for i, s in enumerate(doc.dns_servers)),
        peerings=tuple(peerings),
        firewall=_ip(file, "network.firewall", doc.firewall) if doc.firewall else "",
        http_proxy=_proxy_url(file, "network.httpProxy", doc.http_proxy),
        https_proxy=_proxy_url(file, "network.httpsProxy", doc.https_proxy),
        no_proxy=tuple(doc.no_proxy),
        proxy=_one_of(file, "network.proxy", doc.proxy, PROXY_BEHAVIOURS),
    )


__all__ = [
    "DEFAULT",
    "PROXY_BEHAVIOURS",
    "LabPeering",
    "LabRule",
    "NetworkDoc",
    "NetworkLabSpec",
    "build_network_section",
]
