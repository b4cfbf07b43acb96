"""The lab's `dns:` scenario section."""

from __future__ import annotations

import random

import pytest

from probes.lab.dnsserver import Zone, build_reply, responder_for
from probes.lab.dnsspec import Behaviour, Delay, DnsFaultMode, DnsLabSpec, parse_dns_section

EXAMPLE = {
    "seed": 7,
    "nodelocal": {"behaviour": "answer"},
    "kube-dns": {"delay": "2ms"},
    "coredns": {"delay": {"uniform": [1, 3]}},
    "upstream": {
        "behaviour": "servfail",
        "delay": {"normal": {"mean": 5, "stddev": 1}},
        "changes": [{"at": "30s", "behaviour": "drop"}, {"at": 90, "behaviour": "answer"}],
    },
    "nodes": {"aks-nodepool1-0": {"nodelocal": {"behaviour": "drop"}}},
    "pods": {"coredns-abc": "refused"},
    "names": {"cluster": {"my.default.svc.cluster.local": "10.0.12.7"}, "external": {"Example.org.": "203.0.113.10"}},
}


def test_parse_example():
    s = parse_dns_section(EXAMPLE, "s.yaml")
    assert s.seed == 7
    assert s.kube_dns.at(0).delay == Delay("fixed", 2.0)
    assert s.coredns.base.delay == Delay("uniform", 1.0, 3.0)
    up = s.upstream
    assert up.at(0).mode is DnsFaultMode.SERVFAIL and up.at(29.9).mode is DnsFaultMode.SERVFAIL
    assert up.at(30).mode is DnsFaultMode.DROP and up.at(95).mode is DnsFaultMode.ANSWER
    assert up.at(95).delay == Delay("normal", 5.0, 1.0)  # unlisted keys fall back to the base
    assert s.timeline_for("nodelocal", node="aks-nodepool1-0").at(0).mode is DnsFaultMode.DROP
    assert s.timeline_for("localdns", node="other").at(0).mode is DnsFaultMode.ANSWER
    assert s.timeline_for("coredns", pod="coredns-abc").at(0).mode is DnsFaultMode.REFUSED
    assert s.external_names == {"example.org": "203.0.113.10"}
    assert parse_dns_section({}, "x") == DnsLabSpec()
    with pytest.raises(ValueError, match="unknown DNS resolver kind"):
        s.timeline_for("bogus")


@pytest.mark.parametrize(
    "data, path",
    [
        ({"nodelocl": {}}, "dns.nodelocl"),
        ({"upstream": {"behaviour": "explode"}}, "dns.upstream.behaviour"),
        ({"upstream": {"changes": [{"at": "soon"}]}}, r"dns.upstream.changes\[0\].at"),
        ({"upstream": {"changes": [{"behaviour": "drop"}]}}, r"dns.upstream.changes\[0\].at"),
        ({"upstream": {"changes": [{"at": 5}, {"at": 3}]}}, r"dns.upstream.changes\[1\].at"),
        ({"upstream": {"changes": [{"at": 5, "colour": 1}]}}, r"dns.upstream.changes\[0\].colour"),
        ({"kube-dns": {"delay": -1}}, "dns.kube-dns.delay"),
        ({"kube-dns": {"delay": {"uniform": [5, 1]}}}, "dns.kube-dns.delay.uniform"),
        ({"kube-dns": {"delay": {"gamma": 1}}}, "dns.kube-dns.delay.gamma"),
        ({"kube-dns": {"tcp": "no"}}, "dns.kube-dns.tcp"),
        ({"kube-dns": {"txt_size": 0}}, "dns.kube-dns.txt_size"),
        ({"kube-dns": 5}, "dns.kube-dns"),
        ({"nodes": {"n1": {"coredns": {}}}}, "dns.nodes.n1"),
        ({"names": {"cluster": {"bad..name": "10.0.0.1"}}}, "dns.names.cluster.bad..name"),
        ({"names": {"external": {"ok.com": "not-an-ip"}}}, "dns.names.external.ok.com"),
        ({"seed": "x"}, "dns.seed"),
    ],
)
def test_errors_name_the_key_path(data, path):
    with pytest.raises(ValueError, match=f"^s.yaml: {path}: "):
        parse_dns_section(data, "s.yaml")


def test_delay_draws_are_seeded_and_non_negative():
    rng1, rng2 = random.Random(3), random.Random(3)
    d = Delay("normal", 1.0, 5.0)
    a = [d.draw(rng1) for _ in range(100)]
    assert a == [d.draw(rng2) for _ in range(100)] and min(a) >= 0.0


def test_build_reply_delays_add_for_external_names():
    import dns.message

    q = dns.message.make_query("mcr.microsoft.com", "A").to_wire()
    own = Behaviour(delay=Delay("fixed", 2))
    up = Behaviour(delay=Delay("fixed", 3))
    assert build_reply(q, own, up, Zone(), random.Random(0), tcp=False).delay_ms == 5.0
    qc = dns.message.make_query("kubernetes.default.svc.cluster.local", "A").to_wire()
    assert build_reply(qc, own, up, Zone(), random.Random(0), tcp=False).delay_ms == 2.0
    assert build_reply(b"\x00", own, up, Zone(), random.Random(0), tcp=False).wire is None


def test_responder_for_uses_node_override():
    s = parse_dns_section(EXAMPLE, "s.yaml")
    r = responder_for(s, "nodelocal", node="aks-nodepool1-0")
    assert r.behaviour()[0].mode is DnsFaultMode.DROP  # not started: reading behaviour is still safe
    assert responder_for(s, "kube-dns").behaviour()[1].mode is DnsFaultMode.SERVFAIL
