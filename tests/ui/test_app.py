"""The app driven as a user would (Pilot): live updates, filter, detail, help, states."""

from __future__ import annotations

from probes.engine.store import Store
from probes.kube.model import SourceState, SourceStatus
from probes.kube.topology import parse_node
from tests.support.kubejson import fill_store, node, small_cluster
from tui.app import AksnetTopApp
from tui.screens import HelpScreen, NodeDetailScreen
from tui.topology_pane import NodeRef, TopologyTree


def make_store() -> Store:
    store = Store(clock=lambda: 100.0)
    fill_store(store, small_cluster())
    store.set_meta(target="lab @ http://127.0.0.1:6443", server_version="v1.30.6")
    for src in ("kubernetes", "kubernetes/nodes", "kubernetes/pods", "kubernetes/services"):
        store.set_status(SourceStatus(src, SourceState.LIVE, "watching"))
    return store


def tree_text(app: AksnetTopApp) -> str:
    tree = app.query_one(TopologyTree)
    out = []

    def walk(n):  # type: ignore[no-untyped-def]
        out.append(n.label.plain)
        for c in n.children:
            walk(c)

    walk(tree.root)
    return "\n".join(out)


def nodes_shown(app: AksnetTopApp) -> set[str]:
    tree = app.query_one(TopologyTree)
    return {name for pool in tree._items.values() for name in pool}


