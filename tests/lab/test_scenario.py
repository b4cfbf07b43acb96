"""Scenario loader and node generator."""

from __future__ import annotations

import ipaddress
import time

import pytest

from probes.lab.cluster import ClusterState
from probes.lab.scenario import ScenarioError, builtin_names, load_scenario, parse_scenario

MINIMAL = {"cluster": {"name": "c1", "resourceGroup": "rg"}, "pools": [{"name": "sys", "mode": "System", "count": 2}]}


def doc(**over):
    import copy

    d = copy.deepcopy(MINIMAL)
    d.update(over)
    return d


def test_builtins_present_and_load():
    names = builtin_names()
    assert {"healthy", "overlay", "azure-cni", "upgrade"} <= set(names)
    for n in names:
        sc = load_scenario(n)
        assert sc.node_count > 0
        assert len(sc.nodes()) == sc.node_count


def test_healthy_case_study_facts():
    sc = load_scenario("healthy")
    c = sc.cluster
    assert (c.network_plugin, str(c.vnet_cidr), str(c.subnet_cidr)) == ("kubenet", "10.224.0.0/12", "10.224.0.0/16")
    assert (str(c.pod_cidr), str(c.service_cidr), str(c.dns_service_ip)) == (
        "10.244.0.0/16",
        "10.0.0.0/16",
        "10.0.0.10",
    )
    assert c.node_resource_group == "MC_rg-aks-lab_aks-lab_westeurope"
    assert c.node_local_dns is True
    assert [(p.name, p.mode, p.count) for p in sc.pools] == [("nodepool1", "System", 3), ("userpool", "User", 2)]
    nodes = sc.nodes()
    first = nodes[0]
    assert first.ip == "10.224.0.4" and first.pod_cidr == "10.244.0.0/24"
    assert first.name.startswith("aks-nodepool1-") and first.name.endswith("-vmss000000")
    assert [n.ip for n in nodes] == [f"10.224.0.{i}" for i in range(4, 9)]
    assert [n.pod_cidr for n in nodes] == [f"10.244.{i}.0/24" for i in range(5)]
    svc = sc.services[0]
    assert svc.type == "LoadBalancer" and svc.external_ip


def test_node_names_follow_aks_pattern_and_are_stable():
    import re

    a, b = load_scenario("healthy").nodes(), load_scenario("healthy").nodes()
    assert [n.name for n in a] == [n.name for n in b]
    for n in a:
        assert re.fullmatch(r"aks-(nodepool1|userpool)-\d{8}-vmss[0-9a-z]{6}", n.name), n.name


def test_azure_cni_has_no_pod_cidrs_and_reserves_ips():
    sc = load_scenario("azure-cni")
    nodes = sc.nodes()
    assert all(n.pod_cidr is None for n in nodes)
    # flat Azure CNI: each node reserves maxPods + 1 addresses of the subnet
    ips = [int(ipaddress.IPv4Address(n.ip)) for n in nodes]
    assert ips[1] - ips[0] == sc.pools[0].max_pods + 1


def test_overlay_uses_private_pod_cidr_and_cilium():
    sc = load_scenario("overlay")
    assert sc.cluster.network_plugin == "azure-overlay" and sc.cluster.network_dataplane == "cilium"
    assert len(sc.pools) == 3
    assert all(ipaddress.ip_network(n.pod_cidr).subnet_of(sc.cluster.pod_cidr) for n in sc.nodes())


@pytest.mark.parametrize("name", ["healthy", "overlay", "azure-cni"])
def test_generator_scales_to_5000_fast_and_unique(name):
    t = time.perf_counter()
    sc = load_scenario(name, nodes=5000)
    nodes = sc.nodes()
    elapsed = time.perf_counter() - t
    assert elapsed < 1.0, elapsed
    assert len(nodes) == 5000 == sc.node_count
    assert len({n.name for n in nodes}) == 5000
    assert len({n.ip for n in nodes}) == 5000
    subnet = sc.cluster.subnet_cidr
    assert all(ipaddress.IPv4Address(n.ip) in subnet for n in nodes)
    assert all(int(ipaddress.IPv4Address(n.ip)) - int(subnet.network_address) >= 4 for n in nodes)
    if sc.cluster.network_plugin != "azure":
        cidrs = [ipaddress.ip_network(n.pod_cidr) for n in nodes]
        assert len(set(cidrs)) == 5000
        assert all(c.subnet_of(sc.cluster.pod_cidr) for c in cidrs)
        assert not sc.cluster.pod_cidr.overlaps(sc.cluster.vnet_cidr)
    system = sum(p.count for p in sc.pools if p.mode == "System")
    assert 3 <= system < 500


