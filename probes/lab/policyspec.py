"""The scenario's ``policies:`` section: NetworkPolicies as API objects, the namespaces and
app pods they select, and (optionally) Calico's CRDs with its policies. Plain data,
validated, no sockets; :mod:`probes.lab.cluster` stores the objects and the lab API server
serves them (lists, watches, tables, discovery) like a real one (docs/scenarios.md)::

    policies:
      calicoCRDs: false                  # serve crd.projectcalico.org/v1 (a cluster with Calico)
      namespaces:                        # app namespaces: labels and pods the policies select
        - name: shop
          labels: {team: shop}
          pods: [{name: web, replicas: 2, labels: {app: web}}]
      networkPolicies:                   # networking.k8s.io/v1 NetworkPolicy: metadata and spec
        - metadata: {name: default-deny, namespace: shop}
          spec: {podSelector: {}, policyTypes: [Egress], egress: [...]}
      calicoNetworkPolicies: []          # crd.projectcalico.org/v1 NetworkPolicy (needs calicoCRDs)
      calicoGlobalNetworkPolicies: []    # crd.projectcalico.org/v1 GlobalNetworkPolicy (needs calicoCRDs)

The policies' specs are taken as written (the probes read them as a real API server would
return them); only their names and namespaces are checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from .schemabase import Doc, M, ScenarioError, show

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")

Obj = Annotated[dict[str, Any], M("an object with metadata and spec")]


class PodsDoc(Doc, kw_only=True):
    name: Annotated[str, M("a string", description="the pods' name prefix (a DNS-1123 label)")]
    replicas: Annotated[int, M("an integer from 1 to 50", ge=1, le=50)] = 1
    labels: Annotated[dict[str, str], M("a mapping of strings")] = {}


class NamespaceDoc(Doc, kw_only=True):
    name: Annotated[str, M("a string", description="a DNS-1123 label")]
    labels: Annotated[dict[str, str], M("a mapping of strings")] = {}
    pods: Annotated[list[PodsDoc], M("a list")] = []


class PolicyDoc(Doc, rename="camel", kw_only=True):
    calico_crds: Annotated[bool, M("true or false", description="serve crd.projectcalico.org/v1")] = msgspec.field(
        default=False, name="calicoCRDs"
    )
    namespaces: Annotated[list[NamespaceDoc], M("a list")] = []
    network_policies: Annotated[list[Obj], M("a list")] = []
    calico_network_policies: Annotated[list[Obj], M("a list")] = []
    calico_global_network_policies: Annotated[list[Obj], M("a list")] = []


@dataclass(frozen=True, slots=True)
class LabPods:
    name: str
    replicas: int
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class LabNamespace:
    name: str
    labels: tuple[tuple[str, str], ...]
    pods: tuple[LabPods, ...]


@dataclass(frozen=True, slots=True)
class PolicyLabSpec:
    calico_crds: bool = False
    namespaces: tuple[LabNamespace, ...] = ()
    # (store resource, object): networkpolicies, calico.networkpolicies, calico.globalnetworkpolicies
    objects: tuple[tuple[str, dict[str, Any]], ...] = ()


DEFAULT = PolicyLabSpec()

_KINDS = (
    ("network_policies", "networkPolicies", "networkpolicies", "networking.k8s.io/v1", "NetworkPolicy", True),
    (
        "calico_network_policies",
        "calicoNetworkPolicies",
        "calico.networkpolicies",
        "crd.projectcalico.org/v1",
        "NetworkPolicy",
        True,
    ),
    (
        "calico_global_network_policies",
        "calicoGlobalNetworkPolicies",
        "calico.globalnetworkpolicies",
        "crd.projectcalico.org/v1",
        "GlobalNetworkPolicy",
        False,
    ),
)


def _err(file: str, path: str, msg: str) -> ScenarioError:
    return ScenarioError(f"{file}: {path}: {msg}")


def build_policy_section(doc: PolicyDoc, file: str) -> PolicyLabSpec:
    """The ``policies:`` section of ``file``; errors name the key."""
    namespaces = []
    for i, n in enumerate(doc.namespaces):
        if not _NAME.fullmatch(n.name) or len(n.name) > 63:
            raise _err(file, f"policies.namespaces[{i}].name", f"expected a DNS-1123 label, got {show(n.name)}")
        pods = []
        for j, p in enumerate(n.pods):
            if not _NAME.fullmatch(p.name) or len(p.name) > 50:
                raise _err(
                    file, f"policies.namespaces[{i}].pods[{j}].name", f"expected a DNS-1123 label, got {show(p.name)}"
                )
            pods.append(LabPods(p.name, p.replicas, tuple(sorted(p.labels.items()))))
        namespaces.append(LabNamespace(n.name, tuple(sorted(n.labels.items())), tuple(pods)))
    objects: list[tuple[str, dict[str, Any]]] = []
    for attr, key, resource, api_version, kind, namespaced in _KINDS:
        items = getattr(doc, attr)
        if items and resource.startswith("calico.") and not doc.calico_crds:
            raise _err(file, f"policies.{key}", "Calico policies need calicoCRDs: true")
        seen: set[tuple[str, str]] = set()
        for i, o in enumerate(items):
            path = f"policies.{key}[{i}]"
            meta = o.get("metadata")
            if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
                raise _err(file, f"{path}.metadata.name", "required key is missing")
            name = meta["name"]
            if not _SUBDOMAIN.fullmatch(name):
                raise _err(file, f"{path}.metadata.name", f"expected a DNS-1123 subdomain, got {show(name)}")
            ns = meta.get("namespace", "default") if namespaced else ""
            if namespaced and (not isinstance(ns, str) or not _NAME.fullmatch(ns)):
                raise _err(file, f"{path}.metadata.namespace", f"expected a DNS-1123 label, got {show(ns)}")
            if (ns, name) in seen:
                raise _err(file, f"{path}.metadata.name", f"duplicate {kind} {ns + '/' if ns else ''}{name}")
            seen.add((ns, name))
            if not isinstance(o.get("spec", {}), dict):
                raise _err(file, f"{path}.spec", "expected an object")
            md: dict[str, Any] = {k: v for k, v in meta.items() if k != "namespace"}
            if namespaced:
                md["namespace"] = ns
            objects.append(
                (resource, {"apiVersion": api_version, "kind": kind, "metadata": md, "spec": o.get("spec") or {}})
            )
    return PolicyLabSpec(doc.calico_crds, tuple(namespaces), tuple(objects))


__all__ = ["DEFAULT", "LabNamespace", "LabPods", "PolicyDoc", "PolicyLabSpec", "build_policy_section"]
