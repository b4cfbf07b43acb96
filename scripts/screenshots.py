"""Write SVG screenshots of the demo into screenshots/ (80×24, the real lab and source).

    .venv/bin/python scripts/screenshots.py

Each shot runs the app on the embedded demo cluster exactly as `aksnet-top --demo` does,
waits for the topology to be complete, then drives it with keys.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dataclasses  # noqa: E402

from textual.widgets import Input  # noqa: E402

from probes import demo as demomod  # noqa: E402
from probes.config import Config, KubeConfig  # noqa: E402
from probes.engine.store import Store  # noqa: E402
from probes.kube.source import KubeSource  # noqa: E402
from tui.app import AksnetTopApp  # noqa: E402
from tui.features import build_all, run_cleanups  # noqa: E402

OUT = ROOT / "screenshots"
Step = Callable[[object], Awaitable[None]]


async def shot(
    name: str,
    scenario: str,
    steps: list[str | Callable[[AksnetTopApp], None]],
    nodes: int | None = None,
    size: tuple[int, int] = (80, 24),
    dns_seconds: float = 0.0,
) -> Path:
    cfg = Config()
    demo = demomod.start(scenario, nodes, cfg.dns, cfg.egress)
    kubeconfig = demo.kubeconfig
    store = Store()
    source = KubeSource(store, KubeConfig(kubeconfig=kubeconfig))
    # every pane exactly as `aksnet-top --demo` builds them, with quicker probe rounds
    cfg = dataclasses.replace(cfg, dns=dataclasses.replace(cfg.dns, interval=1.0, timeout=0.5))
    cfg = dataclasses.replace(cfg, egress=dataclasses.replace(cfg.egress, interval=1.0))  # timeout as configured (2 s)
    features = build_all(cfg, store, demo.endpoints, KubeConfig(kubeconfig=kubeconfig))
    app = AksnetTopApp(
        store, [source, *features.sources], panes=features.panes, **features.feeds, banner=f"demo: {scenario}"
    )
    try:
        async with app.run_test(size=size) as pilot:
            app.query_one(Input).cursor_blink = False
            deadline = time.monotonic() + 20
            while "nodes" not in store.snapshot().synced and time.monotonic() < deadline:
                await pilot.pause(0.05)
            await pilot.pause(0.5 + dns_seconds)
            for step in steps:
                if callable(step):
                    step(app)
                else:
                    await pilot.press(step)
                await pilot.pause(0.1)
            await pilot.pause(0.4)
            path = Path(app.save_screenshot(f"{name}.svg", str(OUT)))
    finally:
        run_cleanups(features)
        demo.stop()
    return path


def tab(title: str) -> Callable[[AksnetTopApp], None]:
    """A step that opens the tab of the pane titled `title`, whatever its number."""

    def go(app: AksnetTopApp) -> None:
        titles = [getattr(p, "PANE_TITLE", "") for p in app.panes]
        app.action_show_tab(titles.index(title) + 2)

    return go


def egress_row(target: str) -> Callable[[AksnetTopApp], None]:
    """Put the egress table's cursor on the first node's row for `target`."""

    def step(app: AksnetTopApp) -> None:
        # lazy: the egress pane's table class, only for the shots that use it
        from tui.egress_pane import EgressTable

        table = app.query_one(EgressTable)
        node = app.snapshot().topology.nodes[0].name
        table.move_cursor(row=table.get_row_index(f"r|node/{node}|{target}"))

    return step


def scroll_end(app: AksnetTopApp) -> None:
    """Scroll a detail screen to its end (the Azure path section)."""
    # lazy: the container class, only for the shots that use it
    from textual.containers import VerticalScroll

    app.screen.query_one(VerticalScroll).scroll_end(animate=False)


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    first_node = lambda app: app.goto_node(app.snapshot().topology.nodes[0].name)  # noqa: E731
    shots = [
        ("topology", "healthy", [], None),
        ("node-detail", "healthy", [first_node, "enter"], None),
        ("node-agent", "dns-nodelocal-down", [first_node, "space"], None),  # route, DNS, agent lines
        ("filter", "healthy", ["slash", *"10.224.0.7"], None),
        ("help", "healthy", ["question_mark"], None),
        ("overlay-cilium", "overlay", [], None),
        ("azure-cni", "azure-cni", [], None),
        ("large-cluster-2000", "overlay", ["down", "enter"], 2000),
    ]
    dns_shots = [
        ("dns-healthy", "healthy", ["2"]),
        ("dns-nodelocal-down", "dns-nodelocal-down", ["2", "p"]),
        ("dns-detail", "dns-nodelocal-down", ["2", "p", "down", "enter"]),
    ]
    egress_shots = [
        ("egress-healthy", "healthy", [tab("Egress")]),
        ("egress-one-node", "egress-one-node", [tab("Egress"), "p"]),
        ("egress-nsg-443-detail", "egress-nsg-443", [tab("Egress"), "down", "enter"]),
        ("egress-f24-path", "f24", [tab("Egress"), egress_row("mcr.microsoft.com:443"), "enter", scroll_end]),
        # the node detail's Azure path: hops, egress IP, each target's verdict (F24's deny on 443)
        ("node-path-f24", "f24", [first_node, "enter", scroll_end]),
        ("egress-f27-proxy", "f27-proxy", [tab("Egress")]),  # CONNECT through a proxy that says 403
    ]
    snat_shots = [  # (name, scenario, steps, nodes)
        ("snat-healthy", "healthy", [tab("SNAT")], None),
        ("snat-exhaustion", "snat-exhaustion", [tab("SNAT")], None),
        ("snat-tier-drop", "snat-tier-drop", [tab("SNAT")], None),
        ("snat-1000-nodes", "snat-exhaustion", [tab("SNAT")], 1000),
    ]
    findings_shots = [
        ("findings-nodelocal-down", "dns-nodelocal-down", [tab("Findings")]),
        ("findings-snat-tier-drop", "snat-tier-drop", [tab("Findings")]),
        ("findings-detail", "f4", [tab("Findings"), "enter"]),  # the tour: 5, Enter
        ("findings-jump-snat", "f10", [tab("Findings"), "enter", "g"]),  # g: the node's SNAT row
        ("findings-f27-proxy", "f27-proxy", [tab("Findings"), "enter"]),  # the proxy and its 403
    ]
    ingress_shots = [  # (name, scenario, steps, size)
        ("ingress-healthy", "ingress", [tab("Ingress")], (80, 24)),
        ("ingress-healthy-wide", "ingress", [tab("Ingress")], (120, 40)),
        ("ingress-f22", "f22", [tab("Ingress")], (80, 24)),
        ("ingress-f23", "f23", [tab("Ingress")], (120, 40)),
        ("ingress-f22-detail", "f22", [tab("Ingress"), "down", "down", "enter"], (80, 24)),  # shop: NXDOMAIN
        ("ingress-f24-probe-lb", "f24-probe", [tab("Ingress"), "tab", "down", "down", "enter"], (120, 40)),
    ]
    only = set(sys.argv[1:])
    for name, scenario, steps, nodes in shots:
        if only and name not in only:
            continue
        path = await shot(name, scenario, steps, nodes)
        print(path.relative_to(ROOT))
    for name, scenario, steps in dns_shots:
        if only and name not in only:
            continue
        path = await shot(name, scenario, steps, dns_seconds=6.0)
        print(path.relative_to(ROOT))
    for name, scenario, steps in egress_shots:
        if only and name not in only:
            continue
        path = await shot(name, scenario, steps, dns_seconds=6.0)
        print(path.relative_to(ROOT))
    for name, scenario, steps in findings_shots:
        if only and name not in only:
            continue
        path = await shot(name, scenario, steps, dns_seconds=12.0)
        print(path.relative_to(ROOT))
    for name, scenario, steps, nodes in snat_shots:
        if only and name not in only:
            continue
        path = await shot(
            name, scenario, steps, nodes, dns_seconds=2.0 if nodes is None else 10.0
        )  # 1,000 nodes: ARM takes longer
        print(path.relative_to(ROOT))
    for name, scenario, steps, size in ingress_shots:
        if only and name not in only:
            continue
        path = await shot(name, scenario, steps, size=size, dns_seconds=2.0)  # the hosts' answers
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    asyncio.run(main())
