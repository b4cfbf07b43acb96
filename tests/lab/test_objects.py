"""Kubernetes objects built from a scenario: shapes aksnet-top relies on."""

from __future__ import annotations

import ipaddress

from probes.lab.cluster import ClusterState
from probes.lab.scenario import load_scenario


def objs(cs, resource):
    return [e.obj for e in cs.store.items[resource].values()]


def test_healthy_node_object():
    sc = load_scenario("healthy")
    cs = ClusterState(sc)
    n = cs.store.get("nodes", sc.nodes()[0].name).obj
    lab = n["metadata"]["labels"]
    assert lab["agentpool"] == lab["kubernetes.azure.com/agentpool"] == "nodepool1"
    assert lab["kubernetes.azure.com/cluster"] == "MC_rg-aks-lab_aks-lab_westeurope"
    assert lab["kubernetes.azure.com/mode"] == "system"
    assert lab["topology.kubernetes.io/zone"] == "westeurope-1"
    assert lab["node.kubernetes.io/instance-type"] == "Standard_DS2_v2"
    assert "kubernetes.azure.com/azure-cni-overlay" not in lab and "kubernetes.azure.com/ebpf-dataplane" not in lab
    assert n["spec"]["podCIDR"] == "10.244.0.0/24"
    assert n["spec"]["providerID"] == (
        "azure:///subscriptions/4b6c1f2e-8d3a-4e5f-9a7b-1c2d3e4f5a6b/resourceGroups/mc_rg-aks-lab_aks-lab_westeurope"
        f"/providers/Microsoft.Compute/virtualMachineScaleSets/{n['metadata']['name'][:-6]}/virtualMachines/0"
    )
    conds = {c["type"]: (c["status"], c["reason"]) for c in n["status"]["conditions"]}
    assert conds == {
        "NetworkUnavailable": ("False", "RouteCreated"),
        "MemoryPressure": ("False", "KubeletHasSufficientMemory"),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID"),
        "Ready": ("True", "KubeletReady"),
    }
    assert n["status"]["addresses"][0] == {"type": "InternalIP", "address": "10.224.0.4"}
    assert n["status"]["nodeInfo"]["kubeletVersion"] == "v1.30.6"
    assert n["status"]["nodeInfo"]["osImage"].startswith("Ubuntu 22.04")
    assert len(n["status"]["images"]) >= 40


def test_overlay_and_azure_cni_labels_and_pod_ips():
    cs = ClusterState(load_scenario("overlay"))
    for n in objs(cs, "nodes"):
        lab = n["metadata"]["labels"]
        assert lab["kubernetes.azure.com/azure-cni-overlay"] == "true"
        assert lab["kubernetes.azure.com/podnetwork-type"] == "overlay"
        assert lab["kubernetes.azure.com/ebpf-dataplane"] == "cilium"
        assert lab["kubernetes.azure.com/localdns-state"] == "enabled"
    assert not [p for p in objs(cs, "pods") if p["metadata"]["labels"].get("k8s-app") == "node-local-dns"]
    cs = ClusterState(load_scenario("azure-cni"))
    subnet = cs.scenario.cluster.subnet_cidr
    for n in objs(cs, "nodes"):
        assert "podCIDR" not in n["spec"]
    dns = [p for p in objs(cs, "pods") if p["metadata"]["labels"].get("k8s-app") == "kube-dns"]
    assert len(dns) == 2 and all(ipaddress.IPv4Address(p["status"]["podIP"]) in subnet for p in dns)
    node_ips = {n["status"]["addresses"][0]["address"] for n in objs(cs, "nodes")}
    assert not {p["status"]["podIP"] for p in dns} & node_ips


