"""The viewer's app at 80×24 with TERM=xterm, attached over the socket to an owner whose
frames come from the readable-snapshot fixtures (f4: NodeLocal DNS down on one node;
frozen clocks): the status line counts two screens, "👥 2" with a UTF-8 locale and
"2 viewers" without one (NO_COLOR there too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from probes.engine.publisher import Publisher
from probes.share.host import Host
from probes.share.place import connect, place_for, try_own
from probes.share.viewer import ViewerPublisher
from tests.readable.fixtures import T0, dns_source, egress_source, settle, snat_source, store_for
from tests.share.engine import wait_for
from tui.dns_pane import DnsPane
from tui.egress_pane import EgressPane
from tui.findings_pane import FindingsPane
from tui.share_cli import build_viewer_app
from tui.snat_pane import SnatPane


@pytest.fixture
def host() -> Iterator[Host]:
    store = store_for("f4")
    pub = Publisher(
        store,
        dns=dns_source(store, "f4"),
        egress=egress_source(store, "f4"),
        snat=snat_source("f4"),
        clock=lambda: 100.0,
        wall_clock=lambda: T0 + 100,
    )
    owned = try_own(place_for("snapshot"))
    assert owned is not None
    h = Host(owned, banner="demo: f4", clock=lambda: T0 + 100)
    h.offer(pub.publish())
    yield h
    h.close()


def viewer_app(host: Host):  # type: ignore[no-untyped-def]
    sock = connect(host.owned.place)
    assert sock is not None
    viewer = ViewerPublisher(sock, interval=0.05)
    viewer.owner_pid = 4242  # the banner names the owner's pid: a fixed one for the picture
    return build_viewer_app(
        viewer,
        panes=[DnsPane(), SnatPane(clock=lambda: T0 + 5), EgressPane(), FindingsPane()],
        clock=lambda: 100.0,
        wall_clock=lambda: T0 + 100,
    )


def keys(*pressed: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        for k in pressed:
            await pilot.press(k)
            await pilot.pause(0.05)
        await settle(pilot, 0.3)

    return run_before


def test_attached_xterm_80x24_topology(snap_compare, host, monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_CTYPE", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = viewer_app(host)
    wait_for(lambda: host.viewers == 1, 5, "the viewer attached")
    assert snap_compare(app, terminal_size=(80, 24), run_before=keys())


def test_attached_xterm_80x24_findings_no_color_ascii(snap_compare, host, monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("LANG", "C")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_CTYPE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    app = viewer_app(host)
    assert snap_compare(app, terminal_size=(80, 24), run_before=keys("5"))
