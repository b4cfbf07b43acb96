"""The agent against the lab's loopback DNS responders and TCP targets."""

from __future__ import annotations

import asyncio
import time

import pytest

from probes.agent.core import Agent, AgentSettings, node_resolvers, node_targets, settings_for, start_all, stop_all
from probes.dns.probe import DnsOutcome as Outcome
from probes.dns.probe import DnsResult
from probes.dns.resolvers import NODELOCAL_IP, Resolver, ResolverKind
from probes.dns.service import DnsSettings, Vantage
from probes.dns.service import build_plan as dns_plan
from probes.egress.probe import EgressMode, EgressResult
from probes.egress.probe import EgressOutcome as EOutcome
from probes.egress.service import EgressSettings, EgressVantage
from probes.egress.service import build_plan as egress_plan
from probes.egress.targets import AKS_REQUIRED
from probes.engine.scheduler import JobFailure
from probes.kube.model import NetworkPlugin, NodeInfo, PodState, Topology, node_vantage
from probes.lab.tcptargets import DROP_HOST, OPEN_HOST
from tests.agent.agent_helpers import DROP, EGRESS_ZONE, until

NODE = "aks-nodepool1-12345678-vmss000001"
KUBE_DNS = "10.0.0.10"


def _dns(agent: Agent, resolver: str) -> list[DnsResult]:
    return [r for _, r in agent.results_since(0) if isinstance(r, DnsResult) and r.resolver == resolver]


def _egress(agent: Agent, target: str) -> list[EgressResult]:
    return [r for _, r in agent.results_since(0) if isinstance(r, EgressResult) and r.target == target]


async def test_results_arrive_in_seq_order_and_a_dropping_resolver_times_out_alone(responder):
    ok, drop = responder(), responder(DROP)
    s = settings_for(
        NODE,
        kube_dns=KUBE_DNS,
        nodelocal=True,
        confine=True,
        dns_overrides={NODELOCAL_IP: drop.address, KUBE_DNS: ok.address},
        dns_interval=0.15,
        dns_timeout=0.25,
        jitter=0.0,
    )
    agent = Agent(s)
    await agent.start()
    try:
        await until(
            lambda: len(_dns(agent, "nodelocal")) >= 6 and len(_dns(agent, "kube-dns")) >= 6,
            what="three rounds from both resolvers",
        )
    finally:
        assert await agent.stop(1.0)
    held = agent.results_since(0)
    assert [seq for seq, _ in held] == list(range(1, agent.seq + 1))
    assert agent.oldest == 1
    local = _dns(agent, "nodelocal")
    assert {r.outcome for r in local} == {Outcome.TIMEOUT}
    assert all(240 <= r.latency_ms < 1000 for r in local)
    assert all(r.address == NODELOCAL_IP and r.target == "%s:%d" % drop.address for r in local)
    assert {r.outcome for r in _dns(agent, "kube-dns")} == {Outcome.OK}
    assert {r.vantage for _, r in held} == {node_vantage(NODE)}
    assert {r.qname for r in local} == set(s.names)
    # the counters behind /metrics agree with the feed
    for name in s.names:
        assert agent.dns_counts[("nodelocal", name, "timeout")] == sum(1 for r in local if r.qname == name)
    assert ("nodelocal", s.names[0]) not in agent.dns_latencies()
    assert len(agent.dns_latencies()[("kube-dns", s.names[0])]) >= 3


async def test_egress_outcomes_through_the_lab_dns_and_dnat(responder, targets):
    dns = responder(zone=EGRESS_ZONE)
    extra = [
        "open.example:443",
        "refused.example:443",
        "drop.example:443",
        "missing.example:443",
        "far.example:443",
        f"{OPEN_HOST}:8443",
        "192.0.2.9:443",
    ]
    s = settings_for(
        NODE,
        aks_defaults=False,
        targets=extra,
        egress_dns=dns.address,
        dial_map=targets.dial_map(),
        confine=True,
        mode="connect",
        egress_interval=0.2,
        egress_timeout=0.3,
        egress_dns_timeout=0.5,
        jitter=0.0,
    )
    # confined: an IP target beyond loopback is not even planned
    assert [t.text for t in s.targets] == extra[:-1]
    agent = Agent(s)
    await agent.start()
    try:
        await until(lambda: all(_egress(agent, t) for t in extra[:-1]), what="one check per target")
    finally:
        await agent.stop(1.0)
    want = {
        "open.example:443": EOutcome.OPEN,
        "refused.example:443": EOutcome.REFUSED,
        "drop.example:443": EOutcome.TIMEOUT,
        "missing.example:443": EOutcome.DNS_NXDOMAIN,
        "far.example:443": EOutcome.DNS_FAILURE,
        f"{OPEN_HOST}:8443": EOutcome.OPEN,
    }
    for target, outcome in want.items():
        got = _egress(agent, target)[0]
        assert got.outcome is outcome, (target, got)
        assert got.mode is EgressMode.CONNECT
    assert "no loopback address" in _egress(agent, "far.example:443")[0].error
    assert _egress(agent, "open.example:443")[0].via == f"{OPEN_HOST}:{targets.open.port}"
    assert agent.mode is EgressMode.CONNECT
    assert agent.egress_counts[("drop.example:443", "timeout")] >= 1
    assert agent.egress_latencies()["open.example:443"]


