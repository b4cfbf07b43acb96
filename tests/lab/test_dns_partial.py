"""The dns: section's partial faults: a share of queries lost, a node's own upstream."""

from __future__ import annotations

import random

import dns.message
import pytest

from probes.lab.dnsserver import Zone, build_reply
from probes.lab.dnsspec import parse_dns_section


def query(name: str) -> bytes:
    return dns.message.make_query(name, "A").to_wire()


def test_loss_share_drops_about_that_share_of_udp_only():
    spec = parse_dns_section({"kube-dns": {"loss": "30%"}}, "x.yaml")
    own = spec.kube_dns.base
    assert own.loss == pytest.approx(0.3)
    rng = random.Random(1)
    lost = sum(
        build_reply(query("kubernetes.default.svc.cluster.local"), own, spec.upstream.base, Zone(), rng, tcp=False).wire
        is None
        for _ in range(2000)
    )
    assert 500 < lost < 700  # 30 % of 2,000, well inside 5 sigma (sigma ~20)
    assert all(
        build_reply(query("kubernetes.default.svc.cluster.local"), own, own, Zone(), rng, tcp=True).wire is not None
        for _ in range(50)
    )


@pytest.mark.parametrize(("text", "share"), [("5%", 0.05), (5, 0.05), (0.05, 0.05), ("100%", 1.0), (0, 0.0)])
def test_loss_forms(text, share):
    assert parse_dns_section({"coredns": {"loss": text}}, "x.yaml").coredns.base.loss == pytest.approx(share)


@pytest.mark.parametrize("bad", ["lots", "150%", True, -1])
def test_loss_errors_name_the_key(bad):
    with pytest.raises(ValueError, match=r"x.yaml: dns.coredns.loss"):
        parse_dns_section({"coredns": {"loss": bad}}, "x.yaml")


def test_node_upstream_applies_to_that_node_only():
    spec = parse_dns_section({"nodes": {"userpool/1": {"upstream": "drop"}}}, "x.yaml")
    assert spec.timeline_for("upstream", node="userpool/1").base.mode.value == "drop"
    assert spec.timeline_for("upstream", node="userpool/0").base.mode.value == "answer"
    rng = random.Random(0)
    own = spec.timeline_for("nodelocal", node="userpool/1").base
    up = spec.timeline_for("upstream", node="userpool/1").base
    assert build_reply(query("mcr.microsoft.com"), own, up, Zone(), rng, tcp=False).wire is None
    assert build_reply(query("kubernetes.default.svc.cluster.local"), own, up, Zone(), rng, tcp=False).wire
