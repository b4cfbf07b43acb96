"""Egress identity: which public IP(s) the nodes leave with, from what ARM already said.

The order Azure applies (the AKS outbound types): a 0.0.0.0/0 user route to a
VirtualAppliance sends Internet traffic to the firewall, which SNATs it to its own public
IP(s) (known when ``[azure] firewall_id`` names an Azure Firewall whose private address is
that next hop); a NAT gateway on the subnet SNATs to its public IPs and prefixes; else the
load balancer's outbound rule SNATs to its frontends' public IPs (or prefixes). A route to
None leaves no way out.

Pods annotated for a static egress gateway are the exception: they leave through the
gateway node pool with their StaticGatewayConfiguration's `status.egressIpPrefix`, whatever
their node's way out is (`gateway_lines`, `gateway_summary`).

Pure: plain data in, plain data out (the reads are in probes.azure.pathread).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probes.kube.gatewaymodel import GatewayConfig, GatewayData

NAT_TYPES = ("managedNATGateway", "userAssignedNATGateway")


@dataclass(frozen=True, slots=True)
class PublicIp:
    """A publicIPAddresses or publicIPPrefixes resource: its address or prefix."""

    id: str
    name: str
    ip: str  # "" while not allocated (a Dynamic address not attached)
    attached_to: str = ""  # ipConfiguration.id: the LB frontend, NIC or firewall using it


@dataclass(frozen=True, slots=True)
class Firewall:
    """An Azure Firewall: the private address routes point at, its public IP ids."""

    id: str
    name: str
    private_ips: tuple[str, ...]
    public_ip_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EgressIdentity:
    via: str  # "LB" | "NAT gateway" | "firewall" | "appliance" | "none" | "unknown"
    ips: tuple[str, ...] = ()  # public IPs or prefixes (CIDR)
    detail: str = ""  # the sentence for a detail view
    known: bool = True  # False: the way out is known, the public IP(s) are not

    def short(self) -> str:
        """'leaves via LB 20.31.1.2 (+1)' for a one-line header."""
        if self.via == "none":
            return "no way out (0.0.0.0/0 → None)"
        if not self.ips:
            return f"leaves via {self.via}, public IP unknown"
        more = f" (+{len(self.ips) - 1})" if len(self.ips) > 1 else ""
        return f"leaves via {self.via} {self.ips[0]}{more}"


def _props(d: Mapping[str, Any]) -> Mapping[str, Any]:
    p = d.get("properties")
    return p if isinstance(p, Mapping) else d


def _id(ref: Any) -> str:
    return str(ref.get("id", "")) if isinstance(ref, Mapping) else ""


def parse_public_ip(d: Mapping[str, Any]) -> PublicIp:
    """A publicIPAddresses (ipAddress) or publicIPPrefixes (ipPrefix) body."""
    p = _props(d)
    return PublicIp(
        str(d.get("id", "")),
        str(d.get("name", "")),
        str(p.get("ipAddress") or p.get("ipPrefix") or ""),
        _id(p.get("ipConfiguration")),
    )


def parse_firewall(d: Mapping[str, Any]) -> Firewall:
    p = _props(d)
    private: list[str] = []
    public: list[str] = []
    for c in p.get("ipConfigurations") or ():
        cp = _props(c) if isinstance(c, Mapping) else {}
        if cp.get("privateIPAddress"):
            private.append(str(cp["privateIPAddress"]))
        if _id(cp.get("publicIPAddress")):
            public.append(_id(cp.get("publicIPAddress")))
    hub = p.get("hubIPAddresses") or {}  # a secured virtual hub's firewall
    if isinstance(hub, Mapping):
        if hub.get("privateIPAddress"):
            private.append(str(hub["privateIPAddress"]))
        for a in (hub.get("publicIPs") or {}).get("addresses") or ():
            if isinstance(a, Mapping) and a.get("address"):
                public.append(str(a["address"]))  # an address, not an id
    return Firewall(str(d.get("id", "")), str(d.get("name", "")), tuple(private), tuple(public))


def outbound_ip_ids(lb: Mapping[str, Any], rule: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The public IP (or prefix) ids behind the outbound rule's frontends."""
    if rule is None:
        return ()
    wanted = {_id(f).lower() for f in _props(rule).get("frontendIPConfigurations") or ()}
    out: list[str] = []
    for f in _props(lb).get("frontendIPConfigurations") or ():
        if not isinstance(f, Mapping) or str(f.get("id", "")).lower() not in wanted:
            continue
        fp = _props(f)
        ref = _id(fp.get("publicIPAddress")) or _id(fp.get("publicIPPrefix"))
        if ref:
            out.append(ref)
    return tuple(out)


def nat_ip_ids(natgw: Mapping[str, Any]) -> tuple[str, ...]:
    p = _props(natgw)
    return tuple(_id(x) for key in ("publicIpAddresses", "publicIpPrefixes") for x in p.get(key) or () if _id(x))


