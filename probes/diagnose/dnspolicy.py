"""F21: a NetworkPolicy (Kubernetes or Calico) blocks DNS for the pods it selects.

The verdicts are `probes.diagnose.netpol`'s (its docstring says what is assumed about the
dataplanes); this rule turns the blocked ones into findings, one per namespace and
deciding policy, with the exact egress rule to add. It fires only for namespaces that have
pods the policies select, and only for a target the pods use now (the node-level cache
when NodeLocal/LocalDNS is in use, else the kube-dns pods behind the ClusterIP); a target
used only as a fallback is evidence. It waits until the policies, namespaces and pods are
listed, and where Calico may be installed until its CRDs were looked up. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from probes.diagnose.model import Finding, Observations, Severity
from probes.diagnose.netpol import LOCALDNS_IP, NODELOCAL_IP, Blocked, dns_targets, evaluate
from probes.kube.policymodel import KubePolicy, PolicyInputs

KUBE_DNS_PEER: dict[str, Any] = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def _cidr(key: str, dns_ip: str) -> str:
    return {"nodelocal": NODELOCAL_IP, "localdns": LOCALDNS_IP, "cluster-ip": dns_ip}.get(key, "") + "/32"


def _kube_fix(b: Blocked, ref: str, inputs: PolicyInputs, dns_ip: str) -> str:
    _, ns, name = ref.split("/", 2)
    peers: list[dict[str, Any]] = [
        KUBE_DNS_PEER if t == "kube-dns-pods" else {"ipBlock": {"cidr": _cidr(t, dns_ip)}} for t in b.targets
    ]
    rule = {"to": peers, "ports": [{"protocol": p, "port": 53} for p in b.protocols]}
    pol = next((p for p in inputs.kube_policies if p.namespace == ns and p.name == name), None)
    has_rules = isinstance(pol, KubePolicy) and bool(pol.egress)
    op = (
        {"op": "add", "path": "/spec/egress/-", "value": rule}
        if has_rules
        else {
            "op": "add",
            "path": "/spec/egress",
            "value": [rule],
        }
    )
    patch = json.dumps([op], separators=(",", ":"))
    return f"add an egress rule for DNS to {ref}: kubectl -n {ns} patch networkpolicy {name} --type=json -p '{patch}'"


def _calico_fix(b: Blocked, ref: str, dns_ip: str) -> str:
    kind, _, rest = ref.partition("/")
    name = rest.rsplit("/", 1)[-1]
    ns = rest.split("/", 1)[0] if "/" in rest else ""
    nets = [_cidr(t, dns_ip) for t in b.targets if t != "kube-dns-pods"]
    rules = []
    for proto in b.protocols:
        if nets:
            rules.append(
                f"{{action: Allow, protocol: {proto}, destination: {{nets: [{', '.join(nets)}], ports: [53]}}}}"
            )
        if "kube-dns-pods" in b.targets:
            rules.append(
                f"{{action: Allow, protocol: {proto}, destination: {{selector: k8s-app == 'kube-dns', "
                "namespaceSelector: projectcalico.org/name == 'kube-system', ports: [53]}}"
            )
    where = f"before egress rule #{b.rule_index + 1} of" if b.rule_index is not None else "to the egress rules of"
    what = "globalnetworkpolicy" if kind == "globalnetworkpolicy" else "networkpolicy"
    edit = f"calicoctl edit {what} {name}" + (f" -n {ns}" if ns and kind != "globalnetworkpolicy" else "")
    return f"add {where} {ref} (`{edit}`): " + "; ".join(rules)


_KIND_WORDS = {
    "networkpolicy": "NetworkPolicy",
    "calico-networkpolicy": "Calico NetworkPolicy",
    "globalnetworkpolicy": "Calico GlobalNetworkPolicy",
}


def _named(ref: str) -> str:
    """ "networkpolicy/shop/deny" -> "NetworkPolicy shop/deny"."""
    kind, _, rest = ref.partition("/")
    return f"{_KIND_WORDS.get(kind, kind)} {rest}"


_MEMO: list[Any] = [None, None]  # (inputs, ClusterIP, nodelocal, localdns), its results


def _evaluate(inputs: PolicyInputs, dns_ip: str, nodelocal: bool, localdns: bool) -> tuple[Any, ...]:
    """`evaluate`, kept while its inputs are the same objects: the publisher diagnoses every
    few seconds and the policies and pods change far more rarely (O(namespaces × label sets
    × policies) per evaluation)."""
    key = (inputs, dns_ip, nodelocal, localdns)
    memo = _MEMO
    if memo[0] is not None and memo[0][0] is inputs and memo[0][1:] == key[1:]:
        return tuple(memo[1])
    out = evaluate(inputs, dns_ip, nodelocal, localdns)
    _MEMO[:] = [key, out]
    return out


def rule_netpol_dns(obs: Observations) -> Iterable[Finding]:
    inputs = obs.policies
    if not isinstance(inputs, PolicyInputs) or not inputs.kube_synced or inputs.calico == "unknown" or inputs.empty:
        return
    topo = obs.topology
    nodelocal = topo.nodelocal_enabled
    localdns = any(n.localdns for n in topo.nodes)
    dns_ip = topo.dns_service_ip
    labels = {t.key: t.label for t in dns_targets(inputs, dns_ip, nodelocal, localdns)}
    engine = "calico" if inputs.calico == "present" else "kubernetes"
    for res in _evaluate(inputs, dns_ip, nodelocal, localdns):
        fired = False
        for b in res.blocked:
            if not b.needed:
                continue
            fired = True
            ref = b.policies[0]
            cache = nodelocal or localdns  # with a node cache the pods' DNS goes there; CoreDNS is its fallback
            needed = [labels[t] for t in b.targets if not (cache and t == "kube-dns-pods")]
            fallback = [labels[t] for t in b.targets if cache and t == "kube-dns-pods"]
            protos = " and ".join(f"{p} 53" for p in b.protocols)
            who = ", ".join(_named(r) for r in b.policies)
            evidence: dict[str, Any] = {
                "namespace": b.namespace,
                "policies": list(b.policies),
                "blocked": f"{protos} to " + "; ".join(needed),
                "pods": f"{b.label_sets} of {b.of_label_sets} label sets in {b.namespace}, e.g. "
                + (",".join(f"{k}={v}" for k, v in b.example) or "(no labels)"),
                "why": b.why,
                "policy_engine": engine,
            }
            if fallback:
                evidence["also_blocked"] = "; ".join(fallback) + " (used while the node cache is down)"
            if nodelocal and "cluster-ip" in b.targets:
                evidence["assumption"] = (
                    "NodeLocal DNS binds the kube-dns ClusterIP without DNAT, so the policy sees that address"
                )
            if inputs.calico == "forbidden":
                evidence["calico"] = "Calico policies not readable (403): judged by the Kubernetes policies alone"
            if len(b.policies) > 1:
                evidence["note"] = "a rule added to any one of these policies allows it"
            fix = (
                _calico_fix(b, ref, dns_ip)
                if ref.startswith(("globalnetworkpolicy/", "calico-networkpolicy/"))
                else _kube_fix(b, ref, inputs, dns_ip)
            )
            # a GlobalNetworkPolicy blocks in each namespace it applies in: one finding each
            subject = f"{ref}@{b.namespace}" if ref.startswith("globalnetworkpolicy/") else ref
            yield Finding(
                rule="netpol-blocks-dns",
                fault="F21",
                severity=Severity.WARNING,
                subject=subject,
                cause=f"{who} blocks DNS ({protos}) for pods in {b.namespace} to " + " and ".join(needed),
                evidence=evidence,
                next_step=fix,
            )
        if res.unknown and not fired:
            yield Finding(
                rule="netpol-not-evaluated",
                fault="F21",
                severity=Severity.INFO,
                subject=f"namespace/{res.namespace}",
                cause=f"cannot tell whether the egress policies of {res.namespace} allow DNS",
                evidence={"namespace": res.namespace, "why": list(res.unknown[:3]), "policy_engine": engine},
                next_step=f"check the egress rules for UDP and TCP 53 by hand: kubectl -n {res.namespace} get networkpolicies -o yaml",
            )