def _app_topology() -> Topology:
    def node(name: str, localdns: bool) -> NodeInfo:
        return NodeInfo(
            name=name,
            internal_ip="10.224.0.4",
            pod_cidrs=("10.244.0.0/24",),
            pool="nodepool1",
            ready=True,
            ready_reason="",
            cordoned=False,
            network_unavailable=False,
            network_reason="",
            kubelet_version="v1.30.6",
            zone="1",
            provider_id="",
            vmss="",
            instance_id="1",
            created=0.0,
            localdns=localdns,
        )

    pods = tuple(
        PodState("kube-system", f"coredns-abc-{i}", "other", f"10.244.1.{i + 2}", "Running", True) for i in range(2)
    )
    return Topology(
        cluster="mc",
        plugin=NetworkPlugin.KUBENET,
        dataplane="azure",
        pod_cidrs=(),
        dns_service_ip=KUBE_DNS,
        nodes=(node(NODE, True), node("other", False)),
        pools=(),
        coredns=pods,
        nodelocal_enabled=True,
    )


def test_resolver_keys_are_the_apps_for_that_node_without_coredns_pods():
    custom = ("10.1.0.4", "10.1.0.5:5353")
    mine = node_resolvers(NODE, kube_dns=KUBE_DNS, nodelocal=True, localdns=True, custom=custom)
    app = dns_plan(_app_topology(), DnsSettings(resolvers=custom), [Vantage(node_vantage(NODE), NODE)], 1)
    theirs = [r for vp in app.vantages if vp.vantage.name == node_vantage(NODE) for r in vp.resolvers]
    assert [r.key for r in mine] == [r.key for r in theirs if r.kind is not ResolverKind.COREDNS]
    assert [r.key for r in mine] == [
        "nodelocal",
        "localdns-1",
        "localdns-2",
        "kube-dns",
        "custom/10.1.0.4",
        "custom/10.1.0.5:5353",
    ]
    assert all(r.target is None for r in mine)  # production: dial the real addresses
    plain = node_resolvers(NODE, kube_dns=KUBE_DNS)
    assert [r.key for r in plain] == ["kube-dns"]
    with pytest.raises(ValueError, match="not an IP address"):
        node_resolvers(NODE, kube_dns="kube-dns.kube-system")


def test_targets_are_the_apps_plan_for_a_node():
    api = "aks-lab-1a2b3c.hcp.westeurope.azmk8s.io:443"
    mine = node_targets(NODE, apiserver=api, extra=["example.org:8443", "mcr.microsoft.com:443"])
    app = egress_plan(
        EgressSettings(targets=("example.org:8443", "mcr.microsoft.com:443")),
        [EgressVantage(node_vantage(NODE), NODE)],
        f"https://{api}",
        1,
    )
    theirs = next(vp.targets for vp in app.vantages if vp.vantage.name == node_vantage(NODE))
    assert [t.text for t in mine] == [t.text for t in theirs]
    assert [t.text for t in mine[: len(AKS_REQUIRED)]] == [t.text for t in AKS_REQUIRED]
    assert mine[len(AKS_REQUIRED)].source == "apiserver" and mine[len(AKS_REQUIRED)].host == api[:-4]
    assert [t.text for t in node_targets(NODE, aks_defaults=False)] == []
    with pytest.raises(ValueError, match="no port"):
        node_targets(NODE, extra=["example.org"])
    with pytest.raises(ValueError, match="API server"):
        node_targets(NODE, apiserver="https://:443")


def _dns_result(i: int, resolver: str = "kube-dns", raw: str = "") -> DnsResult:
    return DnsResult(
        node_vantage(NODE),
        resolver,
        KUBE_DNS,
        "127.0.0.1:53",
        "a.example",
        "A",
        Outcome.OK,
        1.0 + i,
        1,
        raw=raw,
        timestamp=1000.0 + i,
    )


