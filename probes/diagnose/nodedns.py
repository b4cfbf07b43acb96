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
from probes.egress.result import EgressOutcome
from probes.engine.history import Stats

# a node's external lookups are broken when at least half fail (beyond noise); the other
# nodes are fine when at most this share of theirs fail
BROKEN_SHARE = 0.5
FINE_SHARE = 0.1
_NODE_RESOLVERS = ("nodelocal", "localdns", "kube-dns")
_CACHES = ("nodelocal", "localdns")  # the node's own first hop: down is F4/F20, not F17

# What kind of name-resolution failure, from the outcome a DNS probe (DnsOutcome) or an
# egress check (EgressOutcome) read off the wire: no answer, SERVFAIL, NXDOMAIN, or other.
TIMEOUT, SERVFAIL, NXDOMAIN, OTHER = "timeout", "servfail", "nxdomain", "other"
_KIND_OF = {
    "timeout": TIMEOUT,
    "dns-timeout": TIMEOUT,
    "servfail": SERVFAIL,
    "dns-servfail": SERVFAIL,
    "nxdomain": NXDOMAIN,
    "dns-nxdomain": NXDOMAIN,
}
_EGRESS_DNS = frozenset(o.value for o in EgressOutcome if o.dns)
_KIND_WORDS = {
    TIMEOUT: "no answer (timeout)",
    SERVFAIL: "SERVFAIL",
    NXDOMAIN: "NXDOMAIN",
    OTHER: "failed",
}
_CAUSE = {
    TIMEOUT: "external names get no answer (timeout) from this node only while cluster names resolve here and "
    "other nodes resolve external names: this node's path to the upstream DNS is broken (not CoreDNS's, not F6)",
    SERVFAIL: "external names get SERVFAIL from this node's resolver only while cluster names resolve here and "
    "other nodes resolve external names: the upstream this node's DNS forwards to answers with errors (or its "
    "forwarder cannot reach it)",
    NXDOMAIN: "external names do not exist (NXDOMAIN) for this node's resolver only while other nodes resolve "
    "them: this node asks a different DNS server or zone than the others (custom DNS, a private DNS zone)",
    OTHER: "external names fail from this node only while cluster names resolve here and other nodes "
    "resolve external names: this node's path to the upstream DNS is broken (not CoreDNS's, not F6)",
}


def _next_step(kind: str, node: str) -> str:
    """What to look at for this kind of failure, on this node."""
    if kind == SERVFAIL:
        return (
            f"the DNS cache's log on {node} (`kubectl -n kube-system logs` of its node-local-dns pod, or "
            "`journalctl -u localdns` on the node: forward errors, 'i/o timeout', 'no healthy upstream') and the "
            "upstream it forwards external names to (`kubectl -n kube-system get cm node-local-dns -o yaml`, "
            "CoreDNS's `forward .` and `coredns-custom`); then `dig @<that upstream> mcr.microsoft.com` from the node"
        )
    if kind == NXDOMAIN:
        return (
            f"which DNS server {node} asks (`cat /etc/resolv.conf` from `kubectl debug node/{node}`; the VNet's "
            "custom DNS servers, `az network vnet show --query dhcpOptions.dnsServers`) and the private DNS zones "
            "linked to its VNet (`az network private-dns link vnet list`): a zone covering the name without its "
            "record, or a custom server's conditional forwarder, answers NXDOMAIN; compare `dig mcr.microsoft.com` "
            "here and on a good node"
        )
    return (
        f"from the node (`kubectl debug node/{node}`): `dig @168.63.129.16 mcr.microsoft.com` and each of the VNet's "
        "custom DNS servers; UDP/TCP 53 in its NIC's NSG, the subnet's route table (UDR to a firewall), and any "
        "NetworkPolicy or host firewall on the node that drops DNS"
    )


def _pool(rows: Iterable[Stats]) -> tuple[int, int]:
    n = bad = 0
    for st in rows:
        n += st.attempts
        bad += st.attempts - st.successes
    return n, bad


