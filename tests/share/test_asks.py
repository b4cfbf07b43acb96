"""Keys that ask the engine to act work from a viewer too: the SNAT pane's `r` in a viewer
is asked of the owner's engine over the socket, which refreshes from Azure at most once
per gap whoever asks (owner or viewer), and every asking screen is told the same words."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from probes.engine.publisher import Publisher
from probes.share import wire
from probes.share.asks import GAP, SNAT_REFRESH, Asks
from probes.share.host import Host
from probes.share.place import connect, place_for, try_own
from probes.share.viewer import ViewerPublisher
from tests.readable.fixtures import T0, dns_source, settle, snat_source, store_for
from tests.share.engine import Owner, wait_for
from tui.share_cli import build_viewer_app
from tui.snat_pane import SnatPane


def _words(text: str) -> str:
    """The answer without its seconds (two screens asking a second apart)."""
    return re.sub(r"\d+ s\b", "N s", text)


@pytest.fixture
def owner() -> Iterator[Owner]:
    o = Owner("f1", place_for("test-asks")).start()
    try:
        wait_for(lambda: o.latest is not None and o.latest.snat is not None and o.latest.snat.table, 30, "SNAT")
        wait_for(lambda: o.latest.path is not None, 30, "the owner's Azure path")  # the first cycle is done
        yield o
    finally:
        o.stop()


def test_a_viewers_snat_refresh_is_the_owners_once_per_gap(owner: Owner) -> None:
    time.sleep(1.0)  # the engine's start-up reads are done
    assert owner.host is not None
    viewer = ViewerPublisher(connect(owner.host.owned.place))
    heard: list[str] = []
    try:
        viewer.publish()
        viewer.start(lambda _f: None)
        arm0 = len(owner.arm.requests)
        version0 = owner.latest.snat.version
        viewer.ask(SNAT_REFRESH, heard.append)
        wait_for(lambda: heard, 5, "the owner's answer")
        assert heard == ["SNAT: asking Azure Monitor now"]
        # the owner's SNAT source reads Azure Monitor now, not at its next minute
        wait_for(lambda: len(owner.arm.requests) > arm0, 10, "the refresh's ARM calls")
        wait_for(lambda: owner.latest.snat.version > version0, 10, "a new SNAT report")
        time.sleep(1.0)
        arm1 = len(owner.arm.requests)
        # within the gap, neither the owner's key nor the viewer's refreshes again; both hear why
        mine: list[str] = []
        owner.asks.ask(SNAT_REFRESH, mine.append)
        viewer.ask(SNAT_REFRESH, heard.append)
        wait_for(lambda: len(heard) == 2, 5, "the second answer")
        assert mine[0].startswith("SNAT: a refresh was asked ")
        assert _words(heard[1]) == _words(mine[0])
        assert f"one every {GAP:g} s" in heard[1]
        time.sleep(1.5)
        assert len(owner.arm.requests) == arm1, "a refresh inside the gap reached ARM"
        assert owner.asks.done == {SNAT_REFRESH: 1}
    finally:
        viewer.stop()


def test_asks_the_engine_does_not_know_are_answered_and_harmless(owner: Owner) -> None:
    assert owner.host is not None
    sock = connect(owner.host.owned.place)
    assert sock is not None
    try:
        r = wire.Reader(sock)
        sock.settimeout(5)
        for msg in (
            {"k": "ask", "what": "rm -rf", "id": 7},
            {"k": "ask", "what": SNAT_REFRESH},  # no id: nobody to answer
            {"k": "ask", "what": ["x"], "id": 8},
        ):
            wire.send(sock, msg)
        end = time.monotonic() + 5
        said = None
        while time.monotonic() < end:
            m = r.read()
            if m["k"] == "said":
                said = m
                break
        assert said is not None and said["id"] == 7 and "does not know 'rm -rf'" in said["text"]
        assert owner.asks.done == {}
        assert owner.host.viewers == 1  # still attached
    finally:
        sock.close()


class CountingSnat:
    def __init__(self) -> None:
        self.src = snat_source("f10")
        self.refreshes = 0

    def report(self) -> Any:
        return self.src.report()

    def refresh_now(self) -> None:
        self.refreshes += 1


async def test_the_viewers_r_key_refreshes_the_owners_snat_and_shows_its_answer() -> None:
    store = store_for("f10")
    snat = CountingSnat()
    pub = Publisher(store, dns=dns_source(store, "f10"), snat=snat, wall_clock=lambda: T0 + 100)
    owned = try_own(place_for("asks-key"))
    assert owned is not None
    host = Host(owned)
    asks = Asks(pub)
    host.asks_through(asks)
    host.offer(pub.publish())
    sock: socket.socket | None = None
    try:
        sock = connect(owned.place)
        assert sock is not None
        viewer = ViewerPublisher(sock, interval=0.05)
        app = build_viewer_app(viewer, panes=[SnatPane(clock=lambda: T0 + 5)])
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await pilot.press("2", "r")
            end = time.monotonic() + 5
            while time.monotonic() < end and not app._notifications:
                await pilot.pause(0.05)
            said = [n.message for n in app._notifications]
            assert said == ["SNAT: asking Azure Monitor now"]
            assert snat.refreshes == 1
            await pilot.press("r")
            end = time.monotonic() + 5
            while time.monotonic() < end and len(app._notifications) < 2:
                await pilot.pause(0.05)
            said = [n.message for n in app._notifications]
            assert len(said) == 2 and said[1].startswith("SNAT: a refresh was asked ")
            assert snat.refreshes == 1
    finally:
        if sock is not None:
            sock.close()
        host.close()


def test_the_gate_lets_one_refresh_through_per_gap_and_says_when_the_next_can_go() -> None:
    now = [1000.0]

    class Pub:
        snat = CountingSnat()

    asks = Asks(Pub(), gap=15.0, clock=lambda: now[0])
    assert asks.answer(SNAT_REFRESH) == "SNAT: asking Azure Monitor now"
    now[0] += 4.2
    assert asks.answer(SNAT_REFRESH) == "SNAT: a refresh was asked 4 s ago (one every 15 s); again in 11 s"
    now[0] += 10.9  # 15.1 s after the first
    assert asks.answer(SNAT_REFRESH) == "SNAT: asking Azure Monitor now"
    assert Pub.snat.refreshes == 2 and asks.done == {SNAT_REFRESH: 2}
    assert "no Azure source" in Asks(object()).answer(SNAT_REFRESH)  # a replay: nothing to ask
    assert "does not know" in asks.answer("agents.restart")
