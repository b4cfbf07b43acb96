"""The Ingress tab brings its tables to a new frame by what changed: a host row that is a
new object, a host with a new HTTPS result. Only those rows are touched, the table is not
rebuilt, and what it shows is what a pane given only the last frame shows."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from types import MappingProxyType, SimpleNamespace
from typing import Any

from textual.app import App, ComposeResult

from probes.engine.frame import ProbeView
from probes.engine.history import History
from probes.ingress.view import ClassGroup, HostRow, IngressView, TlsState
from tests.ingress.helpers import answer, served
from tui import ingress_text as it
from tui.ingress_pane import IngressPane, IngressTable

T0 = 1795172400.0
LB = "20.31.150.10"
N = 300


def row(i: int, ip: str = LB, days: float = 60.0) -> HostRow:
    host = f"h{i:03d}.contoso.com"
    return HostRow(
        host=host,
        class_name="nginx",
        source=f"ingress apps/h{i:03d}",
        expected=(LB,),
        answers=(answer(host, ip, at=T0 - 3),),
        dns="ok" if ip == LB else "elsewhere",
        tls=TlsState(f"apps/h{i:03d}", f"h{i:03d}-tls", "le", True, "", "", T0 + days * 86400),
        backends=(("apps/web", 2, 2),),
    )


def view_of(rows: list[HostRow]) -> IngressView:
    group = ClassGroup("nginx", "k8s.io/ingress-nginx", "ingress-nginx", "ingress/nginx", (LB,), 2, 2, tuple(rows))
    return IngressView(groups=(group,), hosts=len(rows))


class Https:
    """A HTTPS probe's history and the ProbeViews the publisher would hand out."""

    def __init__(self) -> None:
        self.history = History(maxlen=10)
        self.view = ProbeView(None, MappingProxyType({}), frozenset(), -1, 0)

    def add(self, *results: Any) -> ProbeView:
        since = self.history.version
        for r in results:
            self.history.add(r.key, r)
        stats = dict(self.view.stats)
        changed = frozenset(r.key for r in results)
        for k in changed:
            stats[k] = self.history.stats(k)
        self.view = ProbeView(None, MappingProxyType(stats), changed, since, self.history.version)
        return self.view


def frame(view: IngressView, https: ProbeView | None) -> Any:
    return SimpleNamespace(ingress=view, https=https, kube=SimpleNamespace(statuses=()))


