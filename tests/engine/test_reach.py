"""The reachable-from-here classifier: routing tables as /proc shows them, the three
kinds of address a jumpbox cannot reach, and what makes them reachable after all."""

from __future__ import annotations

from probes.dns.service import DnsSettings, Vantage, build_plan
from probes.engine.reach import (
    CLUSTER_IP_WHY,
    LINK_LOCAL_WHY,
    HostRoutes,
    Reachability,
    parse_ipv6_route,
    parse_route,
    short_why,
)
from probes.kube.model import LOCAL_VANTAGE, NetworkPlugin, PodState, Topology

# `ip route`: default via 10.1.0.1 dev eth0; 10.1.0.0/24 dev eth0; blackhole 10.0.5.0/24
PROC_ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100010A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0000010A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
*\t0005000A\t00000000\t0201\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""
PROC_IPV6 = (
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n"
    "00000000000000000000000000000001 80 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000000 00000002 00000000 80200001 lo\n"
)


def nobody(_: str) -> bool:
    return False


def test_proc_net_route_parses_prefixes_and_reject_routes():
    routes = parse_route(PROC_ROUTE)
    assert [(str(r.net), r.reject) for r in routes] == [
        ("0.0.0.0/0", False),
        ("10.1.0.0/24", False),
        ("10.0.5.0/24", True),
    ]
    v6 = parse_ipv6_route(PROC_IPV6)
    assert [str(r.net) for r in v6] == ["::/0"]  # ::1/128 on lo is this host's own address


def test_jumpbox_cannot_reach_link_local_clusterip_or_overlay_pods():
    table = HostRoutes(tuple(parse_route(PROC_ROUTE)))
    reach = Reachability(table, cluster_ips=frozenset({"10.0.0.10"}), overlay_cidrs=("10.244.0.0/16",), owned=nobody)
    assert reach.why_not("169.254.20.10") == LINK_LOCAL_WHY
    assert reach.why_not("169.254.10.11") == LINK_LOCAL_WHY
    assert reach.why_not("10.0.0.10") == CLUSTER_IP_WHY  # only the default route leads there
    assert "10.244.0.0/16" in reach.why_not("10.244.3.7") and short_why(reach.why_not("10.244.3.7")) == "overlay"
    # ordinary addresses are probed: a failure there is real
    for addr in ("10.1.0.4", "168.63.129.16", "203.0.113.9", "mcr.microsoft.com"):
        assert reach.why_not(addr) == ""


def test_a_route_to_the_service_network_or_owning_the_address_makes_it_reachable():
    routed = HostRoutes(
        (*parse_route(PROC_ROUTE), *parse_route("h\n" + "wg0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0"))
    )
    reach = Reachability(routed, cluster_ips=frozenset({"10.0.0.10"}), owned=nobody)
    assert reach.why_not("10.0.0.10") == ""  # 10.0.0.0/16 routed on purpose (a VPN into the cluster)
    on_node = Reachability(HostRoutes(), cluster_ips=frozenset({"10.0.0.10"}), owned=lambda a: a == "169.254.20.10")
    assert on_node.why_not("169.254.20.10") == ""  # this host is a node: NodeLocal is here
    assert on_node.why_not("169.254.10.10") == LINK_LOCAL_WHY


def test_a_reject_route_is_no_route():
    table = HostRoutes(tuple(parse_route(PROC_ROUTE)))
    reach = Reachability(table, service_cidrs=("10.0.5.0/24",), owned=nobody)
    assert reach.why_not("10.0.5.10") == CLUSTER_IP_WHY


def topo(plugin: NetworkPlugin = NetworkPlugin.AZURE_CNI_OVERLAY) -> Topology:
    return Topology(
        cluster="c",
        plugin=plugin,
        dataplane="azure",
        pod_cidrs=(),  # overlay nodes carry no podCIDR
        dns_service_ip="10.0.0.10",
        nodes=(),
        pools=(),
        coredns=(PodState("kube-system", "coredns-a", "n1", "10.244.1.5", "Running", True),),
        nodelocal_enabled=True,
    )


def test_plan_keeps_unreachable_resolvers_marked_and_schedules_none():
    from probes.dns.probe import dns_jobs
    from probes.engine.reach import for_topology

    t = topo()
    reach = for_topology(t, HostRoutes(tuple(parse_route(PROC_ROUTE))))
    plan = build_plan(t, DnsSettings(), [Vantage(LOCAL_VANTAGE)], 1, reach=reach.why_not)
    (local,) = plan.vantages
    got = {r.key: short_why(r.unreachable) for r in local.resolvers}
    assert got == {"nodelocal": "linklocal", "kube-dns": "ClusterIP", "coredns/coredns-a": "overlay"}
    assert plan.jobs == 0 and plan.unreachable == 3 * len(plan.names)
    assert dns_jobs(local.resolvers, plan.names) == []
    # flat Azure CNI: CoreDNS pod IPs are VNet addresses, probed
    flat = build_plan(
        topo(NetworkPlugin.AZURE_CNI),
        DnsSettings(),
        [Vantage(LOCAL_VANTAGE)],
        1,
        reach=for_topology(topo(NetworkPlugin.AZURE_CNI), HostRoutes(tuple(parse_route(PROC_ROUTE)))).why_not,
    )
    assert [r.key for r in flat.vantages[0].resolvers if r.reachable] == ["coredns/coredns-a"]
