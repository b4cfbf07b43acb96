"""DNS rules: NodeLocal DNS (F4), cluster DNS (F5), upstream (F6), truncation (F7), and what
is only unreachable from this host."""

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
from probes.diagnose.replicas import covered_unready, split
from probes.dns.result import OLD_MUSL, PLAIN_CLIENTS
from probes.engine.history import Stats
from probes.kube.model import LOCAL_VANTAGE


def _dns_by(obs: Observations) -> dict[str, dict[tuple[str, str], Stats]]:
    """vantage -> (resolver, name) -> stats."""
    out: dict[str, dict[tuple[str, str], Stats]] = {}
    for key, st in obs.dns.items():
        out.setdefault(key.vantage, {})[(key.resolver, key.name)] = st
    return out


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
        info = topo.node(node)
        own_localdns = info is not None and info.localdns  # F20 (probes.diagnose.nodedns) speaks for it
        nl = [
            st
            for (res, _), st in rows.items()
            if res == "nodelocal" or (res.startswith("localdns") and not own_localdns)
        ]
        kd = [st for (res, name), st in rows.items() if res == "kube-dns" and is_cluster_name(name)]
        if not nl or not all(_failing(st) for st in nl):
            continue
        nodes_with_dns_evidence.add(node)
        pod = topo.nodelocal.get(node)
        kube_ok = any(_answering(st) for st in kd)
        pod_state = (
            "no node-local-dns pod on the node"
            if pod is None
            else (
                f"{pod.name} Ready" if pod.ready else f"{pod.name} not ready ({pod.reason or pod.phase or 'no reason'})"
            )
        )
        if kube_ok:
            yield Finding(
                "nodelocal-down",
                "F4",
                Severity.CRITICAL,
                f"node/{node}",
                "NodeLocal DNS does not answer on this node while kube-dns does: pods on it cannot resolve",
                {
                    "nodelocal_loss": f"{max(st.loss_pct for st in nl):.0f}%",
                    "nodelocal_last": nl[0].last_outcome,
                    "kube_dns_p50": _ms(min((st.p50 for st in kd if st.p50 is not None), default=None)),
                    "pod": pod_state,
                },
                f"`kubectl -n kube-system logs {pod.name}` and `kubectl -n kube-system delete pod {pod.name}` to restart it"
                if pod is not None
                else "check the node-local-dns DaemonSet's tolerations and `kubectl -n kube-system get ds node-local-dns`",
            )
    # API-only evidence: the pod is not ready (no DNS vantage on that node to confirm)
    if topo.nodelocal_enabled:
        for n in topo.nodes:
            if n.name in nodes_with_dns_evidence or n.localdns:
                continue
            if n.os == "windows":  # node-local-dns is a Linux DaemonSet: none is expected there
                continue
            pod = topo.nodelocal.get(n.name)
            if pod is not None and pod.ready:
                continue
            phase = node_phase(n, obs.now)
            sev = Severity.INFO if phase else Severity.WARNING
            what = "no node-local-dns pod" if pod is None else f"{pod.name} not ready ({pod.reason or pod.phase})"
            yield Finding(
                "nodelocal-pod-not-ready",
                "F4",
                sev,
                f"node/{n.name}",
                f"{what}: DNS from pods on this node will time out" + (f" ({phase} node)" if phase else ""),
                {"pod": what},
                "`kubectl -n kube-system get pods -l k8s-app=node-local-dns -o wide`",
            )


