"""Per-pod CoreDNS probing from the agent: the reader's pod list (probes.agent.hint), the
agent's jobs within its budget, the HTTP parameter, and the wire format carrying the rows."""

from __future__ import annotations

import dataclasses

import pytest

from probes.agent import core
from probes.agent.core import Agent, settings_for
from probes.agent.hint import MAX_PODS, CorednsPod, choose, format_hint, parse_hint
from probes.agent.http import AgentServer
from probes.agent.wire import decode, encode
from probes.dns.probe import DnsResult
from probes.dns.resolvers import ResolverKind
from tests.agent.agent_helpers import DROP, until
from tests.agent.test_agent_http import get, request

NODE = "aks-nodepool1-12345678-vmss000003"
KUBE_DNS = "10.0.0.10"
NAMES = ("kubernetes.default.svc.cluster.local", "kube-dns.kube-system.svc.cluster.local", "mcr.microsoft.com")
PODS = (
    CorednsPod("coredns-789789675-abcde", "10.244.0.5", "aks-nodepool1-12345678-vmss000000"),
    CorednsPod("coredns-789789675-fghij", "10.244.1.7", "aks-nodepool1-12345678-vmss000001"),
)


def test_hint_round_trip_and_errors_in_one_line():
    text = format_hint(PODS)
    assert text == (
        "coredns-789789675-abcde@10.244.0.5@aks-nodepool1-12345678-vmss000000,"
        "coredns-789789675-fghij@10.244.1.7@aks-nodepool1-12345678-vmss000001"
    )
    assert parse_hint(text) == PODS and parse_hint("") == ()
    assert parse_hint("b@fd00::5@,a@10.1.2.3@n") == (CorednsPod("a", "10.1.2.3", "n"), CorednsPod("b", "fd00::5", ""))
    for bad, says in (
        ("coredns-a@10.0.0.1", "coredns[0]: expected pod@ip@node"),
        ("Coredns@10.0.0.1@n", "coredns[0]: 'Coredns' is not a pod name"),
        ("a@10.0.0.1@n,b@nope@n", "coredns[1]: 'nope' is not an IP address"),
        ("a@127.0.0.1@n", "coredns[0]: 127.0.0.1 is not a pod address"),
        ("a@169.254.20.10@n", "coredns[0]: 169.254.20.10 is not a pod address"),
        (
            ",".join(f"p{i}@10.0.0.{i + 1}@n" for i in range(MAX_PODS + 1)),
            f"coredns: {MAX_PODS + 1} pods given, at most {MAX_PODS}",
        ),
    ):
        with pytest.raises(ValueError, match="^" + says.replace("[", r"\[").replace("]", r"\]")) as e:
            parse_hint(bad)
        assert "\n" not in str(e.value)


def test_choose_keeps_all_up_to_the_limit_then_a_stable_share_per_node():
    pods = [CorednsPod(f"coredns-x-{i:03d}", f"10.244.{i}.5", "n") for i in range(40)]
    assert choose(pods[:3], "node-a") == pods[:3]
    a, b = choose(pods, "node-a"), choose(pods, "node-b")
    assert len(a) == len(b) == MAX_PODS and a != b and a == sorted(a, key=lambda p: p.name)
    # a replica leaving moves no other replica's prober
    gone = a[0]
    assert set(choose([p for p in pods if p != gone], "node-a")) >= set(a) - {gone}
    # every replica is probed from some node of a 50-node cluster
    covered = {p.name for n in range(50) for p in choose(pods, f"node-{n}")}
    assert covered == {p.name for p in pods}


def agent_for(responders: dict[str, tuple[str, int]], **kw: object) -> Agent:
    s = settings_for(
        NODE,
        kube_dns=KUBE_DNS,
        confine=True,
        dns_overrides=responders,
        names=NAMES,
        targets=(),
        aks_defaults=False,
        **{"dns_interval": 0.2, "dns_timeout": 0.3, "jitter": 0.0, **kw},  # type: ignore[arg-type]
    )
    return Agent(s)