def test_kube_system_pods_and_services():
    sc = load_scenario("healthy")
    cs = ClusterState(sc)
    pods = objs(cs, "pods")
    nodes = {n["metadata"]["name"]: n for n in objs(cs, "nodes")}
    dns = [p for p in pods if p["metadata"]["labels"].get("k8s-app") == "kube-dns"]
    assert len(dns) == 2
    for p in dns:
        assert p["metadata"]["name"].startswith("coredns-")
        cidr = ipaddress.ip_network(nodes[p["spec"]["nodeName"]]["spec"]["podCIDR"])
        assert ipaddress.IPv4Address(p["status"]["podIP"]) in cidr
    nl = [p for p in pods if p["metadata"]["labels"].get("k8s-app") == "node-local-dns"]
    assert sorted(p["spec"]["nodeName"] for p in nl) == sorted(nodes)
    for p in nl:
        assert p["spec"]["hostNetwork"] is True
        assert p["status"]["podIP"] == nodes[p["spec"]["nodeName"]]["status"]["addresses"][0]["address"]
    assert len({p["metadata"]["name"] for p in pods}) == len(pods)
    svcs = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in objs(cs, "services")}
    assert svcs[("default", "kubernetes")]["spec"]["clusterIP"] == "10.0.0.1"
    kd = svcs[("kube-system", "kube-dns")]["spec"]
    assert kd["clusterIP"] == "10.0.0.10" and kd["selector"] == {"k8s-app": "kube-dns"}
    assert {(p["port"], p["protocol"]) for p in kd["ports"]} == {(53, "UDP"), (53, "TCP")}
    web = svcs[("default", "web")]
    assert web["status"]["loadBalancer"]["ingress"][0]["ip"] == "20.31.144.17"
    ips = [s["spec"]["clusterIP"] for s in svcs.values()]
    assert len(set(ips)) == len(ips)
    assert all(ipaddress.IPv4Address(i) in sc.cluster.service_cidr for i in ips)


def test_pending_internal_lb_carries_event():
    cs = ClusterState(load_scenario("azure-cni"))
    svc = cs.store.get("services", "payments/api-internal").obj
    assert svc["status"]["loadBalancer"] == {}
    assert svc["metadata"]["annotations"]["service.beta.kubernetes.io/azure-load-balancer-internal"] == "true"
    evs = objs(cs, "events")
    assert len(evs) == 1
    ev = evs[0]
    assert ev["involvedObject"]["uid"] == svc["metadata"]["uid"] and ev["involvedObject"]["kind"] == "Service"
    assert ev["message"].startswith("Error syncing load balancer") and ev["count"] == 7


def test_mutations_bump_resource_versions_and_move_pods():
    cs = ClusterState(load_scenario("healthy"))
    rv0 = cs.store.rv
    name = cs.add_node("nodepool1", ready=False)
    assert name.endswith("vmss000003")
    n = cs.store.get("nodes", name).obj
    assert n["status"]["addresses"][0]["address"] == "10.224.0.9" and n["spec"]["podCIDR"] == "10.244.5.0/24"
    assert int(n["metadata"]["resourceVersion"]) > rv0
    victim = cs.resolve_node("nodepool1/0")
    on_victim = [p for p in cs.pods.values() if p.node == victim and p.replica >= 0]
    assert on_victim
    cs.remove_node(victim)
    assert cs.store.get("nodes", victim) is None
    assert all(p.node != victim for p in cs.pods.values())
    # deployments keep their replica count
    assert sum(1 for p in cs.pods.values() if p.app == "coredns") == 2
    types = [ev.type for ev in cs.store.log]
    assert "ADDED" in types and "DELETED" in types
    rvs = [ev.rv for ev in cs.store.log]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)


def test_timeline_upgrade_sequence():
    from probes.lab.cluster import EventTimeline

    sc = load_scenario("upgrade")
    cs = ClusterState(sc)
    tl = EventTimeline(cs, sc.timeline)
    old = cs.resolve_node("nodepool1/0")
    tl.apply_until(10)
    surge = sc.node_name("nodepool1", 3)
    assert cs.nodes[surge].ready == "False" and cs.nodes[surge].network_unavailable
    tl.apply_until(15)
    assert cs.nodes[old].cordoned and not cs.nodes[surge].network_unavailable
    tl.apply_until(25)
    assert cs.nodes[surge].ready == "True" and cs.nodes[old].ready == "False"
    tl.apply_until(40)
    assert old not in cs.nodes and len(cs.nodes) == 5
    assert not tl.errors