def rule_cluster_dns(obs: Observations) -> Iterable[Finding]:
    """F5: kube-dns fails from every node vantage, or every CoreDNS pod is unready."""
    topo = obs.topology
    by = _dns_by(obs)
    node_views = {v: rows for v, rows in by.items() if _node_of(v)}
    kd_views = [[st for (res, _), st in rows.items() if res == "kube-dns"] for rows in node_views.values()]
    kd_views = [v for v in kd_views if v]
    all_fail = bool(kd_views) and all(all(_failing(st) for st in view) for view in kd_views)
    failing, answering = split(obs)
    if failing and answering:
        all_fail = False  # some replicas answer: kube-dns loses only their share (F15), it is not down
    ready = sum(1 for p in topo.coredns if p.ready)
    pods_down = bool(topo.coredns) and ready == 0
    if all_fail or pods_down:
        yield Finding(
            "cluster-dns-down",
            "F5",
            Severity.CRITICAL,
            "resolver/kube-dns",
            "cluster DNS is down: kube-dns "
            + ("does not answer from any node" if all_fail else "has no ready CoreDNS endpoint"),
            {
                "coredns_ready": f"{ready}/{len(topo.coredns)}",
                "node_vantages_failing": f"{len(kd_views) if all_fail else 0}/{len(kd_views)}",
                "dns_service_ip": topo.dns_service_ip,
            },
            "`kubectl -n kube-system get pods -l k8s-app=kube-dns` and their logs; `kubectl -n kube-system get endpointslices -l k8s-app=kube-dns`",
        )
    elif topo.coredns and ready < len(topo.coredns):
        covered = covered_unready(obs)  # not ready but answering: F16 names each of them
        unready = [p for p in topo.coredns if not p.ready and p.name not in covered]
        if unready:
            names = ", ".join(f"{p.name} ({p.reason or p.phase or 'no reason'})" for p in unready)
            yield Finding(
                "coredns-degraded",
                None,
                Severity.WARNING,
                "resolver/kube-dns",
                f"{len(topo.coredns) - ready} of {len(topo.coredns)} CoreDNS pods not ready: {names}",
                {"coredns_ready": f"{ready}/{len(topo.coredns)}", "not_ready": names},
                f"`kubectl -n kube-system describe pod {unready[0].name}` (events, readiness probe)",
            )


def rule_upstream(obs: Observations) -> Iterable[Finding]:
    """F6: cluster names answer, external names fail, from every vantage that asked."""
    by = _dns_by(obs)
    views = 0
    failing = 0
    evidence: dict[str, Any] = {}
    for vantage, rows in by.items():
        if vantage == LOCAL_VANTAGE and len(by) > 1:
            continue  # a jumpbox's own upstream is not the cluster's
        inner = [
            st
            for (res, name), st in rows.items()
            if is_cluster_name(name) and (res == "kube-dns" or res.startswith("coredns"))
        ]
        outer = [
            (name, st)
            for (res, name), st in rows.items()
            if not is_cluster_name(name) and (res == "kube-dns" or res.startswith("coredns"))
        ]
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
            "upstream-dns-blocked",
            "F6",
            Severity.CRITICAL,
            "resolver/upstream",
            "cluster names resolve but external names fail from every vantage: CoreDNS cannot reach its upstream",
            evidence,
            "check UDP/TCP 53 from the nodes to the VNet DNS or 168.63.129.16 (UDR, NSG, firewall rules), and CoreDNS's forward plugin",
        )


_TRUNCATED = ("truncated-tcp-ok", "truncated-tcp-failed")
EDNS0_STEP = "spec.dnsConfig.options: [{name: edns0}] in the pods (glibc then asks with EDNS)"


