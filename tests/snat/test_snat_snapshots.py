"""SVG snapshots of the SNAT pane at 80×24 with injected samples (frozen clocks, no network)."""

from __future__ import annotations

from textual.widgets import Input

from probes.azure.service import AzureState, SnatReport
from tests.snat.snat_pane_helpers import T0, FakeSource, live_report
from tests.ui.test_app import make_store
from tui.app import AksnetTopApp
from tui.snat_pane import SnatPane

SIZE = (80, 24)


def app_for(rep: SnatReport) -> AksnetTopApp:
    return AksnetTopApp(
        make_store(),
        panes=[SnatPane(clock=lambda: T0 + 5)],
        snat=FakeSource(rep),
        clock=lambda: 100.0,
        wall_clock=lambda: T0,
    )


async def _tab(pilot) -> None:  # type: ignore[no-untyped-def]
    pilot.app.query_one(Input).cursor_blink = False
    await pilot.press("2")
    await pilot.pause(0.3)


def test_snapshot_snat_exhaustion(snap_compare):
    assert snap_compare(app_for(live_report(5, hot=1)), terminal_size=SIZE, run_before=_tab)


def test_snapshot_snat_no_credential(snap_compare):
    rep = SnatReport(
        version=1,
        state=AzureState.NO_CREDENTIAL,
        message="DefaultAzureCredential found none (Azure CLI, managed identity, environment)",
        detail="run `az login` (and `az account set -s <subscription>`), or use a managed identity",
    )
    assert snap_compare(app_for(rep), terminal_size=SIZE, run_before=_tab)
