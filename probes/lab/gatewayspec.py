"""The scenario's ``egressGateway:`` section: AKS's static egress gateway. Its presence
serves the CRD (egressgateway.kubernetes.azure.com/v1alpha1 StaticGatewayConfiguration);
the configurations are served as written (metadata, spec, status: leave ``status`` out for
one the operator has not provisioned), and the pods are annotated
``kubernetes.azure.com/static-gateway-configuration: <gateway>`` in their namespace, placed
on the User pools' nodes. The gateway node pool is a ``pools:`` entry with ``mode: Gateway``
(docs/scenarios.md)::

    egressGateway:
      configurations:
        - metadata: {name: sgc-shop, namespace: shop}
          spec: {gatewayNodepoolName: gwpool, provisionPublicIps: true}
          status: {egressIpPrefix: 20.65.41.84/30}
      pods:
        - {namespace: shop, name: web, replicas: 3, gateway: sgc-shop}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from .schemabase import Doc, M, ScenarioError, show

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
API_VERSION = "egressgateway.kubernetes.azure.com/v1alpha1"
ANNOTATION = "kubernetes.azure.com/static-gateway-configuration"  # AKS's, written here as a cluster would

Obj = Annotated[dict[str, Any], M("an object with metadata, spec and (optionally) status")]


class EgressGatewayPodsDoc(Doc, kw_only=True):
    namespace: Annotated[str, M("a string", description="a DNS-1123 label")]
    name: Annotated[str, M("a string", description="the pods' name prefix (a DNS-1123 label)")]
    replicas: Annotated[int, M("an integer from 1 to 50", ge=1, le=50)] = 1
    gateway: Annotated[str, M("a string", description="the annotation's value: a configuration's name")]


class EgressGatewayDoc(Doc, kw_only=True):
    configurations: Annotated[list[Obj], M("a list", description="StaticGatewayConfiguration objects")] = []
    pods: Annotated[list[EgressGatewayPodsDoc], M("a list", description="pods annotated for a configuration")] = []


@dataclass(frozen=True, slots=True)
class LabGatewayPods:
    namespace: str
    name: str
    replicas: int
    gateway: str


@dataclass(frozen=True, slots=True)
class GatewayLabSpec:
    configurations: tuple[dict[str, Any], ...] = ()  # whole objects, apiVersion and kind set
    pods: tuple[LabGatewayPods, ...] = ()


def _err(file: str, path: str, msg: str) -> ScenarioError:
    return ScenarioError(f"{file}: {path}: {msg}")


def build_gateway_section(doc: EgressGatewayDoc, file: str) -> GatewayLabSpec:
    """The ``egressGateway:`` section of ``file``; errors name the key."""
    configs: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for i, o in enumerate(doc.configurations):
        path = f"egressGateway.configurations[{i}]"
        meta = o.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise _err(file, f"{path}.metadata.name", "required key is missing")
        name, ns = meta["name"], meta.get("namespace", "default")
        if not _SUBDOMAIN.fullmatch(name):
            raise _err(file, f"{path}.metadata.name", f"expected a DNS-1123 subdomain, got {show(name)}")
        if not isinstance(ns, str) or not _NAME.fullmatch(ns):
            raise _err(file, f"{path}.metadata.namespace", f"expected a DNS-1123 label, got {show(ns)}")
        if (ns, name) in seen:
            raise _err(file, f"{path}.metadata.name", f"duplicate StaticGatewayConfiguration {ns}/{name}")
        seen.add((ns, name))
        for key in ("spec", "status"):
            if not isinstance(o.get(key, {}), dict):
                raise _err(file, f"{path}.{key}", "expected an object")
        obj: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": "StaticGatewayConfiguration",
            "metadata": {**meta, "namespace": ns},
            "spec": {"provisionPublicIps": True, "defaultRoute": "staticEgressGateway", **(o.get("spec") or {})},
        }
        if o.get("status"):
            obj["status"] = o["status"]
        configs.append(obj)
    pods = []
    for i, p in enumerate(doc.pods):
        for key, v in (("namespace", p.namespace), ("name", p.name), ("gateway", p.gateway)):
            if not _NAME.fullmatch(v) or len(v) > 50:
                raise _err(file, f"egressGateway.pods[{i}].{key}", f"expected a DNS-1123 label, got {show(v)}")
        pods.append(LabGatewayPods(p.namespace, p.name, p.replicas, p.gateway))
    return GatewayLabSpec(tuple(configs), tuple(pods))


__all__ = ["ANNOTATION", "API_VERSION", "EgressGatewayDoc", "GatewayLabSpec", "LabGatewayPods", "build_gateway_section"]
