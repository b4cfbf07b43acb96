"""An attached viewer matches its owner: after many frames of changing SNAT minutes and
probe results (the SNAT rows travel as patches carrying only the new minutes), the
viewer's SNAT table and DNS/egress rows are the owner's; the header's stale note, the
worst source's line and the summary read the same on both screens."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from probes.engine.publisher import Publisher
from probes.engine.store import worst_status
from probes.kube.model import SourceState, SourceStatus
from probes.record.codec import S_KEEP, decode_stats, patch_snat, snat_row
from probes.share.host import Host
from probes.share.place import place_for, try_own
from probes.share.rows import live_row
from probes.share.viewer import ViewerPublisher
from tests.readable.fixtures import T0, dns_source, egress_source, store_for
from tests.share.engine import wait_for
from tests.snat import snat_pane_helpers as snh
from tui import format as fmt


class Minutes:
    """Azure Monitor's answer moving a minute at a time (the SNAT service's `report()`)."""

    def __init__(self) -> None:
        self.minute = 0
        self.rep = snh.live_report(8, hot=1, version=1, start=0)

    def next(self) -> None:
        self.minute += 1
        self.rep = snh.live_report(8, hot=1, version=self.minute + 1, start=self.minute)

    def report(self) -> Any:
        return self.rep


@pytest.fixture
def shared() -> Iterator[tuple[Host, Publisher, Any, Any, Minutes, ViewerPublisher, list[Any]]]:
    store = store_for("healthy")
    dns = dns_source(store, "healthy")
    egress = egress_source(store, "healthy")
    snat = Minutes()
    pub = Publisher(store, dns=dns, egress=egress, snat=snat, wall_clock=lambda: T0 + 100, findings=False)
    owned = try_own(place_for("matches"))
    assert owned is not None
    host = Host(owned)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    viewer = None
    try:
        host.offer(pub.publish())
        sock.connect(str(owned.place.socket))
        viewer = ViewerPublisher(sock, interval=0.02)
        viewer.publish()
        frames: list[Any] = []
        viewer.start(frames.append)
        yield host, pub, dns, egress, snat, viewer, frames
    finally:
        if viewer is not None:
            viewer.stop()
        sock.close()
        host.close()


def _snat_rows(frame: Any) -> list[tuple[Any, ...]]:
    return [
        (n.ip, n.node, n.pool, n.allocated, n.used, n.failed, list(n.times), [round(x, 3) for x in n.used_series])
        for n in frame.snat.table.nodes
    ]


def test_after_many_frames_the_viewers_snat_and_probe_rows_are_the_owners(shared):  # type: ignore[no-untyped-def]
    host, pub, dns, egress, snat, viewer, frames = shared
    first = pub.publish()
    assert first.snat is not None and first.snat.table is not None
    # the owner's rows do travel as patches: a minute later, a node's row shares 29 minutes
    n0 = first.snat.table.nodes[-1]  # a quiet node (the hot one ramps: all its minutes move)
    snat.next()
    n1 = next(n for n in pub.publish().snat.table.nodes if n.ip == n0.ip)
    assert patch_snat(snat_row(n0), snat_row(n1))[S_KEEP], "the scenario sends no SNAT patch"
    dkeys = list(first.dns.stats)
    ekeys = list(first.egress.stats)
    for i in range(12):  # N frames: a new minute, a DNS and an egress result each
        snat.next()
        dk, ek = dkeys[i % len(dkeys)], ekeys[i % len(ekeys)]
        r = dns.history.results(dk)[-1]
        dns.history.add(dk, dataclasses.replace(r, latency_ms=r.latency_ms + 1.0 + i, timestamp=r.timestamp + 5))
        e = egress.history.results(ek)[-1]
        egress.history.add(ek, dataclasses.replace(e, timestamp=e.timestamp + 5))
        host.offer(pub.publish())
        time.sleep(0.03)  # a frame at a time, as the owner's cadence sends them
    owner = pub.publish()
    host.offer(owner)

    def caught_up() -> bool:
        return bool(frames) and frames[-1].snat is not None and frames[-1].snat.version == owner.snat.version

    wait_for(caught_up, 5, "the viewer's SNAT at the owner's last minute")
    wait_for(
        lambda: all(frames[-1].dns.stats[k].count == owner.dns.stats[k].count for k in dkeys),
        5,
        "the viewer's DNS rows at the owner's",
    )
    seen = frames[-1]
    assert _snat_rows(seen) == _snat_rows(owner)
    assert len(seen.snat.table.nodes[0].times) == 30
    assert seen.snat.findings == owner.snat.findings
    for k in dkeys:
        assert seen.dns.stats[k] == decode_stats(live_row(owner.dns.stats[k])), k
    for k in ekeys:
        assert seen.egress.stats[k] == decode_stats(live_row(owner.egress.stats[k])), k


def _header(frame: Any, now: float) -> tuple[str, str]:
    snap = frame.kube
    stale = fmt.stale_note(snap.stale_since(), now)
    return (
        fmt.summary(snap.topology, 200, stale).plain,
        fmt.status_line(worst_status(snap.statuses), snap.target, now, 200).plain,
    )


def test_the_viewers_header_says_stale_as_the_owners_does(shared):  # type: ignore[no-untyped-def]
    host, pub, _dns, _egress, _snat, viewer, frames = shared
    store = pub.store
    now = time.monotonic()
    store.set_status(
        SourceStatus(
            "kubernetes/nodes",
            SourceState.STALE,
            "the watch went quiet: reconnecting",
            "",
            retry_at=now + 20,
            stale_since=now - 42,
        )
    )
    owner = pub.publish()
    host.offer(owner)
    wait_for(
        lambda: frames and any(s.state is SourceState.STALE for s in frames[-1].kube.statuses),
        5,
        "the stale status on the viewer",
    )
    seen = frames[-1]
    t = time.monotonic()
    assert seen.kube.stale_since() is not None
    assert abs(seen.kube.stale_since() - owner.kube.stale_since()) < 0.5
    assert _header(seen, t) == _header(owner, t)
    assert "stale 42s" in _header(seen, t)[0]
    assert "stale 42s" in _header(seen, t)[1]
    # the watch is back: the note goes on both
    store.set_status(SourceStatus("kubernetes/nodes", SourceState.LIVE, "watching"))
    owner = pub.publish()
    host.offer(owner)
    wait_for(lambda: frames[-1].kube.stale_since() is None, 5, "the stale note gone on the viewer")
    assert _header(frames[-1], t) == _header(owner, t)
