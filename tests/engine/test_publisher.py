"""The publisher builds frames incrementally: an unchanged source gives the previous
part itself, a history is read from the previous frame's version on, the rules run only
when an input moved (or when their time-based marks may have), and a failure becomes a
frame with an error instead of an exception."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from probes.dns.probe import DnsOutcome
from probes.engine import publisher as publisher_mod
from probes.engine.history import History
from probes.engine.publisher import Publisher
from probes.kube.topology import parse_node
from tests.dnsui.dnsui_helpers import FakeSource, fill, result, small_plan
from tests.support.kubejson import node
from tests.ui.test_app import make_store


class SpyHistory(History):
    def __init__(self) -> None:
        super().__init__()
        self.since: list[int] = []

    def snapshot(self, since: int = 0):  # type: ignore[no-untyped-def]
        self.since.append(since)
        return super().snapshot(since)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def counting_judge() -> tuple[list[int], Any]:
    calls: list[int] = []

    def judge(obs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return []

    return calls, judge


def setup(**kw: Any) -> tuple[Publisher, FakeSource, list[int], Clock]:
    plan = small_plan()
    src = FakeSource(plan, SpyHistory())
    fill(plan, src.history, rounds=3, bad=None)
    calls, judge = counting_judge()
    clock = Clock()
    pub = Publisher(make_store(), dns=src, judge=judge, clock=clock, wall_clock=lambda: 1795172400.0, **kw)
    return pub, src, calls, clock


def test_no_change_reuses_the_frame_and_does_not_judge_again():
    pub, src, calls, clock = setup()
    first = pub.step()
    assert first.findings == () and len(calls) == 1
    assert first.dns is not None and len(first.dns.stats) == len(first.dns.changed) > 0
    clock.t += 0.25
    second = pub.step()
    assert second is first  # nothing moved: the very same frame
    assert len(calls) == 1
    assert src.history.since[-1] == 0  # the first read is a full one; the second read nothing


def test_one_result_changes_one_key_and_nothing_else():
    pub, src, calls, clock = setup()
    first = pub.step()
    plan = src.plan()
    res = result(plan, "local", "kube-dns", plan.names[0], DnsOutcome.SERVFAIL, i=50)
    src.history.add(res.key, res)
    clock.t += 2.0
    second = pub.step()
    assert second is not first and second.seq == first.seq + 1
    assert second.kube is first.kube  # the store did not move: its snapshot is not rebuilt
    assert second.dns is not None and first.dns is not None
    assert second.dns.changed == {res.key}
    assert second.dns.since == first.dns.version and src.history.since[-1] == first.dns.version
    assert second.dns.plan is first.dns.plan
    same = [k for k in first.dns.stats if k != res.key]
    assert all(second.dns.stats[k] is first.dns.stats[k] for k in same)
    assert first.dns.stats[res.key].last_outcome == "ok"  # the earlier frame is immutable
    assert second.dns.stats[res.key].last_outcome == "servfail"
    assert len(calls) == 2  # an input moved: the rules ran again


def test_findings_throttled_and_refreshed_for_time_marks():
    pub, src, calls, clock = setup(findings_min=1.0, findings_every=5.0)
    pub.step()
    plan = src.plan()
    for i in range(3):  # results every 0.25 s: judged at most once a second
        res = result(plan, "local", "kube-dns", plan.names[0], i=60 + i)
        src.history.add(res.key, res)
        clock.t += 0.25
        pub.step()
    assert len(calls) == 1
    clock.t += 0.5
    pub.step()
    assert len(calls) == 2
    clock.t += 4.0
    pub.step()
    assert len(calls) == 2  # nothing moved, not yet 5 s
    clock.t += 1.1
    pub.step()
    assert len(calls) == 3  # "new node" marks age: judged again every 5 s


def test_store_change_rebuilds_kube_only():
    pub, src, calls, clock = setup()
    first = pub.step()
    n = parse_node(
        node(name="aks-userpool-12345678-vmss000009", ip="10.224.0.20", cidr="10.244.20.0/24", pool="userpool")
    )
    pub.store.upsert("nodes", n.name, n)
    second = pub.step()
    assert second.kube is not first.kube and second.kube.topology.node(n.name) is not None
    assert second.dns is first.dns  # the DNS view did not move


def test_routes_compared_only_when_data_or_topology_moved(monkeypatch: pytest.MonkeyPatch):
    compares: list[int] = []
    real = publisher_mod.compare

    def spy(data, nodes):  # type: ignore[no-untyped-def]
        compares.append(1)
        return real(data, nodes)

    monkeypatch.setattr(publisher_mod, "compare", spy)
    from probes.azure.routes import RouteData

    data = [RouteData(routes=())]
    pub = Publisher(make_store(), routes=lambda: data[0], findings=False)
    f1 = pub.step()
    f2 = pub.step()
    assert len(compares) == 1 and f2.routes is f1.routes
    data[0] = RouteData(routes=())
    f3 = pub.step()
    assert len(compares) == 2 and f3.routes is not f1.routes


def test_followed_rows_carry_their_last_results():
    pub, src, calls, clock = setup()
    plan = src.plan()
    key = result(plan, "local", "kube-dns", plan.names[0]).key
    f1 = pub.step()
    assert f1.dns is not None and not f1.dns.details
    pub.follow("dns", key)
    f2 = pub.step()
    assert f2.dns is not None and len(f2.dns.details[key]) == 3
    pub.unfollow("dns", key)
    f3 = pub.step()
    assert f3.dns is not None and not f3.dns.details


def test_forgotten_keys_restart_the_view():
    pub, src, calls, clock = setup()
    f1 = pub.step()
    assert f1.dns is not None
    keep = list(f1.dns.stats)[:2]
    src.history.retain(keep)
    f2 = pub.step()
    assert f2.dns is not None and set(f2.dns.stats) == set(keep)


def test_a_failing_source_becomes_an_error_frame():
    pub, src, calls, clock = setup()
    good = pub.step()

    def boom():  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    src.plan = boom  # type: ignore[method-assign]
    bad = pub.publish()
    assert "RuntimeError: boom" in bad.error and bad.kube is good.kube and bad.dns is good.dns
    del src.plan  # the class's plan() again
    again = pub.publish()
    assert again.error == ""


def test_the_cadence_runs_off_the_calling_thread():
    pub, src, calls, clock = setup(interval=0.02)
    got: list[Any] = []
    threads: set[str] = set()
    done = threading.Event()

    def on_frame(f):  # type: ignore[no-untyped-def]
        got.append(f)
        threads.add(threading.current_thread().name)
        if len(got) >= 5:
            done.set()

    pub.start(on_frame)
    try:
        assert done.wait(5.0)
    finally:
        pub.stop()
    assert threads == {"snapshot-publisher"} and len(pub.costs) >= 5


class SnatFeed:
    """A SNAT source whose report is replaced by hand (a refresh)."""

    def __init__(self) -> None:
        self.rep: Any = type("Report", (), {"table": None, "version": 0})()

    def report(self) -> Any:
        return self.rep

    def refresh(self) -> None:
        self.rep = type("Report", (), {"table": object(), "version": self.rep.version + 1})()


def test_allocator_trimmed_once_per_snat_refresh(monkeypatch):
    trims: list[int] = []
    monkeypatch.setattr(publisher_mod.allocator, "trim", lambda: trims.append(1) or True)
    snat = SnatFeed()
    pub = Publisher(make_store(), snat=snat, findings=False)
    pub.step()
    assert trims == []  # no table yet
    snat.refresh()
    pub.step()
    pub.step()
    assert trims == [1]  # the new table, once
    snat.refresh()
    pub.step()
    assert trims == [1, 1]


def test_allocator_calls_are_safe_here():
    import platform

    from probes.engine import allocator

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert allocator.limit_arenas(2) is True
        junk = [bytes(600) for _ in range(20_000)]  # freed blocks for the trim to find
        del junk
        assert isinstance(allocator.trim(), bool)
    else:
        assert allocator.limit_arenas(2) is False and allocator.trim() is False


def test_costly_rules_are_spaced_to_their_share_of_a_core():
    """A run of the rules that costs 10 ms of CPU is followed by the next one no sooner
    than 10 ms / JUDGE_SHARE later (4 s), however often the inputs move; never later than
    findings_every."""
    from probes.engine import publisher as pubmod

    calls: list[float] = []
    clock = Clock()

    def costly(obs):  # type: ignore[no-untyped-def]
        calls.append(clock.t)
        end = time.thread_time() + 0.01
        while time.thread_time() < end:  # bounded: 10 ms of this thread's CPU
            pass
        return []

    plan = small_plan()
    src = FakeSource(plan, SpyHistory())
    fill(plan, src.history, rounds=3, bad=None)
    pub = Publisher(make_store(), dns=src, judge=costly, clock=clock, wall_clock=lambda: 1795172400.0)
    pub.step()
    for i in range(40):  # an input moves every 0.25 s for 10 s
        res = result(plan, "local", "kube-dns", plan.names[0], i=100 + i)
        src.history.add(res.key, res)
        clock.t += 0.25
        pub.step()
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    floor = 0.01 / pubmod.JUDGE_SHARE
    assert gaps and all(floor <= g <= pub.findings_every + 0.25 for g in gaps), gaps
    assert len(calls) <= 1 + 10 / floor
