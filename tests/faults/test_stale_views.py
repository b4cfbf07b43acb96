"""Stale data says so on itself: the status line, the header counts, the tree's root, and
the findings' evidence built from it."""

from __future__ import annotations

from probes.diagnose.model import Finding, Severity
from probes.engine.publisher import Publisher
from probes.engine.store import Store, worst_status
from probes.kube.model import SourceState, SourceStatus
from tests.support.kubejson import fill_store, small_cluster
from tui import format as fmt


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def stale_store(clock: Clock) -> Store:
    store = Store(clock=clock)
    fill_store(store, small_cluster())
    store.set_status(SourceStatus("kubernetes/pods", SourceState.LIVE, "watching pods"))
    store.set_status(
        SourceStatus(
            "kubernetes/nodes",
            SourceState.STALE,
            "no event or bookmark from the API server for 12 s",
            retry_at=clock.t + 3,
            stale_since=clock.t - 14,
        )
    )
    return store


def test_status_line_and_header_say_how_old_the_data_is():
    clock = Clock()
    snap = stale_store(clock).snapshot()
    assert snap.stale_since() == clock.t - 14
    worst = worst_status(snap.statuses)
    assert worst is not None and worst.source == "kubernetes/nodes"
    line = fmt.status_line(worst, "ctx @ https://x", clock.t).plain
    assert line.startswith("✖ stale 14s · no event or bookmark") and "· next try in 3s" in line
    note = fmt.stale_note(snap.stale_since(), clock.t)
    assert note == "stale 14s"
    assert fmt.summary(snap.topology, stale=note).plain.startswith("stale 14s")
    assert fmt.cluster_label(snap.topology, "ctx", note).plain.endswith("stale 14s")
    assert "stale" not in fmt.summary(snap.topology).plain  # current data: no note


def test_findings_from_stale_data_carry_its_age():
    clock = Clock()
    store = stale_store(clock)
    finding = Finding("nodelocal-down", "F4", Severity.CRITICAL, "node/a", "down", {"pods": 1})
    pub = Publisher(store, clock=clock, judge=lambda obs: [finding])
    frame = pub.step()
    assert frame.findings is not None
    assert dict(frame.findings[0].evidence) == {"pods": 1, "kube_data_age_s": 14}
    # current again: no age
    store.set_status(SourceStatus("kubernetes/nodes", SourceState.LIVE, "watching nodes"))
    clock.t += 10
    frame = pub.step()
    assert dict(frame.findings[0].evidence) == {"pods": 1}  # type: ignore[index]
