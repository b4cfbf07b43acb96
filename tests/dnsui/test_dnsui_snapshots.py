"""SVG snapshots of the DNS pane at 80×24 with injected results (no clocks, no network)."""

from __future__ import annotations

from textual.widgets import Input

from tests.dnsui.dnsui_helpers import FakeSource, fill, small_plan
from tests.ui.test_app import make_store
from tui.app import AksnetTopApp
from tui.dns_pane import DnsPane

SIZE = (80, 24)


def app_for(bad: bool) -> AksnetTopApp:
    plan = small_plan(nodes=3)
    src = FakeSource(plan)
    fill(plan, src.history, rounds=12, bad="aks-nodepool1-12345678-vmss000001" if bad else None)
    return AksnetTopApp(make_store(), panes=[DnsPane()], dns=src, clock=lambda: 100.0, wall_clock=lambda: 1795172400.0)


async def _dns_tab(pilot) -> None:  # type: ignore[no-untyped-def]
    pilot.app.query_one(Input).cursor_blink = False
    await pilot.press("2")
    await pilot.pause(0.3)


def test_snapshot_dns_healthy(snap_compare):
    assert snap_compare(app_for(False), terminal_size=SIZE, run_before=_dns_tab)


def test_snapshot_dns_problems_only(snap_compare):
    async def run_before(pilot):  # type: ignore[no-untyped-def]
        await _dns_tab(pilot)
        await pilot.press("p")
        await pilot.pause(0.3)

    assert snap_compare(app_for(True), terminal_size=SIZE, run_before=run_before)
