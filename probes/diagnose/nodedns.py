"""DNS faults of one node's own path: external names broken from one node only (F17), AKS
LocalDNS dead on a node (F20)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from probes.diagnose.model import (
    Finding,
    Observations,
    Severity,
    _answering,
    _failing,
    _ms,
    _node_of,
    is_cluster_name,
    node_phase,
)
from probes.diagnose.stats import HEALTHY_LOSS, beyond_noise
from probes.dns.resolvers import LOCALDNS_IPS
from probes.engine.history import Stats

# a node's external lookups are broken when at least half fail (beyond noise); the other
# nodes are fine when at most this share of theirs fail
BROKEN_SHARE = 0.5
FINE_SHARE = 0.1
_NODE_RESOLVERS = ("nodelocal", "localdns", "kube-dns")


def _pool(rows: Iterable[Stats]) -> tuple[int, int]:
    n = bad = 0
    for st in rows:
        n += st.attempts
        bad += st.attempts - st.successes
    return n, bad


def rule_upstream_one_node(obs: Observations) -> Iterable[Finding]:
    """F17: from node X external names fail (its node-local cache forwards them to the
    node's upstream; its egress checks resolve through the node's resolv.conf) while
    cluster names resolve there and the other nodes resolve external names fine."""
    # node -> resolver -> (external rows, cluster rows)
    rows: dict[str, dict[str, tuple[list[Stats], list[Stats]]]] = {}
    egress: dict[str, list[Stats]] = {}
    for key, st in obs.dns.items():
        node = _node_of(key.vantage)
        if node is None or not key.resolver.startswith(_NODE_RESOLVERS):
            continue
        pair = rows.setdefault(node, {}).setdefault(key.resolver, ([], []))
        pair[1 if is_cluster_name(key.name) else 0].append(st)
    for key, st in obs.egress.items():
        node = _node_of(key.vantage)
        if node is not None and st.attempts:
            egress.setdefault(node, []).append(st)

    def external(node: str) -> tuple[int, int, int, int, str]:
        """(DNS attempts, failed, egress attempts, failed at name resolution, last bad
        outcome) over the resolvers of `node` that answer cluster names (one that fails
        those too is down, another rule's fault)."""
        n = bad = 0
        last = ""
        for ext, inner in rows.get(node, {}).values():
            if not any(_answering(st) for st in inner):
                continue
            rn, rbad = _pool(ext)
            n, bad = n + rn, bad + rbad
            last = last or next((st.last_outcome for st in ext if st.last_outcome != "ok"), "")
        en = sum(st.attempts for st in egress.get(node, ()))
        ebad = sum(st.attempts - st.successes for st in egress.get(node, ()) if st.last_outcome == "dns-failure")
        return n, bad, en, ebad, last

    nodes = set(rows) | set(egress)
    if len(nodes) < 2:
        return  # one vantage cannot tell "this node" from "everywhere" (F6)
    broken: dict[str, dict[str, Any]] = {}
    seen: dict[str, tuple[int, int, int, int, str]] = {}
    for node in nodes:
        n, bad, en, ebad, last = seen[node] = external(node)
        total, failed = n + en, bad + ebad
        if not failed or failed < BROKEN_SHARE * total or not beyond_noise(failed, total, HEALTHY_LOSS):
            continue
        if not any(_answering(st) for pair in rows.get(node, {}).values() for st in pair[1]):
            continue  # no cluster name resolves on the node: its DNS is down (F4/F20/F1), not its upstream
        broken[node] = {
            "external_dns_failed": f"{bad}/{n}" if n else "not probed",
            "egress_name_failures": f"{ebad}/{en} checks" if en else "none",
            "last": last or "dns-failure",
        }
    if not broken or len(broken) * 2 > len(nodes):
        return  # most nodes: the cluster's upstream (F6), not one node's path
    fine_n = fine_bad = 0
    for node in nodes - set(broken):
        n, bad, en, ebad, _ = seen[node]
        fine_n += n + en
        fine_bad += bad + ebad
    if not fine_n or fine_bad > FINE_SHARE * fine_n:
        return
    topo = obs.topology
    for node, ev in sorted(broken.items()):
        info = topo.node(node)
        phase = node_phase(info, obs.now) if info is not None else ""
        yield Finding(
            "upstream-dns-node",
            "F17",
            Severity.INFO if phase else Severity.CRITICAL,
            f"node/{node}",
            "external names fail from this node only while cluster names resolve here and other nodes "
            "resolve external names: this node's path to the upstream DNS is broken (not CoreDNS's, not F6)"
            + (f" ({phase} node)" if phase else ""),
            {**ev, "other_nodes": f"{fine_n - fine_bad}/{fine_n} external lookups ok"},
            "from the node (`kubectl debug node/...`): `dig @168.63.129.16 mcr.microsoft.com`; its NIC's NSG "
            "and the subnet's route table (UDR to a firewall) for UDP/TCP 53, and the VNet's custom DNS servers",
        )


def rule_localdns_down(obs: Observations) -> Iterable[Finding]:
    """F20: AKS LocalDNS enabled on X (the node label) and its addresses silent from X
    while kube-dns answers there: pods on X stay pinned to 169.254.10.11 and cannot resolve."""
    topo = obs.topology
    rows: dict[str, list[tuple[str, Stats]]] = {}
    kube: dict[str, list[Stats]] = {}
    for key, st in obs.dns.items():
        node = _node_of(key.vantage)
        if node is None:
            continue
        if key.resolver.startswith("localdns"):
            rows.setdefault(node, []).append((key.resolver, st))
        elif key.resolver == "kube-dns":
            kube.setdefault(node, []).append(st)
    for node, ld in sorted(rows.items()):
        info = topo.node(node)
        if info is None or not info.localdns:
            continue
        dead = sorted({res for res, st in ld if _failing(st)})
        if not dead:
            continue
        if not any(_answering(st) for st in kube.get(node, ())):
            continue  # kube-dns fails here too: the node's pod network (F1), not LocalDNS
        phase = node_phase(info, obs.now)
        ips = {f"localdns-{i}": ip for i, ip in enumerate(LOCALDNS_IPS, 1)}
        yield Finding(
            "localdns-down",
            "F20",
            Severity.INFO if phase else Severity.CRITICAL,
            f"node/{node}",
            f"AKS LocalDNS does not answer on this node ({', '.join(ips.get(r, r) for r in dead)}) while "
            "kube-dns does: pods on it stay pinned to 169.254.10.11 and cannot resolve"
            + (f" ({phase} node)" if phase else ""),
            {
                "label": "kubernetes.azure.com/localdns-state=enabled",
                "silent": ", ".join(f"{r} ({ips.get(r, '?')})" for r in dead),
                "loss": ", ".join(f"{res} {st.loss_pct:.0f}%" for res, st in ld),
                "kube_dns_p50": _ms(min((st.p50 for st in kube.get(node, ()) if st.p50 is not None), default=None)),
            },
            f"on the node (`kubectl debug node/{node}`): `systemctl status localdns` and its journal; "
            "reimage the node or turn LocalDNS off for its pool (`az aks nodepool update --localdns-config`)",
        )
