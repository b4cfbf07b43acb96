"""A replan keeps the results of every agent the reader knows, planned or not yet: one
read's results are replayed before its status says what the agent probes, and `check`
reads each agent once, so results dropped in between would never come again."""

from __future__ import annotations

from types import SimpleNamespace

from probes.dns.result import ProbeKey
from probes.dns.service import EMPTY_PLAN, DnsService
from probes.engine.scheduler import Scheduler
from probes.engine.store import Store


class _Agents:
    version = 0

    def __init__(self, nodes: list[str]) -> None:
        self.nodes = nodes

    def statuses(self) -> dict[str, object]:
        return {n: SimpleNamespace(resolvers=()) for n in self.nodes}


def _result() -> SimpleNamespace:
    return SimpleNamespace(success=True, latency_ms=1.0, lost=False, outcome="ok", timestamp=0.0)


def test_a_known_agents_results_survive_a_plan_that_does_not_show_it_yet():
    known, gone = "aks-nodepool1-1-vmss000000", "aks-nodepool1-1-vmss000001"
    svc = DnsService(Store(), agents=_Agents([known]))
    svc._scheduler = Scheduler(svc.history.add)  # not started: set_jobs only records the jobs
    mine = ProbeKey(f"node/{known}", "nodelocal", "kubernetes.default.svc.cluster.local")
    left = ProbeKey(f"node/{gone}", "nodelocal", "kubernetes.default.svc.cluster.local")
    for key in (mine, left):
        svc.history.add(key, _result())
    svc._commit(EMPTY_PLAN, [])  # a plan made before the read's status landed: no agent vantage in it
    assert set(svc.history.keys()) == {mine}  # the known agent's results stay, a departed one's go
