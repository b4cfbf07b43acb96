"""``--nodes N``: rescale a scenario document before it is validated.

System pools keep 3 nodes up to 100 nodes, then about 3 %; user pools share the rest in
proportion to their counts. CIDRs that cannot hold N nodes are widened (same base, else
100.64.0.0/N for pods) and a scaled cluster without an ``azure:`` section gets the outbound
capacity an operator of that size sets; each change is a note in ``Scenario.notes``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

__all__ = ["NotesDoc", "generator_notes", "scale_document"]


def scale_document(data: Any, total: int) -> Any:
    """Rewrite pools[].count (and widen CIDRs) in the raw document, then re-validate."""
    if not isinstance(data, dict) or not isinstance(data.get("pools"), list) or not data["pools"]:
        return data  # let parse_scenario report it
    doc = dict(data)
    pools = [dict(p) if isinstance(p, dict) else p for p in doc["pools"]]
    doc["pools"] = pools
    if not all(isinstance(p, dict) for p in pools):
        return doc
    system = [i for i, p in enumerate(pools) if str(p.get("mode", "User")).lower() == "system"]
    user = [i for i in range(len(pools)) if i not in system]
    if not system:
        system, user = [0], list(range(1, len(pools)))
    sys_total = min(total, 3 if total <= 100 else max(3, round(total * 0.03)))
    if not user:
        sys_total = total
    counts = [0] * len(pools)
    for k, i in enumerate(system):
        counts[i] = sys_total // len(system) + (1 if k < sys_total % len(system) else 0)
    rest = total - sys_total
    if user:
        weights = [
            max(1, p.get("count", 1) if isinstance(p.get("count"), int) else 1) for p in (pools[i] for i in user)
        ]
        wsum = sum(weights)
        alloc = [rest * w // wsum for w in weights]
        for k in range(rest - sum(alloc)):
            alloc[k % len(alloc)] += 1
        for i, a in zip(user, alloc):
            counts[i] = a
    for p, c in zip(pools, counts):
        p["count"] = c
    cl = doc.get("cluster")
    if isinstance(cl, dict):
        cl = dict(cl)
        doc["cluster"] = cl
        plugin = str(cl.get("networkPlugin", "kubenet")).lower()
        notes = []
        if plugin in ("kubenet", "azure-overlay"):
            want = 24 - max(0, (total - 1).bit_length())
            cur = cl.get("podCidr", "10.244.0.0/16")
            widened = _widen_pod(cur, want, cl)
            if widened != cur:
                cl["podCidr"] = widened
                notes.append(f"podCidr widened {cur} -> {widened} for {total} nodes")
        max_pods = max((p.get("maxPods", 110) for p in pools if isinstance(p.get("maxPods", 110), int)), default=110)
        per_node = max_pods + 1 if plugin == "azure" else 1
        need = total * per_node + 5
        want = 32 - max(0, (need - 1).bit_length())
        cur = cl.get("subnetCidr", "10.224.0.0/16")
        widened = _widen(cur, want)
        if widened != cur:
            cl["subnetCidr"] = widened
            notes.append(f"subnetCidr widened {cur} -> {widened} for {total} nodes")
            vnet = cl.get("vnetCidr", "10.224.0.0/12")
            try:
                if not _subnet_of(ipaddress.ip_network(widened), ipaddress.ip_network(vnet)):
                    cl["vnetCidr"] = widened
            except (ValueError, TypeError):
                pass
        if "azure" not in doc and total > 50:
            # a scenario that says nothing of outbound traffic means "outbound is fine": at
            # scale AKS's default tier would leave 32–512 ports a node, so give the scaled
            # cluster what an operator of that size sets (ports, and IPs to back them)
            ports = 1024
            while ports > 64 and -(-ports * (total + total // 10 + 1) // 64000) > 16:
                ports //= 2
            ips = max(1, -(-ports * (total + total // 10 + 1) // 64000))
            doc["azure"] = {"allocatedOutboundPorts": ports, "outboundIPs": min(ips, 16)}
            notes.append(
                f"azure: allocatedOutboundPorts {ports} with {min(ips, 16)} outbound IPs "
                f"for {total} nodes (the default tier would leave fewer ports a node)"
            )
        if notes:
            doc["_notes"] = notes
    return NotesDoc(doc)


def generator_notes(data: Any, network_plugin: str, total: int) -> tuple[str, ...]:
    notes = list(getattr(data, "notes", ()))
    if network_plugin == "kubenet" and total > 400:
        notes.append(
            f"{total} nodes with kubenet: AKS stops at 400 (one route per node, "
            "400 routes per route table); the lab generates them anyway"
        )
    return tuple(notes)


class NotesDoc(dict):
    """A document carrying generator notes outside the validated keys."""

    def __init__(self, doc: dict):
        notes = doc.pop("_notes", [])
        super().__init__(doc)
        self.notes = tuple(notes)


def _subnet_of(
    a: ipaddress.IPv4Network | ipaddress.IPv6Network, b: ipaddress.IPv4Network | ipaddress.IPv6Network
) -> bool:
    """``a.subnet_of(b)`` with the versions narrowed; mixed versions raise TypeError, as ipaddress does."""
    if isinstance(a, ipaddress.IPv4Network) and isinstance(b, ipaddress.IPv4Network):
        return a.subnet_of(b)
    if isinstance(a, ipaddress.IPv6Network) and isinstance(b, ipaddress.IPv6Network):
        return a.subnet_of(b)
    raise TypeError(f"{a} and {b} are not of the same version")


def _widen(cidr: Any, want_prefix: int) -> Any:
    try:
        n = ipaddress.ip_network(str(cidr), strict=True)
    except ValueError:
        return cidr
    if n.prefixlen <= want_prefix:
        return cidr
    return str(n.supernet(new_prefix=max(want_prefix, 8)))


def _widen_pod(cidr: Any, want_prefix: int, cl: dict) -> Any:
    """A pod CIDR for more nodes: the same base widened, else a CGNAT range (100.64.0.0/10)."""
    w = _widen(cidr, want_prefix)
    if w == cidr:
        return cidr
    taken = []
    for k, d in (("vnetCidr", "10.224.0.0/12"), ("serviceCidr", "10.0.0.0/16")):
        try:
            taken.append(ipaddress.ip_network(str(cl.get(k, d))))
        except ValueError:
            return w
    cgnat = ipaddress.ip_network("100.64.0.0/10")
    for cand in (w, f"100.64.0.0/{max(want_prefix, 10)}"):
        n = ipaddress.ip_network(cand)
        if (n.is_private or _subnet_of(n, cgnat)) and not any(n.overlaps(t) for t in taken):
            return cand
    return w
