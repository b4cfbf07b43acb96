"""The Azure network path rules: an NSG rule that denies an egress target or the load
balancer's health probes (F24), custom VNet DNS servers failing (F25), a peering that is
not Connected while routes or DNS servers point into it (F26), egress through a firewall
(a 0.0.0.0/0 user route) or through the cluster's HTTP proxy failing (F27); and the evidence an F8 finding gains from the
NSG evaluation (probes.diagnose.egress asks :func:`nsg_evidence`).

Pure: they read the path ARM reported (probes.azure.path.PathData in `Observations.path`)
and the probe histories; the NSG and route evaluators are probes.azure.nsg / nexthop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from probes.azure.nsg import Flow, NsgVerdict
from probes.azure.path import AZURE_DNS, PathData, hop, peering_of, verdict
from probes.diagnose.dns import rule_upstream
from probes.diagnose.model import Finding, Observations, Severity, _egress_failing, _node_of
from probes.engine.history import Stats
from probes.kube.model import NodeInfo

LB_PROBE_PORTS = (10256, 30000)  # kube-proxy's health port, the first NodePort


def _path(obs: Observations) -> PathData | None:
    p = obs.path
    return p if isinstance(p, PathData) and not p.error and (p.vnet_id or p.nic_nsgs or p.subnet_nsg) else None


def _address(st: Stats) -> str:
    return str(getattr(st.last, "address", "") or "")


def _node_rows(obs: Observations, target: str) -> list[tuple[NodeInfo, Stats]]:
    return _rows_by_target(obs).get(target, [])


def _rows_by_target(obs: Observations) -> dict[str, list[tuple[NodeInfo, Stats]]]:
    """target -> (node, stats) of every node vantage that dialled it directly, in one pass
    over the rows (a row through the HTTP proxy dialled the proxy: the NSG and route
    verdicts of the destination do not apply)."""
    topo = obs.topology
    out: dict[str, list[tuple[NodeInfo, Stats]]] = {}
    for key, st in obs.egress.items():
        proxied: Any = getattr(st.last, "proxy", "")
        if not st.attempts or proxied:
            continue
        node = _node_of(key.vantage)
        n = topo.node(node) if node else None
        if n is not None and n.internal_ip:
            out.setdefault(key.target, []).append((n, st))
    return out


def _deciding(path: PathData, n: NodeInfo, address: str, port: int, proto: str = "Tcp") -> NsgVerdict | None:
    v = verdict(path, n.internal_ip, n.provider_id, Flow("Outbound", n.internal_ip, address, port, proto))
    return v.deciding


def nsg_evidence(obs: Observations, target: str) -> tuple[dict[str, str], str]:
    """For an F8 finding on `target`: (evidence, next step) from the NSG evaluation of the
    failing nodes' flows; ({}, "") when the path is not known."""
    path = _path(obs)
    if path is None:
        return {}, ""
    host, _, port_s = target.rpartition(":")
    try:
        port = int(port_s)
    except ValueError:
        return {}, ""
    rows = [(n, st) for n, st in _node_rows(obs, target) if _egress_failing(st) and _address(st)]
    if not rows:
        return {}, ""
    denies: dict[tuple[str, str, int, str], int] = {}
    unknown = ""
    for n, st in rows:
        d = _deciding(path, n, _address(st), port)
        if d is None:
            continue
        if d.access == "Deny":
            key = (d.nsg, d.rule, d.priority, d.level)
            denies[key] = denies.get(key, 0) + 1
        elif not unknown:
            unknown = d.note
    address = _address(rows[0][1])
    if denies:
        (nsg, rule, prio, level), count = max(denies.items(), key=lambda kv: kv[1])
        return (
            {
                "nsg": f"NSG {nsg} rule {rule} (priority {prio}, {level} level) denies TCP {port} to {address} ({count}/{len(rows)} nodes)"
            },
            f"the NSG denies it (F24): change or remove rule {rule} in {nsg}",
        )
    if unknown:
        return {"nsg": f"cannot tell offline: {unknown}"}, ""
    h = hop(path, address)
    via = (
        f"the firewall/appliance {h.ip}"
        if h.type == "VirtualAppliance"
        else "a firewall between the nodes and the destination"
    )
    return (
        {"nsg": f"not an NSG: both NSGs allow TCP {port} to {address}; look at {via}", "next_hop": h.describe()},
        f"not an NSG: look at {via} (its application and network rules for {host}:{port})",
    )


