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
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from .schemabase import UNSET, Doc, M, ScenarioError, UnsetType, show

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


NodeRef = Annotated[int | str, M("a node index, 'pool/N' or a node name")]


class StaleRouteDoc(Doc, rename="camel", kw_only=True):
    next_hop: Annotated[str | int, M("an IP address")] | UnsetType = UNSET
    prefix: Annotated[str, M("a CIDR like 10.244.3.0/24")] | UnsetType = UNSET


class ExtraRouteDoc(Doc, rename="camel", kw_only=True):
    name: Annotated[str | int | float, M("a string", description="[\\w.-]{1,80}")]
    prefix: Annotated[str, M("a CIDR like 10.244.3.0/24")]
    next_hop_type: Annotated[str, M(f"one of {', '.join(HOP_TYPES)}", extra_json_schema={"enum": list(HOP_TYPES)})] = (
        "VirtualAppliance"
    )
    next_hop: Annotated[str | int, M("an IP address", description="needed by VirtualAppliance")] | UnsetType = UNSET


class RoutesDoc(Doc, rename="camel", kw_only=True):
    """The kubenet route table and the node subnet the lab ARM endpoint serves."""

    missing: Annotated[
        list[Annotated[int | str, M(error="expected a node index, 'pool/N' or a node name, got {got}")]],
        M(error="expected a list of node references"),
    ] = []
    stale: Annotated[
        dict[str | int, StaleRouteDoc], M(error="expected a mapping of node reference -> {{nextHop, prefix}}")
    ] = {}
    extra: Annotated[
        list[ExtraRouteDoc], M("a list", description="routes no live node owns (orphans, blackholes)")
    ] = []
    subnet_used_ips: Annotated[int, M("a non-negative integer", ge=0)] = msgspec.field(default=0, name="subnetUsedIPs")
    route_table: Annotated[bool, M("true or false")] = True


def _err(file: str, path: str, msg: str) -> ScenarioError:
    return ScenarioError(f"{file}: {path}: {msg}")


def _ref(file: str, v: Any, path: str) -> int | str:
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    if isinstance(v, str) and v:
        return v
    raise _err(file, path, f"expected a node index, 'pool/N' or a node name, got {v!r}")


def _cidr(file: str, v: Any, path: str) -> str:
    try:
        return str(ipaddress.ip_network(str(v), strict=True))
    except ValueError:
        raise _err(file, path, f"expected a CIDR like 10.244.3.0/24, got {v!r}") from None


def _ip(file: str, v: Any, path: str) -> str:
    try:
        return str(ipaddress.ip_address(str(v)))
    except ValueError:
        raise _err(file, path, f"expected an IP address, got {v!r}") from None


def build_routes_section(doc: RoutesDoc, file: str) -> RoutesLabSpec:
    """The ``routes:`` section of ``file`` (decoded as :class:`RoutesDoc`); errors name the key."""
    missing = tuple(_ref(file, v, "routes.missing") for v in doc.missing)
    stale: list[StaleRoute] = []
    for ref, s in doc.stale.items():
        path = f"routes.stale.{ref}"
        if s.next_hop is UNSET and s.prefix is UNSET:
            raise _err(file, path, "give nextHop and/or prefix")
        stale.append(
            StaleRoute(
                _ref(file, ref, "routes.stale"),
                None if s.next_hop is UNSET else _ip(file, s.next_hop, f"{path}.nextHop"),
                None if s.prefix is UNSET else _cidr(file, s.prefix, f"{path}.prefix"),
            )
        )
    extra: list[ExtraRoute] = []
    for i, e in enumerate(doc.extra):
        path = f"routes.extra[{i}]"
        hop_type = next((c for c in HOP_TYPES if c.lower() == e.next_hop_type.lower()), None)
        if hop_type is None:
            raise _err(
                file, f"{path}.nextHopType", f"expected one of {', '.join(HOP_TYPES)}, got {show(e.next_hop_type)}"
            )
        if hop_type == "VirtualAppliance" and e.next_hop is UNSET:
            raise _err(file, f"{path}.nextHop", "VirtualAppliance needs nextHop")
        name = str(e.name)
        if not re.fullmatch(r"[\w.-]{1,80}", name):
            raise _err(file, f"{path}.name", f"invalid value {name!r} (expected [\\w.-]{{1,80}})")
        extra.append(
            ExtraRoute(
                name,
                _cidr(file, e.prefix, f"{path}.prefix"),
                hop_type,
                "" if e.next_hop is UNSET else _ip(file, e.next_hop, f"{path}.nextHop"),
            )
        )
    return RoutesLabSpec(
        missing=missing,
        stale=tuple(stale),
        extra=tuple(extra),
        subnet_used_ips=doc.subnet_used_ips,
        route_table=doc.route_table,
    )
