"""SVG snapshot of the DNS pane on a jumpbox at 80×24: NodeLocal (link-local) and the
kube-dns ClusterIP are grey with their reason and never counted as failing; a reachable
resolver whose 734-byte answer is truncated for 512-byte clients reads `512:tc`."""

from __future__ import annotations

import dataclasses

from textual.widgets import Input

from probes.dns.probe import DnsOutcome
from probes.dns.service import DnsSettings, Vantage, build_plan
from probes.engine.reach import HostRoutes, for_topology
from probes.kube.model import LOCAL_VANTAGE
from tests.dnsui.dnsui_helpers import FakeSource, result
from tests.ui.test_app import make_store
from tui.app import AksnetTopApp
from tui.dns_pane import DnsPane

SIZE = (80, 24)


def jumpbox_app() -> tuple[AksnetTopApp, DnsPane]:
    topo = make_store().snapshot().topology
    reach = dataclasses.replace(for_topology(topo, HostRoutes()), owned=lambda _a: False)
    settings = DnsSettings(resolvers=("10.1.0.53",))
    plan = build_plan(topo, settings, [Vantage(LOCAL_VANTAGE)], 1, reach=reach.why_not)
    src = FakeSource(plan)
    for i in range(12):
        for r in plan.vantages[0].resolvers:
            if r.unreachable:
                continue  # never probed
            for n in plan.names:
                res = result(plan, LOCAL_VANTAGE, r.key, n, DnsOutcome.OK, 0.4 + 0.1 * (i % 3), i)
                if "mcr" in n:
                    res = dataclasses.replace(res, size=734, no_edns="truncated-tcp-ok")
                src.history.add(res.key, res)
    pane = DnsPane()
    app = AksnetTopApp(make_store(), panes=[pane], dns=src, clock=lambda: 100.0, wall_clock=lambda: 1795172400.0)
    return app, pane


async def _dns_tab(pilot) -> None:  # type: ignore[no-untyped-def]
    pilot.app.query_one(Input).cursor_blink = False
    await pilot.press("2")
    await pilot.pause(0.3)


def test_snapshot_dns_jumpbox(snap_compare):
    app, _ = jumpbox_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=_dns_tab)


async def test_jumpbox_rows_are_grey_never_failing():
    app, pane = jumpbox_app()
    async with app.run_test(size=SIZE) as pilot:
        await _dns_tab(pilot)
        rows = pane.plain_rows()
        grey = [r for r in rows if "not here" in r]
        assert any("nodelocal" in r and "linklocal" in r for r in grey)
        assert any("kube-dns" in r and "ClusterIP" in r for r in grey)
        assert any("512:tc" in r for r in rows)
        status = str(pane.query_one("#dns-status").render())
        assert "not reachable here" in status and "failing" not in status
