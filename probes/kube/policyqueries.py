"""Which pod lists the NetworkPolicy evaluation needs: its representative pod set. Pure.

aksnet-top never lists all pods. For each policy that restricts egress it asks the API
server for a few running, non-hostNetwork pods the policy selects in its namespace (a
Kubernetes policy's podSelector as a label selector; a Calico policy's selector syntax is
not the API server's, so a few pods of the namespace, all of which the evaluation then
judges). Pods that no egress policy selects may send anything: they need no verdict.
"""

from __future__ import annotations

from collections.abc import Iterable

from probes.kube.calicoselector import Unsupported, compile_selector
from probes.kube.policymodel import CalicoPolicy, KubePolicy, Labels, Selector

SEP = "\x00"  # between the namespace and the label selector in a query key


def selector_query(sel: Selector) -> str:
    """A LabelSelector in the API server's `labelSelector` syntax ("" = every pod)."""
    parts = [f"{k}={v}" for k, v in sel.match_labels]
    for key, op, values in sel.expressions:
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        else:
            parts.append(f"!{key}")
    return ",".join(parts)


def pod_queries(
    kube: Iterable[KubePolicy], calico: Iterable[CalicoPolicy], namespaces: Iterable[tuple[str, Labels]]
) -> list[str]:
    """Query keys "<namespace>\\x00<label selector>", sorted: one per Egress policy's
    selection (Kubernetes), one per namespace a Calico policy may apply in."""
    out: set[str] = set()
    for p in kube:
        if p.egress_type:
            out.add(f"{p.namespace}{SEP}{'' if p.problem else selector_query(p.pod_selector)}")
    names = list(namespaces)
    for c in calico:
        if not (c.egress_type and c.workload):
            continue
        if c.kind == "NetworkPolicy":
            out.add(f"{c.namespace}{SEP}")
            continue
        try:
            match = compile_selector(c.namespace_selector)
        except Unsupported:
            match = None  # the evaluation says it cannot; the namespaces' pods are still its evidence
        for ns, labels in names:
            if match is None or match({**dict(labels), "projectcalico.org/name": ns}):
                out.add(f"{ns}{SEP}")
    return sorted(out)
