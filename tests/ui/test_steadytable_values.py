"""SteadyTable draws a changed cell alone: the cells around it are drawn from what was
rendered for the same value, and the screen is what a fresh table shows."""

from __future__ import annotations

import pytest
from rich.segment import Segment
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widgets import DataTable

from tui.steadytable import SteadyTable


class One(App[None]):
    def __init__(self, changed: dict[tuple[int, int], str] | None = None) -> None:
        super().__init__()
        self.changed = changed or {}

    def compose(self) -> ComposeResult:
        yield SteadyTable(id="t")

    def on_mount(self) -> None:
        t = self.query_one(SteadyTable)
        for c in range(6):
            t.add_column(f"c{c}", width=9, key=f"c{c}")
        for r in range(40):
            t.add_row(
                *[Text(self.changed.get((r, c), f"{r}.{c}"), style="green" if c % 2 else "bold") for c in range(6)],
                key=str(r),
            )
        t.focus()


def lines(t: SteadyTable) -> list[tuple[str, list[Segment]]]:
    """The table's lines on screen, text and styled segments."""
    strips = t.render_lines(Region(0, 0, t.size.width, t.size.height))
    return [(strip.text, list(strip)) for strip in strips]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(row, column) of every cell DataTable renders through Rich."""
    cells: list[tuple[int, int]] = []
    render = DataTable._render_cell

    def counted(self, row_index, column_index, *a, **kw):  # type: ignore[no-untyped-def]
        cells.append((row_index, column_index))
        return render(self, row_index, column_index, *a, **kw)

    monkeypatch.setattr(DataTable, "_render_cell", counted)
    return cells


async def test_one_changed_cell_is_the_only_cell_rendered_again(drawn: list[tuple[int, int]]) -> None:
    app = One()
    async with app.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        t = app.query_one(SteadyTable)
        first = len(drawn)
        assert first >= 6 * 12  # a screenful drawn once
        drawn.clear()
        t.update_cell("3", "c2", Text("moved", style="bold"))
        await pilot.pause()
        assert drawn == [(3, 2)]
        shot = lines(t)
        assert any("moved" in text for text, _ in shot)
    fresh = One(changed={(3, 2): "moved"})
    async with fresh.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        assert lines(fresh.query_one(SteadyTable)) == shot  # the same lines as drawing them all


async def test_the_same_value_again_is_not_rendered_but_an_equal_new_text_is(drawn: list[tuple[int, int]]) -> None:
    app = One()
    async with app.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        t = app.query_one(SteadyTable)
        same = t.get_cell("5", "c1")
        drawn.clear()
        t.update_cell("5", "c1", same)  # the very object drawn: nothing to render
        await pilot.pause()
        assert drawn == []
        t.update_cell("5", "c1", Text("5.1", style="red"))  # a new Text (another style): drawn
        await pilot.pause()
        assert drawn == [(5, 1)]
