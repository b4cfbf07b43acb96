"""Per-node and per-name scenario fields: a node's own kubelet version and fixed address
(nodes[]), and DNS behaviour per query-name pattern (dns.<block>.names). Each reaches
what the probes see (the node object the API serves, a DNS answer), and each bad value is
one line naming the key path."""

from __future__ import annotations

import copy
import random

import dns.message
import dns.rcode
import pytest

from probes.lab.cluster import ClusterState
from probes.lab.dnsserver import Zone, build_reply
from probes.lab.dnsspec import parse_dns_section
from probes.lab.objects import node_object
from probes.lab.scenario import ScenarioError, parse_scenario

BASE = {
    "cluster": {"name": "c1", "resourceGroup": "rg", "kubernetesVersion": "1.30.6", "subnetCidr": "10.224.0.0/16"},
    "pools": [
        {"name": "sys", "mode": "System", "count": 3, "kubeletVersion": "1.29.9"},
        {"name": "user", "count": 2},
    ],
}


def scenario(nodes: list[dict]) -> object:
    d = copy.deepcopy(BASE)
    d["nodes"] = nodes
    return parse_scenario(d, "x.yaml")


def kubelets(sc: object) -> dict[str, str]:
    cl = ClusterState(sc)  # type: ignore[arg-type]
    return {n.name: node_object(cl, n)["status"]["nodeInfo"]["kubeletVersion"] for n in cl.nodes.values()}


def test_a_pool_mid_upgrade_has_mixed_kubelets():
    sc = scenario([{"name": "sys/1", "kubeletVersion": "1.30.6"}, {"index": 4, "kubeletVersion": "1.31.1"}])
    names = [n.name for n in sc.nodes()]  # type: ignore[attr-defined]
    got = kubelets(sc)
    assert [got[n] for n in names] == ["v1.29.9", "v1.30.6", "v1.29.9", "v1.30.6", "v1.31.1"]


def test_fixed_node_addresses_reach_the_node_and_arm():
    sc = scenario([{"name": "user/0", "ip": "10.224.3.7"}])
    by = {n.name: n.ip for n in sc.nodes()}  # type: ignore[attr-defined]
    assert sorted(by.values()) == ["10.224.0.4", "10.224.0.5", "10.224.0.6", "10.224.0.8", "10.224.3.7"]
    cl = ClusterState(sc)  # type: ignore[arg-type]
    node = next(n for n in cl.nodes.values() if n.ip == "10.224.3.7")
    addrs = node_object(cl, node)["status"]["addresses"]
    assert {"type": "InternalIP", "address": "10.224.3.7"} in addrs
    # a node added later takes an address after the highest block, never a fixed one
    assert cl._next_ip > int.from_bytes(bytes([10, 224, 3, 7]), "big")


@pytest.mark.parametrize(
    "node, message",
    [
        ({"name": "sys/0", "kubeletVersion": "v1.30"}, "x.yaml: nodes[0].kubeletVersion: invalid value 'v1.30'"),
        ({"name": "sys/0", "ip": "10.224.0"}, "x.yaml: nodes[0].ip: expected an IPv4 address, got '10.224.0'"),
        ({"name": "sys/0", "ip": "10.225.0.9"}, "x.yaml: nodes[0].ip: 10.225.0.9 is not usable in subnetCidr"),
        ({"name": "sys/0", "ip": "10.224.0.2"}, "x.yaml: nodes[0].ip: 10.224.0.2 is not usable in subnetCidr"),
        ({"name": "sys/0", "ip": "10.224.0.5"}, "x.yaml: nodes[0].ip: 10.224.0.5 overlaps node aks-sys-"),
        ({"name": "sys/0", "ip": 7}, "x.yaml: nodes[0].ip: expected an IPv4 address, got 7"),
    ],
)
def test_bad_per_node_values_are_one_line_with_the_key_path(node, message):
    with pytest.raises(ScenarioError) as ei:
        scenario([node]).nodes()  # type: ignore[attr-defined]
    assert str(ei.value).startswith(message) and "\n" not in str(ei.value), str(ei.value)


def test_azure_cni_blocks_count_in_the_overlap():
    d = copy.deepcopy(BASE)
    d["cluster"]["networkPlugin"] = "azure"
    d["nodes"] = [{"name": "user/1", "ip": "10.224.0.60"}]  # inside sys/0's 111-address block
    with pytest.raises(ScenarioError, match=r"nodes\[0\]\.ip: 10.224.0.60 overlaps node aks-sys-"):
        parse_scenario(d, "x.yaml")


def query(name: str) -> bytes:
    return dns.message.make_query(name, "A").to_wire()


def test_behaviour_per_name_pattern_first_match_wins():
    spec = parse_dns_section(
        {
            "coredns": {
                "delay": "1ms",
                "names": {
                    "kubernetes.*": {"delay": "40ms"},
                    "*.svc.cluster.local": {"delay": {"uniform": ["150ms", "160ms"]}},
                    "*.example.org": "servfail",
                },
            },
            "nodes": {"sys/0": {"upstream": {"names": {"mcr.*": {"loss": "100%"}}}}},
        },
        "x.yaml",
    )
    own, up, rng = spec.coredns.base, spec.upstream.base, random.Random(2)

    def reply(name: str, upstream=up):  # type: ignore[no-untyped-def]
        return build_reply(query(name), own, upstream, Zone(), rng, tcp=False)

    assert reply("kubernetes.default.svc.cluster.local").delay_ms == 40.0
    assert 150.0 <= reply("KUBE-DNS.kube-system.svc.cluster.local").delay_ms <= 160.0
    r = reply("a.example.org")
    assert dns.message.from_wire(r.wire).rcode() == dns.rcode.SERVFAIL and r.delay_ms == 1.0
    assert reply("mcr.microsoft.com").delay_ms == 1.0
    lossy = spec.timeline_for("upstream", node="sys/0").base
    assert reply("mcr.microsoft.com", lossy).wire is None and reply("login.microsoftonline.com", lossy).wire is not None


@pytest.mark.parametrize(
    "block, message",
    [
        ({"names": {"a b": "drop"}}, "x.yaml: dns.coredns.names.a b: must be a name pattern"),
        ({"names": {"x.*": {"wat": 1}}}, "x.yaml: dns.coredns.names.x.*.wat: unknown key"),
        ({"names": {"x.*": "explode"}}, "x.yaml: dns.coredns.names.x.*.behaviour: unknown behaviour 'explode'"),
        ({"names": ["x.*"]}, "x.yaml: dns.coredns.names: must be a mapping of name pattern: behaviour keys"),
        ({"names": {"x.*": {"loss": "150%"}}}, "x.yaml: dns.coredns.names.x.*.loss: must be from 0% to 100%"),
    ],
)
def test_name_rule_errors(block, message):
    with pytest.raises(ValueError) as ei:
        parse_dns_section({"coredns": block}, "x.yaml")
    assert str(ei.value).startswith(message) and "\n" not in str(ei.value), str(ei.value)