def rule_nsg(obs: Observations) -> Iterable[Finding]:
    """F24: the effective NSG rules deny an egress target the probes show failing, or the
    load balancer's health probes (AzureLoadBalancer → the nodes)."""
    path = _path(obs)
    if path is None:
        return
    by_target = _rows_by_target(obs)
    for target in sorted({k.target for k in obs.egress}):
        _, _, port_s = target.rpartition(":")
        if not port_s.isdigit():
            continue
        rows = [(n, st) for n, st in by_target.get(target, []) if _egress_failing(st) and _address(st)]
        if not rows:
            continue
        hits: dict[tuple[str, str, int, str], list[str]] = {}
        for n, st in rows:
            d = _deciding(path, n, _address(st), int(port_s))
            if d is not None and d.access == "Deny":
                hits.setdefault((d.nsg, d.rule, d.priority, d.level), []).append(n.name)
        for (nsg, rule, prio, level), nodes in sorted(hits.items()):
            address = _address(rows[0][1])
            yield Finding(
                "nsg-denies-egress",
                "F24",
                Severity.CRITICAL,
                f"target/{target}",
                f"NSG {nsg} rule {rule} (priority {prio}, {level} level) denies TCP {port_s} to {address}",
                {
                    "nsg": nsg,
                    "rule": rule,
                    "priority": prio,
                    "level": level,
                    "address": address,
                    "nodes": f"{len(nodes)}/{len(rows)} failing nodes",
                },
                f"az network nsg rule show --nsg-name {nsg} -n {rule} -g <resource group>; allow TCP {port_s} to "
                f"{address} with a lower priority number, or remove the rule",
            )
    yield from _lb_probes(obs, path)


def _lb_probes(obs: Observations, path: PathData) -> Iterable[Finding]:
    services = [s for s in obs.topology.services if s.type == "LoadBalancer"]
    if not services or not obs.topology.nodes:
        return
    n = obs.topology.nodes[0]
    denied: list[NsgVerdict] = []
    for port in LB_PROBE_PORTS:
        v = verdict(path, n.internal_ip, n.provider_id, Flow("Inbound", AZURE_DNS, n.internal_ip, port))
        d = v.deciding
        if d is None or d.access != "Deny":
            return
        denied.append(d)
    d = denied[0]
    yield Finding(
        "nsg-denies-lb-probes",
        "F24",
        Severity.CRITICAL,
        "cluster",
        f"NSG {d.nsg} rule {d.rule} (priority {d.priority}, {d.level} level) denies the load balancer's health "
        f"probes (AzureLoadBalancer → the nodes): every LoadBalancer service loses its backends",
        {
            "nsg": d.nsg,
            "rule": d.rule,
            "priority": d.priority,
            "level": d.level,
            "ports_checked": ", ".join(str(p) for p in LB_PROBE_PORTS),
            "services": ", ".join(f"{s.namespace}/{s.name}" for s in services[:4]),
        },
        "allow inbound from the service tag AzureLoadBalancer at a lower priority number than the deny",
    )


def _server_path(path: PathData, obs: Observations, server: str) -> str:
    """How a node reaches a DNS server: the next hop, the peering, the NSG verdict (UDP 53)."""
    bits = [hop(path, server).describe()]
    peer = peering_of(path, server)
    if peer is not None:
        bits.append(f"peering {peer.name}: {peer.state}")
    if obs.topology.nodes:
        n = obs.topology.nodes[0]
        d = verdict(path, n.internal_ip, n.provider_id, Flow("Outbound", n.internal_ip, server, 53, "Udp")).deciding
        if d is not None:
            bits.append(d.describe())
    return "; ".join(bits)


