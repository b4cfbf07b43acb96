"""An Azure Resource Manager endpoint for the lab, over real HTTP (stdlib, one thread per connection).

Serves what aksnet-top's Azure source reads, in the REST shapes the azure-mgmt clients
expect: the managed cluster (list in the subscription, get), the outbound load balancer
``kubernetes`` in the node resource group with its outbound rule, NAT gateways, and
Azure Monitor metrics (api-version 2024-02-01) with per-backend time series generated
from the scenario's ``azure:`` section (probes.lab.azurespec) and the wall clock. Every
request is counted (``requests``) and faults are injected like the API server's
(``faults``: 401, 403 AuthorizationFailed, 429 with Retry-After, 5xx, malformed body).

The real SDK clients talk to it with ``base_url=srv.url``, :class:`LabCredential` and
``enforce_https=False`` per call, the way azure-core's own tests reach a local http
endpoint through ``BearerTokenCredentialPolicy``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from probes.azure.cloud import LOOPBACK_TOKEN

from .azurespec import DEFAULT, AzureLabSpec
from .faults import Faults, RequestLog, RequestRecord
from .httpbase import LabHandler, LabHTTPServer, ServerThread
from .networkspec import DEFAULT as NETWORK_DEFAULT
from .networkspec import LabRule, NetworkLabSpec
from .routespec import DEFAULT as ROUTES_DEFAULT
from .routespec import RoutesLabSpec
from .scenario import Scenario, load_scenario, resolve_node_ref

__all__ = ["LabArmServer", "LabCredential", "LAB_TOKEN"]

LAB_TOKEN = LOOPBACK_TOKEN  # what aksnet-top sends a plain-HTTP loopback endpoint
METRICS_API = "2024-02-01"
_TIERS = ((50, 1024), (100, 512), (200, 256), (400, 128), (800, 64), (1000, 32))

_LB_METRICS = {
    "allocatedsnatports": ("AllocatedSnatPorts", "Allocated SNAT Ports", "Count", ("backendipaddress",)),
    "usedsnatports": ("UsedSnatPorts", "Used SNAT Ports", "Count", ("backendipaddress",)),
    "snatconnectioncount": (
        "SnatConnectionCount",
        "SNAT Connection Count",
        "Count",
        ("backendipaddress", "connectionstate"),
    ),
}
_NAT_METRICS = {
    "snatconnectioncount": ("SNATConnectionCount", "SNAT Connection Count", "Count", ()),
    "totalconnectioncount": ("TotalConnectionCount", "Total SNAT Connection Count", "Count", ()),
    "packetdropcount": ("PacketDropCount", "Dropped Packets", "Count", ()),
}


class LabCredential:
    """A TokenCredential for the lab: always the lab's token, never a network call."""

    def __init__(self, token: str = LAB_TOKEN) -> None:
        self.token = token
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        # lazy: azure.core is heavy, and only the SDK clients (which load it anyway) call this
        from azure.core.credentials import AccessToken

        self.calls += 1
        return AccessToken(self.token, int(time.time()) + 3600)

    def close(self) -> None:
        pass


class _Backend(NamedTuple):
    name: str
    ip: str
    pool: str


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(s: str) -> float:
    return datetime.fromisoformat(s.strip().replace("Z", "+00:00")).timestamp()


def _guid(seed: str) -> str:
    h = hashlib.sha256(seed.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _unit(seed: str) -> float:
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:4], "big") / 2**32


