"""Raw JSON -> the static egress gateway's records (probes.kube.gatewaymodel). Pure.

Never raises on a field of the wrong shape: what cannot be read is left empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from probes.kube.gatewaymodel import ANNOTATION, GatewayConfig, GatewayPod


def _dict(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def parse_gateway_config(obj: Mapping[str, Any]) -> GatewayConfig:
    """A StaticGatewayConfiguration (egressgateway.kubernetes.azure.com/v1alpha1)."""
    meta, spec, status = _dict(obj.get("metadata")), _dict(obj.get("spec")), _dict(obj.get("status"))
    vmss = _dict(spec.get("gatewayVmssProfile"))
    # the Go type's tag is excludeCidrs; the project's own sample writes excludeCIDRs
    cidrs = spec.get("excludeCidrs", spec.get("excludeCIDRs"))
    provision = spec.get("provisionPublicIps")
    return GatewayConfig(
        namespace=_str(meta.get("namespace")),
        name=_str(meta.get("name")),
        nodepool=_str(spec.get("gatewayNodepoolName")),
        vmss=_str(vmss.get("vmssName")),
        vmss_rg=_str(vmss.get("vmssResourceGroup")),
        provision_public_ips=provision if isinstance(provision, bool) else True,  # the CRD's default
        public_ip_prefix_id=_str(spec.get("publicIpPrefixId")),
        exclude_cidrs=tuple(c for c in cidrs if isinstance(c, str)) if isinstance(cidrs, list) else (),
        egress_prefix=_str(status.get("egressIpPrefix")).strip(),
        server_ip=_str(_dict(status.get("gatewayServerProfile")).get("ip")),
        created=_str(meta.get("creationTimestamp")),
    )


def gateway_of(obj: Mapping[str, Any]) -> str:
    """The configuration a pod is annotated for ("" when none)."""
    return _str(_dict(_dict(obj.get("metadata")).get("annotations")).get(ANNOTATION)).strip()


def parse_gateway_pod(obj: Mapping[str, Any]) -> GatewayPod | None:
    """The annotated pod's few fields; None for a pod without the annotation, or one that
    ended (Succeeded / Failed pods send nothing)."""
    gateway = gateway_of(obj)
    if not gateway:
        return None
    meta, spec, status = _dict(obj.get("metadata")), _dict(obj.get("spec")), _dict(obj.get("status"))
    phase = _str(status.get("phase"))
    if phase in ("Succeeded", "Failed"):
        return None
    return GatewayPod(_str(meta.get("namespace")), _str(meta.get("name")), _str(spec.get("nodeName")), gateway, phase)


__all__ = ["gateway_of", "parse_gateway_config", "parse_gateway_pod"]
