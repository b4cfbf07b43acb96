"""Kubenet route tables and the cluster subnet: parsing ARM answers and comparing them with
the nodes. Pure: plain data in, plain data out, no I/O (the fetch is in probes.azure.service).

cloud-provider-azure writes one route per kubenet node: name = node name (dual-stack:
``<node>____<cidr without . : />``), address prefix = the node's pod CIDR, next hop type
VirtualAppliance, next hop IP = the node's InternalIP. :func:`compare` tells, per node,
whether its route is present, missing or stale, and lists orphaned routes (no such node),
blackholes (next hop None), user routes that shadow a pod CIDR, the 0.0.0.0/0 route and
the 400-routes-per-table headroom. For flat Azure CNI, :func:`cni_headroom` compares the
subnet's free addresses with what an upgrade surge needs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_ROUTES = 400  # routes per route table (and so kubenet nodes per cluster)
HEADROOM_WARN = 0.9  # warn at 90 % of MAX_ROUTES
AZURE_RESERVED = 5  # addresses Azure keeps in every subnet


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    prefix: str
    next_hop_type: str  # VirtualAppliance | None | Internet | VirtualNetworkGateway | VnetLocal
    next_hop_ip: str = ""
    table: str = ""


@dataclass(frozen=True, slots=True)
class Subnet:
    id: str
    prefix: str
    ip_configurations: int

    @property
    def size(self) -> int:
        try:
            return ipaddress.ip_network(self.prefix, strict=False).num_addresses
        except ValueError:
            return 0

    @property
    def free(self) -> int:
        return max(self.size - AZURE_RESERVED - self.ip_configurations, 0)


@dataclass(frozen=True, slots=True)
class RouteData:
    """What ARM said about the cluster's route tables and subnet, at `fetched_at`."""

    tables: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    subnet: Subnet | None = None
    outbound_type: str = "loadBalancer"
    max_pods: int = 0  # largest maxPods over the agent pools (0: unknown)
    surge: int = 1  # surge nodes an upgrade adds (pools upgrade one at a time)
    fetched_at: float = 0.0  # wall time
    error: str = ""  # why the route tables could not be read ("" = fine)


@dataclass(frozen=True, slots=True)
class NodeRoute:
    node: str
    state: str  # present | missing | stale | pending (node newer than the table read)
    prefix: str = ""  # the pod CIDR
    expected_next_hop: str = ""
    route: Route | None = None  # the route found under the node's name (stale: what it is)


@dataclass(frozen=True, slots=True)
class RouteCheck:
    nodes: tuple[NodeRoute, ...] = ()
    orphans: tuple[Route, ...] = ()
    blackholes: tuple[tuple[Route, str], ...] = ()  # (route, pod CIDR it covers or "")
    overlaps: tuple[tuple[Route, str, str], ...] = ()  # (user route, pod CIDR, node)
    default_route: Route | None = None
    route_count: int = 0
    by_node: Mapping[str, NodeRoute] = field(default_factory=dict)


