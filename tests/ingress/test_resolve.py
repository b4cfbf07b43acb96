"""The host resolver against a loopback DNS responder: what each host's A record is, from
the vantages of the DNS plan that reach a cluster resolver; `settled` once every host
was asked; a silent resolver is a timeout, not a missing record."""

from __future__ import annotations

import time

from probes.dns.resolvers import Resolver, ResolverKind
from probes.dns.service import DnsPlan, Vantage, VantagePlan
from probes.ingress.kinds import INGRESS_KINDS
from probes.ingress.resolve import HostResolver, ask, hosts_of, pick_resolvers
from probes.kube.model import SourceState, SourceStatus
from probes.lab.dnsdemo import spec_of
from probes.lab.dnsserver import DnsResponder, responder_for
from probes.lab.dnsspec import Behaviour, DnsFaultMode
from probes.lab.scenario import load_scenario
from tests.ingress.helpers import store_of


class Dns:
    def __init__(self, plan: DnsPlan) -> None:
        self._plan = plan

    def plan(self) -> DnsPlan:
        return self._plan


def plan_to(dest: tuple[str, int], agent_too: bool = True) -> DnsPlan:
    kube_dns = Resolver("kube-dns", ResolverKind.KUBE_DNS, "10.0.0.10", target=dest)
    vps = [VantagePlan(Vantage("local"), (kube_dns,))]
    if agent_too:  # a node probed by its agent: not asked from here
        vps.append(VantagePlan(Vantage("node/n1", "n1", agent=True), (kube_dns,)))
    return DnsPlan(1, tuple(vps), ())


def test_answers_from_the_lab_records():
    store, _ = store_of("f22")
    for k in INGRESS_KINDS:  # listed, as the source says it
        store.set_status(SourceStatus(f"ingress/{k.name}", SourceState.LIVE))
    responder = responder_for(spec_of(load_scenario("f22")), "kube-dns").start()
    res = HostResolver(store, Dns(plan_to(responder.address)), interval=60, timeout=1.0)
    try:
        res.start()
        deadline = time.monotonic() + 15
        while not res.settled() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert res.settled()
        got = {h: (a.outcome, a.addresses) for (v, h), a in res.answers().items()}
        assert got == {
            "api.contoso.com": ("ok", ("20.31.150.10",)),
            "www.contoso.com": ("ok", ("20.31.99.7",)),
            "shop.contoso.com": ("nxdomain", ()),
        }
        assert {v for v, _ in res.answers()} == {"local"}  # the agent's node is not asked from here
    finally:
        res.stop()
        responder.stop()


def test_a_silent_resolver_is_a_timeout():
    silent = DnsResponder(Behaviour(mode=DnsFaultMode.DROP)).start()
    try:
        assert ask("shop.contoso.com", silent.address, 0.3)[0] == "timeout"
    finally:
        silent.stop()


def test_no_reachable_resolver_no_question():
    unreachable = Resolver("kube-dns", ResolverKind.KUBE_DNS, "10.0.0.10", unreachable="no route from this host")
    plan = DnsPlan(1, (VantagePlan(Vantage("local"), (unreachable,)),), ())
    assert pick_resolvers(plan) == []
    store, _ = store_of("f22")
    assert set(hosts_of(store.snapshot().ingress)) == {"api.contoso.com", "www.contoso.com", "shop.contoso.com"}
