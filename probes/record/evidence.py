"""The raw bodies behind a finding: the Kubernetes objects and ARM resources the finding
names, as the API server and ARM return them, for the recording and the evidence bundle.

`wanted(finding, topology)` says which objects a finding stands on (its subject — a node,
a service, a resolver's pods, a route, a peering — and what its rule reads in Azure: the
route tables, the NSGs, the load balancer, the VNet, the subnet, the managed cluster).
`EvidenceFetcher` fetches them when a finding starts: each Kubernetes object with one GET by name
through the run's client (only for findings, so a few requests), the ARM bodies from what
the Azure source last read (no call). Every body is redacted (`probes.record.redact.raw`)
and at most `MAX_OBJECTS` are kept per finding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import orjson

from probes.record import redact

log = logging.getLogger(__name__)

MAX_OBJECTS = 8  # per finding
GET_TIMEOUT = (2.0, 5.0)  # connect, read: a fetch for the evidence never waits long

# what each rule reads in Azure (by rule id prefix or fault id): ARM kinds the Azure source keeps
_ARM_BY_RULE = (
    (("route-", "routes-", "udr-", "blackhole", "route/"), ("routetable",)),
    (("nsg-",), ("nsg",)),
    (("snat-", "outbound"), ("lb",)),
    (("peering-", "custom-dns"), ("vnet",)),
    (("firewall-",), ("routetable",)),
    (("cni-subnet",), ("subnet",)),
)
_ARM_BY_FAULT = {
    "F1": ("routetable",),
    "F2": ("routetable",),
    "F3": ("routetable",),
    "F10": ("lb",),
    "F13": ("subnet",),
    "F24": ("nsg", "lb"),
    "F25": ("vnet",),
    "F26": ("vnet",),
    "F27": ("routetable",),
}
# the Azure source's calls (probes.azure.service: `_call` names) by the kind they return
ARM_CALLS = {
    "lb": "lb",
    "cluster": "cluster",
    "subnet": "subnet",
    "nsgs": "nsg",
    "nsg": "nsg",
    "vnets": "vnet",
    "vnet": "vnet",
    "routetables": "routetable",
    "routetable": "routetable",
}


def wanted(finding: Any, topology: Any = None) -> list[tuple[str, str]]:
    """(kind, name) of what `finding` stands on: Kubernetes kinds `node`, `pod`
    (namespace/name), `service` (namespace/name), `staticgatewayconfiguration` (namespace/name); ARM kinds from `ARM_CALLS` with a
    name ("" = every one the Azure source read of that kind)."""
    kind, _, rest = str(finding.subject).partition("/")
    out: list[tuple[str, str]] = []
    if kind == "node" and rest:
        out.append(("node", rest))
        for p in _dns_pods(topology, node=rest):
            out.append(("pod", p))
    elif kind == "service" and rest:
        out.append(("service", rest))
    elif kind == "gateway" and rest:  # a StaticGatewayConfiguration (namespace/name)
        out.append(("staticgatewayconfiguration", rest))
    elif kind == "resolver":
        if rest.startswith("nodelocal"):
            out += [("pod", p) for p in _dns_pods(topology, nodelocal=True)][:3]
        elif rest.startswith(("kube-dns", "coredns")):
            out.append(("service", "kube-system/kube-dns"))
            out += [("pod", p) for p in _dns_pods(topology, coredns=True)][:3]
    ev = finding.evidence or {}
    nsg = ev.get("nsg") if isinstance(ev, Mapping) else None
    if isinstance(nsg, str) and nsg and " " not in nsg:
        out.append(("nsg", nsg))
    rule = str(finding.rule)
    for prefixes, arm in _ARM_BY_RULE:
        if rule.startswith(prefixes) or str(finding.subject).startswith(prefixes):
            out += [(a, "") for a in arm]
    out += [(a, "") for a in _ARM_BY_FAULT.get(finding.fault or "", ())]
    return list(dict.fromkeys(out))


def _dns_pods(topology: Any, *, node: str = "", nodelocal: bool = False, coredns: bool = False) -> list[str]:
    if topology is None:
        return []
    out: list[str] = []
    for n, p in (getattr(topology, "nodelocal", None) or {}).items():
        if (node and n == node) or nodelocal:
            out.append(f"{getattr(p, 'namespace', '') or 'kube-system'}/{p.name}")
    for p in getattr(topology, "coredns", ()) or ():
        if (node and getattr(p, "node", "") == node) or coredns:
            out.append(f"{getattr(p, 'namespace', '') or 'kube-system'}/{p.name}")
    return out


def kube_path(kind: str, name: str) -> str | None:
    if kind == "node":
        return f"/api/v1/nodes/{quote(name, safe='')}"
    ns, _, n = name.partition("/")
    if not n:
        return None
    if kind == "pod":
        return f"/api/v1/namespaces/{quote(ns, safe='')}/pods/{quote(n, safe='')}"
    if kind == "service":
        return f"/api/v1/namespaces/{quote(ns, safe='')}/services/{quote(n, safe='')}"
    if kind == "staticgatewayconfiguration":
        return (
            f"/apis/egressgateway.kubernetes.azure.com/v1alpha1/namespaces/{quote(ns, safe='')}"
            f"/staticgatewayconfigurations/{quote(n, safe='')}"
        )
    return None


def arm_items(kept: Mapping[tuple[str, str], Any]) -> list[tuple[str, dict[str, Any]]]:
    """The Azure source's last bodies as (kind, resource body), one per resource."""
    out: list[tuple[str, dict[str, Any]]] = []
    for (call, _scope), result in list(kept.items()):
        kind = ARM_CALLS.get(call)
        if kind is None:
            continue
        for item in result if isinstance(result, (list, tuple)) else [result]:
            body = item.as_dict() if hasattr(item, "as_dict") else item
            if isinstance(body, dict):
                out.append((kind, body))
    return out


