"""The next-hop evaluator: longest prefix, user over system routes, None, VirtualAppliance,
peerings, the cache per route-table version."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from probes.azure.nexthop import RouteSpace, default_route, next_hop
from probes.azure.routes import Route

VNET = ("10.224.0.0/12",)


def test_system_routes_only():
    s = RouteSpace(vnet=VNET)
    assert next_hop("10.224.3.3", s).type == "VnetLocal"
    assert next_hop("20.1.2.3", s).type == "Internet"
    h = next_hop("10.1.1.1", s)  # private, not in the VNet: Azure drops it
    assert (h.type, h.prefix, h.source) == ("None", "10.0.0.0/8", "Default")
    assert next_hop("not-an-ip", s).type == "None"
    assert default_route(s).type == "Internet"


def test_longest_prefix_wins_and_user_beats_system_at_equal_length():
    s = RouteSpace(
        user=(
            Route("to-fw", "0.0.0.0/0", "VirtualAppliance", "10.0.1.4"),
            Route("blackhole", "20.1.0.0/16", "None"),
            Route("direct", "20.1.2.0/24", "Internet"),
            Route("vnet-override", "10.224.0.0/12", "VirtualAppliance", "10.0.1.5"),
        ),
        vnet=VNET,
    )
    h = next_hop("20.9.9.9", s)
    assert (h.type, h.ip, h.route, h.source) == ("VirtualAppliance", "10.0.1.4", "to-fw", "User")
    assert next_hop("20.1.9.9", s).route == "blackhole" and next_hop("20.1.9.9", s).type == "None"
    assert next_hop("20.1.2.9", s).type == "Internet"
    assert next_hop("10.224.0.9", s).route == "vnet-override"  # same length as VnetLocal: the user route
    assert next_hop("10.1.1.1", s).type == "None"  # the system /8 is longer than the user /0
    d = default_route(s)
    assert (d.type, d.ip) == ("VirtualAppliance", "10.0.1.4")


def test_peering_routes_only_when_connected():
    up = RouteSpace(vnet=VNET, peered=("10.50.0.0/16",))
    assert next_hop("10.50.1.1", up).type == "VNetPeering"
    down = RouteSpace(vnet=VNET)
    assert next_hop("10.50.1.1", down).type == "None"
    gw = RouteSpace(user=(Route("onprem", "10.50.0.0/16", "VirtualNetworkGateway"),), vnet=VNET)
    assert next_hop("10.50.1.1", gw).type == "VirtualNetworkGateway"


def test_version_keys_the_cache():
    a = RouteSpace(user=(Route("r", "20.0.0.0/8", "None"),), vnet=VNET, version="v1")
    assert next_hop("20.1.1.1", a).type == "None"
    b = RouteSpace(user=(Route("r", "20.0.0.0/8", "Internet"),), vnet=VNET, version="v2")
    assert next_hop("20.1.1.1", b).type == "Internet"


user_routes = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2**32 - 1),
        st.integers(min_value=1, max_value=32),
        st.sampled_from(["None", "Internet"]),
    ),
    max_size=10,
)


@settings(max_examples=200, deadline=None)
@given(user_routes, st.integers(min_value=0, max_value=2**32 - 1))
def test_picks_the_longest_covering_prefix(routes, dst_int):
    rs = tuple(
        Route(f"r{i}", str(ipaddress.ip_network(f"{ipaddress.IPv4Address(a)}/{n}", strict=False)), t)
        for i, (a, n, t) in enumerate(routes)
    )
    s = RouteSpace(user=rs, vnet=VNET)
    dst = ipaddress.IPv4Address(dst_int)
    h = next_hop(str(dst), s)
    covering = [
        ipaddress.ip_network(r.prefix).prefixlen
        for r in (*rs, *s.system())
        if dst in ipaddress.ip_network(r.prefix) and ipaddress.ip_network(r.prefix).version == 4
    ]
    assert ipaddress.ip_network(h.prefix).prefixlen == max(covering)
    if h.source == "User":
        assert any(r.name == h.route and r.next_hop_type == h.type for r in rs)
