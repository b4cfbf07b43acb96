"""Shared helpers for the egress pane tests: a plan over the small test cluster and
results injected straight into a History (no network, fixed timestamps)."""

from __future__ import annotations

from probes.egress.probe import EgressMode, EgressOutcome, EgressResult
from probes.egress.service import EgressPlan, EgressSettings, EgressVantage, build_plan
from probes.engine.history import History
from probes.kube.model import node_vantage
from tests.ui.test_app import make_store

T0 = 1795172400.0
BAD_NODE = "aks-nodepool1-12345678-vmss000001"
SERVER = "https://aks-lab-4b6c1f2e.hcp.westeurope.azmk8s.io:443"
FALLBACK = "raw sockets not permitted (SYN mode needs root or CAP_NET_RAW); using connect"


class FakeSource:
    """What EgressPane reads from an EgressService: plan(), history, error."""

    def __init__(self, plan: EgressPlan, history: History | None = None) -> None:
        self._plan = plan
        self.history = history or History()
        self.error = ""

    def plan(self) -> EgressPlan:
        return self._plan

    def set_plan(self, plan: EgressPlan) -> None:
        self._plan = plan


def small_plan(nodes: int = 2, version: int = 1, extra: tuple[str, ...] = ()) -> EgressPlan:
    topo = make_store().snapshot().topology
    vs = [EgressVantage(node_vantage(n.name), n.name) for n in topo.nodes[:nodes]]
    return build_plan(EgressSettings(targets=extra), vs, SERVER, version)


def result(
    vantage: str,
    target: str,
    outcome: EgressOutcome = EgressOutcome.OPEN,
    latency: float = 1.2,
    i: int = 0,
    mode: EgressMode = EgressMode.SYN,
    fallback: str = "",
    error: str = "",
    raw: str = "",
) -> EgressResult:
    ok = outcome is EgressOutcome.OPEN
    host, _, port = target.rpartition(":")
    return EgressResult(
        vantage,
        target,
        "" if outcome.dns else "203.0.113.10",
        int(port),
        mode,
        outcome,
        latency if ok else 2000.0,
        error
        or ("" if ok else "no answer to SYN within 2s (dropped: NSG/firewall, SNAT exhaustion or a silent blackhole)"),
        T0 + 10 * i,
        fallback,
        "",
        raw or ("TCP 203.0.113.10:443 > 10.224.0.5:40001 SA" if ok and mode is EgressMode.SYN else ""),
    )


def fill(
    plan: EgressPlan,
    history: History,
    rounds: int = 8,
    bad: str | None = BAD_NODE,
    mode: EgressMode = EgressMode.SYN,
    fallback: str = "",
) -> None:
    """`rounds` results per key; every target from `bad` times out from round 3 on, and
    the API server stays open (it is reached inside the VNet)."""
    for i in range(rounds):
        for vp in plan.vantages:
            for t in vp.targets:
                failing = (
                    bad is not None and vp.vantage.name == node_vantage(bad) and i >= 3 and t.source != "apiserver"
                )
                lat = 1.0 + 0.3 * ((i * 7 + len(t.text)) % 5) + (8.0 if "azure" in t.host else 0.0)
                res = result(
                    vp.vantage.name,
                    t.text,
                    EgressOutcome.TIMEOUT if failing else EgressOutcome.OPEN,
                    lat,
                    i,
                    mode=mode,
                    fallback=fallback,
                )
                history.add(res.key, res)
