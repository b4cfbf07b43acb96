"""probes.azure.routes and rule_routes over hand-made route tables and subnets (unit)."""

from __future__ import annotations

from probes.azure.routes import (
    Route,
    RouteData,
    Subnet,
    compare,
    parse_route_table,
    parse_subnet,
    route_name,
    routes_json,
)
from probes.diagnose import Observations, Severity, diagnose
from tests.diagnose.test_rules import NOW, topology


def node_routes(topo, skip=()):  # type: ignore[no-untyped-def]
    return [
        Route(n.name, n.pod_cidrs[0], "VirtualAppliance", n.internal_ip, "rt")
        for n in topo.nodes
        if n.pod_cidrs and n.name not in skip
    ]


def findings(topo, data):  # type: ignore[no-untyped-def]
    return diagnose(Observations(topo, {}, NOW, routes=data))


def test_mirrored_table_is_clean():
    topo = topology()
    data = RouteData(("rt",), tuple(node_routes(topo)), Subnet("s", "10.224.0.0/16", 5), fetched_at=NOW)
    chk = compare(data, topo.nodes)
    assert {n.state for n in chk.nodes} == {"present"} and not chk.orphans and not chk.blackholes
    assert [f for f in findings(topo, data) if f.severity > Severity.INFO] == []


def test_missing_stale_orphan_blackhole_overlap():
    topo = topology()
    a, b = topo.nodes[0], topo.nodes[1]
    routes = node_routes(topo, skip={a.name, b.name})
    routes.append(Route(b.name, b.pod_cidrs[0], "VirtualAppliance", "10.9.9.9", "rt"))
    routes.append(Route("aks-gone-12345678-vmss000009", "10.244.99.0/24", "VirtualAppliance", "10.224.0.99", "rt"))
    routes.append(Route("drop", "10.244.50.0/25", "None", "", "rt"))
    routes.append(Route("shadow", b.pod_cidrs[0].replace("/24", "/26"), "VirtualAppliance", "10.1.1.1", "rt"))
    data = RouteData(("rt",), tuple(routes), fetched_at=NOW)
    got = {(f.rule, f.fault, f.severity, f.subject) for f in findings(topo, data)}
    assert ("route-missing", "F1", Severity.CRITICAL, f"node/{a.name}") in got
    assert ("route-stale", "F2", Severity.CRITICAL, f"node/{b.name}") in got
    assert ("route-orphaned", "F3", Severity.WARNING, "route/aks-gone-12345678-vmss000009") in got
    assert ("route-blackhole", "F9", Severity.CRITICAL, "route/drop") in got
    assert ("route-overlap", None, Severity.CRITICAL, "route/shadow") in got
    stale = next(f for f in findings(topo, data) if f.rule == "route-stale")
    assert stale.evidence["is_next_hop"] == "10.9.9.9" and stale.evidence["must_next_hop"] == b.internal_ip


def test_new_node_without_route_is_info_and_newer_than_the_read_is_pending():
    topo = topology()
    n = topo.nodes[0]
    data = RouteData(("rt",), tuple(node_routes(topo, skip={n.name})), fetched_at=n.created - 1)
    assert compare(data, topo.nodes).by_node[n.name].state == "pending"


def test_udr_without_default_route_and_headroom():
    topo = topology()
    data = RouteData(
        ("rt",),
        tuple(node_routes(topo))
        + tuple(Route(f"user-{i}", f"192.168.{i}.0/24", "VirtualAppliance", "10.0.0.4", "rt") for i in range(360)),
        outbound_type="userDefinedRouting",
        fetched_at=NOW,
    )
    got = {(f.rule, f.severity) for f in findings(topo, data)}
    assert ("udr-default-missing", Severity.CRITICAL) in got and ("route-headroom", Severity.WARNING) in got


def test_cni_subnet_too_small_is_f13():
    from dataclasses import replace

    from probes.kube.model import NetworkPlugin

    topo = replace(topology(), plugin=NetworkPlugin.AZURE_CNI)
    small = RouteData(subnet=Subnet("s", "10.10.0.0/24", 226), max_pods=30, surge=2)
    assert [(f.fault, f.severity) for f in findings(topo, small) if f.fault == "F13"] == [("F13", Severity.WARNING)]
    roomy = replace(small, subnet=Subnet("s", "10.10.0.0/22", 226))
    assert not [f for f in findings(topo, roomy) if f.fault == "F13"]


def test_parsing_rest_shapes_and_names():
    name, routes, subs = parse_route_table(
        {
            "name": "rt",
            "properties": {
                "routes": [
                    {
                        "name": "n1",
                        "properties": {
                            "addressPrefix": "10.244.0.0/24",
                            "nextHopType": "VirtualAppliance",
                            "nextHopIpAddress": "10.224.0.4",
                        },
                    }
                ],
                "subnets": [{"id": "/x/subnets/s"}],
            },
        }
    )
    assert name == "rt" and routes == [Route("n1", "10.244.0.0/24", "VirtualAppliance", "10.224.0.4", "rt")]
    assert subs == ["/x/subnets/s"]
    s = parse_subnet({"id": "i", "properties": {"addressPrefix": "10.0.0.0/28", "ipConfigurations": [{"id": "a"}] * 3}})
    assert s.free == 16 - 5 - 3
    assert route_name("node", "fd00::/64", dual_stack=True) == "node____fd0064"
    assert routes_json(None, [])["state"] == "unknown"
