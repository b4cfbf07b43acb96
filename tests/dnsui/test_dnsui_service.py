"""DnsService against the lab: the real API server, kube source and loopback responders.

Bounded: every wait has a deadline, intervals are short, everything is stopped in finally,
and a guard fails the test if a thread is left behind.
"""

from __future__ import annotations

import time

import pytest

from probes.config import KubeConfig
from probes.dns.probe import DnsOutcome
from probes.dns.service import DnsService, DnsSettings, Vantage, wait_for
from probes.engine.history import History
from probes.engine.store import Store
from probes.kube.model import LOCAL_VANTAGE, node_vantage
from probes.kube.source import KubeSource
from probes.lab.dnsdemo import DnsDemo
from probes.lab.scenario import ScenarioError, load_scenario, parse_scenario
from probes.lab.serve import start_embedded
from tests.support.leaks import guard_threads


@pytest.fixture(autouse=True)
def no_leftover_threads():
    yield from guard_threads()


def run_demo(scenario: str, rounds: int = 3):  # type: ignore[no-untyped-def]
    """Start lab + kube source + responders + service; wait until every key has `rounds`
    results; return (plan, {key: stats}, scenario)."""
    lab, kubeconfig = start_embedded(scenario)
    store = Store()
    source = KubeSource(store, KubeConfig(kubeconfig=kubeconfig))
    demo = DnsDemo(lab.scenario)
    svc = DnsService(store, DnsSettings(interval=0.25, timeout=0.4, jitter=0.05), vantage_map=demo, poll=0.1)
    try:
        source.start()
        demo.start()
        svc.start()
        assert wait_for(
            lambda: (
                "nodes" in store.snapshot().synced
                and "pods" in str(store.snapshot().synced)
                or len(svc.plan().vantages) > 1
            ),
            15,
        )

        def complete() -> bool:
            plan = svc.plan()
            if len(plan.vantages) != 1 + len(store.snapshot().topology.nodes) or not plan.jobs:
                return False
            stats = [svc.history.stats(k) for k in svc.history.keys()]
            return len(stats) == plan.jobs and all(s is not None and s.attempts >= rounds for s in stats)

        assert wait_for(complete, 20), "not every probe reported in time"
        plan = svc.plan()
        return plan, {k: svc.history.stats(k) for k in svc.history.keys()}, lab.scenario, store.snapshot().topology
    finally:
        svc.stop(3.0)
        demo.stop()
        source.stop(3.0)
        lab.stop()


def test_healthy_every_probe_answers():
    plan, stats, _, topo = run_demo("healthy")
    assert [vp.vantage.name for vp in plan.vantages][0] == LOCAL_VANTAGE
    assert len(plan.vantages) == 1 + len(topo.nodes)
    node_plan = plan.vantages[1]
    assert [r.key for r in node_plan.resolvers][:2] == ["nodelocal", "kube-dns"]
    assert all(r.target is not None and r.target[0] == "127.0.0.1" for vp in plan.vantages for r in vp.resolvers)
    bad = {k: s.last_outcome for k, s in stats.items() if s.last_outcome != "ok" or s.loss_pct}
    assert not bad
    assert all(s.p95 is not None and s.p95 < 100 for s in stats.values())


def test_nodelocal_down_on_one_node():
    plan, stats, sc, topo = run_demo("dns-nodelocal-down", rounds=2)
    bad_node = sc.node_name("nodepool1", 1)
    assert topo.nodelocal[bad_node].ready is False  # the pod state the finding will cite
    v = node_vantage(bad_node)
    for k, s in stats.items():
        if k.vantage == v and k.resolver == "nodelocal":
            assert s.last_outcome == DnsOutcome.TIMEOUT.value and s.loss_pct == 100.0, k
        else:
            assert s.last_outcome == "ok" and s.loss_pct == 0, (k, s.last_outcome)
    assert any(k.vantage == v and k.resolver == "kube-dns" for k in stats)


def test_service_follows_topology_and_stops_quickly():
    """A node leaving the topology drops its vantage's jobs and history; stop() is bounded."""
    from tests.support.kubejson import fill_store, small_cluster

    store = Store()
    fill_store(store, small_cluster())

    class Map:
        version = 0

        def vantages(self, topo):  # type: ignore[no-untyped-def]
            return [Vantage(node_vantage(n.name), n.name, {}, confine=True) for n in topo.nodes]

    # the user's overrides apply to every vantage: all point at a closed loopback port
    svc = DnsService(
        store,
        DnsSettings(
            interval=0.2,
            timeout=0.2,
            names=("a.example",),
            overrides={
                "10.0.0.10": ("127.0.0.1", 9),
                "169.254.20.10": ("127.0.0.1", 9),
                "coredns/coredns-789789675-abcde": ("127.0.0.1", 9),
                "coredns/coredns-789789675-fghij": ("127.0.0.1", 9),
            },
        ),
        vantage_map=Map(),
        history=History(),
        poll=0.05,
    )
    svc.start()
    try:
        assert wait_for(lambda: len(svc.plan().vantages) == 6, 5)
        assert all(len(vp.resolvers) == 4 for vp in svc.plan().vantages)
        assert wait_for(lambda: len(svc.history.keys()) == 24, 5)
        first = svc.plan().version
        store.delete("nodes", "aks-userpool-12345678-vmss000001")
        assert wait_for(lambda: len(svc.plan().vantages) == 5 and svc.plan().version > first, 3)
        assert len(svc.history.keys()) <= 20
        assert not any(k.vantage.endswith("userpool-12345678-vmss000001") for k in svc.history.keys())
        outcomes = {svc.history.stats(k).last_outcome for k in svc.history.keys()}
        assert outcomes <= {"network-error", "timeout"}  # nothing listens on port 9
    finally:
        t = time.monotonic()
        svc.stop(2.0)
        assert time.monotonic() - t < 2.5


def test_dns_section_is_a_scenario_section():
    sc = load_scenario("dns-nodelocal-down")
    assert "dns" in sc.extra
    doc = {
        "cluster": {"name": "x", "resourceGroup": "rg"},
        "pools": [{"name": "p", "mode": "System", "count": 1}],
        "dns": {"kube-dns": {"behaviour": "explode"}},
    }
    with pytest.raises(ScenarioError, match=r"dns.kube-dns.behaviour: unknown behaviour 'explode'"):
        parse_scenario(doc, "bad.yaml")
    doc["dns"] = {"nodes": {"nopool/0": {"nodelocal": "drop"}}}
    sc = parse_scenario(doc, "bad.yaml")
    with pytest.raises(ScenarioError, match="no pool 'nopool'"):
        DnsDemo(sc)
