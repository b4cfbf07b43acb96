"""Shared helpers for the DNS pane tests: a plan over the small test cluster and results
injected straight into a History (no network, fixed timestamps)."""

from __future__ import annotations

from probes.dns.probe import DnsOutcome, DnsResult
from probes.dns.service import DnsPlan, DnsSettings, Vantage, build_plan
from probes.engine.history import History
from probes.kube.model import node_vantage
from tests.ui.test_app import make_store

T0 = 1795172400.0
BAD_NODE = "aks-nodepool1-12345678-vmss000001"


class FakeSource:
    """What DnsPane reads from a DnsService: plan(), history, error."""

    def __init__(self, plan: DnsPlan, history: History | None = None) -> None:
        self._plan = plan
        self.history = history or History()
        self.error = ""

    def plan(self) -> DnsPlan:
        return self._plan

    def set_plan(self, plan: DnsPlan) -> None:
        self._plan = plan


def small_plan(nodes: int = 2, version: int = 1) -> DnsPlan:
    store = make_store()
    topo = store.snapshot().topology
    vs = [Vantage(node_vantage(n.name), n.name) for n in topo.nodes[:nodes]]
    return build_plan(topo, DnsSettings(), vs, version)


def result(
    plan: DnsPlan,
    vantage: str,
    resolver: str,
    name: str,
    outcome: DnsOutcome = DnsOutcome.OK,
    latency: float = 0.8,
    i: int = 0,
    raw: str = "",
) -> DnsResult:
    r = next(r for vp in plan.vantages if vp.vantage.name == vantage for r in vp.resolvers if r.key == resolver)
    ok = outcome in (DnsOutcome.OK, DnsOutcome.NXDOMAIN, DnsOutcome.TRUNCATED_TCP_OK)
    return DnsResult(
        vantage,
        r.key,
        r.address,
        f"{r.address}:53",
        name,
        "A",
        outcome,
        latency if ok else 2000.0,
        answers=1 if ok else 0,
        rcode="NOERROR" if ok else "",
        error="" if ok else "no answer before the deadline",
        raw=raw or (f"id 1\nopcode QUERY\nrcode NOERROR\n;ANSWER\n{name}. 30 IN A 10.0.0.1" if ok else ""),
        timestamp=T0 + i,
    )


def fill(plan: DnsPlan, history: History, rounds: int = 8, bad: str | None = BAD_NODE) -> None:
    """`rounds` results per key; NodeLocal on `bad` times out from round 3 on."""
    for i in range(rounds):
        for vp in plan.vantages:
            for r in vp.resolvers:
                for n in plan.names:
                    failing = (
                        bad is not None and vp.vantage.name == node_vantage(bad) and r.key == "nodelocal" and i >= 3
                    )
                    lat = 0.3 + 0.1 * ((i * 7 + len(r.key) + len(n)) % 5) + (8.0 if "mcr" in n else 0.0)
                    res = result(
                        plan, vp.vantage.name, r.key, n, DnsOutcome.TIMEOUT if failing else DnsOutcome.OK, lat, i
                    )
                    history.add(res.key, res)
