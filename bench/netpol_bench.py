"""NetworkPolicy evaluation benchmark (F21): what one evaluation of a large policy set costs.

    .venv/bin/python bench/netpol_bench.py [--namespaces 500] [--sets 5] [--calico]

A synthetic cluster: N app namespaces, each with `--sets` distinct pod label sets (what the
policy-pods reader files: up to 20 pods per egress policy), a default-deny egress policy
allowing DNS to the kube-dns pods only, and one allowing app=web everything; NodeLocal in
use, so every namespace is blocked (the most work: every target and protocol judged).
`--calico` adds a GlobalNetworkPolicy (order 100) and one Calico NetworkPolicy per
namespace, evaluated in Calico's order. Prints the build of the indexes and the median of
5 evaluations in ms, and the findings count. Pure CPU, no I/O.
"""

from __future__ import annotations

import argparse
import statistics
import time

from probes.diagnose.netpol import evaluate
from probes.kube.policymodel import PodLabels, PolicyInputs, label_sets
from probes.kube.policyparse import parse_calico_policy, parse_kube_policy, parse_namespace


def build(namespaces: int, sets: int, calico: bool) -> PolicyInputs:
    kube, cal, nss, pods = [], [], [], []
    dns = [
        PodLabels("kube-system", f"coredns-{i}", (("k8s-app", "kube-dns"),), ip=f"10.244.0.{i + 5}", ports=(("dns", "UDP", 53), ("dns-tcp", "TCP", 53)))
        for i in range(2)
    ]  # fmt: skip
    nss.append(("kube-system", parse_namespace({"metadata": {"name": "kube-system"}})))
    for n in range(namespaces):
        ns = f"team-{n:04d}"
        nss.append((ns, parse_namespace({"metadata": {"name": ns, "labels": {"team": str(n % 10)}}})))
        to_dns = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
        ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
        meta = {"name": "default-deny", "namespace": ns}
        spec = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [to_dns], "ports": ports}]}
        kube.append(parse_kube_policy({"metadata": meta, "spec": spec}))
        web = {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"port": 443}]}],
        }
        kube.append(parse_kube_policy({"metadata": {"name": "web", "namespace": ns}, "spec": web}))
        if calico:
            rules = [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [8080]}}]
            c = {"order": 200, "selector": "app in {'api', 'web'}", "types": ["Egress"], "egress": rules}
            cal.append(
                parse_calico_policy({"metadata": {"name": "allow-8080", "namespace": ns}, "spec": c}, "NetworkPolicy")
            )
        for s in range(sets):
            pods.append(
                PodLabels(ns, f"p{s}", (("app", ["web", "api", "worker", "batch", "cron"][s % 5]), ("v", str(s))))
            )
    if calico:
        g = {"order": 100, "namespaceSelector": "team in {'1', '2'}", "selector": "all()", "types": ["Egress"],
             "egress": [{"action": "Deny", "protocol": "UDP", "destination": {"nets": ["169.254.0.0/16"]}}]}  # fmt: skip
        cal.append(parse_calico_policy({"metadata": {"name": "deny-ll"}, "spec": g}, "GlobalNetworkPolicy"))
    return PolicyInputs(
        kube_policies=tuple(kube),
        calico_policies=tuple(cal),
        namespaces=tuple(nss),
        label_sets=label_sets([*pods, *dns]),
        kube_dns=tuple(dns),
        kube_synced=True,
        calico="present" if calico else "absent",
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--namespaces", type=int, default=500)
    ap.add_argument("--sets", type=int, default=5)
    ap.add_argument("--calico", action="store_true")
    a = ap.parse_args()
    inputs = build(a.namespaces, a.sets, a.calico)
    times, found = [], ()
    for i in range(6):
        # a new inputs object each round: nothing cached from the round before
        inp = inputs if i == 0 else PolicyInputs(**{f: getattr(inputs, f) for f in inputs.__slots__})  # type: ignore[attr-defined]
        t = time.perf_counter()
        found = evaluate(inp, "10.0.0.10", nodelocal=True)
        times.append((time.perf_counter() - t) * 1000)
    blocked = sum(len(r.blocked) for r in found)
    print(
        f"namespaces={a.namespaces} label_sets={a.sets} calico={a.calico} "
        f"first_ms={times[0]:.1f} median_ms={statistics.median(times[1:]):.1f} blocked={blocked}"
    )


if __name__ == "__main__":
    main()
