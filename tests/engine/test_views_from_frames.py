"""Views render frames and never call a source: the panes and the detail screens are fed
frames built beforehand, while every source object raises on any use. And the app goes
on, with the error in its status line, when the publisher fails."""

from __future__ import annotations

import threading
from typing import Any

from probes.dns.probe import DnsOutcome
from probes.egress.result import EgressOutcome
from probes.engine.frame import Frame
from probes.engine.publisher import Publisher
from probes.kube.model import node_vantage
from tests.dnsui import dnsui_helpers as dnsh
from tests.egressui import egressui_helpers as egh
from tests.snat.snat_pane_helpers import FakeSource as SnatSource
from tests.snat.snat_pane_helpers import live_report
from tests.ui.test_app import make_store, nodes_shown
from tui.app import AksnetTopApp
from tui.dns_detail import DnsDetailScreen
from tui.dns_pane import DnsPane, DnsTable
from tui.egress_pane import EgressPane
from tui.findings_pane import FindingsPane
from tui.snat_pane import SnatPane


class Untouchable:
    """A source that fails the test on any use (but the SNAT refresh the user asks for)."""

    def __init__(self, name: str, touched: list[str]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_touched", touched)

    def __getattr__(self, attr: str) -> Any:
        self._touched.append(f"{self._name}.{attr}")
        if attr == "refresh_now":
            return lambda: None
        raise AssertionError(f"a view used the {self._name} source ({attr})")


class Player:
    """Stands where the app's publisher stands: hands over frames built beforehand."""

    def __init__(self, frames: list[Frame], sources: dict[str, Any]) -> None:
        self.frames = frames
        self.snat = sources["snat"]
        self.on_frame: Any = None
        self.followed: list[tuple[str, Any]] = []

    def publish(self) -> Frame:
        return self.frames[0]

    def start(self, on_frame: Any) -> None:
        self.on_frame = on_frame

    def stop(self, timeout: float = 2.0) -> None:
        pass

    def follow(self, kind: str, key: Any) -> None:
        self.followed.append((kind, key))

    def unfollow(self, kind: str, key: Any) -> None:
        pass

    def play(self, frame: Frame) -> None:
        t = threading.Thread(target=self.on_frame, args=(frame,))  # as the publisher's thread would
        t.start()
        t.join()


def frames() -> tuple[list[Frame], Any, Any]:
    dplan = dnsh.small_plan()
    dns = dnsh.FakeSource(dplan)
    dnsh.fill(dplan, dns.history)
    eplan = egh.small_plan()
    egress = egh.FakeSource(eplan)
    store = make_store()
    pub = Publisher(store, dns=dns, egress=egress, snat=SnatSource(live_report(5, hot=1)), wall_clock=lambda: dnsh.T0)
    first = pub.step()
    res = dnsh.result(dplan, node_vantage(dnsh.BAD_NODE), "kube-dns", dplan.names[0], DnsOutcome.SERVFAIL, i=50)
    dns.history.add(res.key, res)
    r2 = egh.result("local", egress.plan().vantages[0].targets[0].text, EgressOutcome.TIMEOUT, i=1)
    egress.history.add(r2.key, r2)
    pub.follow("dns", res.key)
    second = pub.step()
    return [first, second], res.key, store


async def test_panes_render_frames_without_touching_a_source():
    built, key, store = frames()
    touched: list[str] = []
    sources = {n: Untouchable(n, touched) for n in ("dns", "egress", "snat", "agents")}
    player = Player(built, sources)
    panes = [DnsPane(), SnatPane(clock=lambda: dnsh.T0), EgressPane(), FindingsPane()]
    app = AksnetTopApp(store, panes=panes, publisher=player, clock=lambda: 100.0)  # type: ignore[arg-type]
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert len(nodes_shown(app)) == 5
        await pilot.press("2")
        await pilot.pause(0.2)
        dns_pane = panes[0]
        assert any("nodelocal" in r and "timeout" in r for r in dns_pane.plain_rows())
        player.play(built[1])
        await pilot.pause(0.2)
        assert app.frame is built[1]
        rows = dns_pane.plain_rows()
        assert any("kube-dns" in r and "servfail" in r for r in rows)
        for tab in ("3", "4", "5"):
            await pilot.press(tab)
            await pilot.pause(0.1)
        assert panes[1].plain_rows()[0].startswith("✖ nodepool1/1")
        assert panes[2].plain_rows() and any("timeout" in r for r in panes[2].plain_rows())
        assert panes[3].findings is not None
        await pilot.press("2")
        await pilot.pause(0.1)
        table = dns_pane.query_one(DnsTable)
        table.move_cursor(row=table.get_row_index("r|" + "|".join(key)))
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, DnsDetailScreen)
        assert ("dns", key) in player.followed
        assert "last outcome: servfail" in app.screen.plain
        await pilot.press("escape")
        await pilot.press("3", "r")  # the SNAT pane's refresh asks the app, which asks the service
        await pilot.pause(0.1)
    assert touched == ["snat.refresh_now"]


class Broken(dnsh.FakeSource):
    def plan(self):  # type: ignore[no-untyped-def]
        if self.broken:
            raise RuntimeError("the plan is gone")
        return super().plan()


async def test_app_shows_a_publisher_failure_and_goes_on():
    src = Broken(dnsh.small_plan())
    src.broken = True
    pane = DnsPane()
    app = AksnetTopApp(make_store(), panes=[pane], dns=src, refresh_interval=0.05, clock=lambda: 100.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        status = str(app.query_one("#status").render())
        assert "snapshot publisher failed: RuntimeError: the plan is gone" in status
        assert len(nodes_shown(app)) == 5  # the kube part of the failed frame still shows
        await pilot.press("2")
        await pilot.pause(0.1)
        src.broken = False
        await pilot.pause(0.3)
        assert "publisher failed" not in str(app.query_one("#status").render())
        assert pane.plain_rows()  # the pane caught up


async def test_tab_switch_rebuilds_nothing():
    """Showing a tab renders the latest frame: the tree's line list and labels are kept."""
    from tui.topology_pane import TopologyTree

    pane = DnsPane()
    app = AksnetTopApp(make_store(), panes=[pane], dns=dnsh.FakeSource(dnsh.small_plan()), clock=lambda: 100.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        tree = app.query_one(TopologyTree)
        assert len(nodes_shown(app)) == 5  # small pools open by themselves
        calls = {"build": 0, "show": 0}
        build, show = tree._build, tree.show

        def counted_build() -> None:
            calls["build"] += 1
            build()

        def counted_show(*a: Any) -> None:
            calls["show"] += 1
            show(*a)

        tree._build = counted_build  # type: ignore[method-assign]
        tree.show = counted_show  # type: ignore[method-assign]
        for tab in ("2", "1", "2", "1"):
            await pilot.press(tab)
            await pilot.pause(0.1)
        assert calls == {"build": 0, "show": 0}
        assert app.focused is tree