class EvidenceFetcher:
    """Fetches a finding's raw bodies: `kube_get(path)` returns an object's JSON bytes (or
    raises); `arm()` returns the Azure source's last bodies by (call, scope)."""

    def __init__(
        self,
        kube_get: Callable[[str], bytes] | None = None,
        arm: Callable[[], Mapping[tuple[str, str], Any]] | None = None,
    ) -> None:
        self.kube_get = kube_get
        self.arm = arm

    def fetch(self, finding: Any, topology: Any = None) -> list[tuple[str, str, dict[str, Any]]]:
        """(kind, name, redacted body) for each object behind `finding` that could be read."""
        out: list[tuple[str, str, dict[str, Any]]] = []
        want = wanted(finding, topology)
        arm_kinds = {k for k, _ in want if k in ARM_CALLS.values()}
        for kind, name in want:
            path = kube_path(kind, name)
            if path is None or self.kube_get is None:
                continue
            try:
                body = orjson.loads(self.kube_get(path))
            except Exception as e:  # noqa: BLE001 - gone, forbidden, unreachable: the finding goes on without it
                log.debug("evidence %s %s: %s", kind, name, e)
                continue
            if isinstance(body, dict):
                out.append((kind, name, redact.raw(_trim(body))))
        if arm_kinds and self.arm is not None:
            names = {n for k, n in want if k in arm_kinds and n}
            for kind, body in arm_items(self.arm()):
                if kind not in arm_kinds:
                    continue
                rname = str(body.get("name", ""))
                if names and kind == "nsg" and rname not in names:
                    continue
                out.append((kind, rname or kind, redact.raw(body)))
        return out[:MAX_OBJECTS]


def _trim(body: dict[str, Any]) -> dict[str, Any]:
    """A node without its image list (two thirds of its bytes, no evidence) and managedFields."""
    meta = body.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        body = {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    status = body.get("status")
    if isinstance(status, dict) and "images" in status:
        body = {**body, "status": {k: v for k, v in status.items() if k != "images"}}
    return body


def kube_getter(source: Any) -> Callable[[str], bytes]:
    """A GET through `source`'s client (probes.kube.source.KubeSource), once it connected."""
    # lazy: the client's module only when evidence is fetched from a cluster
    from probes.kube import connect

    def get(path: str) -> bytes:
        api = source.api
        if api is None:
            raise RuntimeError("not connected")
        resp = connect.get(api, path, timeout=GET_TIMEOUT)
        try:
            return bytes(resp.data)
        finally:
            resp.release_conn()

    return get


def for_run(source: Any, snat: Any) -> EvidenceFetcher:
    """The evidence of a run: its Kubernetes source's client, its Azure source's bodies."""
    kept = getattr(snat, "raw_bodies", None)
    return EvidenceFetcher(kube_get=kube_getter(source) if source is not None else None, arm=kept)
