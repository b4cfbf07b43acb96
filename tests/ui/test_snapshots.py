"""SVG snapshots of the main screens at 80×24 (clocks frozen, cursor blink off)."""

from __future__ import annotations

from textual.widgets import Input

from probes.engine.store import Store
from probes.kube.model import SourceState, SourceStatus
from tests.ui.test_app import make_store
from tui.app import AksnetTopApp

SIZE = (80, 24)


def app_for(store: Store) -> AksnetTopApp:
    return AksnetTopApp(store, clock=lambda: 100.0, wall_clock=lambda: 1795172400.0)


async def _quiet(pilot) -> None:  # type: ignore[no-untyped-def]
    pilot.app.query_one(Input).cursor_blink = False
    await pilot.pause()


def test_snapshot_topology(snap_compare):
    assert snap_compare(app_for(make_store()), terminal_size=SIZE, run_before=_quiet)


def test_snapshot_filter(snap_compare):
    async def run_before(pilot):  # type: ignore[no-untyped-def]
        await _quiet(pilot)
        await pilot.press("slash", *"userpool")
        await pilot.pause()

    assert snap_compare(app_for(make_store()), terminal_size=SIZE, run_before=run_before)


def test_snapshot_node_detail(snap_compare):
    async def run_before(pilot):  # type: ignore[no-untyped-def]
        await _quiet(pilot)
        pilot.app.goto_node("aks-nodepool1-12345678-vmss000000")
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(app_for(make_store()), terminal_size=SIZE, run_before=run_before)


def test_snapshot_help(snap_compare):
    async def run_before(pilot):  # type: ignore[no-untyped-def]
        await _quiet(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app_for(make_store()), terminal_size=SIZE, run_before=run_before)


def test_snapshot_forbidden(snap_compare):
    store = Store(clock=lambda: 100.0)
    store.set_status(
        SourceStatus(
            "kubernetes/nodes",
            SourceState.FORBIDDEN,
            "forbidden: cannot list/watch nodes at the cluster scope",
            'nodes is forbidden: User "dev@contoso.com" cannot list resource "nodes" in API group "" at the cluster scope',
            retry_at=110.0,
        )
    )
    assert snap_compare(app_for(store), terminal_size=SIZE, run_before=_quiet)
