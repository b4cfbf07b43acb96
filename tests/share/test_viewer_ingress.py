"""A viewer shows the owner's Ingress tab: the ingress path's objects, the hosts' answers
and the HTTPS rows travel in the frames' channels (the recorder's, over the socket), and
the viewer's app has the tab the owner's has."""

from __future__ import annotations

import asyncio

from probes.engine.publisher import Publisher
from probes.share.host import Host
from probes.share.place import connect, place_for, try_own
from probes.share.viewer import ViewerPublisher
from tests.ingress.helpers import FakeHttps, store_of
from tests.ingressui.test_ingressui_snapshots import ANSWERS, SERVED, T0, FakeHosts
from tests.share.engine import wait_for
from tui.ingress_pane import IngressPane
from tui.share_cli import build_viewer_app


def test_the_viewer_shows_the_owners_ingress_tab() -> None:
    store, _ = store_of("f22", clock=lambda: T0)
    pub = Publisher(
        store,
        hosts=FakeHosts(ANSWERS["f22"]),
        https=FakeHttps(SERVED["f22"]),
        clock=lambda: 100.0,
        wall_clock=lambda: T0,
    )
    owned = try_own(place_for("viewer-ingress"))
    assert owned is not None
    host = Host(owned, banner="demo: f22", clock=lambda: T0)
    try:
        owners = pub.publish()
        assert owners.ingress is not None and owners.ingress.hosts >= 3
        host.offer(owners)
        sock = connect(owned.place)
        assert sock is not None
        viewer = ViewerPublisher(sock, interval=0.05)
        app = build_viewer_app(viewer, clock=lambda: 100.0, wall_clock=lambda: T0)
        wait_for(lambda: host.viewers == 1, 5, "the viewer attached")

        async def go() -> None:
            async with app.run_test(size=(100, 30)) as pilot:
                pane = app.query_one(IngressPane)
                deadline = asyncio.get_running_loop().time() + 10
                while pane.view is None and asyncio.get_running_loop().time() < deadline:
                    await pilot.pause(0.05)
                await pilot.press("6")
                await pilot.pause(0.3)
                assert pane.display and pane.view is not None
                assert [r.host for r in pane.view.host_rows()] == [r.host for r in owners.ingress.host_rows()]
                rows = {k.split("|")[2]: v for k, v in pane.row_texts("ingress-hosts").items() if k.startswith("h|")}
                assert rows["shop.contoso.com"][1] == "✗ NXDOMAIN"
                assert rows["www.contoso.com"][1].startswith("✗ 20.31.99.7")
                assert rows["www.contoso.com"][2].startswith("✗ timeout")  # what clients here get first
                assert rows["api.contoso.com"][2].startswith("✓ 62d")

        asyncio.run(go())
    finally:
        host.close()
