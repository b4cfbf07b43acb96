"""Raw JSON -> the policy records of `probes.kube.policymodel`. Pure: no I/O, no clients.

Every parser takes what the API server sent (a dict) and never raises on a field of the
wrong shape: a policy it cannot read carries a `problem` instead, so the evaluation says
"cannot evaluate" rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from probes.kube.policymodel import (
    CalicoEntity,
    CalicoPolicy,
    CalicoRule,
    EgressRule,
    IpBlock,
    KubePolicy,
    Labels,
    Peer,
    PodLabels,
    Port,
    Selector,
    labels_of,
)

EXPRESSION_OPS = ("In", "NotIn", "Exists", "DoesNotExist")
DNS_APP = "kube-dns"  # k8s-app label of the CoreDNS pods


class _Bad(Exception):
    """A field we cannot read: the policy is kept with this as its problem."""


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _list(v: Any, where: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise _Bad(f"{where} is not a list")
    return v


def parse_selector(v: Any, where: str) -> Selector:
    if not isinstance(v, dict):
        raise _Bad(f"{where} is not an object")
    ml = v.get("matchLabels")
    if ml is not None and not isinstance(ml, dict):
        raise _Bad(f"{where}.matchLabels is not an object")
    exprs = []
    for i, e in enumerate(_list(v.get("matchExpressions"), f"{where}.matchExpressions")):
        if not isinstance(e, dict) or not isinstance(e.get("key"), str):
            raise _Bad(f"{where}.matchExpressions[{i}] has no key")
        op = e.get("operator")
        if op not in EXPRESSION_OPS:
            raise _Bad(f"{where}.matchExpressions[{i}]: operator {str(op)[:20]!r} is not one of {EXPRESSION_OPS}")
        values = tuple(str(x) for x in _list(e.get("values"), f"{where}.matchExpressions[{i}].values"))
        exprs.append((e["key"], str(op), values))
    return Selector(labels_of(ml), tuple(exprs))


def _port(v: Any, where: str) -> Port:
    if not isinstance(v, dict):
        raise _Bad(f"{where} is not an object")
    proto = str(v.get("protocol") or "TCP").upper()
    port = v.get("port")
    if port is not None and not isinstance(port, (int, str)) or isinstance(port, bool):
        raise _Bad(f"{where}.port is neither a number nor a name")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    end = v.get("endPort")
    if end is not None and (not isinstance(end, int) or isinstance(end, bool)):
        raise _Bad(f"{where}.endPort is not a number")
    return Port(proto, port, end)


def _peer(v: Any, where: str) -> Peer:
    if not isinstance(v, dict):
        raise _Bad(f"{where} is not an object")
    ipb = v.get("ipBlock")
    block = None
    if ipb is not None:
        if not isinstance(ipb, dict) or not isinstance(ipb.get("cidr"), str):
            raise _Bad(f"{where}.ipBlock has no cidr")
        block = IpBlock(ipb["cidr"], tuple(str(x) for x in _list(ipb.get("except"), f"{where}.ipBlock.except")))
    pod = v.get("podSelector")
    ns = v.get("namespaceSelector")
    return Peer(
        pod_selector=None if pod is None else parse_selector(pod, f"{where}.podSelector"),
        namespace_selector=None if ns is None else parse_selector(ns, f"{where}.namespaceSelector"),
        ip_block=block,
    )


def parse_kube_policy(obj: Mapping[str, Any]) -> KubePolicy:
    """One networking.k8s.io/v1 NetworkPolicy. policyTypes, when absent, holds Egress only
    when the policy has egress rules (the API server's defaulting)."""
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    raw_egress = spec.get("egress")
    types = spec.get("policyTypes")
    egress_type = "Egress" in types if isinstance(types, list) else bool(raw_egress)
    try:
        sel = parse_selector(spec.get("podSelector") or {}, "spec.podSelector")
        rules = []
        for i, r in enumerate(_list(raw_egress, "spec.egress")):
            if not isinstance(r, dict):
                raise _Bad(f"spec.egress[{i}] is not an object")
            ports = tuple(
                _port(p, f"spec.egress[{i}].ports[{j}]")
                for j, p in enumerate(_list(r.get("ports"), f"spec.egress[{i}].ports"))
            )
            to = tuple(
                _peer(p, f"spec.egress[{i}].to[{j}]") for j, p in enumerate(_list(r.get("to"), f"spec.egress[{i}].to"))
            )
            rules.append(EgressRule(ports, to))
        return KubePolicy(ns, name, sel, egress_type, tuple(rules))
    except _Bad as e:
        return KubePolicy(ns, name, Selector(), egress_type, (), problem=str(e))


def _strs(v: Any, where: str) -> tuple[str, ...]:
    return tuple(str(x) for x in _list(v, where))


_ENTITY_KNOWN = {"nets", "notNets", "selector", "notSelector", "namespaceSelector", "ports", "notPorts", "services"}


def _entity(v: Any, where: str) -> CalicoEntity:
    if v is None:
        return CalicoEntity()
    if not isinstance(v, dict):
        raise _Bad(f"{where} is not an object")
    services: tuple[tuple[str, str], ...] = ()
    svc = v.get("services")
    if svc is not None:
        if not isinstance(svc, dict) or not isinstance(svc.get("name"), str):
            raise _Bad(f"{where}.services has no name")
        services = ((str(svc.get("namespace") or ""), svc["name"]),)
    nss = v.get("namespaceSelector")
    other = tuple(sorted(k for k, val in v.items() if k not in _ENTITY_KNOWN and val not in (None, "", [], {})))
    return CalicoEntity(
        nets=_strs(v.get("nets"), f"{where}.nets"),
        not_nets=_strs(v.get("notNets"), f"{where}.notNets"),
        selector=str(v.get("selector") or ""),
        not_selector=str(v.get("notSelector") or ""),
        namespace_selector=None if nss is None else str(nss),
        ports=_strs(v.get("ports"), f"{where}.ports"),
        not_ports=_strs(v.get("notPorts"), f"{where}.notPorts"),
        services=services,
        other=other,
    )


def _calico_rule(v: Any, where: str) -> CalicoRule:
    if not isinstance(v, dict):
        raise _Bad(f"{where} is not an object")
    action = str(v.get("action") or "")
    if action not in ("Allow", "Deny", "Pass", "Log"):
        raise _Bad(f"{where}.action {action[:20]!r} is not Allow, Deny, Pass or Log")
    ipv = v.get("ipVersion")
    return CalicoRule(
        action=action,
        protocol=str(v.get("protocol") or "").upper(),
        not_protocol=str(v.get("notProtocol") or "").upper(),
        source=_entity(v.get("source"), f"{where}.source"),
        destination=_entity(v.get("destination"), f"{where}.destination"),
        ip_version=ipv if isinstance(ipv, int) and not isinstance(ipv, bool) else 0,
    )


def parse_calico_policy(obj: Mapping[str, Any], kind: str) -> CalicoPolicy:
    """One crd.projectcalico.org/v1 NetworkPolicy or GlobalNetworkPolicy (the spec is the
    projectcalico.org/v3 one). `types`, when absent, holds Egress only when there are
    egress rules (Calico's defaulting)."""
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    ns = str(meta.get("namespace") or "") if kind == "NetworkPolicy" else ""
    name = str(meta.get("name") or "")
    raw_egress = spec.get("egress")
    types = spec.get("types")
    egress_type = "Egress" in types if isinstance(types, list) else bool(raw_egress)
    order = spec.get("order")
    order_v = float(order) if isinstance(order, (int, float)) and not isinstance(order, bool) else None
    tier = str(spec.get("tier") or "default")
    workload = not (spec.get("doNotTrack") or spec.get("preDNAT"))
    base = CalicoPolicy(
        kind=kind,
        namespace=ns,
        name=name,
        order=order_v,
        selector=str(spec.get("selector") or ""),
        namespace_selector=str(spec.get("namespaceSelector") or "") if kind == "GlobalNetworkPolicy" else "",
        egress_type=egress_type,
        tier=tier,
        workload=workload,
    )
    try:
        rules = tuple(_calico_rule(r, f"spec.egress[{i}]") for i, r in enumerate(_list(raw_egress, "spec.egress")))
    except _Bad as e:
        return msgspec.structs.replace(base, problem=str(e))
    if spec.get("serviceAccountSelector"):
        return msgspec.structs.replace(base, egress=rules, problem="serviceAccountSelector is not evaluated")
    return msgspec.structs.replace(base, egress=rules)


def parse_namespace(obj: Mapping[str, Any]) -> Labels:
    """A Namespace's labels; `kubernetes.io/metadata.name` as the API server sets it."""
    meta = _dict(obj.get("metadata"))
    labels = dict(labels_of(meta.get("labels")))
    labels.setdefault("kubernetes.io/metadata.name", str(meta.get("name") or ""))
    return tuple(sorted(labels.items()))


def parse_pod_labels(obj: Mapping[str, Any]) -> PodLabels:
    """A pod as the policies see it. Named container ports and the IP are kept only for the
    CoreDNS pods (the destinations); a cluster's other pods need only their labels."""
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    ns = str(meta.get("namespace") or "")
    labels = labels_of(meta.get("labels"))
    phase = str(status.get("phase") or "Pending")
    ip = ""
    ports: tuple[tuple[str, str, int], ...] = ()
    if ns == "kube-system" and dict(labels).get("k8s-app") == DNS_APP:
        ip = str(status.get("podIP") or "")
        named = []
        for c in spec.get("containers") or []:
            for p in _dict(c).get("ports") or [] if isinstance(c, dict) else []:
                p = _dict(p)
                if p.get("name") and isinstance(p.get("containerPort"), int):
                    named.append((str(p["name"]), str(p.get("protocol") or "TCP").upper(), int(p["containerPort"])))
        ports = tuple(named)
    return PodLabels(
        namespace=ns,
        name=str(meta.get("name") or ""),
        labels=labels,
        host_network=bool(spec.get("hostNetwork")),
        running=phase in ("Pending", "Running"),
        ip=ip,
        ports=ports,
    )