def _addresses(ids: Sequence[str], known: Mapping[str, PublicIp]) -> tuple[tuple[str, ...], int]:
    """(the addresses of `ids` that are known, how many are not)."""
    out: list[str] = []
    missing = 0
    for i in ids:
        if i.count(".") == 3 and "/" not in i:  # already an address (a hub firewall)
            out.append(i)
            continue
        hit = known.get(i.lower())
        if hit is not None and hit.ip:
            out.append(hit.ip)
        else:
            missing += 1
    return tuple(out), missing


def identity(
    default_hop: tuple[str, str],
    outbound_type: str,
    lb_ids: Sequence[str],
    nat_ids: Sequence[str],
    public_ips: Sequence[PublicIp],
    firewall: Firewall | None,
) -> EgressIdentity:
    """How the nodes' Internet traffic leaves and with which public IP(s).
    `default_hop`: (next hop type, appliance address) of 0.0.0.0/0."""
    known = {p.id.lower(): p for p in public_ips}
    hop_type, hop_ip = default_hop
    if hop_type == "None":
        return EgressIdentity("none", (), "a user route sends 0.0.0.0/0 to None: nothing leaves")
    if hop_type == "VirtualAppliance":
        if firewall is not None and hop_ip in firewall.private_ips:
            ips, missing = _addresses(firewall.public_ip_ids, known)
            if ips:
                more = f" ({missing} more not readable)" if missing else ""
                return EgressIdentity(
                    "firewall", ips, f"via Azure Firewall {firewall.name} ({hop_ip}): SNAT to {', '.join(ips)}{more}"
                )
            return EgressIdentity(
                "firewall", (), f"via Azure Firewall {firewall.name} ({hop_ip}), public IP unknown", known=False
            )
        return EgressIdentity(
            f"firewall {hop_ip}",
            (),
            f"via firewall/appliance {hop_ip}, public IP unknown (set [azure] firewall_id to an Azure Firewall "
            "to read its public IPs)",
            known=False,
        )
    if outbound_type in NAT_TYPES:
        ips, missing = _addresses(nat_ids, known)
        if ips:
            return EgressIdentity("NAT gateway", ips, f"via the subnet's NAT gateway: {', '.join(ips)}")
        return EgressIdentity("NAT gateway", (), "via the subnet's NAT gateway, public IP unknown", known=False)
    if outbound_type == "userDefinedRouting":
        return EgressIdentity("unknown", (), "userDefinedRouting without a 0.0.0.0/0 user route", known=False)
    ips, missing = _addresses(lb_ids, known)
    if ips:
        more = f" ({missing} more not readable)" if missing else ""
        return EgressIdentity("LB", ips, f"via the load balancer's outbound rule: {', '.join(ips)}{more}")
    return EgressIdentity("LB", (), "via the load balancer's outbound rule, public IP unknown", known=False)


def _prefix_words(c: GatewayConfig | None, namespace: str) -> str:
    if c is None:
        return f"no such configuration in {namespace}"
    if not c.egress_prefix:
        return "not provisioned (no egress IP prefix)"
    return ", ".join(c.egress_ips) + ("" if c.provision_public_ips else " (private)")


def gateway_lines(data: GatewayData | None, node: str, pool: str = "") -> tuple[str, ...]:
    """What a node's detail says about the static egress gateway: per configuration, how
    many of the node's pods leave through it and with which IPs ('3 pods leave through
    static gateway shop/sgc-a: 20.1.2.0/30'); on a gateway pool's node, which configurations
    it carries. () when the CRD is absent or nothing concerns the node."""
    if data is None or data.state != "present":
        return ()
    out: list[str] = []
    for (ns, name), n in sorted(data.pods_on(node).items()):
        c = data.config(ns, name)
        out.append(
            f"{n} pod{'s' if n != 1 else ''} leave{'' if n != 1 else 's'} through static gateway {ns}/{name}: "
            + _prefix_words(c, ns)
        )
    if pool:
        carried = [c for c in data.configs if c.nodepool == pool]
        if carried:
            out.append(
                "gateway node for "
                + ", ".join(f"{c.namespace}/{c.name} ({_prefix_words(c, c.namespace)})" for c in carried)
            )
    return tuple(out)


def gateway_summary(data: GatewayData | None) -> str:
    """'2 static gateways 20.65.41.84/30, 20.65.41.88/31' for the egress header ('' when the
    CRD is absent or there is none); an unprovisioned one is named."""
    if data is None or data.state != "present" or not data.configs:
        return ""
    n = len(data.configs)
    parts = [", ".join(c.egress_ips) if c.egress_prefix else f"{c.name} not provisioned" for c in data.configs]
    return f"{n} static gateway{'s' if n != 1 else ''} " + ", ".join(parts)


__all__ = [
    "EgressIdentity",
    "Firewall",
    "PublicIp",
    "gateway_lines",
    "gateway_summary",
    "identity",
    "nat_ip_ids",
    "outbound_ip_ids",
    "parse_firewall",
    "parse_public_ip",
]
