"""The egress pane driven with injected results (Pilot): rows, diffing, filter, the
connect-mode fallback, the detail screen, escaping."""

from __future__ import annotations

from probes.egress.probe import EgressKey, EgressMode, EgressOutcome
from probes.egress.result import EgressOutcome as Outcome
from probes.engine.health import Health
from probes.engine.history import judge
from probes.kube.model import node_vantage
from tests.egressui.egressui_helpers import BAD_NODE, FALLBACK, FakeSource, fill, result, small_plan
from tests.ui.table_calls import count_table_calls
from tests.ui.test_app import make_store
from tui.app import AksnetTopApp
from tui.egress_detail import EgressDetailScreen
from tui.egress_pane import EgressPane, EgressTable
from tui.screens import HelpScreen


def app_with(source: FakeSource) -> tuple[AksnetTopApp, EgressPane]:
    pane = EgressPane()
    return AksnetTopApp(
        make_store(), panes=[pane], egress=source, clock=lambda: 100.0, wall_clock=lambda: 1795172400.0
    ), pane


def heads(pane: EgressPane) -> list[str]:
    return [r.split(" | ")[0].split("  ")[0] for r in pane.plain_rows() if not r.startswith(" ")]


async def test_rows_grouped_by_vantage_with_stats():
    plan = small_plan()
    src = FakeSource(plan)
    fill(plan, src.history)
    app, pane = app_with(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.4)
        rows = pane.plain_rows()
        assert heads(pane) == ["● local", "● nodepool1/0", "✖ nodepool1/1"]
        assert len(plan.targets) == 8 and plan.targets[-1].text == "aks-lab-4b6c1f2e.hcp.westeurope.azmk8s.io:443"
        bad = [r for r in rows if r.startswith(" ✖")]
        assert len(bad) == 7 and all("timeout" in r and " 38 " in r and "syn" in r for r in bad)  # 3 of 8 open
        mcr = [r for r in rows if "mcr.microsoft.com:443" in r]
        assert len(mcr) == 3 and sum("open" in r and " 100 " in r for r in mcr) == 2
        head = next(r for r in rows if r.startswith("✖ nodepool1/1"))
        assert "7/8 fail" in head
        status = str(pane.query_one("#egress-status").render())
        assert "3 vantages" in status and "24 checks/10s" in status and "7 failing" in status


async def test_tick_updates_cells_not_rows():
    plan = small_plan()
    src = FakeSource(plan)
    fill(plan, src.history, bad=None)
    app, pane = app_with(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.4)
        table = pane.query_one(EgressTable)
        calls = count_table_calls(table)
        n_rows = table.row_count
        res = result(
            "local",
            "mcr.microsoft.com:443",
            EgressOutcome.REFUSED,
            i=50,
            error="connection refused (RST, or ICMP port unreachable)",
        )
        src.history.add(res.key, res)
        await pilot.pause(0.4)
        assert calls["add"] == calls["remove"] == calls["clear"] == 0
        assert 0 < calls["update"] <= 8  # one row's changed cells and its vantage's summary
        assert table.row_count == n_rows
        row = next(r for r in pane.plain_rows() if r.startswith(" ✖"))
        assert "mcr.microsoft.com:443" in row and "refused" in row
        calls["update"] = 0
        await pilot.pause(0.6)  # nothing new: nothing touched
        assert calls["update"] == 0


async def test_plan_change_adds_and_removes_rows():
    plan = small_plan(nodes=2)
    src = FakeSource(plan)
    fill(plan, src.history, bad=None)
    app, pane = app_with(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.3)
        before = pane.query_one(EgressTable).row_count
        src.set_plan(small_plan(nodes=1, version=2))
        await pilot.pause(0.3)
        assert pane.query_one(EgressTable).row_count == before - 9  # header + 8 targets
        src.set_plan(small_plan(nodes=3, version=3, extra=("example.org:80",)))
        await pilot.pause(0.3)
        assert heads(pane) == ["● local", "● nodepool1/0", "● nodepool1/1", "◌ nodepool1/2"]
        assert sum("example.org:80" in r for r in pane.plain_rows()) == 4


async def test_problems_only_filter_and_help():
    plan = small_plan()
    src = FakeSource(plan)
    fill(plan, src.history)
    app, pane = app_with(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.3)
        await pilot.press("p")
        await pilot.pause(0.3)
        assert heads(pane) == ["✖ nodepool1/1"]
        assert "problems only" in str(pane.query_one("#egress-status").render())
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        whats = [w for _, w in app.screen.rows]
        assert "Problems only" in whats and "Egress row: history of that target" in whats
        await pilot.press("escape", "p")
        await pilot.pause(0.3)
        assert len(heads(pane)) == 3


