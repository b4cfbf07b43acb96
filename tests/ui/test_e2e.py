"""The app on the lab over real HTTP, the way `aksnet-top --demo` runs: changes show live."""

from __future__ import annotations

import time

from probes.config import KubeConfig
from probes.engine.store import Store
from probes.kube.source import KubeSource
from probes.lab.serve import start_embedded
from tui.app import AksnetTopApp
from tui.topology_pane import TopologyTree


def shown(app: AksnetTopApp) -> set[str]:
    return {name for pool in app.query_one(TopologyTree)._items.values() for name in pool}


async def wait_until(pilot, cond, timeout: float) -> float:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        await pilot.pause(0.05)
    raise AssertionError(f"not within {timeout}s")


async def test_node_joins_goes_notready_and_leaves_live_through_the_lab():
    lab, kubeconfig = start_embedded("healthy", run_timeline=False)
    store = Store()
    app = AksnetTopApp(store, [KubeSource(store, KubeConfig(kubeconfig=kubeconfig))])
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: len(shown(app)) == 5, 20)
            name = lab.state.add_node("userpool")
            took = await wait_until(pilot, lambda: name in shown(app), 2.0)  # no keypress
            assert took < 2.0
            lab.state.set_node_ready(name, False, "KubeletNotReady")
            tree = app.query_one(TopologyTree)
            await wait_until(pilot, lambda: "NotReady" in tree._items["userpool"][name].label.plain, 2.0)
            lab.state.remove_node(name)
            await wait_until(pilot, lambda: name not in shown(app), 2.0)
    finally:
        lab.stop()


async def test_command_palette_goes_to_a_node():
    lab, kubeconfig = start_embedded("healthy", run_timeline=False)
    store = Store()
    app = AksnetTopApp(store, [KubeSource(store, KubeConfig(kubeconfig=kubeconfig))])
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: len(shown(app)) == 5, 20)
            target = store.snapshot().topology.nodes[-1]
            await pilot.press("ctrl+p")
            await pilot.press(*target.internal_ip)
            await pilot.pause(0.5)
            await pilot.press("enter")
            await wait_until(
                pilot,
                lambda: (
                    app.query_one(TopologyTree).cursor_ref is not None
                    and getattr(app.query_one(TopologyTree).cursor_ref, "name", "") == target.name
                ),
                3,
            )
    finally:
        lab.stop()