class _Err(Exception):
    def __init__(self, code: int, err: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code, self.err, self.message, self.headers = code, err, message, headers or {}


class LabArmServer:
    """``start()`` listens in a background thread; ``stop()`` closes connections and joins.

    ``scenario``: a Scenario or a built-in name/path. ``backends``: a callable returning the
    nodes now (name, ip, pool) — :meth:`for_cluster` reads them from the lab API server's
    live state so nodes a timeline adds get series too; default: the scenario's initial nodes.
    """

    def __init__(
        self,
        scenario: Scenario | str,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = LAB_TOKEN,
        backends: Callable[[], list[tuple[str, str, str]]] | None = None,
        clock: Callable[[], float] = time.time,
        nodes: int | None = None,
        route_nodes: Callable[[], list[tuple[str, str, str | None, bool]]] | None = None,
    ) -> None:
        if isinstance(scenario, str):
            scenario = load_scenario(scenario, nodes=nodes)
        self.scenario = scenario
        self.spec: AzureLabSpec = scenario.extra.get("azure") or DEFAULT
        self.host, self._port = host, port
        self.token = token
        self.clock = clock
        self.t0 = clock()
        self._backends = backends
        self._route_nodes = route_nodes
        self.routes_spec: RoutesLabSpec = scenario.extra.get("routes") or ROUTES_DEFAULT
        self.net_spec: NetworkLabSpec = scenario.extra.get("network") or NETWORK_DEFAULT
        self._names: dict[str, str] | None = None  # egress name -> the address the lab's DNS answers
        self.faults = Faults()
        self.requests = RequestLog()
        self._serving = ServerThread()
        c = scenario.cluster
        self.subscription = c.subscription_id
        self.node_rg = c.node_resource_group
        self.cluster_id = (
            f"/subscriptions/{c.subscription_id}/resourceGroups/{c.resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{c.name}"
        )
        self.lb_id = f"/subscriptions/{c.subscription_id}/resourceGroups/{self.node_rg}/providers/Microsoft.Network/loadBalancers/kubernetes"
        self.natgw_id = f"/subscriptions/{c.subscription_id}/resourceGroups/{self.node_rg}/providers/Microsoft.Network/natGateways/{c.name}-natgw"
        suffix = scenario.vmss_id("__network__")
        self.rt_name = f"aks-agentpool-{suffix}-routetable"
        self.vnet_name = f"aks-vnet-{suffix}"
        rg_id = f"/subscriptions/{c.subscription_id}/resourceGroups/{self.node_rg}/providers/Microsoft.Network"
        self.rt_id = f"{rg_id}/routeTables/{self.rt_name}"
        self.vnet_id = f"{rg_id}/virtualNetworks/{self.vnet_name}"
        self.subnet_id = f"{self.vnet_id}/subnets/aks-subnet"
        self.nsg_name = f"aks-agentpool-{suffix}-nsg"
        self.nsg_id = f"{rg_id}/networkSecurityGroups/{self.nsg_name}"
        self.subnet_nsg_name = f"{c.name}-subnet-nsg"
        self.subnet_nsg_id = f"{rg_id}/networkSecurityGroups/{self.subnet_nsg_name}"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LabArmServer:
        if not self._serving.serving:
            self._serving.serve(LabHTTPServer((self.host, self._port), _ArmHandler, self), "lab-arm")
        return self

    def stop(self) -> None:
        self._serving.shutdown()

    @classmethod
    def for_cluster(cls, state: Any, scenario: Scenario, **kwargs: Any) -> LabArmServer:
        """An ARM endpoint whose load balancer backends and route table follow the lab
        cluster's live nodes (``state``: the lab API server's ``LabState``), so nodes a
        timeline adds or removes get series and routes too. The lab reads its own state."""

        def backends() -> list[tuple[str, str, str]]:
            with state.lock:
                return [(n.name, n.ip, n.pool) for n in state.nodes.values()]

        def route_nodes() -> list[tuple[str, str, str | None, bool]]:
            with state.lock:
                return [(n.name, n.ip, n.pod_cidr, n.network_unavailable) for n in state.nodes.values()]

        return cls(scenario, backends=backends, route_nodes=route_nodes, **kwargs)

    def __enter__(self) -> LabArmServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._serving.bound_port or self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ the world
    def backends(self) -> list[_Backend]:
        if self._backends is not None:
            return [_Backend(*b) for b in self._backends()]
        return [_Backend(n.name, n.ip, n.pool) for n in self.scenario.nodes()]

    def route_nodes(self) -> list[tuple[str, str, str | None, bool]]:
        """(name, InternalIP, pod CIDR, NetworkUnavailable) of the nodes now."""
        if self._route_nodes is not None:
            return list(self._route_nodes())
        return [
            (n.name, n.ip, n.pod_cidr, bool(n.override and n.override.network_unavailable))
            for n in self.scenario.nodes()
        ]

    def has_route_table(self) -> bool:
        kubenet = self.scenario.cluster.network_plugin == "kubenet" and self.routes_spec.route_table
        return kubenet or bool(self.net_spec.firewall)

    def route_table(self) -> dict[str, Any]:
        """The kubenet route table: cloud-provider-azure's routes for the live nodes, then the
        scenario's `routes:` changes (missing, stale, extra)."""
        spec = self.routes_spec
        nodes = self.route_nodes()
        missing = {
            i
            for ref in spec.missing
            if (i := resolve_node_ref(self.scenario, [_Named(n[0]) for n in nodes], ref)) is not None
        }
        stale = {}
        for st in spec.stale:
            i = resolve_node_ref(self.scenario, [_Named(n[0]) for n in nodes], st.ref)
            if i is not None:
                stale[i] = st
        routes = []
        for i, (name, ip, pod_cidr, unavailable) in enumerate(nodes):
            if not pod_cidr or unavailable or i in missing:
                continue
            sr = stale.get(i)
            prefix = sr.prefix if sr and sr.prefix else pod_cidr
            hop = sr.next_hop if sr and sr.next_hop else ip
            routes.append(self._route(name, prefix, "VirtualAppliance", hop))
        for e in spec.extra:
            routes.append(self._route(e.name, e.prefix, e.next_hop_type, e.next_hop))
        if self.net_spec.firewall:
            routes.append(self._route("to-firewall", "0.0.0.0/0", "VirtualAppliance", self.net_spec.firewall))
        return {
            "id": self.rt_id,
            "name": self.rt_name,
            "etag": f'W/"{_guid(orjson.dumps(routes).decode())}"',
            "type": "Microsoft.Network/routeTables",
            "location": self.scenario.cluster.location,
            "properties": {
                "provisioningState": "Succeeded",
                "disableBgpRoutePropagation": False,
                "routes": routes,
                "subnets": [{"id": self.subnet_id}],
            },
        }

    def _route(self, name: str, prefix: str, hop_type: str, hop: str) -> dict[str, Any]:
        props: dict[str, Any] = {"provisioningState": "Succeeded", "addressPrefix": prefix, "nextHopType": hop_type}
        if hop and hop_type == "VirtualAppliance":
            props["nextHopIpAddress"] = hop
        return {
            "id": f"{self.rt_id}/routes/{name}",
            "name": name,
            "type": "Microsoft.Network/routeTables/routes",
            "properties": props,
        }

    def subnet(self) -> dict[str, Any]:
        """The node subnet: one IP configuration per node (maxPods+1 with flat Azure CNI), plus
        the scenario's `routes.subnetUsedIPs`."""
        sc = self.scenario
        count = sum(sc.ip_stride(b.pool) if any(p.name == b.pool for p in sc.pools) else 1 for b in self.backends())
        count += self.routes_spec.subnet_used_ips
        nic = f"/subscriptions/{self.subscription}/resourceGroups/{self.node_rg}/providers/Microsoft.Compute/virtualMachineScaleSets/lab/virtualMachines/0/networkInterfaces/nic/ipConfigurations"
        props: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "addressPrefix": str(sc.cluster.subnet_cidr),
            "ipConfigurations": [{"id": f"{nic}/ipconfig{i}"} for i in range(count)],
        }
        if self.has_route_table():
            props["routeTable"] = {"id": self.rt_id}
        if self.net_spec.subnet_nsg is not None:
            props["networkSecurityGroup"] = {"id": self.subnet_nsg_id}
        return {
            "id": self.subnet_id,
            "name": "aks-subnet",
            "type": "Microsoft.Network/virtualNetworks/subnets",
            "properties": props,
        }

    def vnet(self) -> dict[str, Any]:
        n = self.net_spec
        sub = self.subscription
        props: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "addressSpace": {"addressPrefixes": [str(self.scenario.cluster.vnet_cidr)]},
            "subnets": [self.subnet()],
            "virtualNetworkPeerings": [
                {
                    "name": p.name,
                    "id": f"{self.vnet_id}/virtualNetworkPeerings/{p.name}",
                    "properties": {
                        "provisioningState": "Succeeded",
                        "peeringState": p.state,
                        "peeringSyncLevel": "FullyInSync" if p.state == "Connected" else "RemoteNotInSync",
                        "allowVirtualNetworkAccess": True,
                        "allowForwardedTraffic": True,
                        "remoteVirtualNetwork": {
                            "id": f"/subscriptions/{sub}/resourceGroups/rg-hub/providers/Microsoft.Network/"
                            f"virtualNetworks/{p.remote_vnet}"
                        },
                        "remoteAddressSpace": {"addressPrefixes": list(p.remote_prefixes)},
                    },
                }
                for p in n.peerings
            ],
        }
        if n.dns_servers:
            props["dhcpOptions"] = {"dnsServers": list(n.dns_servers)}
        return {
            "id": self.vnet_id,
            "name": self.vnet_name,
            "type": "Microsoft.Network/virtualNetworks",
            "location": self.scenario.cluster.location,
            "etag": f'W/"{_guid(orjson.dumps(props).decode())}"',
            "properties": props,
        }

    # ------------------------------------------------------------------ NSGs
    def address_of(self, name: str) -> str:
        """The address the lab's egress DNS answers for `name` from the default view (what a
        user writing an NSG rule for it would have resolved)."""
        if self._names is None:
            # lazy: the egress world (names, views) is only built for a scenario whose NSG names one
            from .egressdemo import EgressDemo

            self._names = EgressDemo(self.scenario).addresses()
        return self._names.get(name.lower().rstrip("."), "")

    def _prefixes(self, items: tuple[str, ...]) -> list[str]:
        out = []
        for x in items:
            if x.lower().startswith("name:"):
                ip = self.address_of(x[5:])
                out.append(f"{ip}/32" if ip else "192.0.2.1/32")  # a name the lab does not answer: TEST-NET
            else:
                out.append(x)
        return out

    def _security_rule(self, nsg_id: str, r: LabRule) -> dict[str, Any]:
        props: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "protocol": r.protocol,
            "sourcePortRange": "*",
            "access": r.access,
            "priority": r.priority,
            "direction": r.direction,
        }
        for key, items in (
            ("sourceAddressPrefix", self._prefixes(r.source)),
            ("destinationAddressPrefix", self._prefixes(r.destination)),
        ):
            if len(items) == 1:
                props[key] = items[0]
            else:
                props[key + "es"] = items  # augmented rules: the plural field
        if len(r.ports) == 1:
            props["destinationPortRange"] = r.ports[0]
        else:
            props["destinationPortRanges"] = list(r.ports)
        return {"name": r.name, "id": f"{nsg_id}/securityRules/{r.name}", "properties": props}

    def _nsg(self, nsg_id: str, name: str, rules: tuple[LabRule, ...], nics: bool, subnet: bool) -> dict[str, Any]:
        defaults = [
            ("AllowVnetInBound", 65000, "Inbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
            ("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "AzureLoadBalancer", "*"),
            ("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*"),
            ("AllowVnetOutBound", 65000, "Outbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
            ("AllowInternetOutBound", 65001, "Outbound", "Allow", "*", "Internet"),
            ("DenyAllOutBound", 65500, "Outbound", "Deny", "*", "*"),
        ]
        props: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "resourceGuid": _guid(nsg_id),
            "securityRules": [self._security_rule(nsg_id, r) for r in rules],
            "defaultSecurityRules": [
                {
                    "name": n,
                    "id": f"{nsg_id}/defaultSecurityRules/{n}",
                    "properties": {
                        "provisioningState": "Succeeded",
                        "protocol": "*",
                        "sourcePortRange": "*",
                        "destinationPortRange": "*",
                        "sourceAddressPrefix": src,
                        "destinationAddressPrefix": dst,
                        "access": acc,
                        "priority": prio,
                        "direction": d,
                    },
                }
                for n, prio, d, acc, src, dst in defaults
            ],
        }
        if nics:
            vm = f"/subscriptions/{self.subscription}/resourceGroups/{self.node_rg}/providers/Microsoft.Compute/virtualMachineScaleSets"
            pools = sorted({b.pool for b in self.backends()})
            net = f"/subscriptions/{self.subscription}/resourceGroups/{self.node_rg}/providers/Microsoft.Network"
            props["networkInterfaces"] = [
                {"id": f"{vm}/{v}/virtualMachines/0/networkInterfaces/{v}"}
                for v in (self.scenario.scale_set(p) for p in pools)
                if v
            ] + [  # an availability set's VMs have NICs of their own: aks-<pool>-<id>-nic-<n>
                {"id": f"{net}/networkInterfaces/{b.name.rsplit('-', 1)[0]}-nic-{b.name.rsplit('-', 1)[1]}"}
                for b in self.backends()
                if any(p.name == b.pool and p.vmas for p in self.scenario.pools)
            ]
        if subnet:
            props["subnets"] = [{"id": self.subnet_id}]
        return {
            "id": nsg_id,
            "name": name,
            "type": "Microsoft.Network/networkSecurityGroups",
            "location": self.scenario.cluster.location,
            "etag": f'W/"{_guid(orjson.dumps(props["securityRules"]).decode())}"',
            "properties": props,
        }

    def nsgs(self) -> list[dict[str, Any]]:
        """The aks-agentpool NSG (on the VMSS NIC configurations) and, when the scenario
        has one, the subnet's NSG."""
        n = self.net_spec
        out = [self._nsg(self.nsg_id, self.nsg_name, n.nsg, nics=True, subnet=False)]
        if n.subnet_nsg is not None:
            out.append(self._nsg(self.subnet_nsg_id, self.subnet_nsg_name, n.subnet_nsg, nics=False, subnet=True))
        return out

    def allocated(self, pool_size: int) -> int:
        if self.spec.allocated_outbound_ports:
            return self.spec.allocated_outbound_ports
        return next((p for top, p in _TIERS if pool_size <= top), 0)

    def _traffic(self, nodes: list[_Backend]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for t in self.spec.nodes:
            idx = resolve_node_ref(self.scenario, nodes, t.ref)
            if idx is not None:
                out[nodes[idx].ip] = t
        return out

    def demand(self, b: _Backend, t: float, traffic: Any | None) -> float:
        """SNAT ports node `b` wants at wall time `t` (before the allocation caps it)."""
        s = self.spec
        u = _unit(f"{s.seed}/{b.name}")
        base = s.used_ports * (0.6 + 0.8 * u)
        if traffic is not None and traffic.used_ports is not None:
            base = float(traffic.used_ports)
        wave = 1.0 + 0.2 * math.sin(2 * math.pi * (t / 1800.0) + 6.28 * u)
        level = base * wave
        if traffic is not None and traffic.ramp_to is not None:
            begin = self.t0 - traffic.ramp_start
            f = min(max((t - begin) / traffic.ramp_duration, 0.0), 1.0)
            level = base + (traffic.ramp_to - base) * f
        return max(level, 0.0)

    def managed_cluster(self) -> dict[str, Any]:
        sc, s = self.scenario, self.spec
        c = sc.cluster
        lb_profile = None
        if s.outbound_type == "loadBalancer":
            lb_profile = {
                "managedOutboundIPs": {"count": s.outbound_ips},
                "idleTimeoutInMinutes": s.idle_timeout,
                "allocatedOutboundPorts": s.allocated_outbound_ports,
                "effectiveOutboundIPs": [
                    {
                        "id": f"/subscriptions/{c.subscription_id}/resourceGroups/{self.node_rg}"
                        f"/providers/Microsoft.Network/publicIPAddresses/outbound-{i}"
                    }
                    for i in range(s.outbound_ips)
                ],
                "backendPoolType": "nodeIPConfiguration",
            }
        counts: dict[str, int] = {}
        for b in self.backends():
            counts[b.pool] = counts.get(b.pool, 0) + 1
        net: dict[str, Any] = {
            "networkPlugin": "kubenet" if c.network_plugin == "kubenet" else "azure",
            "serviceCidr": str(c.service_cidr),
            "dnsServiceIP": str(c.dns_service_ip),
            "outboundType": s.outbound_type,
            "loadBalancerSku": "standard",
        }
        if c.network_plugin == "azure-overlay":
            net["networkPluginMode"] = "overlay"
        if c.pod_cidr is not None:
            net["podCidr"] = str(c.pod_cidr)
        if lb_profile:
            net["loadBalancerProfile"] = lb_profile
        if s.outbound_type == "managedNATGateway":
            net["natGatewayProfile"] = {
                "managedOutboundIPProfile": {"count": s.outbound_ips},
                "idleTimeoutInMinutes": s.idle_timeout,
            }
        props_extra: dict[str, Any] = {}
        ns = self.net_spec
        if ns.http_proxy or ns.https_proxy:
            props_extra["httpProxyConfig"] = {
                "httpProxy": ns.http_proxy or None,
                "httpsProxy": ns.https_proxy or None,
                "noProxy": list(ns.no_proxy),
            }
        return {
            "id": self.cluster_id,
            "name": c.name,
            "type": "Microsoft.ContainerService/ManagedClusters",
            "location": c.location,
            "properties": {
                **props_extra,
                "provisioningState": "Succeeded",
                "kubernetesVersion": c.kubernetes_version,
                "currentKubernetesVersion": c.kubernetes_version,
                "dnsPrefix": f"{c.name}-dns",
                "nodeResourceGroup": self.node_rg,
                "networkProfile": net,
                "agentPoolProfiles": [
                    {
                        "name": p.name,
                        "count": counts.get(p.name, 0),
                        "vmSize": p.vm_size,
                        "mode": p.mode,
                        "maxPods": p.max_pods,
                        "type": "VirtualMachineScaleSets",
                        "upgradeSettings": {"maxSurge": s.max_surge},
                    }
                    for p in sc.pools
                ],
            },
        }

    def load_balancer(self) -> dict[str, Any]:
        """As AKS writes it: tags naming the cluster, GUID-named frontends, two backend pools
        (``aksOutboundBackendPool`` for the outbound rule, ``kubernetes`` for inbound rules)."""
        s, c = self.spec, self.scenario.cluster
        rg = f"/subscriptions/{self.subscription}/resourceGroups/{self.node_rg}"
        guids = [_guid(f"{self.cluster_id}/frontend/{i}") for i in range(s.outbound_ips)]
        fips = [
            {
                "id": f"{self.lb_id}/frontendIPConfigurations/{g}",
                "name": g,
                "properties": {"publicIPAddress": {"id": f"{rg}/providers/Microsoft.Network/publicIPAddresses/{g}"}},
            }
            for g in guids
        ]
        outbound_pool = {
            "id": f"{self.lb_id}/backendAddressPools/aksOutboundBackendPool",
            "name": "aksOutboundBackendPool",
            "properties": {"outboundRules": [{"id": f"{self.lb_id}/outboundRules/aksOutboundRule"}]},
        }
        inbound_pool = {"id": f"{self.lb_id}/backendAddressPools/kubernetes", "name": "kubernetes", "properties": {}}
        props: dict[str, Any] = {
            "frontendIPConfigurations": fips,
            "backendAddressPools": [inbound_pool, outbound_pool],
            "provisioningState": "Succeeded",
            "outboundRules": [],
        }
        if s.outbound_type == "loadBalancer":
            props["outboundRules"] = [
                {
                    "id": f"{self.lb_id}/outboundRules/aksOutboundRule",
                    "name": "aksOutboundRule",
                    "properties": {
                        "allocatedOutboundPorts": s.allocated_outbound_ports,
                        "protocol": "All",
                        "enableTcpReset": True,
                        "idleTimeoutInMinutes": s.idle_timeout,
                        "frontendIPConfigurations": [{"id": f["id"]} for f in fips],
                        "backendAddressPool": {"id": outbound_pool["id"]},
                        "provisioningState": "Succeeded",
                    },
                }
            ]
        return {
            "id": self.lb_id,
            "name": "kubernetes",
            "type": "Microsoft.Network/loadBalancers",
            "location": c.location,
            "tags": {"aks-managed-cluster-name": c.name, "aks-managed-cluster-rg": c.resource_group},
            "sku": {"name": "Standard", "tier": "Regional"},
            "properties": props,
        }

    def nat_gateway(self) -> dict[str, Any]:
        return {
            "id": self.natgw_id,
            "name": self.natgw_id.rsplit("/", 1)[1],
            "type": "Microsoft.Network/natGateways",
            "location": self.scenario.cluster.location,
            "sku": {"name": "Standard"},
            "properties": {
                "idleTimeoutInMinutes": self.spec.idle_timeout,
                "provisioningState": "Succeeded",
                "publicIpAddresses": [{"id": p["id"]} for p in self.public_ips() if "natGateways" in p["_owner"]],
                "subnets": [{"id": self.subnet_id}],
            },
        }

    def public_ips(self) -> list[dict[str, Any]]:
        """The node resource group's public IPs as AKS makes them: one per outbound
        frontend of the load balancer (GUID names), or the managed NAT gateway's
        (`_owner` is the lab's note of who uses it, removed before serving)."""
        s, c = self.spec, self.scenario.cluster
        rg = f"/subscriptions/{self.subscription}/resourceGroups/{self.node_rg}/providers/Microsoft.Network"
        out = []
        nat = s.outbound_type in ("managedNATGateway", "userAssignedNATGateway")
        for i in range(s.outbound_ips):
            if nat:
                name, owner = f"{c.name}-natgw-pip-{i}", self.natgw_id
            else:
                name = _guid(f"{self.cluster_id}/frontend/{i}")
                owner = f"{self.lb_id}/frontendIPConfigurations/{name}"
            h = int(_guid(f"{self.cluster_id}/pip/{i}")[:8], 16)
            props: dict[str, Any] = {
                "provisioningState": "Succeeded",
                "ipAddress": f"20.{64 + h % 64}.{(h >> 8) % 256}.{1 + (h >> 16) % 254}",
                "publicIPAddressVersion": "IPv4",
                "publicIPAllocationMethod": "Static",
                "idleTimeoutInMinutes": 4,
            }
            if not nat:
                props["ipConfiguration"] = {"id": owner}
            out.append(
                {
                    "name": name,
                    "id": f"{rg}/publicIPAddresses/{name}",
                    "location": c.location,
                    "sku": {"name": "Standard", "tier": "Regional"},
                    "properties": props,
                    "type": "Microsoft.Network/publicIPAddresses",
                    "_owner": owner,
                }
            )
        return out

    def metrics(self, resource: str, q: dict[str, str]) -> bytes:
        """The Metrics - List answer for the LB or the NAT gateway, generated for the timespan."""
        is_lb = resource.lower() == self.lb_id.lower()
        table = _LB_METRICS if is_lb else _NAT_METRICS
        names = [n.strip() for n in (q.get("metricnames") or "").split(",") if n.strip()]
        if not names:
            raise _Err(400, "BadRequest", "metricnames is required")
        for n in names:
            if n.lower() not in table:
                raise _Err(
                    400,
                    "BadRequest",
                    f"Failed to find metric configuration for provider: "
                    f"{'Microsoft.Network/loadBalancers' if is_lb else 'Microsoft.Network/natGateways'}, "
                    f"resource Id: {resource}, metric: {n}, Valid metrics: "
                    f"{','.join(v[0] for v in table.values())}",
                )
        if (q.get("interval") or "PT1M").upper() != "PT1M":
            raise _Err(400, "BadRequest", "the lab serves interval PT1M only")
        now = self.clock()
        try:
            span_a, _, span_b = (q.get("timespan") or "").partition("/")
            start, end = (_parse_iso(span_a), _parse_iso(span_b)) if span_b else (now - 3600, now)
        except ValueError:
            raise _Err(400, "BadRequest", f"invalid timespan {q.get('timespan')!r}") from None
        end = min(end, now)
        first = math.ceil(start / 60) * 60
        times = [t for t in range(int(first), int(end), 60)][-1440:]
        # Azure Monitor's newest minute is still being aggregated: a point with only its
        # timeStamp (no value), as where there is no data at all
        newest = times[-1] if times and end >= now - 60 else None
        aggs = [x.strip().lower() for x in (q.get("aggregation") or "average").split(",") if x.strip()]
        filt = q.get("$filter") or ""
        want = {m.group(1).lower(): m.group(2) for m in re.finditer(r"(\w+)\s+eq\s+'([^']*)'", filt, re.I)}
        top = int(q.get("top") or 10)
        nodes = self.backends()
        traffic = self._traffic(nodes)
        alloc = self.allocated(len(nodes))
        value = []
        for n in names:
            key = n.lower()
            proper, local, unit, dims = table[key]
            ts_list: list[dict[str, Any]] = []
            if is_lb and "backendipaddress" in want:
                ipf = want["backendipaddress"]
                states = (
                    ("successful", "failed")
                    if key == "snatconnectioncount" and want.get("connectionstate", "*") == "*"
                    else (want.get("connectionstate", "").lower(),)
                    if key == "snatconnectioncount" and "connectionstate" in want
                    else ("",)
                )
                for b in nodes:
                    if ipf != "*" and ipf != b.ip:
                        continue
                    tr = traffic.get(b.ip)
                    for state in states:
                        md = [
                            {"name": {"value": "backendipaddress", "localizedValue": "backendipaddress"}, "value": b.ip}
                        ]
                        if state:
                            md.append(
                                {
                                    "name": {"value": "connectionstate", "localizedValue": "connectionstate"},
                                    "value": state,
                                }
                            )
                        ts_list.append(
                            {
                                "metadatavalues": md,
                                "data": [
                                    self._point(key, b, t, tr, alloc, aggs, state)
                                    if t != newest
                                    else {"timeStamp": _iso(t)}
                                    for t in times
                                ],
                            }
                        )
                ts_list = ts_list[:top]
            else:  # no split: the whole resource
                ts_list = [
                    {
                        "metadatavalues": [],
                        "data": [
                            self._total_point(key, nodes, traffic, t, alloc, aggs, is_lb)
                            if t != newest
                            else {"timeStamp": _iso(t)}
                            for t in times
                        ],
                    }
                ]
            value.append(
                {
                    "id": f"{resource}/providers/Microsoft.Insights/metrics/{proper}",
                    "type": "Microsoft.Insights/metrics",
                    "name": {"value": proper, "localizedValue": local},
                    "displayDescription": local,
                    "unit": unit,
                    "timeseries": ts_list,
                    "errorCode": "Success",
                }
            )
        body = {
            "cost": len(times) * len(value),
            "timespan": f"{_iso(start)}/{_iso(end)}",
            "interval": "PT1M",
            "namespace": "Microsoft.Network/loadBalancers" if is_lb else "Microsoft.Network/natGateways",
            "resourceregion": self.scenario.cluster.location,
            "value": value,
        }
        return orjson.dumps(body)

    def _point(self, key: str, b: _Backend, t: float, tr: Any, alloc: int, aggs: list[str], state: str) -> dict:
        p: dict[str, Any] = {"timeStamp": _iso(t)}
        d = self.demand(b, t, tr)
        if key == "allocatedsnatports":
            v_avg = v_max = float(alloc)
        elif key == "usedsnatports":
            v_avg, v_max = float(min(round(d), alloc)), float(min(round(d * 1.08), alloc))
        else:
            failing = tr is not None and tr.failed_per_minute and d >= alloc
            if state == "failed":
                v = float(tr.failed_per_minute if failing else 0)
            else:
                v = float(round(d * 2))
            v_avg = v_max = v
            for a in aggs:
                p[a] = v
            return p
        for a in aggs:
            p[a] = v_max if a == "maximum" else v_avg if a in ("average", "minimum") else v_avg
        return p

    def _total_point(
        self, key: str, nodes: list[_Backend], traffic: dict, t: float, alloc: int, aggs: list[str], is_lb: bool
    ) -> dict:
        demand = sum(self.demand(b, t, traffic.get(b.ip)) for b in nodes)
        if key == "packetdropcount":
            v = float(sum(tr.failed_per_minute for ip, tr in traffic.items()))
        elif key in ("totalconnectioncount", "snatconnectioncount"):
            v = float(round(demand * (2 if key == "snatconnectioncount" else 3)))
        else:
            v = float(alloc * len(nodes) if key == "allocatedsnatports" else round(demand))
        return {"timeStamp": _iso(t), **{a: v for a in aggs}}


class _Named(NamedTuple):
    name: str


_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_ROUTES = [
    ("clusters", re.compile(_SUB + r"/providers/microsoft\.containerservice/managedclusters$", re.I)),
    (
        "cluster",
        re.compile(
            _SUB
            + r"/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.containerservice/managedclusters/(?P<name>[^/]+)$",
            re.I,
        ),
    ),
    ("metrics", re.compile(r"^(?P<res>/subscriptions/.+)/providers/microsoft\.insights/metrics$", re.I)),
    (
        "lb",
        re.compile(
            _SUB + r"/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.network/loadbalancers/(?P<name>[^/]+)$", re.I
        ),
    ),
    (
        "routetables",
        re.compile(_SUB + r"/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.network/routetables$", re.I),
    ),
    (
        "routetable",
        re.compile(
            _SUB + r"/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.network/routetables/(?P<name>[^/]+)$", re.I
        ),
    ),
    ("vnets", re.compile(_SUB + r"/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.network/virtualnetworks$", re.I)),
    (
        "vnet",
        re.compile(
            _SUB + r"/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.network/virtualnetworks/(?P<name>[^/]+)$", re.I
        ),
    ),
    (
        "subnet",
        re.compile(
            _SUB
            + r"/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.network/virtualnetworks/(?P<vnet>[^/]+)/subnets/(?P<name>[^/]+)$",
            re.I,
        ),
    ),
    ("natgws", re.compile(_SUB + r"/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.network/natgateways$", re.I)),
    (
        "publicips",
        re.compile(_SUB + r"/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.network/publicipaddresses$", re.I),
    ),
    (
        "nsgs",
        re.compile(_SUB + r"/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.network/networksecuritygroups$", re.I),
    ),
    (
        "nsg",
        re.compile(
            _SUB + r"/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.network/networksecuritygroups/(?P<name>[^/]+)$",
            re.I,
        ),
    ),
]


_ERROR_CODES = {400: "InvalidRequest", 405: "MethodNotAllowed", 501: "MethodNotAllowed"}
_LISTS = ("clusters", "natgws", "routetables", "vnets", "nsgs", "publicips")


def _error_body(err: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": err, "message": message}})


class _ArmHandler(LabHandler):
    server_version = "lab-arm"
    timeout = 60

    _kind = ""
    _q: dict[str, str] = {}

    def common_headers(self) -> dict[str, str]:
        return {"x-ms-request-id": os.urandom(8).hex()}

    def error_body(self, code: int, message: str) -> bytes:
        return _error_body(_ERROR_CODES.get(code, "BadRequest"), message)

    def record(self, status: int) -> None:
        self.lab.requests.add(
            RequestRecord(
                self.command,
                self._path,
                self._q,
                "list" if self._kind in _LISTS else "get",
                self._kind or None,
                status,
                "lab",
            )
        )

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_body(code, body, "application/json; charset=utf-8", headers)

    def _error(self, e: _Err) -> None:
        self._send(e.code, _error_body(e.err, e.message), e.headers)

    def do_GET(self) -> None:
        lab = self.lab
        self.begin(unquote_path=True)
        self._q = {k: v[-1] for k, v in self._query.items()}
        self._kind = ""
        try:
            route, m = next(((k, m) for k, pat in _ROUTES if (m := pat.search(self._path))), ("", None))
            self._kind = route
            if lab.token is not None and self.headers.get("Authorization", "") != f"Bearer {lab.token}":
                raise _Err(
                    401,
                    "InvalidAuthenticationToken",
                    "The access token is invalid.",
                    {
                        "WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                        'error="invalid_token", error_description="The access token is invalid."'
                    },
                )
            rule = lab.faults.take(self._path, "get")
            if rule is not None and self._fault(rule):
                return
            if m is None:
                raise _Err(
                    404,
                    "InvalidResourceType",
                    f"The resource type could not be found in the namespace for path {self._path}",
                )
            self._send(200, self._answer(route, m))
        except _Err as e:
            self._error(e)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _refuse(self) -> None:
        self._path, self._q, self._kind = self.path, {}, ""
        self._error(_Err(405, "MethodNotAllowed", "the lab ARM endpoint is read-only"))

    do_POST = do_PUT = do_PATCH = do_DELETE = _refuse

    def _fault(self, rule: Any) -> bool:
        if rule.action == "malformed_json":
            self._send(200, b'{"value": [{"name": {"value": "UsedSnatPorts"}, "timeseries": [{"data": [{"timeSt')
            return True
        if rule.action == "drop":
            self.close_connection = True
            return True
        if rule.action == "delay":
            time.sleep(min(rule.seconds, 30))
            return False
        code = rule.status
        headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
        if code == 403:
            scope = (
                self._path.rsplit("/providers/Microsoft.Insights/metrics", 1)[0]
                if self._kind == "metrics"
                else self._path
            )
            action = {
                "metrics": "Microsoft.Insights/metrics/read",
                "lb": "Microsoft.Network/loadBalancers/read",
                "routetables": "Microsoft.Network/routeTables/read",
                "routetable": "Microsoft.Network/routeTables/read",
                "vnets": "Microsoft.Network/virtualNetworks/read",
                "vnet": "Microsoft.Network/virtualNetworks/read",
                "subnet": "Microsoft.Network/virtualNetworks/subnets/read",
                "natgws": "Microsoft.Network/natGateways/read",
                "publicips": "Microsoft.Network/publicIPAddresses/read",
                "nsgs": "Microsoft.Network/networkSecurityGroups/read",
                "nsg": "Microsoft.Network/networkSecurityGroups/read",
                "cluster": "Microsoft.ContainerService/managedClusters/read",
                "clusters": "Microsoft.ContainerService/managedClusters/read",
            }.get(self._kind, "read")
            msg = rule.message or (
                f"The client 'operator@contoso.com' with object id '00000000-0000-0000-0000-00000000beef' "
                f"does not have authorization to perform action '{action}' over scope "
                f"'{scope}' or the scope is invalid. If access was recently granted, please "
                f"refresh your credentials."
            )
            raise _Err(403, "AuthorizationFailed", msg, headers)
        if code == 401:
            raise _Err(
                401,
                "InvalidAuthenticationToken",
                rule.message or "The access token expiry UTC time is earlier than current UTC time.",
                headers,
            )
        if code == 429:
            raise _Err(429, "TooManyRequests", rule.message or "The request is being throttled.", headers)
        if code == 404:
            raise _Err(
                404, "ResourceNotFound", rule.message or f"The Resource at '{self._path}' was not found.", headers
            )
        raise _Err(
            code,
            "InternalServerError",
            rule.message or "Encountered internal server error. Diagnostic information: lab.",
            headers,
        )

    def _answer(self, route: str, m: re.Match[str]) -> bytes:
        lab = self.lab
        if route != "metrics" and m.group("sub").lower() != lab.subscription.lower():
            raise _Err(404, "SubscriptionNotFound", f"The subscription '{m.group('sub')}' could not be found.")
        if route == "clusters":
            return orjson.dumps({"value": [lab.managed_cluster()]})
        if route == "cluster":
            if (
                m.group("name").lower() != lab.scenario.cluster.name.lower()
                or m.group("rg").lower() != lab.scenario.cluster.resource_group.lower()
            ):
                raise _Err(
                    404,
                    "ResourceNotFound",
                    f"The Resource 'Microsoft.ContainerService/managedClusters/{m.group('name')}' "
                    f"under resource group '{m.group('rg')}' was not found.",
                )
            return orjson.dumps(lab.managed_cluster())
        if route == "lb":
            if m.group("rg").lower() != lab.node_rg.lower():
                raise _Err(404, "ResourceGroupNotFound", f"Resource group '{m.group('rg')}' could not be found.")
            if m.group("name").lower() != "kubernetes":
                raise _Err(
                    404,
                    "ResourceNotFound",
                    f"The Resource 'Microsoft.Network/loadBalancers/{m.group('name')}' "
                    f"under resource group '{m.group('rg')}' was not found.",
                )
            return orjson.dumps(lab.load_balancer())
        if route in ("nsgs", "nsg"):
            if m.group("rg").lower() != lab.node_rg.lower():
                raise _Err(404, "ResourceGroupNotFound", f"Resource group '{m.group('rg')}' could not be found.")
            nsgs = lab.nsgs()
            if route == "nsgs":
                return orjson.dumps({"value": nsgs})
            hit = next((g for g in nsgs if g["name"].lower() == m.group("name").lower()), None)
            if hit is None:
                raise _Err(404, "ResourceNotFound", f"The Resource '{self._path}' was not found.")
            return orjson.dumps(hit)
        if route in ("routetables", "routetable", "vnets", "vnet", "subnet"):
            if m.group("rg").lower() != lab.node_rg.lower():
                raise _Err(404, "ResourceGroupNotFound", f"Resource group '{m.group('rg')}' could not be found.")
            if route == "routetables":
                return orjson.dumps({"value": [lab.route_table()] if lab.has_route_table() else []})
            if route == "vnets":
                return orjson.dumps({"value": [lab.vnet()]})
            name = m.group("name").lower()
            if route == "routetable" and lab.has_route_table() and name == lab.rt_name.lower():
                return orjson.dumps(lab.route_table())
            if route == "vnet" and name == lab.vnet_name.lower():
                return orjson.dumps(lab.vnet())
            if route == "subnet" and name == "aks-subnet" and m.group("vnet").lower() == lab.vnet_name.lower():
                return orjson.dumps(lab.subnet())
            raise _Err(404, "ResourceNotFound", f"The Resource '{self._path}' was not found.")
        if route == "publicips":
            if m.group("rg").lower() != lab.node_rg.lower():
                raise _Err(404, "ResourceGroupNotFound", f"Resource group '{m.group('rg')}' could not be found.")
            return orjson.dumps({"value": [{k: v for k, v in p.items() if k != "_owner"} for p in lab.public_ips()]})
        if route == "natgws":
            nat = lab.spec.outbound_type in ("managedNATGateway", "userAssignedNATGateway")
            return orjson.dumps({"value": [lab.nat_gateway()] if nat else []})
        res = m.group("res")
        if res.lower() not in (lab.lb_id.lower(), lab.natgw_id.lower()):
            raise _Err(404, "ResourceNotFound", f"The Resource '{res}' was not found.")
        return lab.metrics(res, self._q)