def test_kubenet_over_400_nodes_is_generated_with_a_note():
    sc = load_scenario("healthy", nodes=450)
    assert sc.node_count == 450
    assert any("400" in n for n in sc.notes)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda d: d["pools"].append({"name": "user", "count": "x"}),
            "pools[1].count: expected a non-negative integer, got 'x'",
        ),
        (lambda d: d["pools"][0].update(colour="red"), "pools[0].colour: unknown key"),
        (lambda d: d.update(egres={}), "egres: unknown top-level key"),
        (
            lambda d: d["cluster"].update(networkPlugin="calico"),
            "cluster.networkPlugin: expected one of kubenet, azure, azure-overlay",
        ),
        (lambda d: d["cluster"].update(podCidr="10.244.0.0/33"), "cluster.podCidr: expected an IPv4 CIDR"),
        (
            lambda d: d["cluster"].update(dnsServiceIP="10.1.0.10"),
            "cluster.dnsServiceIP: 10.1.0.10 is not inside serviceCidr",
        ),
        (
            lambda d: d["cluster"].update(subnetCidr="10.100.0.0/16"),
            "cluster.subnetCidr: 10.100.0.0/16 is not inside vnetCidr",
        ),
        (lambda d: d.update(nodes=[{"name": "sys/7", "ready": False}]), "nodes[0]: no node 'sys/7'"),
        (lambda d: d.update(nodes=[{"index": 0, "ready": "maybe"}]), "nodes[0].ready: expected true, false or unknown"),
        (
            lambda d: d.update(timeline=[{"at": "soon", "action": "node-add", "pool": "sys"}]),
            "timeline[0].at: expected a duration",
        ),
        (
            lambda d: d.update(timeline=[{"at": "5s", "action": "node-add", "pool": "nope"}]),
            "timeline[0].pool: unknown pool 'nope'",
        ),
        (lambda d: d.update(timeline=[{"at": "5s", "action": "explode"}]), "timeline[0].action: expected one of"),
        (
            lambda d: d.update(services=[{"name": "web", "type": "ClusterIP", "ports": [{"port": 70000}]}]),
            "services[0].ports[0].port: expected a positive integer <= 65535, got 70000",
        ),
        (
            lambda d: d.update(services=[{"name": "web", "ports": [{"port": 80}], "externalIP": "1.2.3.4"}]),
            "services[0].externalIP: only LoadBalancer services",
        ),
        (lambda d: d["pools"][0].update(mode="User"), "pools: AKS needs at least one pool with mode: System"),
        (lambda d: d["cluster"].pop("name"), "cluster.name: required key is missing"),
    ],
)
def test_errors_name_file_and_key_path(mutate, message):
    d = doc()
    mutate(d)
    with pytest.raises(ScenarioError) as ei:
        parse_scenario(d, "mine.yaml")
    assert str(ei.value).startswith("mine.yaml: "), str(ei.value)
    assert message in str(ei.value), str(ei.value)


def test_file_path_errors_and_unknown_builtin(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("cluster: {name: c, resourceGroup: rg}\npools:\n  - {name: sys, mode: System, count: x}\n")
    with pytest.raises(ScenarioError, match=r"^broken\.yaml: pools\[0\]\.count: "):
        load_scenario(str(p))
    p.write_text("cluster: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"^broken\.yaml: line \d+: invalid YAML"):
        load_scenario(str(p))
    with pytest.raises(ScenarioError, match="unknown scenario 'nosuch'.*healthy"):
        load_scenario("nosuch")
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(str(tmp_path / "missing.yaml"))


def test_overrides_and_timeline_refs(tmp_path):
    d = doc(
        nodes=[
            {
                "name": "sys/1",
                "ready": False,
                "reason": "KubeletNotReady",
                "cordoned": True,
                "networkUnavailable": True,
                "nodeLocalDNSReady": False,
            }
        ],
        timeline=[{"at": "1m", "action": "node-cordon", "node": 0}, {"at": 5, "action": "node-add", "pool": "sys"}],
    )
    d["cluster"]["nodeLocalDNS"] = True
    sc = parse_scenario(d, "t.yaml")
    assert [e.at for e in sc.timeline] == [5.0, 60.0]  # sorted by time
    nodes = sc.nodes()
    assert nodes[0].override is None and nodes[1].override.ready == "False"
    cs = ClusterState(sc)
    n1 = cs.store.get("nodes", nodes[1].name).obj
    conds = {c["type"]: c for c in n1["status"]["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "KubeletNotReady"
    assert conds["NetworkUnavailable"]["status"] == "True" and conds["NetworkUnavailable"]["reason"] == "NoRouteCreated"
    assert n1["spec"]["unschedulable"] is True
    nl = [
        e.obj
        for e in cs.store.items["pods"].values()
        if e.obj["metadata"]["labels"].get("k8s-app") == "node-local-dns" and e.obj["spec"]["nodeName"] == nodes[1].name
    ]
    assert len(nl) == 1 and nl[0]["status"]["conditions"][2]["status"] == "False"


def test_docs_example_is_valid_and_runs():
    """docs/scenarios.md's full example must load and its timeline must apply cleanly."""
    import os
    import re

    import yaml

    from probes.lab.cluster import EventTimeline

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = open(os.path.join(root, "docs", "scenarios.md"), encoding="utf-8").read()
    block = re.search(r"## Example \(every key\)\n\n```yaml\n(.*?)```", text, re.S).group(1)
    sc = parse_scenario(yaml.safe_load(block), "scenarios.md")
    assert sc.name == "my-cluster" and len(sc.timeline) == 12
    cs = ClusterState(sc)
    tl = EventTimeline(cs, sc.timeline)
    tl.apply_until(3600)
    assert tl.errors == [] and tl.applied == 12
    assert cs.services[("default", "web")].external_ip == "20.31.144.18"
