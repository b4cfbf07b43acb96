"""The DNS pane driven with injected results (Pilot): rows, diffing, filter, detail, help."""

from __future__ import annotations

from probes.dns.probe import DnsOutcome
from probes.dns.service import DnsSettings, Vantage, build_plan
from probes.kube.model import node_vantage
from tests.dnsui.dnsui_helpers import BAD_NODE, FakeSource, fill, result, small_plan
from tests.ui.table_calls import count_table_calls
from tests.ui.test_app import make_store
from tui.app import AksnetTopApp
from tui.dns_detail import DnsDetailScreen
from tui.dns_pane import DnsPane, DnsTable, short_vantage
from tui.probe_text import sparkline
from tui.screens import HelpScreen


def app_with(source: FakeSource) -> tuple[AksnetTopApp, DnsPane]:
    pane = DnsPane()
    return AksnetTopApp(
        make_store(), panes=[pane], dns=source, clock=lambda: 100.0, wall_clock=lambda: 1795172400.0
    ), pane


async def test_rows_grouped_by_vantage_with_stats():
    plan = small_plan()
    src = FakeSource(plan)
    fill(plan, src.history)
    app, pane = app_with(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.4)
        rows = pane.plain_rows()
        heads = [r for r in rows if not r.startswith(" ")]
        assert [h.split(" | ")[0] for h in heads] == ["● local", "● nodepool1/0", "✖ nodepool1/1"]
        bad = [r for r in rows if "nodelocal" in r and r.startswith(" ✖")]
        assert len(bad) == 2 and all("timeout" in r and "62%" in r for r in bad)
        ok_kube = [r for r in rows if "kube-dns" in r]
        assert len(ok_kube) == 6 and all("ok" in r and "0%" in r for r in ok_kube)
        assert "2 failing" in str(pane.query_one("#dns-status").render())


async def test_tick_updates_cells_not_rows():
    plan = small_plan()
    src = FakeSource(plan)
    fill(plan, src.history, bad=None)
    app, pane = app_with(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.4)
        table = pane.query_one(DnsTable)
        calls = count_table_calls(table)
        n_rows = table.row_count
        res = result(plan, node_vantage(BAD_NODE), "nodelocal", plan.names[0], DnsOutcome.SERVFAIL, i=50)
        src.history.add(res.key, res)
        await pilot.pause(0.4)
        assert calls["add"] == calls["remove"] == calls["clear"] == 0
        # the row and its vantage's header are off screen: drawn when they come into view
        assert calls["update"] == 0 and pane._vantage_key(node_vantage(BAD_NODE)) in pane._dirty
        assert table.row_count == n_rows
        rows = pane.plain_rows()  # draws every row that waited
        assert 0 < calls["update"] <= 12  # one row's changed cells and its vantage's summary
        row = next(r for r in rows if "nodelocal" in r and "servfail" in r)
        assert row.startswith(" ✖")
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
        before = pane.query_one(DnsTable).row_count
        src.set_plan(small_plan(nodes=1, version=2))
        await pilot.pause(0.3)
        rows = pane.plain_rows()
        assert pane.query_one(DnsTable).row_count == before - 9  # header + 4 resolvers × 2 names
        assert not any(r.startswith("● nodepool1/1") for r in rows)
        src.set_plan(small_plan(nodes=3, version=3))
        await pilot.pause(0.3)
        heads = [r.split(" | ")[0] for r in pane.plain_rows() if not r.startswith(" ")]
        assert heads == ["● local", "● nodepool1/0", "● nodepool1/1", "◌ nodepool1/2"]  # ordered; the new one pending


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
        heads = [r.split(" | ")[0] for r in pane.plain_rows() if not r.startswith(" ")]
        assert heads == ["✖ nodepool1/1"]
        assert "problems only" in str(pane.query_one("#dns-status").render())
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        whats = [w for _, w in app.screen.rows]
        assert "Problems only" in whats and "DNS row: last raw answer and outcome history" in whats
        await pilot.press("escape", "p")
        await pilot.pause(0.3)
        assert len([r for r in pane.plain_rows() if not r.startswith(" ")]) == 3


async def test_enter_shows_raw_answer_and_history_escaped():
    plan = small_plan(nodes=1)
    src = FakeSource(plan)
    hostile = '[bold red]pwned[/] \x1b[31m ;ANSWER evil.example. 30 IN TXT "[link=x]y[/link]"'
    for i in range(3):
        res = result(plan, "local", "kube-dns", plan.names[0], i=i, raw=hostile)
        src.history.add(res.key, res)
    app, pane = app_with(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.3)
        table = pane.query_one(DnsTable)
        table.move_cursor(row=table.get_row_index(f"r|local|kube-dns|{plan.names[0]}|A"))
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, DnsDetailScreen)
        assert "[bold red]pwned[/]" in app.screen.plain
        assert "vantage: local" in app.screen.plain and "dialled: 10.0.0.10:53" in app.screen.plain
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, DnsDetailScreen)


def test_short_forms():
    assert short_vantage("node/aks-nodepool1-57993984-vmss00000z") == "nodepool1/35"
    assert short_vantage("local") == "local"
    assert len(short_vantage("node/some-very-long-node-name-not-aks")) == 12
    assert sparkline((0.2, None, 300.0)).plain == "▁×█"


def test_pane_modules_keep_probes_headless():
    import subprocess
    import sys

    code = "import sys, probes.dns.service, probes.lab.dnsdemo; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "False", out.stderr


def test_build_plan_confine_and_local_first():
    topo = make_store().snapshot().topology
    n = topo.nodes[0].name
    vs = [Vantage(node_vantage(n), n, {"169.254.20.10": ("127.0.0.1", 5300)}, confine=True)]
    plan = build_plan(topo, DnsSettings(names=("a.example",)), vs, 1)
    assert [vp.vantage.name for vp in plan.vantages] == ["local", node_vantage(n)]
    assert [r.key for r in plan.vantages[1].resolvers] == ["nodelocal"]
    assert plan.vantages[1].resolvers[0].dest == ("127.0.0.1", 5300)
    assert plan.jobs == len(plan.vantages[0].resolvers) + 1


async def test_off_screen_rows_wait_until_scrolled_into_view():
    plan = small_plan(nodes=5)  # more rows than an 80×24 screen holds
    src = FakeSource(plan)
    fill(plan, src.history, bad=None)
    app, pane = app_with(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.4)
        table = pane.query_one(DnsTable)
        assert table.row_count > table.size.height
        last_key = table.ordered_rows[-1].key.value
        _, v, res_key, name, _ = last_key.split("|", 4)
        res = result(plan, v, res_key, name, DnsOutcome.SERVFAIL, i=60)
        src.history.add(res.key, res)
        await pilot.pause(0.4)
        assert last_key in pane._dirty  # off screen: not redrawn yet
        assert "servfail" not in " ".join(c.plain for c in table.get_row(last_key))
        table.move_cursor(row=table.row_count - 1)  # scroll it into view
        await pilot.pause(0.3)
        assert last_key not in pane._dirty
        assert "servfail" in " ".join(c.plain for c in table.get_row(last_key))
