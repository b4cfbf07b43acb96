"""The findings pane (Pilot): sorted by severity, info hidden by default, Enter jumps to evidence."""

from __future__ import annotations

from probes.dns.probe import ProbeKey
from probes.dns.service import EMPTY_PLAN
from probes.engine.store import Store
from tests.diagnose.test_rules import CLUSTER, EXTERNAL, NOW, healthy_dns, stats
from tests.support.kubejson import fill_store, pod, service, small_cluster
from tui.app import AksnetTopApp
from tui.finding_detail import FindingDetailScreen
from tui.findings_pane import FindingsPane, FindingsTable
from tui.topology_pane import NodeRef, TopologyTree


class FixedDns:
    """A DNS feed whose history holds `stats` as they are (what the publisher reads)."""

    def __init__(self, stats):  # type: ignore[no-untyped-def]
        self.history = FixedHistory(stats)
        self.error = ""

    def plan(self):  # type: ignore[no-untyped-def]
        return EMPTY_PLAN


class FixedHistory:
    version = 1
    epoch = 0

    def __init__(self, stats):  # type: ignore[no-untyped-def]
        self._stats = dict(stats)

    def snapshot(self, since: int = 0):  # type: ignore[no-untyped-def]
        return dict(self._stats) if since < self.version else {}

    def results(self, key):  # type: ignore[no-untyped-def]
        return []


def broken_cluster():  # type: ignore[no-untyped-def]
    objs = small_cluster()
    objs["nodes"][2]["status"]["conditions"][1] = {
        "type": "NetworkUnavailable",
        "status": "True",
        "reason": "NoRouteCreated",
    }
    objs["services"].append(service("api", "web", "LoadBalancer", "10.0.40.9"))
    bad = objs["nodes"][1]["metadata"]["name"]
    objs["pods"] = [
        pod(p["metadata"]["name"], bad, "node-local-dns", ready=False)
        if p["spec"]["nodeName"] == bad and p["metadata"]["labels"]["k8s-app"] == "node-local-dns"
        else p
        for p in objs["pods"]
    ]
    store = Store()
    fill_store(store, objs)
    topo = store.snapshot().topology
    dns = healthy_dns(topo)
    for name in (CLUSTER, EXTERNAL):
        dns[ProbeKey(f"node/{bad}", "nodelocal", name)] = stats("timeout", 100.0)
    return store, dns, bad, objs["nodes"][2]["metadata"]["name"]


async def test_findings_sorted_and_jump_to_node():
    store, dns, nodelocal_node, route_node = broken_cluster()
    pane = FindingsPane()
    app = AksnetTopApp(store, panes=[pane], dns=FixedDns(dns), wall_clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.5)
        table = pane.query_one(FindingsTable)
        rows = [[c.plain for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[1] for r in rows] == ["F1", "F4", "F12"]  # critical first, then warning
        assert rows[0][0].startswith("✖") and rows[2][0].startswith("▲")
        assert rows[0][2] == "nodepool1/2" and route_node.endswith("vmss000002")  # the short subject
        assert "crit" in rows[1][0] and "NodeLocal DNS" in rows[1][3]
        assert rows[0][3].endswith("cross-node pod traffic to and from it is broken")  # the cause whole
        assert "2 critical · 1 warning" in str(pane.query_one("#findings-status").render())
        await pilot.press("enter")  # the F1 finding: its detail, in full
        await pilot.pause(0.2)
        assert isinstance(app.screen, FindingDetailScreen)
        detail = app.screen.plain_rows
        assert detail["subject"] == f"node/{route_node}" and detail["expected next hop"] == "10.224.0.6"
        assert "-g MC_rg_aks_westeurope " in detail["command"] and "<node-rg>" not in detail["next step"]
        await pilot.press("escape", "down", "enter")  # the F4 finding
        await pilot.pause(0.2)
        assert app.screen.evidence.node == nodelocal_node
        await pilot.press("g")  # no DNS tab in this app: its node in the topology
        await pilot.pause(0.3)
        tree = app.query_one(TopologyTree)
        assert app.focused is tree and tree.cursor_ref == NodeRef(nodelocal_node)
        label = tree.cursor_node.label.plain  # type: ignore[union-attr]
        assert label.startswith(f"✖ NodeLocal✖ {nodelocal_node}")  # the finding's mark, before the name


async def test_info_findings_toggle():
    objs = small_cluster()
    objs["nodes"][0]["spec"]["unschedulable"] = True  # cordoned: info only
    store = Store()
    fill_store(store, objs)
    pane = FindingsPane()
    app = AksnetTopApp(store, panes=[pane], wall_clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.4)
        table = pane.query_one(FindingsTable)
        assert table.row_count == 0
        assert "healthy" in str(pane.query_one("#findings-status").render())
        await pilot.press("i")
        await pilot.pause(0.2)
        assert table.row_count == 1 and "cordoned" in table.get_row_at(0)[3].plain