def rule_custom_dns(obs: Observations) -> Iterable[Finding]:
    """F25: the VNet names custom DNS servers (CoreDNS forwards to them through the node's
    resolv.conf), and external names fail through CoreDNS from every vantage while cluster
    names answer (the F6 judgement)."""
    path = _path(obs)
    if path is None or not path.dns_servers:
        return
    upstream = next(iter(rule_upstream(obs)), None)
    if upstream is None:
        return
    servers = ", ".join(path.dns_servers)
    evidence: dict[str, Any] = {"dns_servers": servers}
    for s in path.dns_servers[:3]:
        evidence[f"path_to_{s}"] = _server_path(path, obs, s)
    evidence.update({k: v for k, v in upstream.evidence.items() if k in ("external_names", "vantages")})
    yield Finding(
        "custom-dns-failing",
        "F25",
        Severity.CRITICAL,
        "resolver/vnet-dns",
        f"external names fail through CoreDNS, which forwards to the VNet's custom DNS servers {servers}: they do not answer",
        evidence,
        f"query them from a node (`dig @{path.dns_servers[0]} microsoft.com`); check they forward to Azure DNS "
        f"{AZURE_DNS} and that UDP/TCP 53 reaches them (NSG, route, peering)",
    )


def rule_peering(obs: Observations) -> Iterable[Finding]:
    """F26: a peering on the cluster VNet is not Connected while a user route or a DNS
    server points into its remote address space."""
    path = _path(obs)
    if path is None:
        return
    for peer in path.peerings:
        if peer.connected:
            continue
        users: list[str] = []
        for s in path.dns_servers:
            if peering_of(path, s) is peer:
                users.append(f"DNS server {s}")
        for r in path.routes:
            if r.next_hop_ip and peering_of(path, r.next_hop_ip) is peer:
                users.append(f"route {r.name} ({r.prefix} → {r.next_hop_type} {r.next_hop_ip})")
        if not users:
            continue
        yield Finding(
            "peering-not-connected",
            "F26",
            Severity.CRITICAL,
            f"peering/{peer.name}",
            f"VNet peering {peer.name} to {peer.remote_name} is {peer.state} while {users[0]} depends on it",
            {"state": peer.state, "remote": ", ".join(peer.remote_prefixes), "used_by": "; ".join(users[:4])},
            f"re-create or re-sync the peering on both sides (`az network vnet peering show -n {peer.name} "
            f"--vnet-name <vnet> -g <rg>`): {peer.state} peerings carry no traffic",
        )


def rule_firewall(obs: Observations) -> Iterable[Finding]:
    """F27: the default route goes to a firewall/appliance, and egress to two or more
    destinations routed through it fails from every node vantage while both NSGs allow
    it: the firewall drops it (or is out of SNAT ports), not the node."""
    path = _path(obs)
    if path is None:
        return
    default = next((r for r in path.routes if r.prefix.strip() == "0.0.0.0/0"), None)
    if default is None or default.next_hop_type != "VirtualAppliance":
        return
    dropped: list[str] = []
    passing: list[str] = []
    by_target = _rows_by_target(obs)
    for target in sorted({k.target for k in obs.egress}):
        rows = by_target.get(target, [])
        addr = next((_address(st) for _, st in rows if _address(st)), "")
        port_s = target.rpartition(":")[2]
        if not rows or not addr or not port_s.isdigit():
            continue
        h = hop(path, addr)
        if h.type != "VirtualAppliance" or h.ip != default.next_hop_ip:
            continue
        if not all(_egress_failing(st) for _, st in rows):
            passing.append(target)
            continue
        if _deciding(path, rows[0][0], addr, int(port_s)) is None:  # both NSGs allow: not F24
            dropped.append(target)
    if len(dropped) < 2:
        return
    yield Finding(
        "firewall-drops-egress",
        "F27",
        Severity.CRITICAL,
        f"firewall/{default.next_hop_ip}",
        f"egress through the firewall {default.next_hop_ip} (user route {default.name}) fails from every node for "
        f"{len(dropped)} destinations while the NSGs allow it: the firewall drops it, not the nodes",
        {
            "route": f"{default.name}: 0.0.0.0/0 → VirtualAppliance {default.next_hop_ip}",
            "dropped": ", ".join(dropped[:4]) + (" …" if len(dropped) > 4 else ""),
            "passing": ", ".join(passing[:3]) or "none",
            "outbound_type": path.outbound_type,
        },
        "check the firewall's application/network rules for the AKS required FQDNs and its SNAT port use "
        "(Azure Firewall: SNATPortUtilization; set [azure] firewall_id to chart it)",
    )


