"""The scenario's ``routes:`` section: what the lab ARM endpoint says about the cluster's
route table and subnet.

Plain data, validated, no sockets. By default the lab's route table mirrors the live
kubenet nodes the way cloud-provider-azure keeps it: one route per node with a pod CIDR
whose ``NetworkUnavailable`` condition is False (name = node name, prefix = pod CIDR,
next hop VirtualAppliance at the node's InternalIP). Nodes a timeline adds get their
route once ``node-route-created`` (or ready) clears the condition; removed nodes lose it.
This section changes that picture as data (docs/scenarios.md)::

    routes:
      missing: [nodepool1/2]           # no route for these nodes (the node still says RouteCreated)
      stale:                           # the route named after the node points elsewhere
        nodepool1/1: {nextHop: 10.224.0.99}          # and/or prefix: 10.244.9.0/24
      extra:                           # routes nobody's node owns: orphans, blackholes, user routes
        - {name: aks-nodepool1-12345678-vmss000009, prefix: 10.244.9.0/24, nextHop: 10.224.0.40}
        - {name: drop-it, prefix: 13.107.42.14/32, nextHopType: None}
      subnetUsedIPs: 0                 # extra IP configurations in the subnet (other NICs, private endpoints)
      routeTable: true                 # false: no route table at all (kubenet without its UDR)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

HOP_TYPES = ("VirtualAppliance", "None", "Internet", "VirtualNetworkGateway", "VnetLocal")


@dataclass(frozen=True, slots=True)
class ExtraRoute:
    name: str
    prefix: str
    next_hop_type: str = "VirtualAppliance"
    next_hop: str = ""


@dataclass(frozen=True, slots=True)
class StaleRoute:
    ref: int | str
    next_hop: str | None = None
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class RoutesLabSpec:
    missing: tuple[int | str, ...] = ()
    stale: tuple[StaleRoute, ...] = ()
    extra: tuple[ExtraRoute, ...] = ()
    subnet_used_ips: int = 0
    route_table: bool = True
    extra_fields: dict[str, Any] = field(default_factory=dict)


DEFAULT = RoutesLabSpec()


def _ref(r: Any, v: Any, key: str) -> int | str:
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    if isinstance(v, str) and v:
        return v
    raise r.error(f"expected a node index, 'pool/N' or a node name, got {v!r}", key)


def _cidr(r: Any, v: Any, key: str) -> str:
    try:
        return str(ipaddress.ip_network(str(v), strict=True))
    except ValueError:
        raise r.error(f"expected a CIDR like 10.244.3.0/24, got {v!r}", key) from None


def _ip(r: Any, v: Any, key: str) -> str:
    try:
        return str(ipaddress.ip_address(str(v)))
    except ValueError:
        raise r.error(f"expected an IP address, got {v!r}", key) from None


def parse_routes_section(r: Any) -> RoutesLabSpec:
    """`r` is the scenario's _Reader over the section; errors are ScenarioError naming the key."""
    missing_raw = r.raw("missing", [])
    if not isinstance(missing_raw, list):
        raise r.error("expected a list of node references", "missing")
    missing = tuple(_ref(r, v, "missing") for v in missing_raw)
    stale: list[StaleRoute] = []
    raw_stale = r.raw("stale", {})
    if not isinstance(raw_stale, dict):
        raise r.error("expected a mapping of node reference -> {nextHop, prefix}", "stale")
    for ref, body in raw_stale.items():
        s = type(r)(r.file, f"{r.sub('stale')}.{ref}", body)
        hop = s.raw("nextHop", None)
        prefix = s.raw("prefix", None)
        if hop is None and prefix is None:
            raise s.error("give nextHop and/or prefix", here=True)
        stale.append(StaleRoute(_ref(r, ref, "stale"), None if hop is None else _ip(s, hop, "nextHop"),
                                None if prefix is None else _cidr(s, prefix, "prefix")))
        s.done()
    extra: list[ExtraRoute] = []
    for i, e in enumerate(r.readers("extra", [])):
        hop_type = e.enum("nextHopType", HOP_TYPES, "VirtualAppliance")
        hop = e.raw("nextHop", None)
        if hop_type == "VirtualAppliance" and hop is None:
            raise e.error("VirtualAppliance needs nextHop", "nextHop")
        extra.append(ExtraRoute(e.str("name", pattern=r"[\w.-]{1,80}"), _cidr(e, e.raw("prefix"), "prefix"), hop_type,
                                "" if hop is None else _ip(e, hop, "nextHop")))
        e.done()
    spec = RoutesLabSpec(missing=missing, stale=tuple(stale), extra=tuple(extra),
                         subnet_used_ips=r.int("subnetUsedIPs", 0), route_table=r.bool("routeTable", True))
    r.done()
    return spec
