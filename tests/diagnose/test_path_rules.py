"""The path rules on hand-made observations: F24 (and F8's evidence), F25, F26, F27."""

from __future__ import annotations

import dataclasses

from probes.azure.nsg import DEFAULT_RULES, Nsg, SecurityRule
from probes.azure.path import PathData, Peering
from probes.azure.routes import Route
from probes.diagnose import Observations, Severity, diagnose
from probes.dns.probe import ProbeKey
from probes.egress.probe import EgressKey
from probes.egress.result import EgressMode, EgressOutcome, EgressResult
from tests.diagnose.test_rules import CLUSTER, EXTERNAL, NOW, healthy_dns, stats, topology

MCR = "20.61.0.10"  # mcr.microsoft.com, as the nodes resolved it
MGMT = "20.62.0.20"
TARGETS = {"mcr.microsoft.com:443": MCR, "mcr.microsoft.com:80": MCR, "management.azure.com:443": MGMT}


def egress(topo, failing=(), outcome="timeout"):  # type: ignore[no-untyped-def]
    out = {}
    for n in topo.nodes:
        for t, addr in TARGETS.items():
            bad = t in failing
            st = stats(outcome if bad else "open", 100.0 if bad else 0.0)
            res = EgressResult(
                f"node/{n.name}",
                t,
                addr,
                int(t.rpartition(":")[2]),
                EgressMode.CONNECT,
                EgressOutcome(outcome) if bad else EgressOutcome.OPEN,
                1.0,
            )
            out[EgressKey(f"node/{n.name}", t)] = dataclasses.replace(st, last=res)
    return out


def nsg(*rules: SecurityRule, name: str = "aks-agentpool-1-nsg") -> Nsg:
    # ARM's etag changes with the rules: the evaluator's cache is keyed on it
    return Nsg(f"/x/{name}", name, f'W/"{hash(rules)}"', tuple(rules) + DEFAULT_RULES)


def path(topo, nic: Nsg | None = None, **kw) -> PathData:  # type: ignore[no-untyped-def]
    vmss = {n.vmss.lower() for n in topo.nodes if n.vmss} or {"*"}
    return PathData(
        subnet_id="/x/subnets/aks-subnet",
        vnet_id="/x/vnet",
        vnet_prefixes=("10.224.0.0/12",),
        nic_nsgs=tuple((v, nic) for v in sorted(vmss)) if nic is not None else (),
        **kw,
    )


def deny_mcr_443() -> SecurityRule:
    return SecurityRule("deny-mcr", 200, "Outbound", "Deny", "Tcp", ("*",), ("*",), (f"{MCR}/32",), ("443",))


def test_f24_names_nsg_rule_priority_level_and_f8_gains_it():
    topo = topology()
    obs = Observations(topo, {}, NOW, egress(topo, {"mcr.microsoft.com:443"}), path=path(topo, nsg(deny_mcr_443())))
    found = [f for f in diagnose(obs) if f.severity > Severity.INFO]
    f24 = [f for f in found if f.fault == "F24"]
    assert len(f24) == 1 and f24[0].subject == "target/mcr.microsoft.com:443" and f24[0].severity is Severity.CRITICAL
    ev = f24[0].evidence
    assert (ev["nsg"], ev["rule"], ev["priority"], ev["level"], ev["address"]) == (
        "aks-agentpool-1-nsg",
        "deny-mcr",
        200,
        "nic",
        MCR,
    )
    f8 = next(f for f in found if f.fault == "F8")
    assert f8.evidence["nsg"].startswith(
        "NSG aks-agentpool-1-nsg rule deny-mcr (priority 200, nic level) denies TCP 443"
    )
    assert "deny-mcr" in f8.next_step


def test_f8_not_an_nsg_points_at_the_firewall():
    topo = topology()
    fw = (Route("to-fw", "0.0.0.0/0", "VirtualAppliance", "10.50.1.4"),)
    obs = Observations(topo, {}, NOW, egress(topo, {"mcr.microsoft.com:443"}), path=path(topo, nsg(), routes=fw))
    found = [f for f in diagnose(obs) if f.severity > Severity.INFO]
    assert {f.fault for f in found} == {"F8"}
    f8 = found[0]
    assert f8.evidence["nsg"].startswith("not an NSG") and "10.50.1.4" in f8.evidence["nsg"]
    assert f8.next_step.startswith("not an NSG")
    # without ARM's path: F8 as before, no NSG evidence
    f8 = next(
        f for f in diagnose(Observations(topo, {}, NOW, egress(topo, {"mcr.microsoft.com:443"}))) if f.fault == "F8"
    )
    assert "nsg" not in f8.evidence


