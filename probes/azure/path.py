"""The Azure network path of the nodes: what ARM says about the node subnet's NSGs, route
table, VNet (custom DNS servers, peerings) and the cluster's HTTP proxy, and what that
means for one flow from one node (NIC NSG → subnet NSG → route → outbound → destination).

Pure: plain data in, plain data out, no I/O (the reads are in probes.azure.pathread).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probes.azure.nexthop import Hop, RouteSpace, covering, default_route, next_hop
from probes.azure.nsg import Flow, Nsg, NsgPath, TagSpace, evaluate_path
from probes.azure.routes import Route, parse_route_table

_VMSS = re.compile(r"/virtualMachineScaleSets/([^/]+)", re.I)
AZURE_DNS = "168.63.129.16"


@dataclass(frozen=True, slots=True)
class Peering:
    name: str
    state: str  # Connected | Initiated | Disconnected
    remote_vnet: str = ""  # the remote VNet's resource id
    remote_prefixes: tuple[str, ...] = ()
    sync: str = ""  # peeringSyncLevel: FullyInSync | LocalNotInSync | RemoteNotInSync …

    @property
    def connected(self) -> bool:
        return self.state.lower() == "connected"

    @property
    def remote_name(self) -> str:
        return self.remote_vnet.rstrip("/").rsplit("/", 1)[-1] or self.name


@dataclass(frozen=True, slots=True)
class PathData:
    """What ARM said about the nodes' network path, at `fetched_at` (wall time)."""

    subnet_id: str = ""
    subnet_prefix: str = ""
    vnet_id: str = ""
    vnet_prefixes: tuple[str, ...] = ()
    dns_servers: tuple[str, ...] = ()  # the VNet's dhcpOptions.dnsServers; () = Azure DNS
    peerings: tuple[Peering, ...] = ()
    subnet_nsg: Nsg | None = None
    nic_nsgs: tuple[tuple[str, Nsg], ...] = ()  # (VMSS name, lower-cased, NSG on its NIC configuration)
    route_table: str = ""  # the subnet's route table name ("" = none)
    routes: tuple[Route, ...] = ()  # its user routes
    route_version: str = ""  # the route table's etag
    outbound_type: str = ""
    http_proxy: str = ""  # httpProxyConfig.httpProxy
    https_proxy: str = ""  # httpProxyConfig.httpsProxy
    no_proxy: tuple[str, ...] = ()
    fetched_at: float = 0.0
    error: str = ""  # why the path could not be read at all ("" = fine)
    notes: tuple[str, ...] = ()  # parts that could not be read (a permission), shown as info

    # --- what the evaluators need ---------------------------------------------------
    def tags(self) -> TagSpace:
        return TagSpace(
            vnet=self.vnet_prefixes,
            peered=tuple(p for pr in self.peerings if pr.connected for p in pr.remote_prefixes),
            user_routes=tuple(r.prefix for r in self.routes),
        )

    def route_space(self) -> RouteSpace:
        return RouteSpace(
            user=self.routes,
            vnet=self.vnet_prefixes,
            peered=tuple(p for pr in self.peerings if pr.connected for p in pr.remote_prefixes),
            version=self.route_version,
        )

    def nic_nsg(self, provider_id: str) -> Nsg | None:
        """The NSG on the node's VMSS NIC configuration (from its providerID's VMSS name)."""
        vmss = vmss_of(provider_id)
        for name, nsg in self.nic_nsgs:
            if name == vmss or name == "*":
                return nsg
        return None

    @property
    def proxy(self) -> str:
        return self.https_proxy or self.http_proxy


def vmss_of(provider_id: str) -> str:
    m = _VMSS.search(provider_id or "")
    return m.group(1).lower() if m else ""


# --- parsing (REST shapes, as the SDK models' as_dict() gives them) ----------------------
def _props(d: Mapping[str, Any]) -> Mapping[str, Any]:
    p = d.get("properties")
    return p if isinstance(p, Mapping) else d


def _id(ref: Any) -> str:
    return str(ref.get("id", "")) if isinstance(ref, Mapping) else ""


@dataclass(frozen=True, slots=True)
class VnetInfo:
    id: str
    prefixes: tuple[str, ...]
    dns_servers: tuple[str, ...]
    peerings: tuple[Peering, ...]
    subnets: Mapping[str, tuple[str, str, str]]  # subnet id (lower) -> (prefix, NSG id, route table id)


