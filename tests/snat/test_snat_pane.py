"""The SNAT pane with injected reports (Pilot): rows by pressure, top N + rest, diffing, states."""

from __future__ import annotations

from dataclasses import replace

from probes.azure.service import AzureState, SnatReport
from tests.snat.snat_pane_helpers import T0, TARGET, FakeSource, live_report
from tests.ui.table_calls import count_table_calls
from tests.ui.test_app import make_store
from tui.app import AksnetTopApp
from tui.snat_pane import SnatPane, SnatTableWidget


def app_with(src: FakeSource, top: int = 40) -> tuple[AksnetTopApp, SnatPane]:
    pane = SnatPane(clock=lambda: T0 + 5, top=top)
    return AksnetTopApp(make_store(), panes=[pane], snat=src, clock=lambda: 100.0, wall_clock=lambda: T0), pane


def text(pane: SnatPane, wid: str) -> str:
    return str(pane.query_one(wid).render())


async def test_rows_sorted_by_pressure_with_bar_and_failed():
    app, pane = app_with(FakeSource(live_report(5, hot=1)))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.3)
        rows = pane.plain_rows()
        assert rows[0].startswith("✖ nodepool1/1") and "| 100 | 1024 | 1024 |" in rows[0]
        assert all(r.startswith("●") for r in rows[1:])
        header = text(pane, "#snat-header")
        assert "1024 ports/node (5 nodes)" in header and "tier drop at +46 nodes" in header  # the drop with its unit
        assert "idle 30m" not in header  # at 80 columns the idle timeout gives way first
        assert "SNAT exhausted on aks-nodepool1-12345678-vmss000001" in text(pane, "#snat-findings")


async def test_header_at_120_columns_has_every_item():
    app, pane = app_with(FakeSource(live_report(5, hot=1)))
    async with app.run_test(size=(120, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.3)
        header = text(pane, "#snat-header")
        assert header.startswith("LB kubernetes · 1024 ports/node (5 nodes) · 1 IP · idle 30m · tier drop at +46 nodes")


async def test_thousand_nodes_top_and_rest():
    app, pane = app_with(FakeSource(live_report(1000, hot=500)))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.3)
        rows = pane.plain_rows()
        assert len(rows) == 41 and rows[-1].startswith("… 960 more")
        assert pane.query_one(SnatTableWidget).row_count == 41
        assert "over 1,000" not in text(pane, "#snat-header")


async def test_same_order_updates_cells_only():
    src = FakeSource(live_report(5, hot=None))
    app, pane = app_with(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.3)
        table = pane.query_one(SnatTableWidget)
        calls = count_table_calls(table)
        src.rep = replace(src.rep, version=2)  # same data, new version: nothing changes on screen
        await pilot.pause(0.4)
        assert calls == {"add": 0, "remove": 0, "clear": 0, "update": 0}
        await pilot.press("r")
        assert src.refreshes == 1


async def test_states_in_place():
    cases = [
        (
            SnatReport(
                version=1,
                state=AzureState.NO_CREDENTIAL,
                message="DefaultAzureCredential found none (Azure CLI, managed identity, environment)",
                detail="run `az login` (and `az account set -s <subscription>`)",
            ),
            ["no Azure credential", "az login"],
        ),
        (
            SnatReport(
                version=2,
                state=AzureState.FORBIDDEN,
                message="no permission (AuthorizationFailed) on the LB",
                detail="grant the Monitoring Reader role on the load balancer kubernetes",
                target=TARGET,
            ),
            ["no permission", "Monitoring Reader"],
        ),
        (
            SnatReport(
                version=3,
                state=AzureState.CLUSTER_LEVEL,
                target=replace(TARGET, outbound_type="managedNATGateway"),
                message="outbound type managedNATGateway: SNAT is done by a NAT gateway, not per node",
                detail="NAT Gateway metrics have no per-node dimension",
            ),
            ["no per-node metrics", "no per-node dimension"],
        ),
    ]
    src = FakeSource(cases[0][0])
    app, pane = app_with(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        for rep, words in cases:
            src.rep = rep
            await pilot.pause(0.35)
            shown = text(pane, "#snat-status")
            assert all(w in shown for w in words), shown
            assert pane.query_one(SnatTableWidget).row_count == 0
        await pilot.press("1")  # the rest of the app works without Azure
        await pilot.pause(0.1)
        assert app.query_one("#tabs").active == "tab-topology"