def test_f24_unknown_tag_is_said_not_guessed():
    topo = topology()
    tag = SecurityRule(
        "deny-acr", 100, "Outbound", "Deny", "Tcp", ("*",), ("*",), ("AzureContainerRegistry",), ("443",)
    )
    obs = Observations(topo, {}, NOW, egress(topo, {"mcr.microsoft.com:443"}), path=path(topo, nsg(tag)))
    found = diagnose(obs)
    assert "F24" not in {f.fault for f in found}
    f8 = next(f for f in found if f.fault == "F8")
    assert f8.evidence["nsg"].startswith("cannot tell offline") and "AzureContainerRegistry" in f8.evidence["nsg"]


def test_f24_lb_health_probes_denied():
    from tests.support.kubejson import service, small_cluster

    objs = small_cluster()
    objs["services"] = [*objs["services"], service("web", "default", "LoadBalancer", external="20.31.144.17")]
    topo = topology(objs)
    deny_in = SecurityRule("deny-all-in", 4000, "Inbound", "Deny", "*", ("*",), ("*",), ("*",), ("*",))
    allow_lb = SecurityRule("allow-lb", 3900, "Inbound", "Allow", "*", ("AzureLoadBalancer",), ("*",), ("*",), ("*",))
    bad = [f for f in diagnose(Observations(topo, {}, NOW, path=path(topo, nsg(deny_in)))) if f.fault == "F24"]
    assert len(bad) == 1 and bad[0].rule == "nsg-denies-lb-probes" and bad[0].evidence["rule"] == "deny-all-in"
    good = Observations(topo, {}, NOW, path=path(topo, nsg(allow_lb, deny_in)))
    assert not [f for f in diagnose(good) if f.fault == "F24"]


def _upstream_failing(topo):  # type: ignore[no-untyped-def]
    dns = healthy_dns(topo)
    for k in dns:
        if k.name == EXTERNAL:
            dns[k] = stats("timeout", 100.0)
    return dns


def test_f25_custom_dns_servers_failing_and_not_without_them():
    topo = topology()
    dns = _upstream_failing(topo)
    found = diagnose(Observations(topo, dns, NOW, path=path(topo, nsg(), dns_servers=("10.224.10.4",))))
    f25 = [f for f in found if f.fault == "F25"]
    assert len(f25) == 1 and f25[0].evidence["dns_servers"] == "10.224.10.4"
    assert "VnetLocal" in f25[0].evidence["path_to_10.224.10.4"]
    assert not [f for f in diagnose(Observations(topo, dns, NOW, path=path(topo, nsg()))) if f.fault == "F25"]
    assert not [
        f
        for f in diagnose(
            Observations(topo, healthy_dns(topo), NOW, path=path(topo, nsg(), dns_servers=("10.224.10.4",)))
        )
        if f.fault == "F25"
    ]
    assert CLUSTER  # cluster names answer in both


def test_f26_peering_down_with_dns_or_route_in_it():
    topo = topology()
    hub = Peering("to-hub", "Disconnected", "/x/hub-vnet", ("10.50.0.0/16",))
    p = path(topo, nsg(), peerings=(hub,), dns_servers=("10.50.0.4",))
    f26 = [f for f in diagnose(Observations(topo, {}, NOW, path=p)) if f.fault == "F26"]
    assert len(f26) == 1 and f26[0].subject == "peering/to-hub" and "DNS server 10.50.0.4" in f26[0].evidence["used_by"]
    fw = (Route("to-fw", "0.0.0.0/0", "VirtualAppliance", "10.50.1.4"),)
    p = path(topo, nsg(), peerings=(hub,), routes=fw)
    f26 = [f for f in diagnose(Observations(topo, {}, NOW, path=p)) if f.fault == "F26"]
    assert len(f26) == 1 and "route to-fw" in f26[0].evidence["used_by"]
    # connected, or nothing uses it: nothing
    up = dataclasses.replace(hub, state="Connected")
    assert not [
        f
        for f in diagnose(
            Observations(topo, {}, NOW, path=path(topo, nsg(), peerings=(up,), dns_servers=("10.50.0.4",)))
        )
        if f.fault == "F26"
    ]
    assert not [
        f for f in diagnose(Observations(topo, {}, NOW, path=path(topo, nsg(), peerings=(hub,)))) if f.fault == "F26"
    ]