def rule_truncation(obs: Observations) -> Iterable[Finding]:
    """F7: answers with TC set. Two client profiles: an answer truncated even for EDNS
    clients (over 1,232 bytes) hits every client; one that arrives whole with EDNS but is
    over 512 bytes is truncated for clients without EDNS (glibc without `options edns0`,
    musl). The TCP retry decides the severity (FAULTS.md F7: warning when it fails)."""
    every: dict[str, dict[str, str]] = {}  # resolver -> name -> worst outcome (EDNS truncated)
    plain: dict[str, dict[str, str]] = {}  # resolver -> name -> worst no-EDNS outcome (EDNS whole)
    sizes: dict[str, int] = {}  # resolver -> largest answer seen
    for key, st in obs.dns.items():
        if st.last_outcome in _TRUNCATED:
            into, out = every, st.last_outcome
        elif st.last_outcome == "ok" and getattr(st.last, "no_edns", "") in _TRUNCATED:
            into, out = plain, st.last.no_edns
        else:
            continue
        names = into.setdefault(key.resolver, {})
        if names.get(key.name) != "truncated-tcp-failed":
            names[key.name] = out
        sizes[key.resolver] = max(sizes.get(key.resolver, 0), int(getattr(st.last, "size", 0) or 0))
    for res, names in sorted(every.items()):
        failed = "truncated-tcp-failed" in names.values()
        listed = ", ".join(sorted(names))
        yield Finding(
            "dns-truncated",
            "F7",
            Severity.WARNING if failed else Severity.INFO,
            f"resolver/{res}",
            f"answers for {listed} are truncated (TC) over UDP even with EDNS; the TCP retry "
            + ("fails: no client can resolve them" if failed else f"works: {OLD_MUSL} and fails"),
            {"names": listed, "size": _bytes(sizes.get(res, 0)), "clients": "all", "tcp_retry": _retry(failed)},
            f"allow TCP 53 to {res} (NSG, NetworkPolicy), and shrink the answer (fewer records)"
            if failed
            else "shrink the answer (fewer records); Alpine images: musl 1.2.4 or later (Alpine 3.18+)",
        )
    for res, names in sorted(plain.items()):
        if res in every:
            continue  # already said for every client
        failed = "truncated-tcp-failed" in names.values()
        listed = ", ".join(sorted(names))
        size = sizes.get(res, 0)
        yield Finding(
            "dns-truncated-no-edns",
            "F7",
            Severity.WARNING if failed else Severity.INFO,
            f"resolver/{res}",
            f"answers for {listed} ({_bytes(size)}) arrive whole with EDNS but truncated (TC) at 512 bytes for "
            f"{PLAIN_CLIENTS}; their TCP retry "
            + ("fails: those pods cannot resolve them" if failed else f"works: {OLD_MUSL} and fails"),
            {"names": listed, "size": _bytes(size), "clients": "no EDNS (512 bytes)", "tcp_retry": _retry(failed)},
            (f"allow TCP 53 to {res} (NSG, NetworkPolicy); or {EDNS0_STEP}; or shrink the answer")
            if failed
            else f"{EDNS0_STEP}, or musl 1.2.4+ (Alpine 3.18+) images; or shrink the answer (fewer records)",
        )


def _bytes(n: int) -> str:
    return f"{n} bytes" if n else "size unknown"


def _retry(failed: bool) -> str:
    return "failed" if failed else "ok"


def rule_local_unreachable(obs: Observations) -> Iterable[Finding]:
    """From the jumpbox, in-cluster resolvers are often unreachable: say it, as info."""
    rows = _dns_by(obs).get(LOCAL_VANTAGE, {})
    down = sorted({res for (res, _), st in rows.items() if _failing(st)})
    if down and not any(_node_of(v) for v in _dns_by(obs)):
        yield Finding(
            "local-vantage-limited",
            None,
            Severity.INFO,
            "cluster",
            f"from this host {', '.join(down)} do not answer: expected outside the cluster network",
            {"resolvers": ", ".join(down)},
            "install the per-node agent for per-node DNS health",
        )


def rule_local_not_probed(obs: Observations) -> Iterable[Finding]:
    """What this host cannot reach (link-local NodeLocal/LocalDNS, ClusterIPs, overlay pod
    IPs) was not probed from it: never a failure. With no node vantage (no agent) say so
    once, as info, so that a healthy verdict is not read as "node-local DNS is fine"."""
    rows = [(subject, why) for v, subject, why in obs.not_probed if v == LOCAL_VANTAGE]
    if not rows or any(_node_of(k.vantage) for k in (*obs.dns, *obs.egress)):
        return
    subjects = sorted({s.split("/", 1)[1] for s, _ in rows})
    reasons = sorted({why.split(":", 1)[0] for _, why in rows})
    yield Finding(
        "local-not-probed",
        None,
        Severity.INFO,
        "cluster",
        f"not probed from this host ({', '.join(reasons)}): {', '.join(subjects)}; "
        "node-local DNS and egress paths are unknown until the per-node agent reports them",
        {"not_probed": ", ".join(subjects), "why": "; ".join(sorted({w for _, w in rows}))},
        "`aksnet-top agent install` runs the probes on every node",
    )
