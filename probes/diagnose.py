"""Observations -> findings. Pure: plain data in, plain data out, no I/O.

Each rule looks at one fault shape of ../shared/FAULTS.md and joins the sources that
tell it apart (node conditions, pod readiness, DNS results per vantage and resolver).
Rules never read a lab scenario: they see what production sources see.

Vantage rule: from the host aksnet-top runs on (`local`, usually a jumpbox), NodeLocal
DNS and ClusterIPs are normally out of reach, so failures seen only from `local` are
reported as info, never as a cluster fault; cluster faults need a node vantage or
API evidence.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from probes.history import Stats
from probes.model import LOCAL_VANTAGE, NetworkPlugin, NodeInfo, Topology

NEW_NODE_SECONDS = 600  # a node younger than this is still joining: marked, not alarmed


class Severity(IntEnum):
    INFO = 0
    WARNING = 1
    CRITICAL = 2

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # stable rule id, e.g. "nodelocal-down"
    fault: str | None  # FAULTS.md id ("F4") where one applies
    severity: Severity
    subject: str  # "node/<name>", "resolver/<key>", "service/<ns>/<name>", "cluster"
    cause: str  # one line
    evidence: Mapping[str, Any] = field(default_factory=dict)
    next_step: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "fault": self.fault,
            "severity": str(self.severity),
            "subject": self.subject,
            "cause": self.cause,
            "evidence": dict(self.evidence),
            "next_step": self.next_step,
        }


@dataclass(frozen=True, slots=True)
class Observations:
    """Everything the rules may look at, at one moment."""

    topology: Topology
    dns: Mapping[Any, Stats] = field(default_factory=dict)  # ProbeKey -> Stats
    now: float = 0.0  # wall clock, epoch seconds
    egress: Mapping[Any, Stats] = field(default_factory=dict)  # EgressKey(vantage, "host:port") -> Stats
    snat: Any = None  # probes.snat.SnatTable, when Azure metrics are available
    snat_allocation: Any = None  # probes.snat.Allocation, when the outbound configuration is known
    routes: Any = None  # probes.routes.RouteData, when the route tables and subnet were read from ARM


def is_cluster_name(name: str) -> bool:
    return name.rstrip(".").endswith(".cluster.local")


def _failing(st: Stats) -> bool:
    """Mostly lost, or the last answers are errors: what an operator calls 'not answering'."""
    return st.attempts > 0 and (st.loss_pct >= 50 or st.last_outcome in ("timeout", "network-error", "servfail", "refused"))


def _answering(st: Stats) -> bool:
    return st.successes > 0 and st.last_outcome in ("ok", "nxdomain", "truncated-tcp-ok")


def _node_of(vantage: str) -> str | None:
    return vantage[len("node/") :] if vantage.startswith("node/") else None


def _dns_by(obs: Observations) -> dict[str, dict[tuple[str, str], Stats]]:
    """vantage -> (resolver, name) -> stats."""
    out: dict[str, dict[tuple[str, str], Stats]] = {}
    for key, st in obs.dns.items():
        out.setdefault(key.vantage, {})[(key.resolver, key.name)] = st
    return out


def _kube_dns_from(obs: Observations, node: str) -> dict[str, Any]:
    """Evidence for a route fault: how kube-dns (CoreDNS on other nodes) answers from the
    node itself, when its agent reports it."""
    rows = [st for k, st in obs.dns.items() if k.vantage == f"node/{node}" and k.resolver == "kube-dns"
            and st.attempts]
    if not rows:
        return {}
    loss = max(st.loss_pct for st in rows)
    return {"kube_dns_from_node": f"{loss:.0f}% lost" + (" (cross-node traffic to CoreDNS fails)" if loss >= 50 else "")}


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} ms"


# --- node rules --------------------------------------------------------------------------
def node_phase(node: NodeInfo, now: float) -> str:
    """'new', 'draining', 'cordoned' or '' — the upgrade-aware marks."""
    if node.draining:
        return "draining"
    if node.cordoned:
        return "cordoned"
    if node.created and now - node.created < NEW_NODE_SECONDS:
        return "new"
    return ""


def _route_check(obs: Observations) -> Any:
    """probes.routes.RouteCheck for kubenet when the route table was read, else None."""
    data = obs.routes
    if data is None or getattr(data, "error", "") or obs.topology.plugin != NetworkPlugin.KUBENET:
        return None
    from probes.routes import compare

    return compare(data, obs.topology.nodes)


def rule_nodes(obs: Observations) -> Iterable[Finding]:
    chk = _route_check(obs)
    for n in obs.topology.nodes:
        phase = node_phase(n, obs.now)
        subject = f"node/{n.name}"
        nr = chk.by_node.get(n.name) if chk is not None else None
        if n.network_unavailable and nr is not None and nr.state in ("missing", "stale"):
            pass  # rule_routes names it from the route table, with this condition as evidence
        elif n.network_unavailable:
            yield Finding(
                "route-missing", "F1", Severity.CRITICAL, subject,
                f"the node reports no route for its pod CIDR ({n.network_reason or 'NetworkUnavailable'}): cross-node pod traffic to and from it is broken",
                {"pod_cidrs": ", ".join(n.pod_cidrs), "expected_next_hop": n.internal_ip, "condition": f"NetworkUnavailable=True/{n.network_reason}",
                 **_kube_dns_from(obs, n.name)},
                "check the route table on the cluster subnet for a route named after the node "
                "(`az network route-table route list -g <node-rg> --route-table-name <rt>`); "
                "the cloud provider recreates it when it can write to the table",
            )
        if n.ready is False or n.ready is None:
            if phase in ("draining", "cordoned", "new"):
                yield Finding("node-not-ready", None, Severity.INFO, subject,
                              f"{phase} node is not Ready ({n.ready_reason or 'no reason'}): expected during an upgrade or scale-out",
                              {"phase": phase, "reason": n.ready_reason}, "wait for the upgrade to finish; it should leave or turn Ready")
            else:
                yield Finding("node-not-ready", None, Severity.WARNING, subject,
                              f"node is not Ready ({n.ready_reason or 'no Ready condition'})",
                              {"reason": n.ready_reason, "kubelet": n.kubelet_version},
                              f"`kubectl describe node {n.name}`; check the VMSS instance {n.vmss} #{n.instance_id}")
        elif phase:
            yield Finding("node-in-transition", None, Severity.INFO, subject, f"node is {phase}", {"phase": phase}, "")


# --- DNS rules ---------------------------------------------------------------------------
def rule_nodelocal(obs: Observations) -> Iterable[Finding]:
    """F4: NodeLocal times out on X while kube-dns answers from X; the pod on X confirms."""
    topo = obs.topology
    by = _dns_by(obs)
    nodes_with_dns_evidence: set[str] = set()
    for vantage, rows in by.items():
        node = _node_of(vantage)
        if node is None:
            continue
        nl = [st for (res, _), st in rows.items() if res in ("nodelocal",) or res.startswith("localdns")]
        kd = [st for (res, name), st in rows.items() if res == "kube-dns" and is_cluster_name(name)]
        if not nl or not all(_failing(st) for st in nl):
            continue
        nodes_with_dns_evidence.add(node)
        pod = topo.nodelocal.get(node)
        kube_ok = any(_answering(st) for st in kd)
        pod_state = "no node-local-dns pod on the node" if pod is None else (
            f"{pod.name} Ready" if pod.ready else f"{pod.name} not ready ({pod.reason or pod.phase or 'no reason'})")
        if kube_ok:
            yield Finding(
                "nodelocal-down", "F4", Severity.CRITICAL, f"node/{node}",
                "NodeLocal DNS does not answer on this node while kube-dns does: pods on it cannot resolve",
                {"nodelocal_loss": f"{max(st.loss_pct for st in nl):.0f}%", "nodelocal_last": nl[0].last_outcome,
                 "kube_dns_p50": _ms(min((st.p50 for st in kd if st.p50 is not None), default=None)), "pod": pod_state},
                f"`kubectl -n kube-system logs {pod.name}` and `kubectl -n kube-system delete pod {pod.name}` to restart it"
                if pod is not None else "check the node-local-dns DaemonSet's tolerations and `kubectl -n kube-system get ds node-local-dns`",
            )
    # API-only evidence: the pod is not ready (no DNS vantage on that node to confirm)
    if topo.nodelocal_enabled:
        for n in topo.nodes:
            if n.name in nodes_with_dns_evidence or n.localdns:
                continue
            pod = topo.nodelocal.get(n.name)
            if pod is not None and pod.ready:
                continue
            phase = node_phase(n, obs.now)
            sev = Severity.INFO if phase else Severity.WARNING
            what = "no node-local-dns pod" if pod is None else f"{pod.name} not ready ({pod.reason or pod.phase})"
            yield Finding("nodelocal-pod-not-ready", "F4", sev, f"node/{n.name}",
                          f"{what}: DNS from pods on this node will time out" + (f" ({phase} node)" if phase else ""),
                          {"pod": what}, "`kubectl -n kube-system get pods -l k8s-app=node-local-dns -o wide`")


def rule_cluster_dns(obs: Observations) -> Iterable[Finding]:
    """F5: kube-dns fails from every node vantage, or every CoreDNS pod is unready."""
    topo = obs.topology
    by = _dns_by(obs)
    node_views = {v: rows for v, rows in by.items() if _node_of(v)}
    kd_views = [[st for (res, _), st in rows.items() if res == "kube-dns"] for rows in node_views.values()]
    kd_views = [v for v in kd_views if v]
    all_fail = bool(kd_views) and all(all(_failing(st) for st in view) for view in kd_views)
    ready = sum(1 for p in topo.coredns if p.ready)
    pods_down = bool(topo.coredns) and ready == 0
    if all_fail or pods_down:
        yield Finding(
            "cluster-dns-down", "F5", Severity.CRITICAL, "resolver/kube-dns",
            "cluster DNS is down: kube-dns " + ("does not answer from any node" if all_fail else "has no ready CoreDNS endpoint"),
            {"coredns_ready": f"{ready}/{len(topo.coredns)}", "node_vantages_failing": f"{len(kd_views) if all_fail else 0}/{len(kd_views)}",
             "dns_service_ip": topo.dns_service_ip},
            "`kubectl -n kube-system get pods -l k8s-app=kube-dns` and their logs; `kubectl -n kube-system get endpointslices -l k8s-app=kube-dns`",
        )
    elif topo.coredns and ready < len(topo.coredns):
        yield Finding("coredns-degraded", None, Severity.WARNING, "resolver/kube-dns",
                      f"{len(topo.coredns) - ready} of {len(topo.coredns)} CoreDNS pods not ready",
                      {"coredns_ready": f"{ready}/{len(topo.coredns)}"}, "`kubectl -n kube-system describe pods -l k8s-app=kube-dns`")


def rule_upstream(obs: Observations) -> Iterable[Finding]:
    """F6: cluster names answer, external names fail, from every vantage that asked."""
    by = _dns_by(obs)
    views = 0
    failing = 0
    evidence: dict[str, Any] = {}
    for vantage, rows in by.items():
        if vantage == LOCAL_VANTAGE and len(by) > 1:
            continue  # a jumpbox's own upstream is not the cluster's
        inner = [st for (res, name), st in rows.items() if is_cluster_name(name) and (res == "kube-dns" or res.startswith("coredns"))]
        outer = [(name, st) for (res, name), st in rows.items() if not is_cluster_name(name) and (res == "kube-dns" or res.startswith("coredns"))]
        if not inner or not outer:
            continue
        views += 1
        if any(_answering(st) for st in inner) and all(_failing(st) for _, st in outer):
            failing += 1
            evidence.setdefault("external_names", ", ".join(sorted({n for n, _ in outer})))
            evidence.setdefault("external_last", outer[0][1].last_outcome)
    if views and failing == views:
        evidence["vantages"] = f"{failing}/{views}"
        yield Finding(
            "upstream-dns-blocked", "F6", Severity.CRITICAL, "resolver/upstream",
            "cluster names resolve but external names fail from every vantage: CoreDNS cannot reach its upstream",
            evidence,
            "check UDP/TCP 53 from the nodes to the VNet DNS or 168.63.129.16 (UDR, NSG, firewall rules), and CoreDNS's forward plugin",
        )


def rule_truncation(obs: Observations) -> Iterable[Finding]:
    """F7: answers with TC set; TCP retry decides the severity."""
    seen: dict[str, dict[str, str]] = {}  # resolver -> name -> worst truncation outcome
    for key, st in obs.dns.items():
        if st.last_outcome in ("truncated-tcp-ok", "truncated-tcp-failed"):
            names = seen.setdefault(key.resolver, {})
            if names.get(key.name) != "truncated-tcp-failed":
                names[key.name] = st.last_outcome
    for res, names in sorted(seen.items()):
        failed = "truncated-tcp-failed" in names.values()
        listed = ", ".join(sorted(names))
        yield Finding(
            "dns-truncated", "F7", Severity.WARNING if failed else Severity.INFO, f"resolver/{res}",
            f"answers for {listed} are truncated (TC) over UDP; the TCP retry {'fails' if failed else 'works'}"
            + ("" if failed else ": clients without TCP fallback (old musl) still fail"),
            {"names": listed, "tcp_retry": "failed" if failed else "ok"},
            "allow TCP 53 to the resolver" if failed else "shrink the answer (fewer records) or make sure clients retry over TCP",
        )


def rule_local_unreachable(obs: Observations) -> Iterable[Finding]:
    """From the jumpbox, in-cluster resolvers are often unreachable: say it, as info."""
    rows = _dns_by(obs).get(LOCAL_VANTAGE, {})
    down = sorted({res for (res, _), st in rows.items() if _failing(st)})
    if down and not any(_node_of(v) for v in _dns_by(obs)):
        yield Finding("local-vantage-limited", None, Severity.INFO, "cluster",
                      f"from this host {', '.join(down)} do not answer: expected outside the cluster network",
                      {"resolvers": ", ".join(down)}, "install the per-node agent for per-node DNS health")


# --- egress ------------------------------------------------------------------------------
EGRESS_DOWN = ("timeout", "unreachable", "refused")


def _egress_by(obs: Observations) -> dict[str, dict[str, Stats]]:
    """target -> vantage -> stats; the local vantage only counts when no node vantage exists."""
    nodes = any(_node_of(k.vantage) for k in obs.egress)
    out: dict[str, dict[str, Stats]] = {}
    for key, st in obs.egress.items():
        if nodes and key.vantage == LOCAL_VANTAGE:
            continue
        if st.attempts:
            out.setdefault(key.target, {})[key.vantage] = st
    return out


def _egress_failing(st: Stats) -> bool:
    """Down now, mostly down in the window, and down more than once (one lost SYN on a busy
    path is not a fault)."""
    lost = st.attempts - st.successes
    return st.last_outcome in EGRESS_DOWN and st.loss_pct >= 50 and lost >= min(2, st.attempts)


def rule_egress(obs: Observations) -> Iterable[Finding]:
    """F8 (one destination:port dropped everywhere, the rest open), F9 (no route to D), and
    F10 (egress failing from one node only, with that node's SNAT usage when known)."""
    by = _egress_by(obs)
    if not by:
        return
    open_targets = {t for t, views in by.items() if any(st.last_outcome == "open" for st in views.values())}
    per_node: dict[str, list[tuple[str, str]]] = {}
    for target, views in sorted(by.items()):
        host, _, port = target.rpartition(":")
        failing = {v for v, st in views.items() if _egress_failing(st)}
        if not failing:
            continue
        outcomes = {views[v].last_outcome for v in failing}
        if failing == set(views) and len(views) >= 1:
            others_open = sorted(t for t in open_targets if t != target)
            same_host_open = sorted(t for t in others_open if t.rpartition(":")[0] == host)
            if outcomes == {"unreachable"}:
                yield Finding(
                    "egress-no-route", "F9", Severity.CRITICAL, f"target/{target}",
                    f"no route to {host}: unreachable from every vantage",
                    {"vantages": len(views), "error": next(iter(views.values())).last_error},
                    "look for a route with next hop None (blackhole) or a missing 0.0.0.0/0 on the cluster subnet's route table "
                    "(`az network route-table route list …`), or a UDR to a firewall that does not route it",
                )
            elif "timeout" in outcomes and others_open:
                yield Finding(
                    "egress-dropped", "F8", Severity.CRITICAL, f"target/{target}",
                    f"egress to {target} is dropped from every vantage while other destinations are open: an NSG or firewall rule, not SNAT",
                    {"vantages": len(views), "open_elsewhere": ", ".join((same_host_open or others_open)[:3])},
                    f"check outbound NSG rules on the node subnet and NIC for port {port} and the firewall's application rules for {host}",
                )
            elif others_open:
                yield Finding(
                    "egress-refused", "F8", Severity.CRITICAL, f"target/{target}",
                    f"connections to {target} are refused from every vantage (reject rule or closed port)",
                    {"vantages": len(views), "outcome": ", ".join(sorted(outcomes))},
                    "a firewall may be rejecting it; check the destination is listening on that port",
                )
            continue
        # some vantages fail, others succeed: a node-local problem
        for v in failing:
            node = _node_of(v)
            if node is not None:
                per_node.setdefault(node, []).append((target, views[v].last_outcome))
    for node, bad in sorted(per_node.items()):
        snat = _snat_of(obs, node)
        if snat is not None and ((snat.get("pct") or 0) >= 100 or (snat.get("failed") or 0) > 0):
            continue  # rule_snat names it (F10), with these targets as evidence
        checked = sum(1 for views in by.values() if f"node/{node}" in views)
        yield Finding(
            "egress-one-node", "F10" if snat is None else None, Severity.WARNING, f"node/{node}",
            f"egress fails from this node only ({len(bad)} of {checked} targets: {sorted({o for _, o in bad})[0]}) while other nodes connect",
            {"targets": ", ".join(t for t, _ in sorted(bad)[:4]) + (" …" if len(bad) > 4 else ""),
             "snat": "no SNAT data" if snat is None else f"{snat.get('pct') or 0:.0f}% used"},
            "check SNAT port usage for this node (Azure Monitor UsedSnatPorts by BackendIPAddress) and the NSG on its NIC",
        )


def rule_snat(obs: Observations) -> Iterable[Finding]:
    """F10 from Azure Monitor per node; F11 from the allocation rules (tier drop, surge)."""
    table = obs.snat
    if table is not None:
        for row in table.nodes:
            who = row.node or f"backend {row.ip}"
            pct = row.pct
            if row.failed > 0 or (pct is not None and pct >= 100):
                failing = sorted({k.target for k, st in obs.egress.items() if k.vantage == f"node/{row.node}" and _egress_failing(st)})
                yield Finding(
                    "snat-exhausted", "F10", Severity.CRITICAL, f"node/{who}",
                    "SNAT ports exhausted on this node: its new outbound connections are dropped at the load balancer while other nodes are fine",
                    {"used": None if row.used is None else round(row.used), "allocated": row.allocated,
                     "pct": "?" if pct is None else f"{pct:.0f}%", "failed_connections": round(row.failed),
                     **({"egress_failing": ", ".join(failing[:3])} if failing else {})},
                    "reuse connections (keep-alive, pooling), add outbound IPs or raise allocatedOutboundPorts, or move to a NAT Gateway",
                )
            elif row.state == "warn":
                yield Finding("snat-pressure", "F10", Severity.WARNING, f"node/{who}",
                              f"{pct:.0f}% of the node's {row.allocated} SNAT ports in use",
                              {"used": None if row.used is None else round(row.used), "allocated": row.allocated},
                              "find the pods opening many connections to one destination from this node")
    alloc = obs.snat_allocation
    if alloc is not None:
        for f in alloc.findings:
            sev = {"critical": Severity.CRITICAL, "warning": Severity.WARNING}.get(f.severity, Severity.INFO)
            yield Finding("snat-allocation", "F11", sev, "cluster", f.text,
                          {"nodes": alloc.nodes, "surge": alloc.surge, "ports_now": alloc.expected,
                           "ports_during_surge": alloc.during_surge, "outbound_ips": alloc.outbound_ips, "tier": alloc.tier},
                          "before the upgrade: set allocatedOutboundPorts with enough outbound IPs, or lower maxSurge")


def _snat_of(obs: Observations, node: str) -> dict[str, Any] | None:
    """The node's SNAT usage from the SNAT table, if Azure metrics are in."""
    table = obs.snat
    if table is None:
        return None
    for row in getattr(table, "nodes", ()):
        if getattr(row, "node", None) == node:
            return {"pct": row.pct, "used": getattr(row, "used", None), "allocated": getattr(row, "allocated", None),
                    "failed": getattr(row, "failed", None)}
    return None


# --- routes ------------------------------------------------------------------------------
def rule_routes(obs: Observations) -> Iterable[Finding]:
    """F1 missing, F2 stale, F3 orphaned routes from the route table; blackholes and user
    routes that shadow a pod CIDR; the 0.0.0.0/0 route for userDefinedRouting; kubenet's
    400-route headroom; F13 for flat Azure CNI subnets."""
    from probes.routes import HEADROOM_WARN, MAX_ROUTES, cni_headroom

    data = obs.routes
    if data is None:
        return
    topo = obs.topology
    rt = "`az network route-table route list -g <node-rg> --route-table-name " + (data.tables[0] if data.tables else "<rt>") + "`"
    if topo.plugin == NetworkPlugin.AZURE_CNI and not data.error:
        head = cni_headroom(data.subnet, data.max_pods, data.surge)
        if head is not None:
            free, need = head
            if free < need:
                yield Finding(
                    "cni-subnet-small", "F13", Severity.WARNING, "cluster",
                    f"the node subnet has {free} free addresses, an upgrade surge needs {need}: the upgrade will fail to add nodes",
                    {"subnet": data.subnet.prefix, "free_ips": free, "ip_configurations": data.subnet.ip_configurations,
                     "max_pods": data.max_pods, "surge_nodes": data.surge, "needed": need},
                    "lower maxSurge (or maxPods) before upgrading, free addresses in the subnet, or move to Azure CNI overlay",
                )
    chk = _route_check(obs)
    if chk is None:
        return
    nodes = {n.name: n for n in topo.nodes}
    for nr in chk.nodes:
        n = nodes.get(nr.node)
        subject = f"node/{nr.node}"
        phase = node_phase(n, obs.now) if n is not None else ""
        cond = f"NetworkUnavailable={'True' if n.network_unavailable else 'False'}/{n.network_reason}" \
            if n is not None and n.network_unavailable is not None else "no NetworkUnavailable condition"
        if nr.state == "missing":
            sev = Severity.INFO if phase == "new" else Severity.CRITICAL
            yield Finding(
                "route-missing", "F1", sev, subject,
                f"the route table has no route for this node's pod CIDR {nr.prefix}: cross-node pod traffic to and from it is broken"
                + (" (new node: the cloud provider is still creating it)" if sev == Severity.INFO else ""),
                {"prefix": nr.prefix, "expected_next_hop": nr.expected_next_hop, "route_name": nr.node,
                 "route_tables": ", ".join(data.tables) or "none", "condition": cond, **_kube_dns_from(obs, nr.node)},
                f"{rt}; the cloud provider recreates the route when it can write to the table (check the cluster "
                f"identity's Network Contributor on it), or `az network route-table route create … --name {nr.node} "
                f"--address-prefix {nr.prefix} --next-hop-type VirtualAppliance --next-hop-ip-address {nr.expected_next_hop}`",
            )
        elif nr.state == "stale" and nr.route is not None:
            r = nr.route
            yield Finding(
                "route-stale", "F2", Severity.CRITICAL, subject,
                f"the route named after this node is stale: {r.prefix} via {r.next_hop_ip or r.next_hop_type}, "
                f"must be {nr.prefix} via {nr.expected_next_hop}",
                {"route": r.name, "is_prefix": r.prefix, "is_next_hop": r.next_hop_ip or r.next_hop_type,
                 "must_prefix": nr.prefix, "must_next_hop": nr.expected_next_hop, "condition": cond},
                f"fix it: `az network route-table route update … --name {r.name} --address-prefix {nr.prefix} "
                f"--next-hop-ip-address {nr.expected_next_hop}` (or delete it and let the cloud provider recreate it)",
            )
    for r in chk.orphans:
        yield Finding(
            "route-orphaned", "F3", Severity.WARNING, f"route/{r.name}",
            f"route {r.name} ({r.prefix} via {r.next_hop_ip}) belongs to no node: harmless until its CIDR is reused",
            {"prefix": r.prefix, "next_hop": r.next_hop_ip, "table": r.table},
            f"delete it: `az network route-table route delete -g <node-rg> --route-table-name {r.table} --name {r.name}`",
        )
    for r, cidr in chk.blackholes:
        yield Finding(
            "route-blackhole", "F9", Severity.CRITICAL, f"route/{r.name}",
            f"route {r.name} sends {r.prefix} to next hop None (blackhole)"
            + (f": it covers the pod CIDR {cidr}, pod traffic to it is dropped" if cidr else ": traffic to it is dropped"),
            {"prefix": r.prefix, "next_hop_type": r.next_hop_type, "table": r.table, **({"pod_cidr": cidr} if cidr else {})},
            f"remove or fix the user route: `az network route-table route delete … --route-table-name {r.table} --name {r.name}`",
        )
    for r, cidr, node in chk.overlaps:
        yield Finding(
            "route-overlap", None, Severity.CRITICAL, f"route/{r.name}",
            f"user route {r.name} ({r.prefix} via {r.next_hop_ip or r.next_hop_type}) shadows node {node}'s pod CIDR {cidr}",
            {"prefix": r.prefix, "next_hop": r.next_hop_ip or r.next_hop_type, "pod_cidr": cidr, "node": node},
            "remove the user route or make it less specific than the node routes",
        )
    d = chk.default_route
    if data.outbound_type == "userDefinedRouting":
        if d is None:
            yield Finding("udr-default-missing", "F9", Severity.CRITICAL, "cluster",
                          "outbound type userDefinedRouting but the route table has no 0.0.0.0/0 route: egress has no next hop",
                          {"route_tables": ", ".join(data.tables) or "none"},
                          "add 0.0.0.0/0 → VirtualAppliance at the firewall's private IP")
        elif d.next_hop_type.lower() != "none":
            yield Finding("udr-default-route", None, Severity.INFO, "cluster",
                          f"egress goes to {d.next_hop_ip or d.next_hop_type} (0.0.0.0/0 route {d.name})",
                          {"next_hop_type": d.next_hop_type, "next_hop": d.next_hop_ip}, "")
    nodes_with_cidr = sum(1 for n in topo.nodes if n.pod_cidrs)
    worst = max(chk.route_count, nodes_with_cidr + max(data.surge, 0))
    if worst >= HEADROOM_WARN * MAX_ROUTES:
        yield Finding(
            "route-headroom", None, Severity.WARNING, "cluster",
            f"{chk.route_count} of {MAX_ROUTES} routes used ({nodes_with_cidr} kubenet nodes + {data.surge} surge): "
            f"{'over' if worst > MAX_ROUTES else 'near'} the route-table limit, new nodes will get no route",
            {"routes": chk.route_count, "max_routes": MAX_ROUTES, "nodes": nodes_with_cidr, "surge": data.surge},
            "kubenet stops at 400 nodes: plan the move to Azure CNI overlay, remove orphaned routes",
        )


# --- services ----------------------------------------------------------------------------
def rule_lb_pending(obs: Observations) -> Iterable[Finding]:
    """F12: a LoadBalancer service without an external IP."""
    for s in obs.topology.services:
        if s.pending:
            events = obs.topology.service_events.get(f"{s.namespace}/{s.name}", ())
            yield Finding(
                "lb-service-pending", "F12", Severity.WARNING, f"service/{s.namespace}/{s.name}",
                f"LoadBalancer service has no {'internal ' if s.internal_lb else ''}IP yet"
                + (f": {events[0]}" if events else ""),
                {"ports": ", ".join(s.ports), "internal": s.internal_lb, **({"events": " | ".join(events)} if events else {})},
                f"`kubectl -n {s.namespace} describe service {s.name}` for the cloud provider's error"
                + ("; an internal LB on your own subnet needs Network Contributor on it" if s.internal_lb else ""),
            )


RULES: tuple[Callable[[Observations], Iterable[Finding]], ...] = (
    rule_nodes,
    rule_nodelocal,
    rule_cluster_dns,
    rule_upstream,
    rule_truncation,
    rule_local_unreachable,
    rule_lb_pending,
    rule_egress,
    rule_snat,
    rule_routes,
)


def diagnose(obs: Observations) -> list[Finding]:
    """Every finding, most severe first, then by subject."""
    out: list[Finding] = []
    for rule in RULES:
        out.extend(rule(obs))
    return sorted(out, key=lambda f: (-f.severity, f.fault or "F99", f.subject, f.rule))


def observe(topology: Topology, dns: Mapping[Any, Stats] | None = None, now: float | None = None,
            egress: Mapping[Any, Stats] | None = None, snat: Any = None, snat_allocation: Any = None,
            routes: Any = None) -> Observations:
    return Observations(topology=topology, dns=dict(dns or {}), egress=dict(egress or {}), snat=snat,
                        snat_allocation=snat_allocation, routes=routes, now=time.time() if now is None else now)