async def test_told_pods_are_probed_each_on_its_own_and_budgeted(responder):
    ok, drop = responder(), responder(DROP)
    agent = agent_for(
        {KUBE_DNS: ok.address, f"coredns/{PODS[0].name}": ok.address, f"coredns/{PODS[1].name}": drop.address}
    )
    await agent.start()
    try:
        assert agent.set_coredns(PODS) and not agent.set_coredns(PODS)  # the same list again: no change
        assert [r.key for r in agent.resolvers] == ["kube-dns", *(f"coredns/{p.name}" for p in PODS)]
        assert agent.resolvers[1].kind == ResolverKind.COREDNS and agent.resolvers[1].detail == PODS[0].node
        # 2 pods x 3 names = POD_QUERIES: the full cadence
        assert agent.pod_interval == pytest.approx(0.2)

        def rows(pod: str) -> list[DnsResult]:
            return [r for _, r in agent.results_since(0) if isinstance(r, DnsResult) and r.resolver == f"coredns/{pod}"]

        await until(lambda: len(rows(PODS[0].name)) >= 3 and len(rows(PODS[1].name)) >= 3, what="both pods probed")
        assert all(r.success for r in rows(PODS[0].name)) and not any(r.success for r in rows(PODS[1].name))
        assert {r.address for r in rows(PODS[1].name)} == {PODS[1].ip}  # shown as the pod's address
        # more pods than the budget: every job's interval stretches so the total stays put
        many = [CorednsPod(f"coredns-x-{i}", f"10.244.{i}.5") for i in range(6)]
        # (each mapped to the loopback responder: the test never dials a pod address)
        over = {**agent.settings.dns_overrides, **{f"coredns/{p.name}": ok.address for p in many}}
        agent.settings = dataclasses.replace(agent.settings, dns_overrides=over)
        assert agent.set_coredns(many)
        pairs = len(many) * len(NAMES)
        assert agent.pod_interval == pytest.approx(0.2 * pairs / core.POD_QUERIES)
        assert pairs / agent.pod_interval <= core.POD_QUERIES / 0.2 + 1e-9
        # an empty list stops them; results already held keep their resolver on the wire
        assert agent.set_coredns(())
        assert [r.key for r in agent.resolvers] == ["kube-dns"]
    finally:
        assert await agent.stop(1.0)
    doc = decode(_encode(agent), f"node/{NODE}")
    kinds = {r.key: r.kind for r in doc.resolvers}
    assert kinds[f"coredns/{PODS[1].name}"] == ResolverKind.COREDNS


def _encode(agent: Agent) -> bytes:
    return encode(agent, 0)


async def test_confined_agent_skips_pods_it_cannot_reach(responder):
    ok = responder()
    agent = agent_for({KUBE_DNS: ok.address, f"coredns/{PODS[0].name}": ok.address})
    assert agent.set_coredns(PODS)
    assert [r.key for r in agent.pods] == [f"coredns/{PODS[0].name}"]  # the lab never dials a real address


async def test_the_read_hands_over_the_pods_and_bad_lists_get_400(responder):
    ok = responder()
    agent = agent_for({KUBE_DNS: ok.address, **{f"coredns/{p.name}": ok.address for p in PODS}})
    await agent.start()
    server = await AgentServer(agent, "127.0.0.1", 0).start()
    try:
        status, _, body = await request(server.port, get(f"/v1/results?since=0&coredns={format_hint(PODS)}"))
        assert status == 200
        # the answer already lists them (the reader plans their rows from it)
        assert [r.key for r in decode(body, f"node/{NODE}").resolvers][1:] == [f"coredns/{p.name}" for p in PODS]
        # no parameter: unchanged (an older reader)
        status, _, _ = await request(server.port, get("/v1/results?since=0"))
        assert status == 200 and len(agent.pods) == 2
        for bad in ("a@nope@n", "a@127.0.0.1@n", "x", f"{format_hint(PODS)}&coredns="):
            status, _, body = await request(server.port, get(f"/v1/results?coredns={bad}"))
            assert status == 400 and b"coredns" in body, bad
        assert len(agent.pods) == 2  # a refused list changes nothing
        await until(lambda: agent.dns_counts.get((f"coredns/{PODS[1].name}", NAMES[0], "ok"), 0) >= 2, what="pods")
        status, _, _ = await request(server.port, get("/v1/results?since=0&coredns="))
        assert status == 200 and agent.pods == ()
    finally:
        await server.stop()
        assert await agent.stop(1.0)


async def test_a_list_not_given_again_expires(responder, monkeypatch):
    ok = responder()
    monkeypatch.setattr(core, "HINT_TTL", 0.3)
    agent = agent_for({KUBE_DNS: ok.address, **{f"coredns/{p.name}": ok.address for p in PODS}})
    await agent.start()
    try:
        agent.set_coredns(PODS)
        await until(lambda: agent.pods == (), timeout=3.0, what="the list to expire")
    finally:
        assert await agent.stop(1.0)
