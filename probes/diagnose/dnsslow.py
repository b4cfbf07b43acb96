"""Slow and intermittent DNS: a resolver slow from one node or from all (F14), and the
5-second delay signature of the conntrack race on the kube-dns ClusterIP (F19)."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any, cast

from probes.diagnose.model import Finding, Observations, Severity, _node_of, is_cluster_name, node_phase
from probes.diagnose.replicas import split
from probes.diagnose.stats import (
    HEALTHY_LOSS,
    HEALTHY_SLOW,
    at_least_without,
    beyond_noise,
    median,
    median_without,
    p95,
    p95_without,
)

# FAULTS F14: a p95 of 100 ms is where pods notice (a service call doing 3 lookups adds
# a third of a second), whatever the cluster's normal is.
SLOW_MS = 100.0
# ... or 10x the cluster's own median for that resolver: a resolver that answers in 0.5 ms
# everywhere else is broken on a node where it takes 30 ms ...
RELATIVE = 10.0
# ... but never under 25 ms: a few ms of jitter (a GC pause, CPU throttling, a busy
# softirq) is noise, and 10x a 0.3 ms median would call that slow.
RELATIVE_FLOOR_MS = 25.0
# A resolver slow from at least this share of the node vantages (and from two or more)
# is slow itself, not on one node.
EVERYWHERE = 0.5
# F19: a lost UDP query comes back after the client's 5 s retry timeout (glibc); answers
# later than this count as that retry even when the probe's own deadline is longer.
LATE_MS = 4500.0
# under half of the queries lost: intermittent (more is a resolver down: F1/F5)
INTERMITTENT = 0.5

_KINDS = ("nodelocal", "localdns", "kube-dns", "coredns/")


def _resolver_kind(res: str) -> bool:
    return res.startswith(_KINDS)


def _samples(obs: Observations) -> dict[str, dict[str, list[float]]]:
    """resolver -> node vantage -> latencies (ms) of answers to cluster names. External
    names are left out: their latency includes the upstream's recursion on a cache miss,
    tens to hundreds of ms on a healthy cluster."""
    out: dict[str, dict[str, list[float]]] = {}
    for key, st in obs.dns.items():
        if not _node_of(key.vantage) or not _resolver_kind(key.resolver) or not is_cluster_name(key.name):
            continue
        recent = st.recent
        # most rows lost nothing: their latencies as they are
        lat = [v for v in recent if v is not None] if None in recent else cast("tuple[float, ...]", recent)
        if lat:
            out.setdefault(key.resolver, {}).setdefault(key.vantage, []).extend(lat)
    return out


def _cache_median(samples: dict[str, dict[str, list[float]]], views: dict[str, Any]) -> float | None:
    """The median answer of the node-local caches (NodeLocal DNS, LocalDNS) from these vantages."""
    return median(
        x
        for res, by in samples.items()
        if res == "nodelocal" or res.startswith("localdns")
        for v, lat in by.items()
        if v in views
        for x in lat
    )


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} ms"


def rule_slow_resolver(obs: Observations) -> Iterable[Finding]:
    """F14: p95 at or over 100 ms (or 10x the cluster's median for that resolver, at least
    25 ms) from a node vantage, with more slow answers than a healthy resolver's 5 % could
    explain (binomial test, at least 3 answers)."""
    topo = obs.topology
    samples = _samples(obs)
    for res, raw in sorted(samples.items()):
        # "the others" of each vantage: order statistics over the pooled samples minus its
        # own (stats.*_without), never a list per vantage (that was O(V²) per frame)
        # a vantage can be slow only with answers at or over the lowest limit there can be:
        # on a healthy resolver none is, and nothing is sorted or pooled (the rule runs
        # every few seconds over every node's samples)
        floor = min(SLOW_MS, RELATIVE_FLOOR_MS)
        hot = {v: sorted(o) for v, o in raw.items() if max(o) >= floor}
        if not hot:
            continue
        pool = sorted(x for o in raw.values() for x in o)
        slow: dict[str, tuple[float, float | None, float, int]] = {}
        slow_abs = 0  # vantages slow against the threshold alone (for "slow everywhere")
        for vantage, lat in hot.items():
            top = lat[min(len(lat) - 1, math.ceil(0.95 * len(lat)) - 1)]  # p95 of a sorted list
            if top < floor:
                continue  # under the lowest limit there can be: slow by neither test (most rows)
            base = median_without(pool, lat)
            limit = SLOW_MS if base is None else min(SLOW_MS, max(RELATIVE * base, RELATIVE_FLOOR_MS))
            bad = len(lat) - bisect_left(lat, limit)
            # slower than the others too: when every node sees slow answers (a loaded
            # cluster, or the probing host itself busy) this node is not the place
            n_others = len(pool) - len(lat)
            theirs = at_least_without(pool, lat, limit) / n_others if n_others else 0.0
            rate = max(HEALTHY_SLOW, min(theirs, 0.99))
            if top >= limit and beyond_noise(bad, len(lat), HEALTHY_SLOW):
                slow_abs += 1
            if top >= limit and beyond_noise(bad, len(lat), rate):
                slow[vantage] = (limit, median(lat), top, len(lat))
        if not slow and slow_abs < 2:
            continue
        everyone = pool
        mid = median(everyone)
        shared = res == "kube-dns" or res.startswith("coredns/")
        if slow_abs >= 2 and slow_abs >= EVERYWHERE * len(raw):
            # every node's own cache slow, or a shared resolver slow in its tail only, is
            # load, not one resolver: said only when the median answer itself is slow ...
            if not shared or mid is None or mid < SLOW_MS:
                continue
            # ... and slower than the same nodes' own caches by the relative factor: when
            # NodeLocal/LocalDNS answer as slowly from those nodes, the nodes (or the host
            # probing for them) are slow, not CoreDNS; a cache answers from memory, so a slow
            # CoreDNS shows in it only on a miss (30 s TTL) and leaves its median alone
            base = _cache_median(samples, raw)
            if base is not None and mid < RELATIVE * base:
                continue
            yield Finding(
                "dns-slow",
                "F14",
                Severity.WARNING,
                f"resolver/{res}",
                f"{res} is slow from {slow_abs} of {len(raw)} nodes: p95 {_ms(p95(everyone))}",
                {"p50": _ms(median(everyone)), "p95": _ms(p95(everyone)), "answers": len(everyone)},
                _next(res),
            )
            continue
        for vantage, (limit, mid, top, n) in sorted(slow.items()):
            node = _node_of(vantage) or vantage
            info = topo.node(node)
            phase = node_phase(info, obs.now) if info is not None else ""
            own = hot[vantage]
            yield Finding(
                "dns-slow",
                "F14",
                Severity.INFO if phase else Severity.WARNING,
                f"node/{node}",
                f"{res} answers slowly on this node: p95 {_ms(top)} over {n} answers "
                f"(others: p50 {_ms(median_without(pool, own))}, p95 {_ms(p95_without(pool, own))})"
                + (f" ({phase} node)" if phase else ""),
                {
                    "resolver": res,
                    "p50": _ms(mid),
                    "p95": _ms(top),
                    "threshold": _ms(limit),
                    "others_p50": _ms(median_without(pool, own)),
                    "others_p95": _ms(p95_without(pool, own)),
                },
                _next(res, node),
            )


def _next(res: str, node: str | None = None) -> str:
    if res == "nodelocal" or res.startswith("localdns"):
        where = f" on {node}" if node else ""
        return (
            f"the node-local cache{where}: its CPU throttling (`kubectl top pod -n kube-system`), "
            "its limits, and the node's load (`kubectl top node`)"
        )
    if res.startswith("coredns/"):
        return f"`kubectl -n kube-system top pod {res[8:]}` and its logs; scale CoreDNS out if it is CPU-bound"
    return "CoreDNS's CPU and its upstream (`kubectl -n kube-system top pods -l k8s-app=kube-dns`), " + (
        f"and {node}'s path to the CoreDNS pods" if node else "its replica count"
    )


def rule_dns_5s_delays(obs: Observations) -> Iterable[Finding]:
    """F19: a share of the queries to the kube-dns ClusterIP is lost (a client retries
    after 5 s) while the rest are answered, across vantages, and no replica is failing.
    The loss must be beyond a healthy path's 0.5 % (binomial test) and under half."""
    n = bad = 0
    vantages: set[str] = set()
    for key, st in obs.dns.items():
        if key.resolver != "kube-dns" or not st.attempts or not st.successes:
            continue  # a vantage that never reaches kube-dns is another fault (F1, or not reachable)
        lost = round(st.loss_pct * st.attempts / 100.0)
        late = sum(1 for v in st.recent if v is not None and v >= LATE_MS)
        n += st.attempts
        bad += lost + late
        if lost + late:
            vantages.add(key.vantage)
    if not bad or bad >= INTERMITTENT * n or not beyond_noise(bad, n, HEALTHY_LOSS):
        return
    failing, _ = split(obs)
    if failing:
        return  # one replica dropping everything is F15, not the race
    nodelocal = obs.topology.nodelocal_enabled
    yield Finding(
        "dns-5s-delays",
        "F19",
        Severity.WARNING,
        "resolver/kube-dns",
        f"{100.0 * bad / n:.0f}% of queries to the kube-dns ClusterIP are lost or answered after ≈5 s "
        f"while the rest are fast, from {len(vantages)} vantage(s) and no CoreDNS replica failing: "
        "the conntrack race of parallel A/AAAA queries over UDP — pods wait 5 s for the retry",
        {
            "share": f"{bad}/{n} ({100.0 * bad / n:.1f}%)",
            "vantages": ", ".join(sorted(vantages)[:5]),
            "nodelocal_dns": "enabled (pods using it are spared)" if nodelocal else "not enabled",
        },
        "NodeLocal DNS (pods then skip the ClusterIP's DNAT), or in the pods' dnsConfig.options "
        "`single-request-reopen` (glibc) / `use-vc` (TCP); musl (Alpine) cannot avoid it",
    )
