"""SVG snapshots of the egress pane at 80×24 with injected results (frozen clocks, no
cursor blink, no network)."""

from __future__ import annotations

from textual.widgets import Input

from probes.egress.probe import EgressMode
from tests.egressui.egressui_helpers import BAD_NODE, FALLBACK, FakeSource, fill, small_plan
from tests.ui.test_app import make_store
from tui.app import AksnetTopApp
from tui.egress_pane import EgressPane

SIZE = (80, 24)


def app_for(bad: bool, fallback: bool = False) -> AksnetTopApp:
    plan = small_plan(nodes=3)
    src = FakeSource(plan)
    fill(
        plan,
        src.history,
        rounds=12,
        bad=BAD_NODE if bad else None,
        mode=EgressMode.CONNECT if fallback else EgressMode.SYN,
        fallback=FALLBACK if fallback else "",
    )
    return AksnetTopApp(
        make_store(), panes=[EgressPane()], egress=src, clock=lambda: 100.0, wall_clock=lambda: 1795172400.0
    )


async def _egress_tab(pilot) -> None:  # type: ignore[no-untyped-def]
    pilot.app.query_one(Input).cursor_blink = False
    await pilot.press("2")
    await pilot.pause(0.3)


def test_snapshot_egress_healthy_connect_fallback(snap_compare):
    assert snap_compare(app_for(False, fallback=True), terminal_size=SIZE, run_before=_egress_tab)


def test_snapshot_egress_one_node_problems_only(snap_compare):
    async def run_before(pilot):  # type: ignore[no-untyped-def]
        await _egress_tab(pilot)
        await pilot.press("p")
        await pilot.pause(0.3)

    assert snap_compare(app_for(True), terminal_size=SIZE, run_before=run_before)