def test_f27_firewall_drops_and_not_when_an_nsg_explains_it():
    topo = topology()
    fw = (Route("to-fw", "0.0.0.0/0", "VirtualAppliance", "10.50.1.4"),)
    every = set(TARGETS)
    f27 = [
        f
        for f in diagnose(Observations(topo, {}, NOW, egress(topo, every), path=path(topo, nsg(), routes=fw)))
        if f.fault == "F27"
    ]
    assert len(f27) == 1 and f27[0].subject == "firewall/10.50.1.4"
    # the same failures without the firewall route: not F27
    assert not [
        f
        for f in diagnose(Observations(topo, {}, NOW, egress(topo, every), path=path(topo, nsg())))
        if f.fault == "F27"
    ]
    # one target only: F8's business
    one = {"mcr.microsoft.com:443"}
    assert not [
        f
        for f in diagnose(Observations(topo, {}, NOW, egress(topo, one), path=path(topo, nsg(), routes=fw)))
        if f.fault == "F27"
    ]
    # an NSG denying everything explains it: F24, not F27
    deny = SecurityRule("deny-out", 100, "Outbound", "Deny", "*", ("*",), ("*",), ("*",), ("*",))
    found = diagnose(Observations(topo, {}, NOW, egress(topo, every), path=path(topo, nsg(deny), routes=fw)))
    assert "F27" not in {f.fault for f in found} and "F24" in {f.fault for f in found}


def test_no_path_no_path_findings():
    topo = topology()
    found = diagnose(Observations(topo, _upstream_failing(topo), NOW, egress(topo, set(TARGETS))))
    assert not {"F24", "F25", "F26", "F27"} & {f.fault for f in found}
    assert ProbeKey  # the DNS keys came from healthy_dns


def proxied(topo, outcome: str, status: int = 0, failing=("mcr.microsoft.com:443",), ok_nodes=()):  # type: ignore[no-untyped-def]
    """Every node checks TARGETS through the proxy; `failing` fail with `outcome` (except
    from `ok_nodes`)."""
    out = {}
    for n in topo.nodes:
        for t in TARGETS:
            bad = t in failing and n.name not in ok_nodes
            st = stats(outcome if bad else "open", 100.0 if bad else 0.0)
            res = EgressResult(
                f"node/{n.name}",
                t,
                "10.50.2.4",
                int(t.rpartition(":")[2]),
                EgressMode.PROXY,
                EgressOutcome(outcome) if bad else EgressOutcome.OPEN,
                1.0,
                f"proxy 10.50.2.4:3128 said {status}" if bad else "",
                proxy="10.50.2.4:3128",
                status=status if bad else 200,
            )
            out[EgressKey(f"node/{n.name}", t)] = dataclasses.replace(st, last=res)
    return out


def test_f27_proxy_refusal_names_the_proxy_and_status_not_f8():
    topo = topology()
    obs = Observations(
        topo,
        {},
        NOW,
        proxied(topo, "proxy-refused", 403),
        path=path(topo, nsg(), http_proxy="http://10.50.2.4:3128", no_proxy=("10.0.0.0/8",)),
    )
    found = [f for f in diagnose(obs) if f.severity > Severity.INFO]
    assert [(f.fault, f.rule, f.subject) for f in found] == [("F27", "proxy-fails-egress", "proxy/10.50.2.4:3128")]
    f = found[0]
    assert "answers 403 to CONNECT for 1 destination" in f.cause
    assert f.evidence["dropped"] == "mcr.microsoft.com:443" and "management.azure.com:443" in f.evidence["passing"]
    assert f.evidence["http_proxy_config"] == "http://10.50.2.4:3128; noProxy: 10.0.0.0/8"
    assert "403" in f.next_step


def test_f27_proxy_hang_and_unreachable_are_said_apart():
    topo = topology()
    hang = [f for f in diagnose(Observations(topo, {}, NOW, proxied(topo, "proxy-timeout"))) if f.fault == "F27"]
    assert len(hang) == 1 and "hangs" in hang[0].cause and hang[0].evidence["status"] == "none"
    down = proxied(topo, "proxy-unreachable", failing=tuple(TARGETS))
    gone = [f for f in diagnose(Observations(topo, {}, NOW, down)) if f.fault == "F27"]
    assert len(gone) == 1 and gone[0].cause.startswith("the nodes cannot reach the HTTP proxy 10.50.2.4:3128")
    assert "3 destinations" in gone[0].cause and gone[0].evidence["passing"] == "none"


def test_f27_proxy_needs_every_node_and_healthy_raises_nothing():
    topo = topology()
    one_ok = proxied(topo, "proxy-refused", 403, ok_nodes=(topo.nodes[0].name,))
    assert "F27" not in {f.fault for f in diagnose(Observations(topo, {}, NOW, one_ok))}
    healthy = proxied(topo, "proxy-refused", 403, failing=())
    assert not [f for f in diagnose(Observations(topo, {}, NOW, healthy)) if f.severity > Severity.INFO]
