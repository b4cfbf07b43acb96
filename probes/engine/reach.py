"""Reachable from here? Each resolver and egress target is classified before it is probed
from this host, so that what a jumpbox cannot reach is shown grey with the reason instead
of as a failure.

Three kinds of address are out of reach from outside the cluster unless this host owns
them or routes them on purpose:

* link-local (169.254.0.0/16, fe80::/10): NodeLocal DNS 169.254.20.10, AKS LocalDNS
  169.254.10.10/.11 exist only on each node; reachable here only when this host owns the
  address (it is a node);
* a ClusterIP (the kube-dns service IP, or an address in a known service CIDR): kube-proxy
  translates it on the nodes only; reachable here when this host owns it or has a route
  more specific than its default route to it (a deliberate route to the service network);
* a pod IP in an overlay network (Azure CNI Overlay's pod CIDR is not part of the VNet):
  reachable here only with such a route, too.

Every other address is probed: a failure there is a finding. The routing table is this
network namespace's main table (``/proc/net/route``, ``/proc/net/ipv6_route``: what ``ip
route`` lists), read without sending a packet; "owns" is a bind(2) test, no packet either.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from probes.kube.model import NetworkPlugin

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

RTF_REJECT = 0x0200  # blackhole, unreachable and prohibit routes
LINK_LOCAL_WHY = "link-local: only reachable on the node — the agent probes it"
CLUSTER_IP_WHY = "ClusterIP: no route from this host to the service network — the agent probes it from the nodes"
OVERLAY_WHY = "overlay pod IP: no route from this host to the pod network {cidr} — the agent probes it"
SHORT = {"link-local": "linklocal", "clusterip": "ClusterIP", "overlay": "overlay"}  # a pane's narrow column


@dataclass(frozen=True, slots=True)
class HostRoute:
    net: Network
    reject: bool = False  # blackhole / unreachable / prohibit: no route at all


@dataclass(frozen=True, slots=True)
class HostRoutes:
    routes: tuple[HostRoute, ...] = ()
    error: str = ""  # why the table could not be read (then nothing counts as routed)

    def lookup(self, addr: Address) -> HostRoute | None:
        """The longest-prefix route for `addr`, or None."""
        best: HostRoute | None = None
        for r in self.routes:
            if r.net.version == addr.version and addr in r.net:
                if best is None or r.net.prefixlen > best.net.prefixlen:
                    best = r
        return best

    def routed(self, addr: Address) -> bool:
        """A route more specific than the default one leads to `addr` (not a reject route)."""
        r = self.lookup(addr)
        return r is not None and not r.reject and r.net.prefixlen > 0


def parse_route(text: str) -> list[HostRoute]:
    """/proc/net/route (IPv4: little-endian hex destination and mask)."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        try:
            dest = ipaddress.IPv4Address(int(f[1], 16).to_bytes(4, "little"))
            mask = ipaddress.IPv4Address(int(f[7], 16).to_bytes(4, "little"))
            flags = int(f[3], 16)
            net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        except ValueError:
            continue
        out.append(HostRoute(net, bool(flags & RTF_REJECT) or f[0] == "*"))
    return out


def parse_ipv6_route(text: str) -> list[HostRoute]:
    """/proc/net/ipv6_route (hex destination, prefix length, …, flags, interface)."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 10:
            continue
        try:
            net = ipaddress.IPv6Network(f"{ipaddress.IPv6Address(bytes.fromhex(f[0]))}/{int(f[1], 16)}", strict=False)
            flags = int(f[8], 16)
        except ValueError:
            continue
        if net.prefixlen == 128 and f[9] == "lo" and not flags & RTF_REJECT:
            continue  # this host's own addresses (the local table leaks into this file)
        out.append(HostRoute(net, bool(flags & RTF_REJECT)))
    return out


def read_routes(proc: Path = Path("/proc/net")) -> HostRoutes:
    """This network namespace's routes; an unreadable table reads as empty, with why."""
    routes: list[HostRoute] = []
    errors = []
    for name, parse in (("route", parse_route), ("ipv6_route", parse_ipv6_route)):
        try:
            routes += parse((proc / name).read_text())
        except OSError as e:
            errors.append(f"{proc / name}: {e.strerror or e}")
    return HostRoutes(tuple(routes), "; ".join(errors) if len(errors) == 2 else "")