class One(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.wall_clock = lambda: T0

    def compose(self) -> ComposeResult:
        yield IngressPane()


class Spy:
    """What the hosts' table was asked to do, and how often the pane took the whole view."""

    def __init__(self, pane: IngressPane) -> None:
        table = pane.query_one("#ingress-hosts", IngressTable)
        self.updated: list[str] = []
        self.cleared = 0
        self.replaced = 0
        self.redraws = 0
        orig_redraw = pane.redraw

        def redraw(force: bool = False) -> None:
            self.redraws += 1
            orig_redraw(force)

        pane.redraw = redraw  # type: ignore[method-assign]
        orig_rows, orig_clear, orig_replace = table.update_rows, table.clear, table.replace_rows

        def update_rows(rows: Any) -> None:
            self.updated.extend(rows)
            orig_rows(rows)

        def clear(*a: Any, **kw: Any) -> Any:
            self.cleared += 1
            return orig_clear(*a, **kw)

        def replace_rows(rows: Any) -> None:
            self.replaced += 1
            orig_replace(rows)

        table.update_rows = update_rows  # type: ignore[method-assign]
        table.clear = clear  # type: ignore[method-assign]
        table.replace_rows = replace_rows  # type: ignore[method-assign]


def key(i: int) -> str:
    return f"h|nginx|h{i:03d}.contoso.com|ingress apps/h{i:03d}"


def status(pane: IngressPane) -> str:
    return str(pane.query_one("#ingress-status").render())


async def shown_fresh(view: IngressView, https: ProbeView | None, clock: float = T0) -> tuple[dict, str]:
    """What a pane given only this frame shows."""
    app = One()
    app.wall_clock = lambda: clock
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(IngressPane)
        pane.tick(frame(view, https))
        await pilot.pause()
        return pane.row_texts("ingress-hosts"), status(pane)


async def test_a_changed_row_and_only_it_is_updated() -> None:
    rows = [row(i) for i in range(N)]
    app = One()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(IngressPane)
        pane.tick(frame(view_of(rows), None))
        await pilot.pause()
        spy = Spy(pane)
        moved = list(rows)
        moved[7] = row(7, ip="20.31.99.7")  # resolves elsewhere now
        moved[250] = dataclasses.replace(rows[250], answers=(answer(rows[250].host, LB, at=T0 - 1),))  # same cells
        view = view_of(moved)
        pane.tick(frame(view, None))
        await pilot.pause()
        assert spy.updated == [key(7)]  # 250 is a new object showing the same: not touched
        assert spy.cleared == 0 and spy.replaced == 0 and spy.redraws == 0
        texts = pane.row_texts("ingress-hosts")
        assert texts[key(7)][1].startswith("✗ 20.31.99.7")
        assert texts[key(8)][1].startswith("✓ 20.31.150.10")
        assert "DNS 1 ✗" in status(pane)
        assert pane.selected("ingress-hosts") is not None
        assert pane._rows["ingress-hosts"][key(250)] is moved[250]  # the detail opens the current row
        mine = (texts, status(pane))
    assert mine == await shown_fresh(view, None)


@contextlib.asynccontextmanager
async def served_pane(
    answered: int, size: tuple[int, int]
) -> AsyncIterator[tuple[Any, IngressPane, list[HostRow], IngressView, Https]]:
    """An Ingress pane at `size` showing N hosts, the first `answered` with a HTTPS answer:
    (pilot, pane, rows, view, https)."""
    rows = [row(i) for i in range(N)]
    https = Https()
    first = https.add(*(served(r.host, LB, days=60, at=T0) for r in rows[:answered]))
    app = One()
    async with app.run_test(size=size) as pilot:
        pane = app.query_one(IngressPane)
        view = view_of(rows)
        pane.tick(frame(view, first))
        await pilot.pause()
        yield pilot, pane, rows, view, https


async def test_a_new_https_result_updates_its_host_alone() -> None:
    async with served_pane(20, (80, 24)) as (pilot, pane, rows, view, https):
        spy = Spy(pane)
        then = https.add(served(rows[3].host, LB, "expired", days=-2, at=T0))
        pane.tick(frame(view, then))
        await pilot.pause()
        assert spy.updated == [key(3)] and spy.cleared == 0 and spy.redraws == 0
        assert pane.row_texts("ingress-hosts")[key(3)][2].startswith("✗ expired")
        assert "HTTPS 1 ✗" in status(pane)
        # frames skipped: the next view's `since` is not the one shown; the stats that are
        # new objects say which hosts moved
        https.add(served(rows[4].host, LB, "timeout", at=T0))
        later = https.add(served(rows[5].host, LB, "expiring", days=3, at=T0))
        spy.updated.clear()
        pane.tick(frame(view, later))
        await pilot.pause()
        assert sorted(spy.updated) == [key(4), key(5)] and spy.cleared == 0 and spy.redraws == 0
        assert "HTTPS 3 ✗" in status(pane)  # expired, timeout; ▲ 3d counts with them
        mine = (pane.row_texts("ingress-hosts"), status(pane))
    assert mine == await shown_fresh(view, later)


async def test_a_removed_host_disappears_and_an_added_one_appears() -> None:
    rows = [row(i) for i in range(N)]
    rows[10] = row(10, ip="20.31.99.7")
    app = One()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(IngressPane)
        pane.tick(frame(view_of(rows), None))
        await pilot.pause()
        assert "DNS 1 ✗" in status(pane)
        fewer = rows[:10] + rows[11:]
        pane.tick(frame(view_of(fewer), None))
        await pilot.pause()
        table = pane.query_one("#ingress-hosts", IngressTable)
        assert key(10) not in pane.row_texts("ingress-hosts")
        assert table.row_count == N  # the group's row and N - 1 hosts
        assert "DNS 0 ✗" in status(pane) and f"{N - 1} hosts" in status(pane)
        more = [*fewer, row(N, ip="20.31.99.7")]
        pane.tick(frame(view_of(more), None))
        await pilot.pause()
        assert pane.row_texts("ingress-hosts")[key(N)][1].startswith("✗")
        assert "DNS 1 ✗" in status(pane)
        mine = (pane.row_texts("ingress-hosts"), status(pane))
    assert mine == await shown_fresh(view_of(more), None)


async def test_a_new_minute_moves_the_days_left_without_rebuilding() -> None:
    now = [T0]
    rows = [row(i, days=20.0) for i in range(N)]
    rows[2] = row(2, days=14.01)  # crosses the 14-day warning within the hour
    app = One()
    app.wall_clock = lambda: now[0]
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(IngressPane)
        view = view_of(rows)
        pane.tick(frame(view, None))
        await pilot.pause()
        assert pane.row_texts("ingress-hosts")[key(2)][3] == "✓ 14d"
        assert "TLS 0 ▲" in status(pane)
        spy = Spy(pane)
        now[0] = T0 + 3600
        moved = list(rows)
        moved[5] = row(5, ip="20.31.99.7")
        pane.tick(frame(view_of(moved), None))
        await pilot.pause()
        assert sorted(spy.updated) == [key(2), key(5)] and spy.cleared == 0 and spy.replaced == 0
        assert spy.redraws == 0
        assert pane.row_texts("ingress-hosts")[key(2)][3] == "▲ 14d"
        assert "TLS 1 ▲" in status(pane) and "DNS 1 ✗" in status(pane)
        mine = (pane.row_texts("ingress-hosts"), status(pane))
    assert mine == await shown_fresh(view_of(moved), None, clock=T0 + 3600)


async def test_a_wider_https_cell_fits_the_column_again() -> None:
    async with served_pane(5, (120, 24)) as (pilot, pane, rows, view, https):
        before = pane.widths["ingress-hosts"]["https"]
        spy = Spy(pane)
        wide = https.add(served(rows[1].host, LB, "expired", days=-2, at=T0, issuer="A Much Longer Issuer CA"))
        pane.tick(frame(view, wide))
        await pilot.pause()
        assert pane.widths["ingress-hosts"]["https"] > before
        assert spy.replaced == 1 and spy.cleared == 0 and spy.redraws == 0  # new cells, the same rows
        assert "A Much Longer" in pane.row_texts("ingress-hosts")[key(1)][2]
        mine = (pane.row_texts("ingress-hosts"), status(pane))
    app = One()
    async with app.run_test(size=(120, 24)) as pilot:
        pane = app.query_one(IngressPane)
        pane.tick(frame(view, wide))
        await pilot.pause()
        assert mine == (pane.row_texts("ingress-hosts"), status(pane))


def test_https_width_is_the_cells_width() -> None:
    h = History()
    results = [
        served("a.contoso.com", LB, days=60, at=T0),
        served("b.contoso.com", LB, "expired", days=-2, at=T0, http_status=503),
        served("c.contoso.com", LB, "timeout", error="no answer"),
        served("d.contoso.com", LB, "untrusted", subject="Kubernetes Ingress Controller Fake Certificate"),
        served("e.contoso.com", LB, days=5, at=T0, issuer="I\x1b[31mssuer ✓ 漢字"),
    ]
    for r in results:
        h.add(r.key, r)
    for r in results:
        st = h.stats(r.key)
        assert it.https_width(st) == it.https_cell(st).cell_len, r.host
    assert it.https_width(None) == it.https_cell(None).cell_len
