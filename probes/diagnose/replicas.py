"""CoreDNS replicas one by one: a replica failing while the others answer (F15), a replica
NotReady in the API but still answering (F16). The per-pod rows are `coredns/<pod>` from
any vantage that reaches pod IPs (the agents on the nodes, or this host where pod IPs are
routable). The agents probe every pod from every node (the app hands them the pods), so a
replica's evidence is per node and per pod: a replica failing from most of the vantages
that probe it is the replica; failing from one node only, it is that node's path to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from probes.diagnose.model import Finding, Observations, Severity, _node_of
from probes.diagnose.stats import HEALTHY_LOSS, beyond_noise
from probes.kube.model import PodState

# A replica is failing when at least half of the queries to it fail (lost, SERVFAIL,
# REFUSED) and that count is beyond noise: kube-dns then loses about 1/N of the
# queries it sends that replica's way. Under half it is a lossy path, not a dead replica.
FAILING_SHARE = 0.5
# ... and from at least half of the vantages that probed it: a pod unreachable from one node
# of five is that node's route to it (F1), and kube-dns elsewhere is fine
SEEN_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class PodView:
    pod: PodState
    attempts: int
    failures: int
    last: str  # the most recent outcome over every vantage
    vantages: int  # vantages that probed it
    failing_from: tuple[str, ...] = ()  # vantages where at least half of its queries failed

    @property
    def failing(self) -> bool:
        return (
            self.failures >= FAILING_SHARE * self.attempts
            and len(self.failing_from) >= SEEN_SHARE * self.vantages
            and beyond_noise(self.failures, self.attempts, HEALTHY_LOSS)
        )

    @property
    def seen(self) -> str:
        """Where it fails from: 'every node (5)', '3 of 5 vantages: node/a, …'."""
        nodes = [v for v in self.failing_from if _node_of(v)]
        if len(self.failing_from) == self.vantages:
            return f"all {self.vantages} vantages that probe it" + (f" ({len(nodes)} nodes)" if nodes else "")
        names = ", ".join(self.failing_from[:4]) + (", …" if len(self.failing_from) > 4 else "")
        return f"{len(self.failing_from)} of {self.vantages} vantages: {names}"

    @property
    def answering(self) -> bool:
        return self.attempts > 0 and self.failures < FAILING_SHARE * self.attempts


def pod_views(obs: Observations) -> list[PodView]:
    """Each CoreDNS pod's rows pooled over every vantage (and kept per vantage: where it
    fails from), in pod name order."""
    acc: dict[str, list[float]] = {}  # pod -> [attempts, failures, last_ts]
    last: dict[str, str] = {}
    per: dict[str, dict[str, list[int]]] = {}  # pod -> vantage -> [attempts, failures] (every name)
    for key, st in obs.dns.items():
        res = key.resolver
        if not res.startswith("coredns/") or not st.attempts:
            continue
        pod = res[len("coredns/") :]
        a = acc.setdefault(pod, [0, 0, -1.0])
        a[0] += st.attempts
        a[1] += st.attempts - st.successes
        v = per.setdefault(pod, {}).setdefault(key.vantage, [0, 0])
        v[0] += st.attempts
        v[1] += st.attempts - st.successes
        if st.last_ts >= a[2]:
            a[2] = st.last_ts
            last[pod] = st.last_outcome
    out = []
    for p in sorted(obs.topology.coredns, key=lambda p: p.name):
        got = acc.get(p.name)
        if got is not None:
            vs = per[p.name]
            bad = tuple(sorted(v for v, (n, f) in vs.items() if f >= FAILING_SHARE * n))
            out.append(PodView(p, int(got[0]), int(got[1]), last.get(p.name, ""), len(vs), bad))
    return out


def split(obs: Observations) -> tuple[list[PodView], list[PodView]]:
    """(failing replicas, answering replicas)."""
    views = pod_views(obs)
    return [v for v in views if v.failing], [v for v in views if v.answering]


def _kube_dns_loss(obs: Observations) -> str:
    n = bad = 0
    for key, st in obs.dns.items():
        if key.resolver == "kube-dns" and _node_of(key.vantage) and st.attempts:
            n += st.attempts
            bad += st.attempts - st.successes
    return f"{100.0 * bad / n:.0f}% of {n} queries failed from the nodes" if n else "not probed from the nodes"


def rule_replica_failing(obs: Observations) -> Iterable[Finding]:
    """F15: some CoreDNS replicas fail while others answer. Named; critical when most do."""
    failing, answering = split(obs)
    if not failing or not answering:
        return  # none failing, or all of them: that is F5 (cluster DNS down)
    total = len(obs.topology.coredns) or len(failing) + len(answering)
    most = len(failing) > total / 2
    names = ", ".join(v.pod.name for v in failing)
    yield Finding(
        "coredns-replica-failing",
        "F15",
        Severity.CRITICAL if most else Severity.WARNING,
        f"pod/kube-system/{failing[0].pod.name}" if len(failing) == 1 else "resolver/kube-dns",
        f"CoreDNS {'replicas' if len(failing) > 1 else 'replica'} {names} "
        f"{'fail' if len(failing) > 1 else 'fails'} while {len(answering)} of {total} answer: "
        f"kube-dns loses about {len(failing)}/{total} of the queries it sends their way",
        {
            "failing": "; ".join(
                f"{v.pod.name} on {v.pod.node or '?'}: {v.failures}/{v.attempts} failed, last {v.last}"
                f"{'' if v.pod.ready else ', not ready'}"
                for v in failing
            ),
            "seen_from": "; ".join(f"{v.pod.name}: {v.seen}" for v in failing),
            "answering": ", ".join(v.pod.name for v in answering),
            "kube_dns": _kube_dns_loss(obs),
        },
        f"`kubectl -n kube-system logs {failing[0].pod.name}` (forward/upstream errors, loop, OOM), "
        f"then `kubectl -n kube-system delete pod {failing[0].pod.name}`; "
        "its readiness probe should have taken it out of the endpoints: check it",
    )


def rule_replica_unready_answering(obs: Observations) -> Iterable[Finding]:
    """F16: the API says not ready (out of the kube-dns endpoints), the pod still answers."""
    for v in pod_views(obs):
        if v.pod.ready or not v.answering or v.attempts - v.failures < 1:
            continue
        ready = sum(1 for p in obs.topology.coredns if p.ready)
        yield Finding(
            "coredns-unready-answering",
            "F16",
            Severity.WARNING,
            f"pod/kube-system/{v.pod.name}",
            f"CoreDNS pod {v.pod.name} is not ready in the API but still answers "
            f"({v.attempts - v.failures}/{v.attempts} queries): it is out of the kube-dns endpoints, "
            f"redundancy is down to {ready} of {len(obs.topology.coredns)}",
            {
                "pod": f"{v.pod.name} on {v.pod.node or '?'}, {v.pod.phase or 'phase unknown'}"
                + (f", {v.pod.reason}" if v.pod.reason else ""),
                "answers": f"{v.attempts - v.failures}/{v.attempts} from {v.vantages} vantage(s)",
                "restarts": v.pod.restarts,
            },
            f"its readiness probe (`kubectl -n kube-system describe pod {v.pod.name}`: "
            "GET :8181/ready, the `ready` plugin; a plugin not ready, e.g. kubernetes still syncing, "
            "or a probe timeout too short on a busy node)",
        )


def covered_unready(obs: Observations) -> set[str]:
    """Names of not-ready pods that F16 reports (so `coredns-degraded` need not repeat them)."""
    return {v.pod.name for v in pod_views(obs) if not v.pod.ready and v.answering and v.attempts > v.failures}