def parse_vnet(d: Mapping[str, Any]) -> VnetInfo:
    p = _props(d)
    space = p.get("addressSpace") or {}
    dhcp = p.get("dhcpOptions") or {}
    peerings = []
    for x in p.get("virtualNetworkPeerings") or ():
        xp = _props(x)
        remote = xp.get("remoteAddressSpace") or xp.get("remoteVirtualNetworkAddressSpace") or {}
        peerings.append(
            Peering(
                str(x.get("name", "")),
                str(xp.get("peeringState") or ""),
                _id(xp.get("remoteVirtualNetwork")),
                tuple(str(a) for a in remote.get("addressPrefixes") or ()),
                str(xp.get("peeringSyncLevel") or ""),
            )
        )
    subnets: dict[str, tuple[str, str, str]] = {}
    for s in p.get("subnets") or ():
        sp = _props(s)
        prefix = str(sp.get("addressPrefix") or next(iter(sp.get("addressPrefixes") or ()), ""))
        subnets[str(s.get("id", "")).lower()] = (
            prefix,
            _id(sp.get("networkSecurityGroup")),
            _id(sp.get("routeTable")),
        )
    return VnetInfo(
        str(d.get("id", "")),
        tuple(str(a) for a in space.get("addressPrefixes") or ()),
        tuple(str(a) for a in dhcp.get("dnsServers") or ()),
        tuple(peerings),
        subnets,
    )


def parse_routes(d: Mapping[str, Any]) -> tuple[str, tuple[Route, ...], str]:
    """(name, user routes, etag) of one routeTables resource."""
    name, routes, _ = parse_route_table(d)
    return name, tuple(routes), str(d.get("etag") or "")


def nic_nsgs_of(nsgs: Sequence[Nsg]) -> tuple[tuple[str, Nsg], ...]:
    """(VMSS name, NSG) for every NSG whose associations include a VMSS instance's NIC."""
    out: dict[str, Nsg] = {}
    for g in nsgs:
        for nic in g.nics:
            vmss = vmss_of(nic)
            if vmss:
                out.setdefault(vmss, g)
    return tuple(sorted(out.items()))


# --- one flow, from one node ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Step:
    """One hop of the path view: what decides there and its verdict."""

    what: str  # "NIC NSG", "subnet NSG", "route", "outbound", "destination"
    detail: str
    verdict: str  # allow | deny | unknown | info


def verdict(path: PathData, source: str, provider_id: str, flow: Flow) -> NsgPath:
    """Both NSGs' verdict for `flow` from the node (its NIC NSG by VMSS, then the subnet's)."""
    return evaluate_path(path.nic_nsg(provider_id), path.subnet_nsg, flow, path.tags())


def hop(path: PathData, destination: str) -> Hop:
    return next_hop(destination, path.route_space())


def outbound(path: PathData) -> str:
    """How traffic to the Internet leaves: the firewall/appliance, the NAT gateway or the LB."""
    d = default_route(path.route_space())
    if d.type == "VirtualAppliance":
        return f"firewall/appliance {d.ip} (user route {d.route})"
    if d.type == "None":
        return f"nothing: user route {d.route} sends 0.0.0.0/0 to None"
    return {
        "managedNATGateway": "the managed NAT gateway",
        "userAssignedNATGateway": "the subnet's NAT gateway",
        "userDefinedRouting": "user-defined routing (no 0.0.0.0/0 route found)",
    }.get(path.outbound_type, "the load balancer's outbound rule (SNAT)")


def steps(
    path: PathData, source: str, provider_id: str, destination: str, port: int, protocol: str = "Tcp"
) -> tuple[Step, ...]:
    """The path view of one egress flow: NIC NSG → subnet NSG → route → outbound (proxy) →
    destination, each with its verdict."""
    flow = Flow("Outbound", source, destination, port, protocol)
    out: list[Step] = []
    nsgs = verdict(path, source, provider_id, flow)
    names = {"nic": "NIC NSG", "subnet": "subnet NSG"}
    for v in nsgs.steps:
        out.append(Step(names.get(v.level, v.level), v.describe(), v.access.lower()))
    if nsgs.access == "Deny":
        return tuple(out)
    h = hop(path, destination)
    out.append(Step("route", h.describe(), "deny" if h.type == "None" else "allow"))
    if h.type == "None":
        return tuple(out)
    if h.type in ("Internet", "VirtualAppliance"):
        if path.proxy:
            out.append(Step("proxy", f"httpProxyConfig: {path.proxy} (pods with the proxy env go through it)", "info"))
        if h.type == "VirtualAppliance":
            out.append(Step("outbound", f"firewall/appliance {h.ip}: its rules and SNAT decide", "info"))
        else:
            out.append(Step("outbound", outbound(path), "info"))
    peer = next((p for p in path.peerings if covering(p.remote_prefixes, destination)), None)
    if peer is not None:
        out.append(
            Step("peering", f"{peer.name} → {peer.remote_name}: {peer.state}", "allow" if peer.connected else "deny")
        )
    out.append(Step("destination", f"{destination}:{port}/{protocol.lower()}", "info"))
    return tuple(out)


def peering_of(path: PathData, ip: str) -> Peering | None:
    """The peering whose remote space covers `ip`."""
    return next((p for p in path.peerings if covering(p.remote_prefixes, ip)), None)


__all__ = [
    "AZURE_DNS",
    "PathData",
    "Peering",
    "Step",
    "VnetInfo",
    "hop",
    "nic_nsgs_of",
    "outbound",
    "parse_routes",
    "parse_vnet",
    "peering_of",
    "steps",
    "verdict",
    "vmss_of",
]