async def test_topology_shows_pools_and_nodes():
    app = AksnetTopApp(make_store(), clock=lambda: 100.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = tree_text(app)
        assert "nodepool1" in text and "userpool" in text
        assert "● aks-nodepool1-12345678-vmss000000 10.224.0.4 10.244.0.0/24" in text
        # a node's detail lines are made when it is first opened, not with its pool
        assert "route 10.244.0.0/24" not in text
        tree = app.query_one(TopologyTree)
        first = tree._items["nodepool1"]["aks-nodepool1-12345678-vmss000000"]
        first.expand()
        await pilot.pause()
        text = tree_text(app)
        assert "route 10.244.0.0/24 → 10.224.0.4  route ok (RouteCreated)" in text
        assert text.count("route ok") == 1  # only the opened node's lines exist
        assert len(nodes_shown(app)) == 5
        summary = app.query_one("#summary").render()
        assert "kubenet" in str(summary) and "5/5" in str(summary)


async def test_node_appears_and_changes_live_without_keypress():
    store = make_store()
    app = AksnetTopApp(store, refresh_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        new = parse_node(
            node(name="aks-userpool-12345678-vmss000009", ip="10.224.0.20", cidr="10.244.20.0/24", pool="userpool")
        )
        store.upsert("nodes", new.name, new)
        await pilot.pause(0.4)
        assert new.name in nodes_shown(app)
        down = parse_node(
            node(
                name="aks-userpool-12345678-vmss000009",
                ip="10.224.0.20",
                cidr="10.244.20.0/24",
                pool="userpool",
                ready="False",
            )
        )
        store.upsert("nodes", new.name, down)
        await pilot.pause(0.4)
        assert "✖ NotReady NodeLocal✖ aks-userpool-12345678-vmss000009 10.224.0.20 10.244.20.0/24" in tree_text(app)
        store.delete("nodes", new.name)
        await pilot.pause(0.4)
        assert new.name not in nodes_shown(app)
        assert new.name not in tree_text(app)


async def test_filter_by_name_and_ip_then_clear():
    app = AksnetTopApp(make_store())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        await pilot.press(*"10.224.0.7")
        await pilot.pause()
        assert nodes_shown(app) == {"aks-userpool-12345678-vmss000000"}
        assert "1 match" in tree_text(app)
        await pilot.press("enter")  # keeps the filter, back to the tree
        assert isinstance(app.focused, TopologyTree)
        assert nodes_shown(app) == {"aks-userpool-12345678-vmss000000"}
        await pilot.press("escape")
        await pilot.pause()
        assert len(nodes_shown(app)) == 5


async def test_enter_opens_node_detail_and_escape_returns():
    app = AksnetTopApp(make_store(), wall_clock=lambda: 1795172400.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tree = app.query_one(TopologyTree)
        assert tree.select_node_named("aks-nodepool1-12345678-vmss000001")
        assert tree.cursor_ref == NodeRef("aks-nodepool1-12345678-vmss000001")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodeDetailScreen)
        rows = app.screen.plain_rows
        assert rows["internal IP"] == "10.224.0.5"
        assert rows["scale set"] == "aks-nodepool1-12345678-vmss instance 1"
        assert rows["age"] == "60m"  # kubectl style: minutes below 2h
        assert "route ok (RouteCreated)" in rows["route / pod network"]
        await pilot.press("escape")
        assert not isinstance(app.screen, NodeDetailScreen)


async def test_help_lists_bindings():
    app = AksnetTopApp(make_store())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = dict(app.screen.rows)
        described = set(keys.values())
        assert {"Quit", "Filter nodes", "Keys"} <= described
        assert any(v.startswith("Commands") for v in described)
        assert "Topology tab" in described and not any(v.startswith("Tab ") for v in described)
        assert "DNS tab" not in described  # this app has no DNS pane
        first_keys, first_what = app.screen.rows[0]
        assert first_what == "Quit" and "q" in first_keys.split()  # the app's own keys come first
        assert any("detail" in v for v in described)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_q_quits():
    app = AksnetTopApp(make_store())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_markup_in_node_name_is_shown_literally():
    store = make_store()
    evil = parse_node(node(name="[bold red]evil[/]-node", ip="10.224.0.99", pool="userpool"))
    store.upsert("nodes", evil.name, evil)
    app = AksnetTopApp(store)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "[bold red]evil[/]-node" in tree_text(app)


async def test_forbidden_nodes_is_explained_in_place_and_app_keeps_running():
    store = Store()
    msg = 'nodes is forbidden: User "dev" cannot list resource "nodes" in API group "" at the cluster scope'
    store.set_status(
        SourceStatus(
            "kubernetes/nodes",
            SourceState.FORBIDDEN,
            "forbidden: cannot list/watch nodes at the cluster scope",
            msg,
            retry_at=None,
        )
    )
    app = AksnetTopApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        status = str(app.query_one("#status").render())
        assert "forbidden: cannot list/watch nodes" in status
        assert "no topology" in app.query_one(TopologyTree).root.label.plain
        await pilot.press("question_mark")  # still responsive
        assert isinstance(app.screen, HelpScreen)


async def test_unreachable_shows_next_retry():
    store = Store(clock=lambda: 50.0)
    store.set_status(
        SourceStatus(
            "kubernetes",
            SourceState.UNREACHABLE,
            "API server https://x:443 unreachable",
            "connection refused",
            retry_at=58.0,
        )
    )
    app = AksnetTopApp(store, clock=lambda: 50.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        status = str(app.query_one("#status").render())
        assert "unreachable" in status and "next try in 8s" in status


async def test_large_pool_loads_lazily():
    store = Store()
    objs = {
        "nodes": [
            node(
                name=f"aks-big-1-vmss{i:06d}",
                ip=f"10.224.{i // 250}.{i % 250 + 4}",
                cidr=f"10.244.{i // 256}.0/24",
                pool="big",
                instance=i,
            )
            for i in range(300)
        ]
    }
    fill_store(store, objs)
    app = AksnetTopApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert nodes_shown(app) == set()  # collapsed, nothing built yet
        assert "300 nodes (expand to load)" in tree_text(app)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert len(nodes_shown(app)) == 300


def test_route_table_verdict_marks_the_node_row():
    from probes.azure.routes import NodeRoute
    from tui import format as fmt

    store = make_store()
    topo = store.snapshot().topology
    node = topo.nodes[2]
    assert fmt.node_label(node, topo).plain.endswith(node.pod_cidrs[0])  # healthy: nothing appended
    missing = NodeRoute(node.name, "missing", node.pod_cidrs[0], node.internal_ip)
    label = fmt.node_label(node, topo, missing)
    assert label.plain.startswith(f"✖ route missing {node.name}")  # the mark before the name
    line = fmt.route_line(topo, node, missing).plain
    assert f"route table: missing (expected {node.pod_cidrs[0]} → {node.internal_ip})" in line