def owns(address: str) -> bool:
    """This host has `address` on an interface (bind succeeds; nothing is sent)."""
    try:
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


def _nets(cidrs: Iterable[str]) -> tuple[Network, ...]:
    out = []
    for c in cidrs:
        try:
            out.append(ipaddress.ip_network(c, strict=False))
        except ValueError:
            continue
    return tuple(out)


@dataclass(frozen=True)
class Reachability:
    """Classifies addresses for this host. `cluster_ips`: known ClusterIPs (kube-dns);
    `service_cidrs`: the service network when known; `overlay_cidrs`: the pod network
    when it is an overlay (not routed in the VNet)."""

    table: HostRoutes
    cluster_ips: frozenset[str] = frozenset()
    service_cidrs: tuple[str, ...] = ()
    overlay_cidrs: tuple[str, ...] = ()
    overlay_ips: frozenset[str] = frozenset()  # pod IPs known to be in the overlay
    owned: Callable[[str], bool] = owns
    _svc: tuple[Network, ...] = field(init=False, repr=False, compare=False)
    _overlay: tuple[Network, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_svc", _nets(self.service_cidrs))
        object.__setattr__(self, "_overlay", _nets(self.overlay_cidrs))

    def kind(self, address: str) -> str:
        """'link-local', 'clusterip', 'overlay' or '' (an ordinary address)."""
        try:
            addr = ipaddress.ip_address(address)
        except ValueError:
            return ""  # a name: resolved and probed
        if addr.is_link_local:
            return "link-local"
        if str(addr) in self.cluster_ips or any(addr in n for n in self._svc if n.version == addr.version):
            return "clusterip"
        if str(addr) in self.overlay_ips or any(addr in n for n in self._overlay if n.version == addr.version):
            return "overlay"
        return ""

    def why_not(self, address: str) -> str:
        """'' when `address` can be probed from here, else why not (one line)."""
        kind = self.kind(address)
        if not kind or self.owned(address):
            return ""
        addr = ipaddress.ip_address(address)
        if kind == "link-local":
            return LINK_LOCAL_WHY
        if self.table.routed(addr):
            return ""
        if kind == "clusterip":
            return CLUSTER_IP_WHY
        cidr = next((str(n) for n in self._overlay if n.version == addr.version and addr in n), "")
        return OVERLAY_WHY.format(cidr=cidr or "(overlay)")


def short_why(why: str) -> str:
    """A reason in one narrow word for a table cell."""
    if why == LINK_LOCAL_WHY:
        return SHORT["link-local"]
    if why == CLUSTER_IP_WHY:
        return SHORT["clusterip"]
    if why.startswith("overlay"):
        return SHORT["overlay"]
    return "no route" if why else ""


def for_topology(topology: object, table: HostRoutes | None = None) -> Reachability:
    """The classifier for a cluster (a probes.kube.model.Topology): its kube-dns ClusterIP,
    and when the network is an overlay its pod CIDRs and CoreDNS pod IPs (overlay nodes
    carry no podCIDR: the pod IPs say it when the CIDR is not known)."""
    dns_ip = str(getattr(topology, "dns_service_ip", "") or "")
    overlay = getattr(topology, "plugin", None) == NetworkPlugin.AZURE_CNI_OVERLAY
    return Reachability(
        table if table is not None else read_routes(),
        cluster_ips=frozenset({dns_ip} if dns_ip else ()),
        overlay_cidrs=tuple(getattr(topology, "pod_cidrs", ())) if overlay else (),
        overlay_ips=frozenset(p.ip for p in getattr(topology, "coredns", ()) if p.ip) if overlay else frozenset(),
    )
