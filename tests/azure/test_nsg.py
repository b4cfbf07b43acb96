"""The NSG evaluator against hand-made rule sets: priorities, allow after deny, default
rules, ranges, `*`, service tags, augmented prefixes, both levels in order, the cache."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from probes.azure.nsg import (
    DEFAULT_RULES,
    Flow,
    Nsg,
    SecurityRule,
    TagSpace,
    evaluate,
    evaluate_path,
    internet,
    parse_nsg,
)

TAGS = TagSpace(vnet=("10.224.0.0/12",))
NODE = "10.224.0.4"


def out(dst: str, port: int = 443, proto: str = "Tcp", src: str = NODE) -> Flow:
    return Flow("Outbound", src, dst, port, proto)


def nsg(*rules: SecurityRule, name: str = "nsg", etag: str = "") -> Nsg:
    return Nsg(f"/x/{name}", name, etag, tuple(rules) + DEFAULT_RULES)


def rule(name, prio, access, dst=("*",), ports=("*",), proto="*", src=("*",), direction="Outbound", sports=("*",)):
    return SecurityRule(name, prio, direction, access, proto, tuple(src), tuple(sports), tuple(dst), tuple(ports))


def test_defaults_allow_internet_and_vnet_and_deny_the_rest():
    g = nsg()
    v = evaluate(g, out("20.1.2.3"), TAGS, "nic")
    assert (v.access, v.rule, v.priority, v.default) == ("Allow", "AllowInternetOutBound", 65001, True)
    assert evaluate(g, out("10.224.9.9"), TAGS).rule == "AllowVnetOutBound"
    # a private address outside the VNet is neither VirtualNetwork nor Internet
    v = evaluate(g, out("192.168.1.1"), TAGS)
    assert (v.access, v.rule, v.priority) == ("Deny", "DenyAllOutBound", 65500)


def test_lowest_priority_number_wins_whatever_the_order():
    deny = rule("deny-443", 300, "Deny", ports=("443",))
    allow = rule("allow-443", 200, "Allow", ports=("443",))
    for g in (nsg(deny, allow), nsg(allow, deny)):
        v = evaluate(g, out("20.1.2.3"), TAGS)
        assert (v.access, v.rule, v.priority) == ("Allow", "allow-443", 200)


def test_allow_after_deny_does_not_reopen():
    g = nsg(rule("deny-all-443", 100, "Deny", ports=("443",)), rule("allow-mcr", 200, "Allow", dst=("20.1.2.3",)))
    v = evaluate(g, out("20.1.2.3", 443), TAGS)
    assert (v.access, v.rule) == ("Deny", "deny-all-443")
    assert evaluate(g, out("20.1.2.3", 80), TAGS).rule == "allow-mcr"


def test_port_ranges_lists_and_protocols():
    g = nsg(rule("deny-range", 100, "Deny", ports=("8000-8999", "22"), proto="Tcp"))
    assert evaluate(g, out("20.1.2.3", 8000), TAGS).access == "Deny"
    assert evaluate(g, out("20.1.2.3", 8999), TAGS).access == "Deny"
    assert evaluate(g, out("20.1.2.3", 22), TAGS).access == "Deny"
    assert evaluate(g, out("20.1.2.3", 9000), TAGS).access == "Allow"
    assert evaluate(g, out("20.1.2.3", 7999), TAGS).access == "Allow"
    assert evaluate(g, out("20.1.2.3", 8000, "Udp"), TAGS).access == "Allow"


def test_augmented_prefixes_and_single_addresses():
    g = nsg(rule("deny-some", 100, "Deny", dst=("13.107.42.14", "20.0.0.0/8", "2603:1000::/24")))
    assert evaluate(g, out("13.107.42.14"), TAGS).access == "Deny"
    assert evaluate(g, out("13.107.42.15"), TAGS).access == "Allow"
    assert evaluate(g, out("20.200.1.1"), TAGS).access == "Deny"
    assert evaluate(g, out("2603:1000::1", src="fd00::4"), TAGS).access == "Deny"


def test_star_any_and_source_prefixes():
    g = nsg(rule("deny-from-pool2", 100, "Deny", src=("10.224.1.0/24",)))
    assert evaluate(g, out("20.1.2.3", src="10.224.1.7"), TAGS).access == "Deny"
    assert evaluate(g, out("20.1.2.3", src="10.224.0.7"), TAGS).access == "Allow"
    g = nsg(rule("deny-any", 100, "Deny", dst=("Any",)))
    assert evaluate(g, out("10.224.0.9"), TAGS).rule == "deny-any"


def test_virtual_network_tag_covers_peerings_and_user_routes():
    g = nsg(rule("deny-vnet", 100, "Deny", dst=("VirtualNetwork",)))
    peered = TagSpace(vnet=("10.224.0.0/12",), peered=("10.50.0.0/16",))
    assert evaluate(g, out("10.50.1.1"), peered).access == "Deny"
    assert evaluate(g, out("10.50.1.1"), TAGS).rule == "DenyAllOutBound"  # without the peering: not VNet
    # a 0.0.0.0/0 user route makes every address VirtualNetwork (Azure's definition of the tag)
    udr = TagSpace(vnet=("10.224.0.0/12",), user_routes=("0.0.0.0/0",))
    assert evaluate(nsg(), out("20.1.2.3"), udr).rule == "AllowVnetOutBound"
    assert not internet("20.1.2.3", udr) and internet("20.1.2.3", TAGS)


def test_azure_load_balancer_probes_inbound():
    g = nsg()
    probe = Flow("Inbound", "168.63.129.16", NODE, 10256)
    v = evaluate(g, probe, TAGS)
    # the host's virtual IP is part of the VirtualNetwork tag (Azure's definition): 65000 first
    assert (v.access, v.rule, v.priority) == ("Allow", "AllowVnetInBound", 65000)
    g = nsg(rule("deny-vnet-in", 4000, "Deny", src=("VirtualNetwork",), direction="Inbound"))
    v = evaluate(g, probe, TAGS)
    assert (v.access, v.rule) == ("Deny", "deny-vnet-in")
    g = nsg(
        rule("allow-lb", 3900, "Allow", src=("AzureLoadBalancer",), direction="Inbound"),
        rule("deny-vnet-in", 4000, "Deny", src=("VirtualNetwork",), direction="Inbound"),
    )
    assert evaluate(g, probe, TAGS).rule == "allow-lb"
    assert evaluate(g, Flow("Inbound", "10.224.0.9", NODE, 80), TAGS).rule == "deny-vnet-in"
    g = nsg(rule("deny-vnet-in", 4000, "Deny", src=("VirtualNetwork",), direction="Inbound"), name="x2")
    g = Nsg(g.id, g.name, "", tuple(r for r in g.rules if r.name != "AllowVnetInBound"))
    v = evaluate(g, Flow("Inbound", "20.1.2.3", NODE, 80), TAGS)
    assert v.rule == "DenyAllInBound"
    g = nsg(rule("deny-all-in", 4096, "Deny", direction="Inbound"))
    v = evaluate(g, probe, TAGS, "subnet")
    assert (v.access, v.rule, v.priority, v.level) == ("Deny", "deny-all-in", 4096, "subnet")
    assert evaluate(g, Flow("Inbound", "20.1.2.3", NODE, 443), TAGS).rule == "deny-all-in"


def test_unresolvable_tag_is_unknown_not_guessed():
    g = nsg(rule("deny-acr", 100, "Deny", dst=("AzureContainerRegistry.WestEurope",), ports=("443",)))
    v = evaluate(g, out("20.1.2.3"), TAGS)
    assert v.access == "Unknown" and v.allowed is None
    assert "AzureContainerRegistry.WestEurope" in v.note and "deny-acr" in v.note and "AllowInternetOutBound" in v.note
    # a port the rule does not cover: the tag does not matter
    assert evaluate(g, out("20.1.2.3", 80), TAGS).access == "Allow"
    # every way ends in a deny: certain
    g = nsg(rule("deny-storage", 100, "Deny", dst=("Storage",)), rule("deny-rest", 200, "Deny"))
    v = evaluate(g, out("20.1.2.3"), TAGS)
    assert (v.access, v.rule) == ("Deny", "deny-rest")
    # application security groups: membership is not read
    g = parse_nsg(
        {
            "id": "/x/asg-nsg",
            "name": "asg-nsg",
            "properties": {
                "securityRules": [
                    {
                        "name": "deny-asg",
                        "properties": {
                            "priority": 100,
                            "direction": "Outbound",
                            "access": "Deny",
                            "protocol": "*",
                            "sourcePortRange": "*",
                            "destinationPortRange": "*",
                            "sourceApplicationSecurityGroups": [{"id": "/x/applicationSecurityGroups/web"}],
                            "destinationAddressPrefix": "*",
                        },
                    }
                ]
            },
        }
    )
    v = evaluate(g, out("20.1.2.3"), TAGS)
    assert v.access == "Unknown" and "application security group web" in v.note


def test_source_port_rules_against_an_ephemeral_port():
    low = rule("deny-low-sports", 100, "Deny", sports=("1-1023",))
    assert evaluate(nsg(low), out("20.1.2.3"), TAGS).access == "Allow"  # ephemeral ports are above
    wide = rule("deny-high-sports", 100, "Deny", sports=("1024-65535",))
    assert evaluate(nsg(wide), out("20.1.2.3"), TAGS).rule == "deny-high-sports"
    part = rule("deny-some-sports", 100, "Deny", sports=("40000-40100",))
    assert evaluate(nsg(part), out("20.1.2.3"), TAGS).access == "Unknown"
    given_port = Flow("Outbound", NODE, "20.1.2.3", 443, "Tcp", source_port=40050)
    assert evaluate(nsg(part), given_port, TAGS).rule == "deny-some-sports"


def test_path_order_outbound_nic_first_inbound_subnet_first():
    nic = nsg(rule("nic-deny", 100, "Deny", ports=("443",)), name="nic-nsg")
    sub = nsg(rule("sub-deny", 100, "Deny", ports=("443",)), name="sub-nsg")
    p = evaluate_path(nic, sub, out("20.1.2.3"), TAGS)
    assert p.access == "Deny" and p.deciding is not None and p.deciding.nsg == "nic-nsg"
    assert len(p.steps) == 1  # the flow ends at the NIC
    p = evaluate_path(None, sub, out("20.1.2.3"), TAGS)
    assert [s.level for s in p.steps] == ["nic", "subnet"] and p.steps[0].access == "Allow" and not p.steps[0].nsg
    assert p.deciding is not None and (p.deciding.nsg, p.deciding.rule, p.deciding.level) == (
        "sub-nsg",
        "sub-deny",
        "subnet",
    )
    inbound = Flow("Inbound", "20.1.2.3", NODE, 443)
    nic_in = nsg(rule("nic-in", 100, "Deny", direction="Inbound"), name="nic-nsg")
    sub_in = nsg(rule("sub-in", 100, "Deny", direction="Inbound"), name="sub-nsg")
    p = evaluate_path(nic_in, sub_in, inbound, TAGS)
    assert p.deciding is not None and p.deciding.nsg == "sub-nsg" and len(p.steps) == 1
    assert evaluate_path(None, None, out("20.1.2.3"), TAGS).access == "Allow"


def test_parse_real_shape_and_default_rules_from_the_body():
    body = {
        "name": "aks-agentpool-12345678-nsg",
        "id": "/subscriptions/s/resourceGroups/MC_rg/providers/Microsoft.Network/networkSecurityGroups/aks-agentpool-12345678-nsg",
        "etag": 'W/"00000000-0000-0000-0000-000000000001"',
        "properties": {
            "securityRules": [
                {
                    "name": "deny-mcr",
                    "properties": {
                        "protocol": "Tcp",
                        "sourcePortRange": "*",
                        "destinationPortRanges": ["443", "8443"],
                        "sourceAddressPrefix": "*",
                        "destinationAddressPrefixes": ["20.1.2.3", "20.1.2.4"],
                        "access": "Deny",
                        "priority": 200,
                        "direction": "Outbound",
                    },
                }
            ],
            "defaultSecurityRules": [
                {
                    "name": "DenyAllOutBound",
                    "properties": {
                        "protocol": "*",
                        "sourcePortRange": "*",
                        "destinationPortRange": "*",
                        "sourceAddressPrefix": "*",
                        "destinationAddressPrefix": "*",
                        "access": "Deny",
                        "priority": 65500,
                        "direction": "Outbound",
                    },
                }
            ],
            "networkInterfaces": [
                {"id": "/x/virtualMachineScaleSets/aks-nodepool1-1-vmss/virtualMachines/0/networkInterfaces/n"}
            ],
        },
    }
    g = parse_nsg(body)
    assert g.etag.startswith("W/") and len(g.rules) == 2 and g.nics
    assert g.rules[0].destination_ports == ("443", "8443") and g.rules[0].destinations == ("20.1.2.3", "20.1.2.4")
    assert evaluate(g, out("20.1.2.4", 8443), TAGS).rule == "deny-mcr"
    # only the body's defaults: Internet is not allowed by this (trimmed) NSG
    assert evaluate(g, out("20.9.9.9", 80), TAGS).rule == "DenyAllOutBound"


def test_cached_per_etag_a_new_version_is_evaluated_anew():
    a = nsg(rule("deny", 100, "Deny", ports=("443",)), etag="v1")
    assert evaluate(a, out("20.1.2.3"), TAGS).access == "Deny"
    b = nsg(rule("deny", 100, "Deny", ports=("8443",)), etag="v2")
    assert evaluate(b, out("20.1.2.3"), TAGS).access == "Allow"
    assert evaluate(a, out("20.1.2.3"), TAGS).access == "Deny"


# --- properties ---------------------------------------------------------------------------
ips = st.integers(min_value=0, max_value=2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))
prefixes = st.tuples(ips, st.integers(min_value=8, max_value=32)).map(
    lambda t: str(ipaddress.ip_network(f"{t[0]}/{t[1]}", strict=False))
)
rules_st = st.lists(
    st.tuples(
        st.integers(min_value=100, max_value=4096),
        st.sampled_from(["Allow", "Deny"]),
        st.lists(prefixes, min_size=1, max_size=3),
        st.integers(min_value=1, max_value=65535),
        st.integers(min_value=0, max_value=200),
        st.sampled_from(["*", "Tcp", "Udp"]),
    ),
    max_size=12,
    unique_by=lambda t: t[0],
)


def _reference(rules, flow: Flow) -> tuple[str, str]:
    """The plain reading of the rule: sort by priority, first full match."""
    ip = ipaddress.ip_address(flow.destination)
    for prio, access, dsts, lo, width, proto in sorted(rules):
        if proto not in ("*", flow.protocol):
            continue
        if not lo <= flow.port <= min(lo + width, 65535):
            continue
        if any(ip in ipaddress.ip_network(d) for d in dsts):
            return access, f"r{prio}"
    return "default", ""


@settings(max_examples=200, deadline=None)
@given(rules_st, ips, st.integers(min_value=1, max_value=65535), st.sampled_from(["Tcp", "Udp"]))
def test_matches_a_plain_reference_reading(rules, dst, port, proto):
    g = nsg(
        *[rule(f"r{p}", p, a, dst=d, ports=(f"{lo}-{min(lo + w, 65535)}",), proto=pr) for p, a, d, lo, w, pr in rules]
    )
    flow = out(dst, port, proto)
    want, name = _reference(rules, flow)
    v = evaluate(g, flow, TAGS)
    if want == "default":
        assert v.default
    else:
        assert (v.access, v.rule) == (want, name)
