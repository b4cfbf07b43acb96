"""SVG snapshots of the Ingress tab at 80×24 and 120×40: the lab's objects of a scenario
filed as the source files them, the hosts' answers injected (frozen clocks, no network)."""

from __future__ import annotations

from types import MappingProxyType

from textual.widgets import Input

from tests.ingress.helpers import FakeHttps, served, store_of
from tests.ingress.helpers import answer as _answer
from tui.app import AksnetTopApp
from tui.ingress_pane import IngressPane

T0 = 1795172400.0


def answer(host: str, *ips: str, outcome: str = "ok") -> object:
    return _answer(host, *ips, outcome=outcome, at=T0 - 3)


OK = {
    ("local", h): answer(h, ip)
    for h, ip in (
        ("shop.contoso.com", "20.31.150.10"),
        ("api.contoso.com", "20.31.150.10"),
        ("www.contoso.com", "20.31.150.10"),
        ("portal.contoso.com", "20.31.150.20"),
    )
}


class FakeHosts:
    """What the publisher reads from a HostResolver: answers(), version."""

    def __init__(self, answers: dict) -> None:
        self._answers = MappingProxyType(answers)
        self.version = 1
        self.error = ""

    def answers(self):  # type: ignore[no-untyped-def]
        return self._answers


ANSWERS = {
    "f22": {
        ("local", "shop.contoso.com"): answer("shop.contoso.com", outcome="nxdomain"),
        ("local", "www.contoso.com"): answer("www.contoso.com", "20.31.99.7"),
        ("local", "api.contoso.com"): answer("api.contoso.com", "20.31.150.10"),
        ("local", "portal.contoso.com"): answer("portal.contoso.com", "20.31.150.20"),
    },
    "f23": {**OK, ("local", "checkout.contoso.com"): answer("checkout.contoso.com", "20.31.150.10")},
    "f24-probe": {},  # not asked yet: the rows say so
    "ingress": OK,
}


LB, LB2 = "20.31.150.10", "20.31.150.20"


def https(host: str, address: str, outcome: str = "valid", **kw: object) -> object:
    return served(host, address, outcome, at=T0 - 5, **kw)


SERVED = {  # what the HTTPS probe was served (the lab's endpoints, made by hand: frozen dates)
    "f22": [
        https("api.contoso.com", LB, days=62.4),
        https("shop.contoso.com", LB, days=62.4),
        https("www.contoso.com", "20.31.99.7", "timeout", error="no answer within 3s"),
        https("www.contoso.com", LB, days=62.4),
    ],
    "f23": [
        https("api.contoso.com", LB, "expiring", days=5.0),
        https("shop.contoso.com", LB, "untrusted", subject="Kubernetes Ingress Controller Fake Certificate"),
        https("www.contoso.com", LB, "expired", days=-2.0),
        https("portal.contoso.com", LB2, days=60.0, issuer="[bold]R10[/]"),  # markup from a server: shown as text
        https("checkout.contoso.com", LB, "expired", days=-2.0),
    ],
    "f24-probe": [],
    "ingress": [
        https(h, ip, days=d, http_status=200)
        for h, ip, d in (
            ("shop.contoso.com", LB, 75),
            ("api.contoso.com", LB, 60),
            ("www.contoso.com", LB, 45),
            ("portal.contoso.com", LB2, 80),
        )
    ],
}


def app_for(scenario: str) -> AksnetTopApp:
    store, _ = store_of(scenario, clock=lambda: T0)
    return AksnetTopApp(
        store,
        panes=[IngressPane()],
        hosts=FakeHosts(ANSWERS[scenario]),
        https=FakeHttps(SERVED[scenario]),
        clock=lambda: 100.0,
        wall_clock=lambda: T0,
    )


async def _tab(pilot) -> None:  # type: ignore[no-untyped-def]
    pilot.app.query_one(Input).cursor_blink = False
    await pilot.press("2")
    await pilot.pause(0.4)


def test_snapshot_ingress_f22_80x24(snap_compare):
    assert snap_compare(app_for("f22"), terminal_size=(80, 24), run_before=_tab)


def test_snapshot_ingress_f23_120x40(snap_compare):
    assert snap_compare(app_for("f23"), terminal_size=(120, 40), run_before=_tab)


def test_snapshot_ingress_f23_80x24(snap_compare):
    assert snap_compare(app_for("f23"), terminal_size=(80, 24), run_before=_tab)


def test_snapshot_ingress_served_chain_detail_120x40(snap_compare):
    async def run_before(pilot):  # type: ignore[no-untyped-def]
        await _tab(pilot)
        await pilot.press("down", "down", "enter")  # checkout.contoso.com: an expired certificate served
        await pilot.pause(0.4)

    assert snap_compare(app_for("f23"), terminal_size=(120, 40), run_before=run_before)


def test_snapshot_ingress_healthy_80x24(snap_compare):
    assert snap_compare(app_for("ingress"), terminal_size=(80, 24), run_before=_tab)


def test_snapshot_ingress_f24_probe_lb_detail_120x40(snap_compare):
    async def run_before(pilot):  # type: ignore[no-untyped-def]
        await _tab(pilot)
        await pilot.press("tab", "down", "down", "enter")
        await pilot.pause(0.4)

    assert snap_compare(app_for("f24-probe"), terminal_size=(120, 40), run_before=run_before)


def test_snapshot_ingress_host_detail_80x24(snap_compare):
    async def run_before(pilot):  # type: ignore[no-untyped-def]
        await _tab(pilot)
        await pilot.press("down", "down", "enter")  # shop.contoso.com: NXDOMAIN
        await pilot.pause(0.4)

    assert snap_compare(app_for("f22"), terminal_size=(80, 24), run_before=run_before)
