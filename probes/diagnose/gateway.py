"""Static egress gateway rules: pods annotated for a StaticGatewayConfiguration that is not
there, a configuration the operator has not provisioned (no `status.egressIpPrefix`), a
configuration whose gateway node pool has no Ready node.

Nothing is judged while the CRD is absent (the feature is off), forbidden or not listed
yet; the pods rule also waits for the annotated pods' first list.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from probes.diagnose.model import Finding, Observations, Severity
from probes.kube.gatewaymodel import ANNOTATION, GatewayConfig, GatewayData, GatewayPod

GRACE_S = 180.0  # a configuration younger than this may still be provisioning: not judged yet
EXAMPLES = 3  # pods named in a finding


def _data(obs: Observations) -> GatewayData | None:
    g = obs.gateways
    return g if isinstance(g, GatewayData) and g.state == "present" else None


def _users(g: GatewayData, c: GatewayConfig) -> list[GatewayPod]:
    return [p for p in g.pods if p.namespace == c.namespace and p.gateway == c.name]


def _pods_words(pods: list[GatewayPod]) -> str:
    names = ", ".join(p.name for p in pods[:EXAMPLES])
    return names + (f" (+{len(pods) - EXAMPLES})" if len(pods) > EXAMPLES else "")


def _age(c: GatewayConfig, now: float) -> float | None:
    if not c.created:
        return None
    try:
        t = datetime.fromisoformat(c.created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return now - t


def rule_gateway_missing(obs: Observations) -> Iterable[Finding]:
    """Pods annotated for a configuration their namespace does not have: the gateway's CNI
    plugin cannot set them up (a pod may only use a configuration in its own namespace)."""
    g = _data(obs)
    if g is None or not g.pods_read:
        return
    have = {(c.namespace, c.name) for c in g.configs}
    missing: dict[tuple[str, str], list[GatewayPod]] = {}
    for p in g.pods:
        if (p.namespace, p.gateway) not in have:
            missing.setdefault((p.namespace, p.gateway), []).append(p)
    for (ns, name), pods in sorted(missing.items()):
        elsewhere = sorted(c.namespace for c in g.configs if c.name == name)
        yield Finding(
            "sgc-missing",
            None,
            Severity.CRITICAL,
            f"gateway/{ns}/{name}",
            f"{len(pods)} pod{'s' if len(pods) != 1 else ''} in {ns} annotated for static gateway {name}, "
            f"which namespace {ns} does not have" + (f" (it exists in {', '.join(elsewhere)})" if elsewhere else ""),
            {
                "pods": _pods_words(pods),
                "nodes": ", ".join(sorted({p.node for p in pods if p.node})) or "none yet",
                **({"found_in": ", ".join(elsewhere)} if elsewhere else {}),
            },
            f"`kubectl get staticgatewayconfigurations -A`: a pod can only use one in its own namespace; "
            f"create {name} in {ns}, or fix the pods' annotation {ANNOTATION}",
        )


def rule_gateway_unprovisioned(obs: Observations) -> Iterable[Finding]:
    """A configuration without status.egressIpPrefix: the operator has not set up its
    gateway (no prefix, no gateway IP configuration): its pods have no way out."""
    g = _data(obs)
    if g is None:
        return
    for c in g.configs:
        if c.egress_prefix:
            continue
        age = _age(c, obs.now)
        if age is not None and age < GRACE_S:
            continue
        pods = _users(g, c)
        yield Finding(
            "sgc-not-provisioned",
            None,
            Severity.CRITICAL if pods else Severity.WARNING,
            f"gateway/{c.namespace}/{c.name}",
            f"static gateway {c.namespace}/{c.name} has no egress IP prefix in its status: not provisioned "
            f"on {c.pool_words}" + (f"; {len(pods)} pod{'s use' if len(pods) != 1 else ' uses'} it" if pods else ""),
            {
                "gateway_nodepool": c.nodepool or "(none)",
                **({"vmss": c.vmss} if c.vmss else {}),
                "provision_public_ips": c.provision_public_ips,
                **({"public_ip_prefix_id": c.public_ip_prefix_id} if c.public_ip_prefix_id else {}),
                **({"pods": _pods_words(pods)} if pods else {}),
            },
            f"`kubectl describe staticgatewayconfiguration -n {c.namespace} {c.name}` (its events say why); "
            + (
                f"check the gateway pool: `kubectl get nodes -l kubernetes.azure.com/agentpool={c.nodepool}` "
                "(a pool of mode Gateway, its public IP prefix)"
                if c.nodepool
                else "check the gateway scale set of its gatewayVmssProfile"
            ),
        )


def rule_gateway_pool(obs: Observations) -> Iterable[Finding]:
    """A configuration whose gateway node pool has no Ready node: its pods' traffic has
    nowhere to go."""
    g = _data(obs)
    if g is None or not obs.topology.nodes:
        return
    for c in g.configs:
        if c.nodepool:
            members = [n for n in obs.topology.nodes if n.pool == c.nodepool]
        elif c.vmss:
            members = [n for n in obs.topology.nodes if n.vmss.lower() == c.vmss.lower()]
        else:
            continue
        ready = [n for n in members if n.ready]
        if ready:
            continue
        pods = _users(g, c)
        where = f"gateway pool {c.nodepool}" if c.nodepool else f"gateway scale set {c.vmss}"
        sel = f"kubernetes.azure.com/agentpool={c.nodepool}" if c.nodepool else ""
        yield Finding(
            "sgc-pool-not-ready",
            None,
            Severity.CRITICAL if pods else Severity.WARNING,
            f"gateway/{c.namespace}/{c.name}",
            f"{where} of static gateway {c.namespace}/{c.name} has no Ready node"
            + (f" ({len(members)} NotReady)" if members else " (no node in the cluster)")
            + (f": {len(pods)} pod{'s' if len(pods) != 1 else ''} cannot leave" if pods else ""),
            {
                "nodes": ", ".join(n.name for n in members[:EXAMPLES]) or "none",
                **({"pods": _pods_words(pods)} if pods else {}),
            },
            (
                f"`kubectl get nodes -l {sel}` and `kubectl describe node` of one"
                if sel
                else "`kubectl get nodes -o wide`"
            )
            + "; a gateway pool does not autoscale: scale it within its prefix size "
            "(`az aks nodepool scale`) or repair its nodes",
        )


__all__ = ["rule_gateway_missing", "rule_gateway_pool", "rule_gateway_unprovisioned"]
