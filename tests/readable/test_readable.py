"""Issue 18, as behaviour: `/` filters the tab on screen, Enter on a finding and `g` land
on the evidence row, Ctrl+C quits, the palette has one "Keys" and scoped search, the
header and the status line keep their key words at 80 columns, names elide in the middle."""

from __future__ import annotations

from probes.dns.probe import ProbeKey
from probes.kube.model import SourceState, SourceStatus
from tests.readable.fixtures import BAD, LONG_NAME, app_for, settle, store_for
from tests.ui.test_app import nodes_shown
from tui import format as fmt
from tui.app import ClusterCommands
from tui.columns import elide_middle
from tui.dns_pane import DnsPane
from tui.egress_pane import EgressPane
from tui.finding_detail import FindingDetailScreen
from tui.findings_pane import FindingsPane, FindingsTable
from tui.keybar import KeyBar
from tui.snat_pane import SnatPane
from tui.topology_pane import TopologyTree


def bar_words(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {key: desc for key, desc, _ in app.query_one(KeyBar).items}


async def test_slash_filters_the_tab_on_screen_and_enter_stays_there():
    app = app_for("f4")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert bar_words(app)["/"] == "Filter nodes"
        await pilot.press("2")
        await settle(pilot, 0.2)
        dns = app.query_one(DnsPane)
        assert bar_words(app)["/"] == "Filter DNS rows"
        await pilot.press("slash", *"nodelocal", "enter")
        await settle(pilot, 0.2)
        rows = dns.plain_rows()
        probe_rows = [r for r in rows if r.startswith(" ")]  # vantage rows start with their bullet
        assert probe_rows and all("nodelocal" in r for r in probe_rows)  # only NodeLocal rows
        assert app.active_tab() == "tab-2" and app.focused is dns.table  # Enter kept the tab
        assert len(nodes_shown(app)) == 5  # the tree is not filtered
        await pilot.press("1")
        await settle(pilot, 0.2)
        assert app.query_one("#filter").value == ""  # the topology's own (empty) filter
        await pilot.press("2")
        await settle(pilot, 0.2)
        assert app.query_one("#filter").value == "nodelocal"  # DNS's filter came back with its tab
        await pilot.press("slash", "ctrl+u", *"zzz-nothing")
        await settle(pilot, 0.2)
        assert dns.plain_rows() == [] and "no row matches" in dns.empty_words()
        await pilot.press("escape")
        await settle(pilot, 0.2)
        assert len(dns.plain_rows()) == len(dns._rows) + len(dns._vantage_order)  # every row again


async def test_slash_on_egress_snat_and_findings():
    app = app_for("f10")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("4", "slash", *"mcr", "enter")
        await settle(pilot, 0.2)
        egress = app.query_one(EgressPane)
        targets = [r for r in egress.plain_rows() if r.startswith(" ")]
        assert targets and all("mcr" in r for r in targets)
        assert bar_words(app)["/"] == "Filter egress rows"
        await pilot.press("3", "slash", *"10.224.0.5", "enter")
        await settle(pilot, 0.2)
        snat = app.query_one(SnatPane)
        assert [r.split(" | ")[0] for r in snat.plain_rows()] == ["✖ nodepool1/1"]
        await pilot.press("5", "slash", *"F11", "enter")
        await settle(pilot, 0.2)
        findings = app.query_one(FindingsPane)
        assert findings.query_one(FindingsTable).row_count == 0
        assert "No finding matches" in findings.empty_words()


async def test_enter_on_f4_then_g_lands_on_the_nodelocal_row_of_that_node():
    app = app_for("f4")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot, 0.2)
        await pilot.press("enter")
        await settle(pilot, 0.2)
        screen = app.screen
        assert isinstance(screen, FindingDetailScreen)
        assert screen.plain_rows["subject"] == f"node/{BAD}"  # the full name in the detail
        assert "node-local-dns-00001" in screen.plain_rows["command"]  # the real pod, not a placeholder
        assert screen.copy_text().startswith("kubectl -n kube-system logs node-local-dns-00001")
        await pilot.press("g")
        await settle(pilot, 0.3)
        dns = app.query_one(DnsPane)
        assert app.active_tab() == "tab-2" and app.focused is dns.table
        selected = dns.selected()
        assert selected is not None
        assert selected.key == ProbeKey(f"node/{BAD}", "nodelocal", LONG_NAME, "A")


