"""resolvers_for on hand-built topologies; name and address validation."""

from __future__ import annotations

import pytest

from probes.dns.resolvers import (
    AZURE_DNS_IP,
    DEFAULT_NAMES,
    LOCALDNS_IPS,
    NODELOCAL_IP,
    ResolverKind,
    ResolverOptions,
    parse_address,
    resolvers_for,
    validate_name,
    validate_names,
)
from probes.kube.model import NetworkPlugin, NodeInfo, PodState, Topology


def node(name: str, localdns: bool = False) -> NodeInfo:
    return NodeInfo(
        name,
        "10.224.0.4",
        ("10.244.0.0/24",),
        "nodepool1",
        True,
        "",
        False,
        None,
        "",
        "v1.30.0",
        "1",
        "",
        "",
        "",
        0.0,
        localdns=localdns,
    )


def pod(name: str, ip: str, node_: str = "n1") -> PodState:
    return PodState("kube-system", name, node_, ip, "Running", True)


def topo(**kw) -> Topology:
    base = dict(
        cluster="c",
        plugin=NetworkPlugin.KUBENET,
        dataplane="",
        pod_cidrs=(),
        dns_service_ip="10.0.0.10",
        nodes=(node("n1"), node("n2")),
        pools=(),
        coredns=(pod("coredns-b", "10.244.1.3", "n2"), pod("coredns-a", "10.244.0.7")),
    )
    base.update(kw)
    return Topology(**base)


def test_plain_cluster():
    rs = resolvers_for(topo())
    assert [r.key for r in rs] == ["kube-dns", "coredns/coredns-a", "coredns/coredns-b"]
    assert rs[0].address == "10.0.0.10" and rs[0].port == 53 and rs[0].target is None
    assert rs[1].kind is ResolverKind.COREDNS and rs[1].detail == "n1"
    assert rs[0].dest == ("10.0.0.10", 53)


def test_nodelocal_localdns_azure_custom():
    t = topo(nodelocal_enabled=True, nodes=(node("n1", localdns=True), node("n2")))
    rs = resolvers_for(t, ResolverOptions(azure_dns=True, custom=("10.1.0.4:5353", "[fd00::53]", "10.0.0.10")))
    keys = [r.key for r in rs]
    assert keys == [
        "nodelocal",
        "localdns-1",
        "localdns-2",
        "kube-dns",
        "coredns/coredns-a",
        "coredns/coredns-b",
        "azure-dns",
        "custom/10.1.0.4:5353",
        "custom/[fd00::53]",
    ]
    assert rs[0].address == NODELOCAL_IP
    assert (rs[1].address, rs[2].address) == LOCALDNS_IPS
    assert rs[6].address == AZURE_DNS_IP
    assert rs[7].port == 5353 and rs[8].address == "fd00::53"  # 10.0.0.10 duplicates kube-dns


def test_localdns_follows_the_vantage_node():
    t = topo(nodes=(node("n1", localdns=True), node("n2")))
    assert "localdns-1" in [r.key for r in resolvers_for(t, ResolverOptions(node="n1"))]
    assert "localdns-1" not in [r.key for r in resolvers_for(t, ResolverOptions(node="n2"))]


def test_overrides_by_key_and_address():
    t = topo(nodelocal_enabled=True)
    rs = resolvers_for(
        t,
        ResolverOptions(
            overrides={
                "169.254.20.10": ("127.0.0.1", 40001),
                "coredns/coredns-a": ("::1", 40002),
                "10.0.0.10:53": ("127.0.0.2", 40003),
            }
        ),
    )
    by = {r.key: r for r in rs}
    assert by["nodelocal"].dest == ("127.0.0.1", 40001) and by["nodelocal"].address == NODELOCAL_IP
    assert by["coredns/coredns-a"].dest == ("::1", 40002)
    assert by["kube-dns"].dest == ("127.0.0.2", 40003)
    assert by["coredns/coredns-b"].target is None


def test_no_dns_ip_no_pods_and_pods_without_ip():
    t = topo(dns_service_ip="", coredns=(pod("coredns-x", ""),))
    assert resolvers_for(t) == []
    assert resolvers_for(topo(), ResolverOptions(coredns_pods=False))[0].key == "kube-dns"


@pytest.mark.parametrize(
    "name",
    [
        "kubernetes.default.svc.cluster.local",
        "mcr.microsoft.com.",
        "a",
        "_dns._udp.example.com",
        "x" * 63 + ".com",
        "EXAMPLE.org",
    ],
)
def test_valid_names(name):
    assert validate_name(name) == name.rstrip(".")


@pytest.mark.parametrize(
    "name, words",
    [
        ("", "empty"),
        ("a..b", "empty label"),
        (".a", "empty label"),
        ("x" * 64 + ".com", "63"),
        (".".join(["abcdefghi"] * 26), "253"),
        ("bad name.com", "letters"),
        ("-a.com", "start"),
        ("a-.com", "end"),
        ("ü.com", "letters"),
    ],
)
def test_invalid_names(name, words):
    with pytest.raises(ValueError, match=words):
        validate_name(name)


def test_validate_names_dedups_and_requires_one():
    assert validate_names(["A.com", "a.com.", *DEFAULT_NAMES]) == ("A.com", *DEFAULT_NAMES)
    with pytest.raises(ValueError, match="no DNS names"):
        validate_names([])


def test_parse_address():
    assert parse_address("10.0.0.1") == ("10.0.0.1", 53)
    assert parse_address("10.0.0.1:5353") == ("10.0.0.1", 5353)
    assert parse_address("::1") == ("::1", 53)
    assert parse_address("[::1]:5353") == ("::1", 5353)
    for bad in ("dns.google", "10.0.0.1:0", "[::1", "10.0.0.1:x"):
        with pytest.raises(ValueError):
            parse_address(bad)
