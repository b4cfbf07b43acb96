"""The next hop of a destination from the node subnet, the way Network Watcher's next hop
answers it, without calling it.

Pure: plain data in, plain data out, no I/O.

Azure picks the route with the longest prefix that covers the destination; between a
user-defined route and a system route of the same prefix the user route wins. The
system routes of a subnet: the VNet's address space (``VnetLocal``), each connected
peering's remote space (``VNetPeering``), the private ranges Azure drops unless a VNet
uses them (10/8, 172.16/12, 192.168/16, 100.64/10 → ``None``), and ``0.0.0.0/0`` →
``Internet``. A peering that is not ``Connected`` adds no route: its space then falls to
the ``None`` ranges or the default route.

Results are cached per route-table version (the table's etag) and VNet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from probes.azure.nsg import PRIVATE_NONE
from probes.azure.routes import Route

HOP_TYPES = ("VirtualAppliance", "Internet", "None", "VnetLocal", "VirtualNetworkGateway", "VNetPeering")
_CACHE_MAX = 16
_RESULTS_MAX = 50_000


@dataclass(frozen=True, slots=True)
class Hop:
    type: str  # one of HOP_TYPES
    ip: str = ""  # VirtualAppliance: the appliance (firewall) address
    prefix: str = ""  # the route that decided
    route: str = ""  # its name ("" for a system route)
    source: str = "Default"  # User | Default (system)

    def describe(self) -> str:
        via = f" {self.ip}" if self.ip else ""
        what = f"user route {self.route}" if self.source == "User" else "system route"
        return f"{self.type}{via} ({what} {self.prefix})"


@dataclass(frozen=True, slots=True)
class RouteSpace:
    """A subnet's routes: the user routes of its table and the VNet's system routes."""

    user: tuple[Route, ...] = ()
    vnet: tuple[str, ...] = ()  # the VNet's address space
    peered: tuple[str, ...] = ()  # connected peerings' remote address spaces
    version: str = ""  # the route table's etag ("" = keyed on the routes)

    def system(self) -> tuple[Route, ...]:
        out = [Route("", p, "VnetLocal") for p in self.vnet]
        out += [Route("", p, "VNetPeering") for p in self.peered]
        out += [Route("", p, "None") for p in PRIVATE_NONE]
        out += [Route("", "0.0.0.0/0", "Internet"), Route("", "::/0", "Internet")]
        return tuple(out)


_Table = list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int, Route, bool]]
_TABLES: dict[tuple[object, ...], tuple[_Table, dict[str, Hop]]] = {}


def _compile(space: RouteSpace) -> tuple[_Table, dict[str, Hop]]:
    key: tuple[object, ...] = (space.version or space.user, space.vnet, space.peered)
    hit = _TABLES.get(key)
    if hit is not None:
        return hit
    table: _Table = []
    for user, routes in ((True, space.user), (False, space.system())):
        for r in routes:
            try:
                net = ipaddress.ip_network(r.prefix.strip(), strict=False)
            except ValueError:
                continue
            table.append((net, net.prefixlen, r, user))
    # longest prefix first; at the same length the user route first
    table.sort(key=lambda t: (-t[1], not t[3]))
    if len(_TABLES) >= _CACHE_MAX:
        _TABLES.pop(next(iter(_TABLES)))
    out = _TABLES[key] = (table, {})
    return out


def next_hop(destination: str, space: RouteSpace) -> Hop:
    """The hop a packet from the subnet to `destination` takes. An address that does not
    parse has no route (type None, prefix "")."""
    table, results = _compile(space)
    hit = results.get(destination)
    if hit is not None:
        return hit
    try:
        ip = ipaddress.ip_address(destination.strip())
    except ValueError:
        return Hop("None", prefix="", route="", source="Default")
    hop = Hop("None")
    for net, _, r, user in table:
        if net.version == ip.version and ip in net:
            hop = Hop(r.next_hop_type, r.next_hop_ip, str(net), r.name if user else "", "User" if user else "Default")
            break
    if len(results) < _RESULTS_MAX:
        results[destination] = hop
    return hop


def default_route(space: RouteSpace) -> Hop:
    """Where 0.0.0.0/0 goes: a user route (a firewall for userDefinedRouting) or Internet."""
    for r in space.user:
        if r.prefix.strip() == "0.0.0.0/0":
            return Hop(r.next_hop_type, r.next_hop_ip, "0.0.0.0/0", r.name, "User")
    return Hop("Internet", prefix="0.0.0.0/0")


def covering(prefixes: Sequence[str], ip: str) -> str:
    """The first of `prefixes` that covers `ip`, or ""."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    for p in prefixes:
        try:
            n = ipaddress.ip_network(p, strict=False)
        except ValueError:
            continue
        if n.version == a.version and a in n:
            return p
    return ""


__all__ = ["HOP_TYPES", "Hop", "RouteSpace", "covering", "default_route", "next_hop"]