_PROXY_STEP = {
    "proxy-refused": "the proxy's ACL (or its own egress) refuses them: allow the AKS required FQDNs on the proxy "
    "(403), give it the credentials it asks for (407), or fix its route out (502/504); or list the names in "
    "httpProxyConfig.noProxy if they must go direct",
    "proxy-timeout": "the proxy accepts the connection but never answers CONNECT: check the proxy process and its "
    "own route to the destinations (a hung upstream), then restart it",
    "proxy-unreachable": "the nodes cannot open a TCP connection to the proxy: check its address in "
    "httpProxyConfig, that it listens, and the NSG/route from the node subnet to it",
}


def _proxied(st: Stats) -> tuple[str, str, int] | None:
    """(proxy, outcome, status) of a row whose last check went through the HTTP proxy."""
    last = st.last
    proxy = str(getattr(last, "proxy", "") or "")
    if not proxy:
        return None
    outcome = getattr(getattr(last, "outcome", None), "value", str(getattr(last, "outcome", "")))
    return proxy, outcome, int(getattr(last, "status", 0) or 0)


def rule_proxy(obs: Observations) -> Iterable[Finding]:
    """F27 (proxy): the node vantages' egress checks go through the cluster's HTTP proxy
    (CONNECT) and it refuses them (with its status), hangs or cannot be reached, from every
    node that checked the destination."""
    by_target: dict[str, list[tuple[Stats, tuple[str, str, int]]]] = {}
    for key, st in obs.egress.items():
        if not st.attempts or not _node_of(key.vantage):
            continue
        p = _proxied(st)
        if p is not None:
            by_target.setdefault(key.target, []).append((st, p))
    failing: dict[tuple[str, str, int], list[str]] = {}
    passing: dict[str, list[str]] = {}
    errors: dict[tuple[str, str, int], str] = {}
    for target, rows in sorted(by_target.items()):
        bad = [(st, p) for st, p in rows if _egress_failing(st) and p[1] in _PROXY_STEP]
        if rows and len(bad) == len(rows):
            kinds: dict[tuple[str, str, int], int] = {}
            for _st, p in bad:
                kinds[p] = kinds.get(p, 0) + 1
            k = max(kinds.items(), key=lambda kv: kv[1])[0]
            failing.setdefault(k, []).append(target)
            errors.setdefault(k, next((st.last_error for st, p in bad if p == k and st.last_error), ""))
        elif not bad:
            passing.setdefault(rows[0][1][0], []).append(target)
    path = obs.path if isinstance(obs.path, PathData) else None
    for (proxy, outcome, status), targets in sorted(failing.items()):
        n = len(targets)
        what = f"{n} destination{'s' if n != 1 else ''}"
        if outcome == "proxy-refused":
            answer = f"answers {status} to CONNECT" if status else "closes the connection on CONNECT"
            summary = f"egress through the HTTP proxy {proxy} fails from every node: it {answer} for {what}"
        elif outcome == "proxy-timeout":
            summary = (
                f"egress through the HTTP proxy {proxy} hangs: it accepts the connection but does not answer CONNECT "
                f"for {what}"
            )
        else:
            summary = f"the nodes cannot reach the HTTP proxy {proxy}: egress to {what} that goes through it fails"
        evidence: dict[str, Any] = {
            "proxy": proxy,
            "outcome": outcome,
            "status": status or "none",
            "dropped": ", ".join(targets[:4]) + (" …" if n > 4 else ""),
            "passing": ", ".join(passing.get(proxy, [])[:3]) or "none",
        }
        if errors.get((proxy, outcome, status)):
            evidence["error"] = errors[(proxy, outcome, status)]
        if path is not None and path.proxy:
            evidence["http_proxy_config"] = f"{path.proxy}; noProxy: {', '.join(path.no_proxy) or 'none'}"
        yield Finding(
            "proxy-fails-egress",
            "F27",
            Severity.CRITICAL,
            f"proxy/{proxy}",
            summary,
            evidence,
            _PROXY_STEP[outcome],
        )


__all__ = ["nsg_evidence", "rule_custom_dns", "rule_firewall", "rule_nsg", "rule_peering", "rule_proxy"]
