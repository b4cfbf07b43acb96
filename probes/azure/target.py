"""What the Azure source found (AzureTarget), its error (AzureCallError), and which
permission each of its ARM calls needs, in the words shown when ARM refuses one.

Pure: no I/O, no SDK.
"""

from __future__ import annotations

from dataclasses import dataclass

from probes.redact import redact_text

LB_NAME = "kubernetes"


@dataclass(frozen=True, slots=True)
class AzureTarget:
    """What discovery found. Immutable; cached between metric refreshes."""

    subscription: str
    node_resource_group: str
    cluster_id: str = ""
    cluster_name: str = ""
    cluster_resource_group: str = ""  # from the load balancer's aks-managed-cluster-rg tag, or a lookup
    found_by: str = ""  # how the managed cluster was found (load balancer tags, resource group, subscription)
    outbound_type: str = "loadBalancer"
    lb_id: str = ""
    outbound_rule: str = ""
    backend_pool: str = ""  # the backend pool the outbound rule uses (aksOutboundBackendPool)
    fixed_ports: int = 0  # allocatedOutboundPorts; 0 = the default tier table
    outbound_ips: int = 1
    idle_timeout: int = 30
    surge: int = 1
    nat_gateway_id: str = ""
    firewall_id: str = ""
    cluster_note: str = ""  # why the managed cluster could not be read (role), shown as info
    max_pods: int = 0  # largest agent pool maxPods (0: unknown)
    subnet_id: str = ""  # the agent pools' vnetSubnetID (bring-your-own VNet), "" = managed VNet
    pod_cidrs: tuple[str, ...] = ()  # networkProfile.podCidr(s): overlay and kubenet nodes' pod range
    http_proxy: str = ""  # httpProxyConfig.httpProxy
    https_proxy: str = ""  # httpProxyConfig.httpsProxy
    no_proxy: tuple[str, ...] = ()  # httpProxyConfig.noProxy
    trusted_ca: str = ""  # httpProxyConfig.trustedCa (base64 PEM)
    outbound_ip_ids: tuple[str, ...] = ()  # public IP / prefix ids behind the LB outbound rule's frontends
    nat_ip_ids: tuple[str, ...] = ()  # the NAT gateway's public IP / prefix ids


class AzureCallError(Exception):
    def __init__(
        self,
        kind: str,
        message: str,
        status: int = 0,
        code: str = "",
        retry_after: float | None = None,
        scope: str = "",
        need: str = "",
    ) -> None:
        message = redact_text(message)  # an SDK message may quote a URL with a SAS sig= or a token
        super().__init__(message)
        self.kind, self.message, self.status, self.code, self.retry_after, self.scope = (
            kind,
            message,
            status,
            code,
            retry_after,
            scope,
        )
        self.need = need  # "reading the load balancer needs Microsoft.Network/loadBalancers/read on <rg>"
        self.call = ""  # the CALLS key of the refused call


# call -> (what it does, the RBAC action it needs, the built-in role that grants it)
CALLS: dict[str, tuple[str, str, str]] = {
    "lb": ("reading the load balancer", "Microsoft.Network/loadBalancers/read", "Reader"),
    "cluster": ("reading the managed cluster", "Microsoft.ContainerService/managedClusters/read", "Reader"),
    "clusters": ("listing managed clusters", "Microsoft.ContainerService/managedClusters/read", "Reader"),
    "natgws": ("listing NAT gateways", "Microsoft.Network/natGateways/read", "Reader"),
    "subnet": ("reading the node subnet", "Microsoft.Network/virtualNetworks/subnets/read", "Reader"),
    "vnets": ("listing virtual networks", "Microsoft.Network/virtualNetworks/read", "Reader"),
    "routetables": ("listing route tables", "Microsoft.Network/routeTables/read", "Reader"),
    "routetable": ("reading the subnet's route table", "Microsoft.Network/routeTables/read", "Reader"),
    "nsgs": ("listing network security groups", "Microsoft.Network/networkSecurityGroups/read", "Reader"),
    "nsg": ("reading the subnet's network security group", "Microsoft.Network/networkSecurityGroups/read", "Reader"),
    "vnet": ("reading the cluster's virtual network", "Microsoft.Network/virtualNetworks/read", "Reader"),
    "metrics": ("reading SNAT metrics", "Microsoft.Insights/metrics/read", "Monitoring Reader"),
    "natgw": ("reading the subnet's NAT gateway", "Microsoft.Network/natGateways/read", "Reader"),
    "publicips": ("listing public IP addresses", "Microsoft.Network/publicIPAddresses/read", "Reader"),
    "publicip": ("reading a public IP address", "Microsoft.Network/publicIPAddresses/read", "Reader"),
    "prefixes": ("listing public IP prefixes", "Microsoft.Network/publicIPPrefixes/read", "Reader"),
    "firewall": ("reading the Azure Firewall", "Microsoft.Network/azureFirewalls/read", "Reader"),
}


def scope_name(scope: str) -> str:
    """A short name for an ARM scope: the resource group it is in (a Reader role there covers it)."""
    parts = scope.strip("/").split("/")
    low = [p.lower() for p in parts]
    if "resourcegroups" in low:
        i = low.index("resourcegroups")
        return f"resource group {parts[i + 1]}" if i + 1 < len(parts) else scope
    if "subscriptions" in low:
        i = low.index("subscriptions")
        return f"subscription {parts[i + 1]}" if i + 1 < len(parts) else scope
    return scope


def need(call: str, scope: str) -> str:
    """'reading the load balancer needs Microsoft.Network/loadBalancers/read on resource group X'."""
    what, action, _ = CALLS.get(call, ("this call", "read", "Reader"))
    return f"{what} needs {action} on {scope_name(scope) if scope else 'its scope'}"


def grant(call: str, scope: str) -> str:
    """The role assignment that grants `call` at `scope`, as the command to run."""
    _, _, role = CALLS.get(call, ("", "", "Reader"))
    return f"az role assignment create --role '{role}' --assignee <you> --scope {scope or '<scope>'}"


__all__ = ["CALLS", "LB_NAME", "AzureCallError", "AzureTarget", "grant", "need", "scope_name"]