def rule_upstream_one_node(obs: Observations) -> Iterable[Finding]:
    """F17: from node X external names fail (its node-local cache forwards them to the
    node's upstream; its egress checks resolve through the node's resolv.conf) while
    cluster names resolve there and the other nodes resolve external names fine. Named
    by the kind of failure the probes read (no answer, SERVFAIL, NXDOMAIN), each with its
    own next step."""
    # node -> resolver -> (external rows, cluster rows)
    rows: dict[str, dict[str, tuple[list[tuple[str, Stats]], list[Stats]]]] = {}
    egress: dict[str, list[Stats]] = {}
    answered: set[str] = set()  # external names some node got an answer for
    for key, st in obs.dns.items():
        node = _node_of(key.vantage)
        if node is None or not key.resolver.startswith(_NODE_RESOLVERS):
            continue
        pair = rows.setdefault(node, {}).setdefault(key.resolver, ([], []))
        if is_cluster_name(key.name):
            pair[1].append(st)
        else:
            pair[0].append((key.name, st))
            if st.last_outcome == "ok":
                answered.add(key.name)
    for key, st in obs.egress.items():
        node = _node_of(key.vantage)
        if node is not None and st.attempts:
            egress.setdefault(node, []).append(st)

    def external(node: str) -> tuple[int, int, int, int, dict[str, int], str]:
        """(DNS attempts, failed, egress attempts, failed at name resolution, failed per
        kind, a last bad outcome: a DNS probe's, else an egress check's) over the resolvers
        of `node` that answer cluster names (one that fails those too is down, another
        rule's fault)."""
        n = bad = 0
        kinds: dict[str, int] = {}
        last = ""
        for ext, inner in rows.get(node, {}).values():
            if not any(_answering(st) for st in inner):
                continue
            for name, st in ext:
                failed = st.attempts - st.successes
                if st.last_outcome == "nxdomain" and name in answered:
                    # an answer, but "no such name" for a name another node resolves: as
                    # failed as silence for this rule (a name nobody resolves is no fault of X)
                    failed = st.attempts
                n, bad = n + st.attempts, bad + failed
                if failed:
                    k = _KIND_OF.get(st.last_outcome, OTHER)
                    kinds[k] = kinds.get(k, 0) + failed
                    last = last or (st.last_outcome if st.last_outcome != "ok" else "")
        en = ebad = 0
        for st in egress.get(node, ()):
            en += st.attempts
            if st.last_outcome in _EGRESS_DNS:
                failed = st.attempts - st.successes
                ebad += failed
                k = _KIND_OF.get(st.last_outcome, OTHER)
                kinds[k] = kinds.get(k, 0) + failed
                last = last or st.last_outcome
        return n, bad, en, ebad, kinds, last

    def broken_share(failed: int, total: int) -> bool:
        return bool(failed) and failed >= BROKEN_SHARE * total and beyond_noise(failed, total, HEALTHY_LOSS)

    nodes = set(rows) | set(egress)
    if len(nodes) < 2:
        return  # one vantage cannot tell "this node" from "everywhere" (F6)
    broken: dict[str, tuple[str, dict[str, Any]]] = {}
    seen: dict[str, tuple[int, int, int, int, dict[str, int], str]] = {}
    for node in nodes:
        n, bad, en, ebad, kinds, last = seen[node] = external(node)
        # its DNS probes of external names fail, or its egress checks fail at resolving
        # (each judged on its own: one kind of probe running more often must not hide the other)
        if not (broken_share(bad + ebad, n + en) or broken_share(bad, n) or broken_share(ebad, en)):
            continue
        mine = rows.get(node, {})
        if not any(_answering(st) for pair in mine.values() for st in pair[1]):
            continue  # no cluster name resolves on the node: its DNS is down (F4/F20/F1), not its upstream
        if any(_failing(st) for r, pair in mine.items() if r.startswith(_CACHES) for st in pair[1]):
            continue  # its node-local cache is down for cluster names too: F4/F20's, not the upstream
        kind = max(kinds, key=lambda k: (kinds[k], k != OTHER)) if kinds else OTHER
        broken[node] = (
            kind,
            {
                "failure": _KIND_WORDS[kind],
                "external_dns_failed": f"{bad}/{n}" if n else "not probed",
                "egress_name_failures": f"{ebad}/{en} checks" if en else "none",
                "last": last or "dns-failure",
            },
        )
    if not broken or len(broken) * 2 > len(nodes):
        return  # most nodes: the cluster's upstream (F6), not one node's path
    fine_n = fine_bad = 0
    for node in nodes - set(broken):
        n, bad, en, ebad, _, _ = seen[node]
        fine_n += n + en
        fine_bad += bad + ebad
    if not fine_n or fine_bad > FINE_SHARE * fine_n:
        return
    topo = obs.topology
    for node, (kind, ev) in sorted(broken.items()):
        info = topo.node(node)
        phase = node_phase(info, obs.now) if info is not None else ""
        yield Finding(
            "upstream-dns-node",
            "F17",
            Severity.INFO if phase else Severity.CRITICAL,
            f"node/{node}",
            _CAUSE[kind] + (f" ({phase} node)" if phase else ""),
            {**ev, "other_nodes": f"{fine_n - fine_bad}/{fine_n} external lookups ok"},
            _next_step(kind, node),
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
