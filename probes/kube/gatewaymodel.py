"""The static egress gateway as the Kubernetes API describes it: StaticGatewayConfigurations
(egressgateway.kubernetes.azure.com/v1alpha1, namespaced) and the pods annotated to leave
through one. Pure records; parsed by probes.kube.gatewayparse, watched by the kinds in
probes.kube.kinds (GATEWAY_KINDS), joined by the store into `GatewayData`.

A pod opts in with the annotation ANNOTATION naming a configuration in its own namespace;
its Internet traffic then leaves through the gateway node pool with the configuration's
`status.egressIpPrefix` (a public prefix, or a comma-separated list of private IPs when
`provisionPublicIps` is false), not with its node's LB / NAT / firewall IP.
"""

from __future__ import annotations

import msgspec

ANNOTATION = "kubernetes.azure.com/static-gateway-configuration"
SGC_GROUP_VERSION = "egressgateway.kubernetes.azure.com/v1alpha1"
SGC_PLURAL = "staticgatewayconfigurations"
GATEWAY_CONFIGS = "gateway_configs"  # "ns/name" -> GatewayConfig
GATEWAY_PODS = "gateway_pods"  # "ns/name" -> GatewayPod (only the annotated pods are kept)


class GatewayConfig(msgspec.Struct, frozen=True):
    """A StaticGatewayConfiguration: where its gateway runs and the IPs it leaves with."""

    namespace: str
    name: str
    nodepool: str  # spec.gatewayNodepoolName ("" when a gatewayVmssProfile names the scale set)
    vmss: str = ""  # spec.gatewayVmssProfile.vmssName
    vmss_rg: str = ""  # spec.gatewayVmssProfile.vmssResourceGroup
    provision_public_ips: bool = True  # spec.provisionPublicIps (false: private IP mode)
    public_ip_prefix_id: str = ""  # spec.publicIpPrefixId (bring your own prefix)
    exclude_cidrs: tuple[str, ...] = ()  # spec.excludeCidrs: not sent through the gateway
    egress_prefix: str = ""  # status.egressIpPrefix: "" until the operator provisioned it
    server_ip: str = ""  # status.gatewayServerProfile.ip: the gateway's ILB frontend
    created: str = ""  # metadata.creationTimestamp (RFC 3339), as written

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def pool_words(self) -> str:
        """'gateway pool gwpool' or 'gateway scale set rg/name' for a sentence."""
        if self.nodepool:
            return f"gateway pool {self.nodepool}"
        if self.vmss:
            return f"gateway scale set {self.vmss_rg + '/' if self.vmss_rg else ''}{self.vmss}"
        return "no gateway pool named"

    @property
    def egress_ips(self) -> tuple[str, ...]:
        """The prefix, or the private IPs of private IP mode, one per item."""
        return tuple(p.strip() for p in self.egress_prefix.split(",") if p.strip())


class GatewayPod(msgspec.Struct, frozen=True):
    """A pod annotated for a StaticGatewayConfiguration: only what the rules and views need."""

    namespace: str
    name: str
    node: str  # spec.nodeName ("" while pending)
    gateway: str  # the annotation's value: a configuration's name in `namespace`
    phase: str = ""


class GatewayData(msgspec.Struct, frozen=True):
    """The static egress gateway, at one moment.

    `state`: "absent" (the CRD is not served: the feature is off, nothing to judge),
    "present" (configurations listed), "forbidden" (a 403: said in the status), "unknown"
    (not looked yet). `pods_read`: the annotated pods were listed (their watch is live)."""

    state: str = "unknown"
    configs: tuple[GatewayConfig, ...] = ()  # sorted by namespace, name
    pods: tuple[GatewayPod, ...] = ()  # sorted by namespace, name
    pods_read: bool = False

    def config(self, namespace: str, name: str) -> GatewayConfig | None:
        return next((c for c in self.configs if c.namespace == namespace and c.name == name), None)

    def pods_on(self, node: str) -> dict[tuple[str, str], int]:
        """(namespace, configuration) -> how many annotated pods run on `node`."""
        out: dict[tuple[str, str], int] = {}
        for p in self.pods:
            if p.node == node:
                k = (p.namespace, p.gateway)
                out[k] = out.get(k, 0) + 1
        return out


__all__ = [
    "ANNOTATION",
    "GATEWAY_CONFIGS",
    "GATEWAY_PODS",
    "GatewayConfig",
    "GatewayData",
    "GatewayPod",
    "SGC_GROUP_VERSION",
    "SGC_PLURAL",
]