def test_the_ring_is_bounded_and_reads_from_a_cursor():
    agent = Agent(AgentSettings(NODE, feed_size=8))
    assert (agent.seq, agent.oldest, agent.results_since(0)) == (0, 1, [])
    for i in range(30):
        agent.record(("k",), _dns_result(i))
    assert agent.seq == 30 and agent.held == 8 and agent.oldest == 23
    assert [s for s, _ in agent.results_since(0)] == list(range(23, 31))
    assert [s for s, _ in agent.results_since(26)] == [27, 28, 29, 30]
    assert agent.results_since(30) == []
    # a cursor from an earlier run of the agent (beyond seq): everything held
    assert [s for s, _ in agent.results_since(500)] == list(range(23, 31))
    assert agent.dns_counts[("kube-dns", "a.example", "ok")] == 30
    assert len(agent.dns_latencies()[("kube-dns", "a.example")]) <= 60


def test_raw_is_kept_once_per_key_capped_and_not_in_the_ring():
    agent = Agent(AgentSettings(NODE))
    agent.record(("a",), _dns_result(0, raw="first"))
    agent.record(("a",), _dns_result(1, raw="x" * 5000))
    agent.record(("a",), _dns_result(2))  # a timeout-like result without raw
    agent.record(("b",), _dns_result(3, "nodelocal", raw="b-raw"))
    assert all(r.raw == "" for _, r in agent.results_since(0))
    raws = agent.raw_since(0)
    assert raws == {2: "x" * 1024, 4: "b-raw"}
    assert agent.raw_since(2) == {4: "b-raw"}


def test_job_failures_are_errors_not_results():
    agent = Agent(AgentSettings(NODE))
    agent.record(("node/x", "kube-dns", "a.example", "A"), JobFailure(("k",), "error", "RuntimeError: boom", 1.0, 5.0))
    assert agent.seq == 0 and agent.held == 0
    assert agent.error_count == 1 and "boom" in agent.last_error
    assert agent.errors[-1].message == agent.last_error


def test_settings_refuse_what_cannot_run():
    for kw, msg in (
        ({"node": ""}, "node name"),
        ({"dns_interval": 0}, "DNS interval"),
        ({"egress_timeout": float("nan")}, "egress timeout"),
        ({"mode": "icmp"}, "egress mode"),
        ({"feed_size": 0}, "results kept"),
    ):
        with pytest.raises(ValueError, match=msg):
            AgentSettings(**{"node": NODE, **kw})
    with pytest.raises(ValueError, match="DNS name"):
        settings_for(NODE, names=["bad..name"])


async def test_many_agents_share_one_loop_and_stop_cleanly(responder):
    ok = responder()
    agents = [
        Agent(
            settings_for(
                f"node-{i}",
                kube_dns=KUBE_DNS,
                confine=True,
                dns_overrides={KUBE_DNS: ok.address},
                dns_interval=0.2,
                dns_timeout=0.5,
            )
        )
        for i in range(25)
    ]
    await start_all(agents)
    try:
        await until(lambda: all(a.seq >= 2 for a in agents), what="results from 25 agents")
    finally:
        t0 = time.monotonic()
        await stop_all(agents, 1.0)
        assert time.monotonic() - t0 < 1.5
    assert all(not a.running for a in agents)
    assert {r.vantage for a in agents for _, r in a.results_since(0)} == {f"node/node-{i}" for i in range(25)}
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_stop_does_not_wait_for_slow_probes(responder):
    drop = responder(DROP)
    s = AgentSettings(
        NODE,
        resolvers=(Resolver("kube-dns", ResolverKind.KUBE_DNS, KUBE_DNS, 53, drop.address),),
        dns_timeout=5.0,
        dns_interval=10.0,
        jitter=0.0,
    )
    agent = Agent(s)
    await agent.start()
    await until(lambda: drop.queries >= 2, what="the queries to be in flight")
    t0 = time.monotonic()
    assert await agent.stop(1.0)
    assert time.monotonic() - t0 < 0.5
    assert agent.seq == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_confined_agent_never_dials_beyond_loopback(targets):
    # no lab DNS for egress and confine: names are not resolved at all; IP targets
    # beyond loopback are not planned
    s = settings_for(
        NODE,
        aks_defaults=False,
        targets=["mcr.microsoft.com:443", "203.0.113.5:443", f"{DROP_HOST}:443"],
        confine=True,
        dial_map=targets.dial_map(),
        mode="connect",
        egress_interval=0.2,
        egress_timeout=0.3,
    )
    assert [t.text for t in s.targets] == [f"{DROP_HOST}:443"]
