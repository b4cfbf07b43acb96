"""The Azure network path of the nodes: what ARM says about the node subnet's NSGs, route
table, VNet (custom DNS servers, peerings) and the cluster's HTTP proxy, and what that
means for one flow from one node (NIC NSG → subnet NSG → route → outbound → destination).

Pure: plain data in, plain data out, no I/O (the reads are in probes.azure.pathread).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from probes.azure.egressid import EgressIdentity, Firewall, PublicIp, identity
from probes.azure.nexthop import Hop, RouteSpace, covering, default_route, next_hop
from probes.azure.nsg import Flow, Nsg, NsgPath, NsgVerdict, TagSpace, compile_nsg, verdict_of
from probes.azure.routes import Route, parse_route_table

_VMSS = re.compile(r"/virtualMachineScaleSets/([^/]+)", re.I)
_VM = re.compile(r"/providers/Microsoft\.Compute/virtualMachines/([^/]+)$", re.I)
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
    trusted_ca: str = ""
    lb_ip_ids: tuple[str, ...] = ()  # the LB outbound rule's public IP / prefix ids
    nat_ip_ids: tuple[str, ...] = ()  # the NAT gateway's
    public_ips: tuple[PublicIp, ...] = ()  # what those ids (and the firewall's) are, as read
    firewall: Firewall | None = None  # [azure] firewall_id, read
    public_ips_read: bool = False  # the public IPs step ran (it follows the first read by a cycle)
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

    def egress_identity(self) -> EgressIdentity:
        """Which public IP(s) the nodes leave with (probes.azure.egressid), pure."""
        d = default_route(self.route_space())
        ident = identity(
            (d.type, d.ip), self.outbound_type, self.lb_ip_ids, self.nat_ip_ids, self.public_ips, self.firewall
        )
        if not self.public_ips_read and not ident.known and ident.via in ("LB", "NAT gateway", "firewall"):
            return replace(ident, detail=ident.detail.replace("public IP unknown", "public IP not read yet"))
        return ident

    def wanted_ips(self) -> tuple[str, ...]:
        """The public IP / prefix ids the identity needs (LB, NAT gateway, firewall)."""
        fw = self.firewall.public_ip_ids if self.firewall is not None else ()
        return tuple(dict.fromkeys(i for i in (*self.lb_ip_ids, *self.nat_ip_ids, *fw) if i.startswith("/")))


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


class PathEvaluator:
    """Both NSGs of a path compiled once (per PathData), with the node → NIC NSG lookup
    cached: what every flow of a diagnosis, a benchmark or the path view goes through."""

    def __init__(self, path: PathData) -> None:
        self.path = path
        tags = path.tags()
        self.subnet = compile_nsg(path.subnet_nsg, tags) if path.subnet_nsg is not None else None
        self._nics = {name: compile_nsg(g, tags) for name, g in path.nic_nsgs}
        self._by_provider: dict[str, Any] = {}
        self._nodes: dict[tuple[str, str], tuple[Any, int, int]] = {}
        self._dests: dict[tuple[int, str], tuple[int, int]] = {}
        self._classes: dict[tuple[int, int, int, int, int, int, str], NsgPath] = {}

    def nic(self, provider_id: str) -> Any:
        hit = self._by_provider.get(provider_id, self)
        if hit is self:
            vmss = vmss_of(provider_id)
            hit = self._nics.get(vmss) or self._nics.get("*")
            if len(self._by_provider) < 100_000:
                self._by_provider[provider_id] = hit
        return hit

    def outbound(self, provider_id: str, source: str, destination: str, port: int, protocol: str = "Tcp") -> NsgPath:
        """The common case, fast: a node's outbound flow from an ephemeral port. Each node's
        (NIC NSG, source classes) and each destination's classes are looked up once; the
        answer is cached per (classes, port, protocol), the same NsgPath for every flow of
        the class."""
        node = self._nodes.get((provider_id, source))
        if node is None:
            nic = self.nic(provider_id)
            sub = self.subnet
            node = (nic, nic.src.mask(source) if nic else 0, sub.src.mask(source) if sub else 0)
            if len(self._nodes) < 100_000:
                self._nodes[(provider_id, source)] = node
        nic, nsm, ssm = node
        dkey = (id(nic), destination)
        dst = self._dests.get(dkey)
        if dst is None:
            sub = self.subnet
            dst = (nic.dst.mask(destination) if nic else 0, sub.dst.mask(destination) if sub else 0)
            if len(self._dests) < 100_000:
                self._dests[dkey] = dst
        key = (id(nic), nsm, dst[0], ssm, dst[1], port, protocol)
        hit = self._classes.get(key)
        if hit is None:
            hit = self.flow(provider_id, Flow("Outbound", source, destination, port, protocol))
            if len(self._classes) < 100_000:
                self._classes[key] = hit
        return hit

    def flow(self, provider_id: str, flow: Flow) -> NsgPath:
        nic = self.nic(provider_id)
        order = ((_NIC, nic), (_SUBNET, self.subnet))
        if flow.direction == "Inbound":
            order = order[::-1]
        steps: list[NsgVerdict] = []
        for (level, allow), c in order:
            v = (
                allow
                if c is None
                else verdict_of(
                    c, flow.direction, flow.source, flow.destination, flow.port, flow.protocol, level, flow.source_port
                )
            )
            steps.append(v)
            if v.access == "Deny":
                break
        return NsgPath(tuple(steps))


_NIC = ("nic", NsgVerdict("Allow", level="nic"))
_SUBNET = ("subnet", NsgVerdict("Allow", level="subnet"))
_EVALUATOR: list[Any] = [None, None]  # the last (PathData, PathEvaluator)


def evaluator(path: PathData) -> PathEvaluator:
    """The evaluator of `path`, kept while the same PathData object is asked about."""
    if _EVALUATOR[0] is not path:
        _EVALUATOR[:] = [path, PathEvaluator(path)]
    ev: PathEvaluator = _EVALUATOR[1]
    return ev


def verdict(path: PathData, source: str, provider_id: str, flow: Flow) -> NsgPath:
    """Both NSGs' verdict for `flow` from the node (its NIC NSG by VMSS, then the subnet's)."""
    ev = evaluator(path)
    if flow.direction == "Outbound" and not flow.source_port:
        return ev.outbound(provider_id, flow.source, flow.destination, flow.port, flow.protocol)
    return ev.flow(provider_id, flow)


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
    vm = _VM.search(provider_id or "")
    if vm and not vmss_of(provider_id) and any(n != "*" for n, _ in path.nic_nsgs):
        # NIC NSGs are joined by the VMSS name in the NIC's id; an availability-set VM's NIC is its own
        out.append(
            Step(
                "NIC NSG",
                f"not joined: {vm.group(1)} is an availability-set VM; only scale sets' NIC NSGs are read",
                "unknown",
            )
        )
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
    "PathEvaluator",
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
    "evaluator",
    "vmss_of",
]