async def test_fallback_to_connect_is_said_in_the_pane():
    plan = small_plan(nodes=1)
    src = FakeSource(plan)
    fill(plan, src.history, bad=None, mode=EgressMode.CONNECT, fallback=FALLBACK)
    app, pane = app_with(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.3)
        status = str(pane.query_one("#egress-status").render())
        assert "connect mode: raw sockets not permitted" in status
        assert all(r.endswith("conn*") for r in pane.plain_rows() if r.startswith(" ●"))


async def test_rows_name_the_kind_of_dns_failure():
    """A check that ended at name resolution says how: no answer, SERVFAIL or NXDOMAIN
    (and the plain dns-fail for anything else), in the row and in its history."""
    plan = small_plan(nodes=1)
    src = FakeSource(plan)
    fill(plan, src.history, bad=None)
    vantage = plan.vantages[-1].vantage.name
    kinds = {
        "mcr.microsoft.com:443": (EgressOutcome.DNS_TIMEOUT, "dns-tmout"),
        "management.azure.com:443": (EgressOutcome.DNS_SERVFAIL, "dns-srvfl"),
        "login.microsoftonline.com:443": (EgressOutcome.DNS_NXDOMAIN, "dns-nxdom"),
        "packages.aks.azure.com:443": (EgressOutcome.DNS_FAILURE, "dns-fail"),
    }
    targets = {t.text for t in plan.targets}
    assert set(kinds) <= targets
    for target, (outcome, _) in kinds.items():
        res = result(vantage, target, outcome, i=30, error=f"DNS: {target}: {outcome.value}")
        src.history.add(res.key, res)
    app, pane = app_with(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.3)
        rows = pane.plain_rows()
        start = next(i for i, r in enumerate(rows) if not r.startswith(" ") and "nodepool1/0" in r)
        mine = rows[start + 1 : start + 1 + len(targets)]
        for target, (_, label) in kinds.items():
            row = next(r for r in mine if target.split(":")[0][:20] in r)
            assert row.startswith(" ✖") and f" {label} " in f"{row} ", row
        table = pane.query_one(EgressTable)
        table.move_cursor(row=table.get_row_index(f"r|{vantage}|mcr.microsoft.com:443"))
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, EgressDetailScreen)
        assert "last outcome: dns-timeout" in app.screen.plain


async def test_enter_shows_history_from_every_vantage_escaped():
    plan = small_plan(nodes=2)
    src = FakeSource(plan)
    fill(plan, src.history)
    hostile = "[bold red]pwned[/] \x1b[31m [link=x]y[/link]"
    key = EgressKey(node_vantage(BAD_NODE), "mcr.microsoft.com:443")
    res = result(key.vantage, key.target, EgressOutcome.UNREACHABLE, i=20, error=hostile)
    src.history.add(res.key, res)
    app, pane = app_with(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.3)
        table = pane.query_one(EgressTable)
        table.move_cursor(row=table.get_row_index(f"r|{key.vantage}|{key.target}"))
        await pilot.press("enter")
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, EgressDetailScreen)
        assert "[bold red]pwned[/]" in screen.plain
        assert f"vantage: {key.vantage}" in screen.plain
        assert "needed for: Microsoft Container Registry" in screen.plain
        assert "last outcome: unreachable" in screen.plain
        assert "from every vantage (2 open, 1 failing)" in screen.plain
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, EgressDetailScreen)


def test_health_rules():
    plan = small_plan(nodes=0)
    src = FakeSource(plan)
    assert judge(None, Outcome) is Health.PENDING
    for i, o in enumerate((EgressOutcome.OPEN, EgressOutcome.TIMEOUT, EgressOutcome.OPEN)):
        r = result("local", "mcr.microsoft.com:443", o, i=i)
        src.history.add(r.key, r)
    st = src.history.stats(r.key)
    assert judge(st, Outcome) is Health.DEGRADED  # open now, a timeout in the window
    r = result("local", "mcr.microsoft.com:443", EgressOutcome.DNS_FAILURE, i=9, error="DNS: x")
    src.history.add(r.key, r)
    assert judge(src.history.stats(r.key), Outcome) is Health.FAILING


def test_pane_modules_keep_probes_headless():
    import subprocess
    import sys

    code = (
        "import sys, probes.egress.service, probes.lab.egressdemo, probes.lab.egressspec; "
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "False", out.stderr
