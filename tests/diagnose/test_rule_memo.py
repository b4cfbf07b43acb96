"""The node and SNAT rules keep, per topology / SNAT table, the rows that can raise a
finding (the publisher diagnoses every second with the same inputs). What they answer
must still follow the clock and every new topology or table."""

from __future__ import annotations

from datetime import datetime

from probes.azure.snat import NodeSnat, SnatTable
from probes.diagnose import Observations, Severity, diagnose
from tests.diagnose.test_rules import topology
from tests.support.kubejson import node, small_cluster

CREATED = datetime.fromisoformat("2026-11-20T10:00:00+00:00").timestamp()  # the fixtures' nodes


def marks(findings, rule: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.subject for f in findings if f.rule == rule}


def test_new_node_marks_follow_the_clock_on_the_same_topology():
    topo = topology()
    names = {f"node/{n.name}" for n in topo.nodes}
    assert marks(diagnose(Observations(topo, {}, CREATED + 60)), "node-in-transition") == names
    assert marks(diagnose(Observations(topo, {}, CREATED + 700)), "node-in-transition") == set()
    # and back: the same topology object, an earlier moment
    assert marks(diagnose(Observations(topo, {}, CREATED + 599)), "node-in-transition") == names


def test_a_new_topology_is_read_again():
    calm = topology()
    assert marks(diagnose(Observations(calm, {}, CREATED + 3600)), "node-not-ready") == set()
    objs = small_cluster()
    bad = objs["nodes"][1]["metadata"]["name"]
    objs["nodes"][1] = node(name=bad, ready="False", ip="10.224.0.5", instance=1)
    sick = topology(objs)
    found = [f for f in diagnose(Observations(sick, {}, CREATED + 3600)) if f.rule == "node-not-ready"]
    assert [(f.subject, f.severity) for f in found] == [(f"node/{bad}", Severity.WARNING)]
    # the first topology again: nothing, although the memo last held the second one
    assert marks(diagnose(Observations(calm, {}, CREATED + 3600)), "node-not-ready") == set()


def row(name: str, used: float, failed: float = 0.0) -> NodeSnat:
    return NodeSnat("10.224.0.9", name, "userpool", 1024, used, used, failed, failed)


def test_snat_rows_under_pressure_per_table():
    topo = topology()
    n = topo.nodes[0].name
    calm = SnatTable(nodes=(row(n, 100.0),), unmatched=(), silent=())
    assert [f for f in diagnose(Observations(topo, {}, CREATED + 3600, snat=calm)) if f.fault == "F10"] == []
    hot = SnatTable(nodes=(row(n, 900.0),), unmatched=(), silent=())
    found = [f for f in diagnose(Observations(topo, {}, CREATED + 3600, snat=hot)) if f.fault in ("F10", "F18")]
    assert [(f.rule, f.subject) for f in found] == [("snat-pressure", f"node/{n}")]  # 88 %: F18
    failing = SnatTable(nodes=(row(n, 300.0, failed=12.0),), unmatched=(), silent=())
    found = [f for f in diagnose(Observations(topo, {}, CREATED + 3600, snat=failing)) if f.fault == "F10"]
    assert [(f.rule, f.severity) for f in found] == [("snat-exhausted", Severity.CRITICAL)]
    assert [f for f in diagnose(Observations(topo, {}, CREATED + 3600, snat=calm)) if f.fault == "F10"] == []
