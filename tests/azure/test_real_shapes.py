"""Real AKS and Azure shapes (tests/fixtures/real, trimmed from published node dumps and
Azure REST examples) through the real code: node JSON -> topology; ARM bodies -> discovery,
join and routes through the azure-mgmt clients, served on loopback."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime

import pytest

from probes.azure.service import AzureSettings, AzureSnatService, AzureState, identify
from probes.engine.publisher import Publisher
from probes.engine.store import NODES, Store
from probes.kube.model import NetworkPlugin
from probes.kube.topology import build_topology, parse_node
from tests.support.fixture_arm import FixtureArm, fixture
from tests.support.leaks import guard_threads

SUB = "7c1e4b2a-3d5f-4a6b-9c8d-0e1f2a3b4c5d"
RG = "rg-platform-prod-northeurope"
NAME = "aks-platform-prod-northeurope"
NODE_RG = f"mc_{RG}_{NAME}_northeurope"  # as the providerID spells it
T_END = datetime(2025, 2, 21, 12, 5, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def _no_leaks():
    yield from guard_threads()


def overlay_nodes() -> dict:
    a = fixture("nodes/overlay-vmss.json")
    b = copy.deepcopy(a)
    b["metadata"]["name"] = "aks-system-41872093-vmss000001"
    b["spec"]["providerID"] = b["spec"]["providerID"][:-1] + "1"
    b["status"]["addresses"][0]["address"] = "10.224.0.7"
    return {n.name: n for n in (parse_node(a), parse_node(b))}


# --- node JSON -> topology ---------------------------------------------------------------
def test_overlay_node_has_no_pod_cidr_and_a_cut_cluster_label():
    n = parse_node(fixture("nodes/overlay-vmss.json"))
    assert n.pod_cidrs == () and n.overlay and n.os == "linux" and n.vmss == "aks-system-41872093-vmss"
    assert len(n.resource_group) == 63 and not NODE_RG.startswith(n.resource_group.lower() + "x")
    assert (n.network_resource_group, n.network_name, n.network_subnet) == (RG, "aks-vnet-55120417", "aks-subnet")
    # the cut label still finds the whole node resource group (from the providerID)
    assert identify([n], AzureSettings()) == (SUB, NODE_RG)
    topo = build_topology({n.name: n}, cluster=n.resource_group)
    assert topo.plugin is NetworkPlugin.AZURE_CNI_OVERLAY and topo.pod_cidrs == ()


def test_windows_node():
    n = parse_node(fixture("nodes/windows-vmss.json"))
    assert n.os == "windows" and n.pool == "npw22" and n.vmss == "aksnpw22" and n.instance_id == "0"
    assert n.taints == ("kubernetes.azure.com/scalesetpriority:NoSchedule",) and n.ready
    assert identify([n], AzureSettings()) == (SUB, "MC_rg-aks-eastasia")  # label spelling, providerID mc_…


def test_kubenet_vmss_and_availability_set_nodes():
    vmss = parse_node(fixture("nodes/kubenet-vmss.json"))
    vmas = parse_node(fixture("nodes/kubenet-vmas.json"))
    assert vmss.vmss == "aks-agentpool-20481632-vmss" and vmss.instance_id == "1"
    assert vmas.vmss == "" and vmas.instance_id == "aks-nodepool1-20481632-0"  # an availability-set VM
    topo = build_topology({n.name: n for n in (vmss, vmas)}, cluster="c")
    assert topo.plugin is NetworkPlugin.KUBENET and topo.pod_cidrs == ("10.244.0.0/16",)
    assert identify([vmas], AzureSettings()) == (SUB, "MC_rg-shop_aks-shop_westus2")


# --- ARM bodies -> discovery, join, routes ------------------------------------------------
def serve(arm: FixtureArm, cluster: str = "managedcluster-overlay.json") -> None:
    sub = f"/subscriptions/{SUB}".lower()
    arm.bodies[f"{sub}/resourcegroups/{NODE_RG}/providers/microsoft.network/loadbalancers/kubernetes"] = fixture(
        "arm/loadbalancer-kubernetes.json"
    )
    arm.bodies[f"{sub}/resourcegroups/{RG}/providers/microsoft.containerservice/managedclusters/{NAME}".lower()] = (
        fixture(f"arm/{cluster}")
    )
    arm.bodies[f"{sub}/resourcegroups/{NODE_RG}/providers/microsoft.network/routetables"] = {"value": []}
    subnet = fixture("arm/subnet-aks-subnet.json")
    arm.bodies[subnet["id"].lower()] = subnet
    lb = fixture("arm/loadbalancer-kubernetes.json")["id"].lower()
    arm.metrics[lb] = {
        "allocatedsnatports,usedsnatports": fixture("arm/metrics-lb-ports.json"),
        "snatconnectioncount": fixture("arm/metrics-lb-connections.json"),
    }
    gw = subnet["properties"]["natGateway"]["id"].lower()
    arm.metrics[gw] = {"snatconnectioncount,totalconnectioncount,packetdropcount": fixture("arm/metrics-natgw.json")}


def run(arm: FixtureArm, cond, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    store = Store(clock=lambda: 100.0)
    store.replace(NODES, overlay_nodes())
    svc = AzureSnatService(store, AzureSettings(arm_endpoint=arm.url), clock=lambda: T_END, poll=0.02)
    svc.start()
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = svc.report()
            if cond(r):
                return r, svc, store
            time.sleep(0.02)
        raise AssertionError(f"timed out; last report: {svc.report()}")
    finally:
        svc.stop(3.0)


def test_the_load_balancers_tags_name_the_cluster_without_a_subscription_wide_list():
    with FixtureArm() as arm:
        serve(arm)
        r, svc, store = run(arm, lambda r: r.table is not None)
        t = r.target
        assert r.state is AzureState.LIVE and t.found_by == "load balancer tags"
        assert (t.cluster_name, t.cluster_resource_group) == (NAME, RG) and t.node_resource_group == NODE_RG
        assert t.outbound_rule == "aksOutboundRule" and t.backend_pool == "aksOutboundBackendPool"
        assert t.fixed_ports == 0 and t.outbound_ips == 1  # 0: the default tier table
        assert r.allocation.expected == 1024  # two nodes: the first tier
        assert t.pod_cidrs == ("192.168.0.0/16",)
        lists = [p for p in arm.requests if p.endswith("/managedclusters")]
        assert lists == []  # never listed across the subscription
        # timestamp-only points and an empty newest minute: the last point with a value counts
        rows = {x.node: x for x in r.table.nodes}
        hot, quiet = rows["aks-system-41872093-vmss000000"], rows["aks-system-41872093-vmss000001"]
        assert (hot.used, hot.allocated, hot.failed) == (640, 1024, 0)
        assert (quiet.used, quiet.allocated) == (20, 1024)
        routes = svc.routes()
        assert routes.error == "" and routes.subnet.prefix == "10.224.0.0/16" and routes.subnet.ip_configurations == 3
        # the topology shows the cluster's pod CIDR, not none
        pub = Publisher(store, snat=svc, findings=False)
        assert pub.step().topology.pod_cidrs == ("192.168.0.0/16",)


def test_user_assigned_nat_gateway_is_found_on_the_subnet_in_the_vnets_group():
    with FixtureArm() as arm:
        serve(arm, "managedcluster-overlay-natgw.json")
        r, _, _ = run(arm, lambda r: r.state is AzureState.CLUSTER_LEVEL)
        gw = r.target.nat_gateway_id
        assert f"/resourceGroups/{RG}/" in gw and gw.endswith("/natGateways/platform-natgw")
        last = {m.name: m.latest for m in r.cluster}
        assert last == {"snatconnectioncount": 70.0, "totalconnectioncount": 450.0, "packetdropcount": 0.0}


def test_a_refused_load_balancer_read_names_the_permission_and_the_group():
    with FixtureArm() as arm:
        serve(arm)
        lb = next(p for p in arm.bodies if p.endswith("/loadbalancers/kubernetes"))
        arm.forbidden[lb] = "Microsoft.Network/loadBalancers/read"
        r, _, _ = run(arm, lambda r: r.state is AzureState.FORBIDDEN)
        assert (
            f"reading the load balancer needs Microsoft.Network/loadBalancers/read on resource group {NODE_RG}"
            in r.message
        )
        assert "--role 'Reader'" in r.detail


def test_a_refused_cluster_read_leaves_the_load_balancer_alone_and_says_why():
    with FixtureArm() as arm:
        serve(arm)
        sub = f"/subscriptions/{SUB}".lower()
        mc = f"{sub}/resourcegroups/{RG}/providers/microsoft.containerservice/managedclusters/{NAME}".lower()
        arm.forbidden[mc] = "Microsoft.ContainerService/managedClusters/read"
        arm.forbidden[f"{sub}/providers/microsoft.containerservice/managedclusters"] = (
            "Microsoft.ContainerService/managedClusters/read"
        )
        r, _, _ = run(arm, lambda r: r.table is not None)
        assert r.state is AzureState.LIVE and r.target.cluster_id == ""
        assert "reading the managed cluster needs Microsoft.ContainerService/managedClusters/read" in r.detail
        assert r.target.backend_pool == "aksOutboundBackendPool" and r.allocation.expected == 1024
