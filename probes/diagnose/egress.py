"""Egress rules: one destination:port dropped everywhere (F8), unreachable everywhere (F9),
failing from one node only (F10's symptom)."""

from __future__ import annotations

from collections.abc import Iterable

from probes.diagnose.model import Finding, Observations, Severity, _egress_failing, _node_of, _snat_of
from probes.diagnose.path import nsg_evidence
from probes.engine.history import Stats
from probes.kube.model import LOCAL_VANTAGE


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
        if all(getattr(views[v].last, "proxy", "") for v in failing):
            continue  # through the HTTP proxy: rule_proxy (F27) names the proxy and its answer
        outcomes = {views[v].last_outcome for v in failing}
        if failing == set(views) and len(views) >= 1:
            others_open = sorted(t for t in open_targets if t != target)
            same_host_open = sorted(t for t in others_open if t.rpartition(":")[0] == host)
            if outcomes == {"unreachable"}:
                yield Finding(
                    "egress-no-route",
                    "F9",
                    Severity.CRITICAL,
                    f"target/{target}",
                    f"no route to {host}: unreachable from every vantage",
                    {"vantages": len(views), "error": next(iter(views.values())).last_error},
                    "look for a route with next hop None (blackhole) or a missing 0.0.0.0/0 on the cluster subnet's route table "
                    "(`az network route-table route list …`), or a UDR to a firewall that does not route it",
                )
            elif "timeout" in outcomes and others_open:
                # the NSG evaluation (when ARM's path is known) names the rule, or rules NSGs out
                path_evidence, path_step = nsg_evidence(obs, target)
                yield Finding(
                    "egress-dropped",
                    "F8",
                    Severity.CRITICAL,
                    f"target/{target}",
                    f"egress to {target} is dropped from every vantage while other destinations are open: an NSG or firewall rule, not SNAT",
                    {
                        "vantages": len(views),
                        "open_elsewhere": ", ".join((same_host_open or others_open)[:3]),
                        **path_evidence,
                    },
                    path_step
                    or f"check outbound NSG rules on the node subnet and NIC for port {port} and the firewall's application rules for {host}",
                )
            elif others_open:
                yield Finding(
                    "egress-refused",
                    "F8",
                    Severity.CRITICAL,
                    f"target/{target}",
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
            "egress-one-node",
            "F10" if snat is None else None,
            Severity.WARNING,
            f"node/{node}",
            f"egress fails from this node only ({len(bad)} of {checked} targets: {sorted({o for _, o in bad})[0]}) while other nodes connect",
            {
                "targets": ", ".join(t for t, _ in sorted(bad)[:4]) + (" …" if len(bad) > 4 else ""),
                "snat": "no SNAT data" if snat is None else f"{snat.get('pct') or 0:.0f}% used",
            },
            "check SNAT port usage for this node (Azure Monitor UsedSnatPorts by BackendIPAddress) and the NSG on its NIC",
        )
