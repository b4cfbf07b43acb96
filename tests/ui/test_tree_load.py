"""A big pool in the tree: nodes load in passes (the first screenful first), a node's
detail lines are made when it is opened, and clearing a filter restores how the tree was
instead of loading every node."""

from __future__ import annotations

import time

from textual.widgets import Tree

from probes.engine.store import Store
from probes.kube.model import SourceState, SourceStatus
from tests.support.kubejson import fill_store, node, pod, service
from tui.app import AksnetTopApp
from tui.topology_pane import LOAD_CHUNK, TopologyTree

BIG = 3 * LOAD_CHUNK + 17


def big_store() -> Store:
    nodes, pods = [], []
    for pool, count in (("nodepool1", 3), ("userpool", BIG)):
        for k in range(count):
            i = len(nodes)
            name = f"aks-{pool}-12345678-vmss{k:06d}"
            nodes.append(
                node(
                    name=name,
                    ip=f"10.224.{i // 200}.{4 + i % 200}",
                    cidr=f"10.244.{i // 250}.{i % 250}/32",
                    pool=pool,
                    instance=k,
                )
            )
    pods.append(pod("coredns-789789675-abcde", nodes[0]["metadata"]["name"], "kube-dns", ip="10.244.0.10"))
    store = Store(clock=lambda: 100.0)
    fill_store(
        store, {"nodes": nodes, "pods": pods, "services": [service("kube-dns", "kube-system", cluster_ip="10.0.0.10")]}
    )
    store.set_meta(target="lab @ http://127.0.0.1:6443", server_version="v1.30.6")
    for src in ("kubernetes", "kubernetes/nodes", "kubernetes/pods", "kubernetes/services"):
        store.set_status(SourceStatus(src, SourceState.LIVE, "watching"))
    return store


async def settle(pilot, cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        await pilot.pause(0.02)


async def test_expand_loads_in_passes_then_all_in_order():
    app = AksnetTopApp(big_store(), clock=lambda: 100.0)
    async with app.run_test(size=(80, 24)) as pilot:
        tree = app.query_one(TopologyTree)
        await settle(pilot, lambda: "userpool" in tree._pool_items)
        assert "userpool" not in tree._items or not tree._items["userpool"]  # big: not loaded until opened
        pool = tree._pool_items["userpool"]
        pool.expand()
        tree.on_tree_node_expanded(Tree.NodeExpanded(pool))  # as its message would, with no timer run yet
        first = list(tree._items["userpool"])
        assert len(first) == LOAD_CHUNK and first == sorted(first)  # the first pass: the top of the pool
        assert "userpool" in tree._loading
        await settle(pilot, lambda: len(tree._items["userpool"]) == BIG)
        shown = [kid.data.name for kid in pool.children]
        assert shown == sorted(shown) and len(shown) == BIG  # passes keep the order
        assert not tree._loading and not tree._lines_made  # no node opened: no detail lines made


async def test_jump_to_a_node_past_the_first_pass():
    app = AksnetTopApp(big_store(), clock=lambda: 100.0)
    async with app.run_test(size=(80, 24)) as pilot:
        tree = app.query_one(TopologyTree)
        await settle(pilot, lambda: "userpool" in tree._pool_items)
        last = f"aks-userpool-12345678-vmss{BIG - 1:06d}"
        assert tree.select_node_named(last)
        await pilot.pause()
        assert tree.cursor_node is not None and tree.cursor_node.data.name == last


async def test_clearing_a_filter_restores_the_tree_without_loading_every_node():
    app = AksnetTopApp(big_store(), clock=lambda: 100.0)
    async with app.run_test(size=(80, 24)) as pilot:
        tree = app.query_one(TopologyTree)
        await settle(pilot, lambda: "userpool" in tree._pool_items)
        assert tree._pool_items["nodepool1"].is_expanded and not tree._pool_items["userpool"].is_expanded
        await pilot.press("slash")
        for ch in "vmss00001":
            await pilot.press(ch)
        await settle(pilot, lambda: "userpool" in tree._items and len(tree._items["userpool"]) == 10)
        assert tree._pool_items["userpool"].is_expanded  # a few matches: the filter opens the pool
        await pilot.press("escape")
        await pilot.pause()
        assert tree.node_filter == ""
        assert not tree._pool_items["userpool"].is_expanded  # closed again, as before the filter
        assert not tree._items.get("userpool")  # and its nodes not loaded
        assert "userpool" not in tree._loading
        assert len(tree._items["nodepool1"]) == 3 and tree._pool_items["nodepool1"].is_expanded
        # opening it now loads it whole, in passes
        tree._pool_items["userpool"].expand()
        await settle(pilot, lambda: len(tree._items.get("userpool", {})) == BIG)


async def test_a_pool_open_before_the_filter_is_open_and_whole_after_it():
    app = AksnetTopApp(big_store(), clock=lambda: 100.0)
    async with app.run_test(size=(80, 24)) as pilot:
        tree = app.query_one(TopologyTree)
        await settle(pilot, lambda: "userpool" in tree._pool_items)
        tree._pool_items["userpool"].expand()
        await settle(pilot, lambda: len(tree._items.get("userpool", {})) == BIG)
        await pilot.press("slash")
        for ch in "vmss00001":
            await pilot.press(ch)
        await settle(pilot, lambda: len(tree._items["userpool"]) == 10)
        # BIG - 10 nodes left at once (in one pass): the pool shows the matches in order,
        # and the tree knows no node it no longer holds
        shown = [kid.data.name for kid in tree._pool_items["userpool"].children]
        assert shown == sorted(tree._items["userpool"]) and all("vmss00001" in n for n in shown)
        assert set(tree._tree_nodes) == {n.id for n in walk(tree.root)}
        await pilot.press("escape")
        await pilot.pause()
        assert tree._pool_items["userpool"].is_expanded
        await settle(pilot, lambda: len(tree._items["userpool"]) == BIG)
        shown = [kid.data.name for kid in tree._pool_items["userpool"].children]
        assert shown == sorted(shown) and len(shown) == BIG
        assert set(tree._tree_nodes) == {n.id for n in walk(tree.root)}


def walk(node):  # type: ignore[no-untyped-def]
    yield node
    for kid in node.children:
        yield from walk(kid)
