"""Reading the nodes' network path from ARM: the NSGs of the node resource group (with
their NIC and subnet associations), the node subnet's VNet (its subnets' NSG and route
table references, ``dhcpOptions.dnsServers``, peerings and their state), the subnet's NSG
when it lives elsewhere (bring-your-own VNet), and its route table.

Read-only, through the azure-mgmt-network client the Azure source already holds; every
call goes through ``call(name, scope, fn, *args)`` (counted, errors name the permission:
probes.azure.target.CALLS). The work is split in steps so that the source can spread a
refresh over its cycles, one call per cycle: :func:`plan` lists them, :func:`run_step`
runs one and returns the next :class:`~probes.azure.path.PathData`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from probes.azure.discover import NodeHints, node_subnet_id
from probes.azure.egressid import parse_firewall, parse_public_ip
from probes.azure.nsg import Nsg, parse_nsg
from probes.azure.path import PathData, nic_nsgs_of, parse_routes, parse_vnet
from probes.azure.routes import RouteData, split_subnet_id
from probes.azure.target import AzureCallError, AzureTarget

Call = Callable[..., Any]
STEPS = ("nsgs", "vnet", "nsg", "routetable", "firewall", "publicips")
MAX_IP_GETS = 2  # public IPs outside the node resource group read one by one, at most


def _as_dict(x: Any) -> dict[str, Any]:
    return x.as_dict() if hasattr(x, "as_dict") else dict(x)


def _parts(resource_id: str, kind: str) -> tuple[str, str] | None:
    """(resource group, name) of a …/providers/Microsoft.Network/<kind>/<name> id."""
    parts = resource_id.strip("/").split("/")
    low = [p.lower() for p in parts]
    try:
        return parts[low.index("resourcegroups") + 1], parts[low.index(kind.lower()) + 1]
    except (ValueError, IndexError):
        return None


def _same(nsg: Nsg | None, nsg_id: str) -> Nsg | None:
    """The NSG read before, while the subnet still references it (its own step re-reads it)."""
    return nsg if nsg is not None and nsg.id.lower() == nsg_id.lower() else None


class PathReader:
    """Holds what the steps found between calls (the NSGs listed, the subnet's references)."""

    def __init__(self) -> None:
        self.nsgs: tuple[Nsg, ...] = ()
        self.subnet_nsg_id = ""
        self.route_table_id = ""
        self.route_data: RouteData | None = (
            None  # the node resource group's route tables, as the source last listed them
        )

    def run_step(self, step: str, call: Call, net: Any, t: AzureTarget, hints: NodeHints, data: PathData) -> PathData:
        """One ARM call (or none when the step has nothing to read); a refused read becomes a
        note on the data, never an exception: the SNAT source goes on."""
        base = replace(
            data,
            outbound_type=t.outbound_type,
            http_proxy=t.http_proxy,
            https_proxy=t.https_proxy,
            no_proxy=t.no_proxy,
            trusted_ca=t.trusted_ca,
            lb_ip_ids=t.outbound_ip_ids,
            nat_ip_ids=t.nat_ip_ids,
            error="",
        )
        try:
            return self._step(step, call, net, t, hints, base)
        except AzureCallError as e:
            if e.kind in ("no-credential", "unauthorized", "throttled"):
                raise  # the source's own handling (sign in again, wait)
            why = e.need or e.message or e.kind
            notes = tuple(n for n in base.notes if not n.startswith(f"{step}:")) + (f"{step}: {why}",)
            return replace(base, notes=notes)

    def _step(self, step: str, call: Call, net: Any, t: AzureTarget, hints: NodeHints, d: PathData) -> PathData:
        notes = tuple(n for n in d.notes if not n.startswith(f"{step}:"))
        rg = t.node_resource_group
        if step == "nsgs":
            scope = f"/subscriptions/{t.subscription}/resourceGroups/{rg}"
            items = call("nsgs", scope, lambda **kw: [_as_dict(x) for x in net.network_security_groups.list(rg, **kw)])
            self.nsgs = tuple(parse_nsg(x) for x in items)
            sub_nsg = self._subnet_nsg(d.subnet_id) or d.subnet_nsg
            return replace(d, nic_nsgs=nic_nsgs_of(self.nsgs), subnet_nsg=sub_nsg, notes=notes)
        if step == "vnet":
            sid = node_subnet_id(t, hints)
            parts = split_subnet_id(sid) if sid else None
            if parts is None:  # managed VNet: the one in the node resource group
                scope = f"/subscriptions/{t.subscription}/resourceGroups/{rg}"
                vnets = call("vnets", scope, lambda **kw: [_as_dict(x) for x in net.virtual_networks.list(rg, **kw)])
                body = next((v for v in vnets if (v.get("properties") or {}).get("subnets")), None)
                if body is None:
                    return replace(d, notes=(*notes, f"vnet: no virtual network in {rg}"))
            else:
                vrg, vnet, _ = parts
                vid = sid.rsplit("/subnets/", 1)[0]
                body = _as_dict(call("vnet", vid, net.virtual_networks.get, vrg, vnet))
            v = parse_vnet(body)
            key = sid.lower() if sid else next(iter(v.subnets), "")
            prefix, nsg_id, rt_id = v.subnets.get(key, ("", "", ""))
            subnet_id = sid or next((k for k in v.subnets), "")
            self.subnet_nsg_id, self.route_table_id = nsg_id, rt_id
            return replace(
                d,
                subnet_id=subnet_id,
                subnet_prefix=prefix,
                vnet_id=v.id,
                vnet_prefixes=v.prefixes,
                dns_servers=v.dns_servers,
                peerings=v.peerings,
                subnet_nsg=(self._subnet_nsg(subnet_id) or _same(d.subnet_nsg, nsg_id)) if nsg_id else None,
                route_table="" if not rt_id else rt_id.rstrip("/").rsplit("/", 1)[-1],
                routes=d.routes if rt_id else (),
                route_version=d.route_version if rt_id else "",
                notes=notes,
            )
        if step == "nsg":
            nid = self.subnet_nsg_id
            if not nid or any(g.id.lower() == nid.lower() for g in self.nsgs):
                return replace(d, subnet_nsg=self._subnet_nsg(d.subnet_id) if nid else None, notes=notes)
            p = _parts(nid, "networkSecurityGroups")
            if p is None:
                return d
            g = parse_nsg(_as_dict(call("nsg", nid, net.network_security_groups.get, *p)))
            return replace(d, subnet_nsg=g, notes=notes)
        if step == "routetable":
            rid = self.route_table_id
            p = _parts(rid, "routeTables") if rid else None
            if p is None:
                return replace(d, routes=(), route_table="", route_version="", notes=notes)
            known = self.route_data
            if (
                known is not None
                and not known.error
                and p[0].lower() == rg.lower()
                and any(x.lower() == p[1].lower() for x in known.tables)
            ):  # the route tables of the node resource group were just listed: no second read
                routes = tuple(r for r in known.routes if r.table.lower() == p[1].lower())
                return replace(d, route_table=p[1], routes=routes, route_version="", notes=notes)
            name, routes, etag = parse_routes(_as_dict(call("routetable", rid, net.route_tables.get, *p)))
            return replace(d, route_table=name, routes=routes, route_version=etag, notes=notes)
        if step == "firewall":
            fid = t.firewall_id
            p = _parts(fid, "azureFirewalls") if fid else None
            if p is None:
                return replace(d, firewall=None, notes=notes)
            return replace(
                d, firewall=parse_firewall(_as_dict(call("firewall", fid, net.azure_firewalls.get, *p))), notes=notes
            )
        if step == "publicips":
            return self._public_ips(call, net, t, d, notes)
        raise ValueError(f"unknown path step {step!r}")

    def _public_ips(self, call: Call, net: Any, t: AzureTarget, d: PathData, notes: tuple[str, ...]) -> PathData:
        """The addresses of the identity's public IP ids: one list of the node resource
        group's public IPs (AKS puts the managed outbound IPs there), one of its prefixes
        when a prefix is wanted, and a GET for each of at most MAX_IP_GETS elsewhere."""
        wanted = d.wanted_ips()
        if not wanted:
            return replace(d, public_ips=(), public_ips_read=True, notes=notes)
        rg = t.node_resource_group
        scope = f"/subscriptions/{t.subscription}/resourceGroups/{rg}"
        found = {
            p.id.lower(): p
            for p in (
                parse_public_ip(x)
                for x in call(
                    "publicips", scope, lambda **kw: [_as_dict(x) for x in net.public_ip_addresses.list(rg, **kw)]
                )
            )
        }
        in_rg = f"/resourcegroups/{rg.lower()}/"
        if any("/publicipprefixes/" in w.lower() and in_rg in w.lower() for w in wanted):
            found.update(
                (p.id.lower(), p)
                for p in (
                    parse_public_ip(x)
                    for x in call(
                        "prefixes", scope, lambda **kw: [_as_dict(x) for x in net.public_ip_prefixes.list(rg, **kw)]
                    )
                )
            )
        gets = 0
        for w in wanted:
            if w.lower() in found or in_rg in w.lower() or gets >= MAX_IP_GETS:
                continue
            p = _parts(w, "publicIPAddresses")
            if p is None:
                continue
            gets += 1
            try:
                ip = parse_public_ip(_as_dict(call("publicip", w, net.public_ip_addresses.get, *p)))
            except AzureCallError as e:
                if e.kind not in ("forbidden", "not-found"):
                    raise
                continue
            found[ip.id.lower()] = ip
        return replace(
            d,
            public_ips=tuple(found[w.lower()] for w in wanted if w.lower() in found),
            public_ips_read=True,
            notes=notes,
        )

    def _subnet_nsg(self, subnet_id: str) -> Nsg | None:
        """The listed NSG associated with the subnet (by its id, or the subnet's reference)."""
        for g in self.nsgs:
            if self.subnet_nsg_id and g.id.lower() == self.subnet_nsg_id.lower():
                return g
            if subnet_id and any(s.lower() == subnet_id.lower() for s in g.subnets):
                return g
        return None


__all__ = ["STEPS", "PathReader"]