async def test_enter_on_f10_then_g_lands_on_the_snat_row_of_that_node():
    app = app_for("f10")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("3", "slash", *"userpool", "enter", "5")  # a filter that hides the row
        await settle(pilot, 0.2)
        await pilot.press("enter", "g")
        await settle(pilot, 0.3)
        snat = app.query_one(SnatPane)
        assert app.active_tab() == "tab-3"
        assert snat.filter == ""  # cleared so the evidence shows
        cursor = snat.table.cursor_row
        assert snat.plain_rows()[cursor].startswith("✖ nodepool1/1")


async def test_the_tree_marks_an_exhausted_snat_node_before_its_name():
    app = app_for("f10")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        tree = app.query_one(TopologyTree)
        assert tree.select_node_named(BAD)
        label = tree.cursor_node.label.plain  # type: ignore[union-attr]
        assert label.startswith(f"✖ SNAT✖ {BAD}")  # not a plain green bullet


async def test_ctrl_c_quits():
    app = app_for("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, 0.2)
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert app.return_code == 0


async def test_palette_one_keys_entry_tab_commands_and_scoped_search():
    app = app_for("f4")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert titles.count("Keys") == 1
        provider = ClusterCommands(app.screen)
        found = [hit.text async for hit in provider.discover()]
        assert [t for t in found if str(t).startswith("Tab ")] == [
            "Tab 1: Topology",
            "Tab 2: DNS",
            "Tab 3: SNAT",
            "Tab 4: Egress",
            "Tab 5: Findings",
        ]
        dns_hits = sorted([hit async for hit in provider.search("dns: nodelocal")], key=lambda h: -h.score)
        assert dns_hits and all(str(h.text).startswith("dns: ") for h in dns_hits)  # DNS rows only
        assert "nodelocal" in str(dns_hits[0].text)  # the best match first, as the palette sorts
        node_hits = [str(hit.text) async for hit in provider.search("node: 10.224.0.5")]
        assert node_hits == [f"node: {BAD} 10.224.0.5"]
        assert not [h async for h in provider.search("node: kube-dns")]  # no DNS row under node:


async def test_empty_states_say_so_in_words():
    app = app_for("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot, 0.2)
        assert app.query_one(FindingsPane).empty_words().startswith("No findings")
        await pilot.press("2", "p")
        await settle(pilot, 0.2)
        dns = app.query_one(DnsPane)
        assert dns.plain_rows() == [] and dns.empty_words().startswith("no problems")


def test_header_fits_two_lines_of_whole_items_at_80_columns():
    topo = store_for("snat-tier-drop").snapshot().topology
    one = fmt.summary(topo).plain
    text = fmt.summary(topo, 78).plain
    lines = text.split("\n")
    assert len(lines) <= 2 and all(len(line) <= 78 for line in lines)
    items = [i for line in lines for i in line.split(" · ")]
    assert all(i in one.split(" · ") for i in items)  # no item broken across lines
    assert "NodeLocal 50/50" in items and "nodes 50/50 (2 pools)" in items
    narrow = fmt.summary(topo, 40).plain.split("\n")
    assert len(narrow) <= 2 and "nodes 50/50 (2 pools)" in " · ".join(narrow)  # what matters stays


def test_status_line_keeps_state_error_and_retry_at_80_columns():
    st = SourceStatus(
        "kubernetes/nodes",
        SourceState.UNREACHABLE,
        "cannot reach https://aks-lab-4b6c1f2e.hcp.westeurope.azmk8s.io:443: connection refused",
        "the API server's address did not answer; check the VPN, the private endpoint and DNS",
        retry_at=108.0,
    )
    line = fmt.status_line(st, "", now=100.0, width=78)
    shown = line.plain[:78]  # what a 78-cell row shows
    assert shown.startswith("✖ cannot reach") and "connection refused" in shown and "next try in 8s" in shown


def test_names_elide_in_the_middle():
    assert elide_middle(LONG_NAME, 24) == "kubernetes.d…uster.local"
    assert elide_middle(LONG_NAME, 36) == LONG_NAME
    assert len(elide_middle(LONG_NAME, 17)) == 17