# --- parsing (REST shapes, as the SDK models' as_dict() gives them) ----------------------
def _map(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _props(d: Any) -> Mapping[str, Any]:
    d = _map(d)
    p = d.get("properties")
    return p if isinstance(p, Mapping) and p else d  # flat (as_dict()) or REST ("properties")


def _items(v: Any) -> list[Mapping[str, Any]]:
    """The mappings of an ARM list field; anything else in it (or instead of it) is skipped."""
    return [x for x in v if isinstance(x, Mapping)] if isinstance(v, (list, tuple)) else []


def _text(v: Any) -> str:
    return v if isinstance(v, str) else "" if v is None or isinstance(v, (dict, list)) else str(v)


def parse_route_table(d: Mapping[str, Any]) -> tuple[str, list[Route], list[str]]:
    """(table name, routes, subnet ids) from one routeTables resource. Never raises: what is
    not the REST shape is skipped (a route that is not an object) or read as empty text."""
    name = _text(_map(d).get("name", ""))
    p = _props(d)
    routes = []
    for r in _items(p.get("routes")):
        rp = _props(r)
        routes.append(
            Route(
                _text(r.get("name", "")),
                _text(rp.get("addressPrefix", "")),
                _text(rp.get("nextHopType", "")),
                _text(rp.get("nextHopIpAddress") or ""),
                name,
            )
        )
    subnets = [_text(s.get("id")) for s in _items(p.get("subnets")) if _text(s.get("id"))]
    return name, routes, subnets


def parse_subnet(d: Mapping[str, Any]) -> Subnet:
    p = _props(d)
    prefixes = p.get("addressPrefixes")
    first = prefixes[0] if isinstance(prefixes, (list, tuple)) and prefixes else ""
    prefix = _text(p.get("addressPrefix") or first)
    configs = p.get("ipConfigurations")
    return Subnet(_text(_map(d).get("id", "")), prefix, len(configs) if isinstance(configs, (list, tuple)) else 0)


def split_subnet_id(subnet_id: str) -> tuple[str, str, str] | None:
    """(resource group, vnet, subnet) from a subnet resource id."""
    if not isinstance(subnet_id, str):
        return None
    parts = subnet_id.strip("/").split("/")
    low = [x.lower() for x in parts]
    try:
        rg = parts[low.index("resourcegroups") + 1]
        vnet = parts[low.index("virtualnetworks") + 1]
        sub = parts[low.index("subnets") + 1]
    except (ValueError, IndexError):
        return None
    return rg, vnet, sub


def route_name(node: str, cidr: str, dual_stack: bool = False) -> str:
    """cloud-provider-azure's route name for a node's pod CIDR."""
    if not dual_stack:
        return node
    return f"{node}____{cidr.replace('.', '').replace(':', '').replace('/', '')}"


# --- comparison ----------------------------------------------------------------------------
def _net(cidr: str) -> Any:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def compare(data: RouteData, nodes: Iterable[Any]) -> RouteCheck:
    """Per node (NodeInfo-like: name, internal_ip, pod_cidrs, created) and per route."""
    routes = data.routes
    by_name: dict[str, Route] = {}
    for route in routes:
        by_name.setdefault(route.name.lower(), route)
    nodes = [n for n in nodes if n.pod_cidrs]
    node_names = {n.name.lower() for n in nodes}
    owned: set[str] = set()
    out: list[NodeRoute] = []
    pods: list[tuple[Any, str, str]] = []  # (network, cidr, node)
    for n in nodes:
        dual = len(n.pod_cidrs) > 1
        for cidr in n.pod_cidrs:
            net = _net(cidr)
            if net is not None:
                pods.append((net, cidr, n.name))
            if net is not None and net.version == 6 and not dual:
                continue
            name = route_name(n.name, cidr, dual)
            r = by_name.get(name.lower())
            if r is None and dual:
                r = by_name.get(n.name.lower())
            if r is not None:
                owned.add(r.name.lower())
            if r is None:
                created = getattr(n, "created", 0.0) or 0.0
                state = "pending" if data.fetched_at and created > data.fetched_at else "missing"
                out.append(NodeRoute(n.name, state, cidr, n.internal_ip))
            elif (
                _net(r.prefix) != net or r.next_hop_type.lower() != "virtualappliance" or r.next_hop_ip != n.internal_ip
            ):
                out.append(NodeRoute(n.name, "stale", cidr, n.internal_ip, r))
            else:
                out.append(NodeRoute(n.name, "present", cidr, n.internal_ip, r))
    orphans, blackholes, overlaps = [], [], []
    default = None
    for r in routes:
        key = r.name.lower()
        rnet = _net(r.prefix)
        if r.prefix in ("0.0.0.0/0", "::/0"):
            default = default or r
        if key in owned:
            continue
        base = key.split("____", 1)[0]
        looks_node = base.startswith("aks-") and "-vmss" in base and r.next_hop_type.lower() == "virtualappliance"
        if looks_node and base not in node_names:
            orphans.append(r)
            continue
        covered = [
            (cidr, node)
            for net, cidr, node in pods
            if rnet is not None
            and net.version == rnet.version
            and net.overlaps(rnet)
            and rnet.prefixlen >= net.prefixlen
        ]  # as specific as the node route: it wins or ties
        if r.next_hop_type.lower() == "none":
            blackholes.append((r, covered[0][0] if covered else ""))
        elif covered:
            for cidr, node in covered[:1]:
                overlaps.append((r, cidr, node))
    return RouteCheck(
        tuple(out),
        tuple(orphans),
        tuple(blackholes),
        tuple(overlaps),
        default,
        len(routes),
        {nr.node: nr for nr in out},
    )


def cni_headroom(subnet: Subnet | None, max_pods: int, surge: int) -> tuple[int, int] | None:
    """(free addresses, addresses an upgrade surge needs) for flat Azure CNI, when known."""
    if subnet is None or max_pods <= 0 or subnet.size == 0:
        return None
    return subnet.free, (max_pods + 1) * max(surge, 1)


def routes_json(data: RouteData | None, nodes: Sequence[Any], kubenet: bool = True) -> dict[str, Any]:
    """The `observations.routes` block of `aksnet-top check --output json` (per-node states
    only for kubenet: other plugins need no route per node)."""
    if data is None:
        return {
            "state": "unknown",
            "error": "",
            "tables": [],
            "route_count": 0,
            "max_routes": MAX_ROUTES,
            "routes": [],
            "nodes": [],
            "subnet": None,
        }
    chk = compare(data, nodes if kubenet and not data.error else ())
    orphan = {r.name for r in chk.orphans}
    black = {r.name for r, _ in chk.blackholes}
    return {
        "state": "error" if data.error else "ok",
        "error": data.error,
        "tables": list(data.tables),
        "route_count": chk.route_count,
        "max_routes": MAX_ROUTES,
        "routes": [
            {
                "table": r.table,
                "name": r.name,
                "prefix": r.prefix,
                "next_hop_type": r.next_hop_type,
                "next_hop_ip": r.next_hop_ip or None,
                "kind": "orphan" if r.name in orphan else "blackhole" if r.name in black else "route",
            }
            for r in data.routes
        ],
        "nodes": [
            {
                "node": nr.node,
                "state": nr.state,
                "prefix": nr.prefix,
                "expected_next_hop": nr.expected_next_hop,
                "route_prefix": nr.route.prefix if nr.route else None,
                "route_next_hop": nr.route.next_hop_ip if nr.route else None,
            }
            for nr in chk.nodes
        ],
        "subnet": None
        if data.subnet is None
        else {
            "id": data.subnet.id,
            "prefix": data.subnet.prefix,
            "ip_configurations": data.subnet.ip_configurations,
            "free": data.subnet.free,
        },
    }
