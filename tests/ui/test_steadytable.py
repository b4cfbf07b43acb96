"""SteadyTable keeps its rendered cells across a tab switch, and draws exactly what a
DataTable draws: the focused cursor after coming back, a new theme's colours."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import ContentSwitcher

from tui.steadytable import SteadyTable


class Two(App[None]):
    def compose(self) -> ComposeResult:
        with ContentSwitcher(initial="a"):
            yield SteadyTable(id="a")
            yield SteadyTable(id="b")

    def on_mount(self) -> None:
        for tid in ("a", "b"):
            t = self.query_one(f"#{tid}", SteadyTable)
            for c in range(6):
                t.add_column(f"c{c}", width=9, key=f"c{c}")
            for r in range(40):
                t.add_row(*[Text(f"{tid}{r}.{c}", style="green" if c % 2 else "bold") for c in range(6)], key=str(r))
        self.query_one("#a", SteadyTable).focus()

    def show(self, tid: str) -> None:
        self.query_one(ContentSwitcher).current = tid
        self.query_one(f"#{tid}", SteadyTable).focus()


def counting(table: SteadyTable) -> list[int]:
    calls = [0]
    render = table._render_cell

    def counted(*a, **kw):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return render(*a, **kw)

    table._render_cell = counted  # type: ignore[method-assign]
    return calls


async def test_a_switch_back_renders_no_cell_again_and_draws_the_same() -> None:
    app = Two()
    async with app.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        before = app.export_screenshot()
        a = app.query_one("#a", SteadyTable)
        calls = counting(a)
        for _ in range(3):
            app.show("b")
            await pilot.pause()
            app.show("a")
            await pilot.pause()
        assert calls[0] == 0  # every cell on screen came from the cache
        assert app.export_screenshot() == before  # the focused cursor, the tint: as drawn first


async def test_a_changed_cell_and_a_new_theme_are_drawn() -> None:
    app = Two()
    async with app.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        a = app.query_one("#a", SteadyTable)
        app.show("b")
        await pilot.pause()
        a.update_cell("0", "c0", Text("changed"))
        app.show("a")
        await pilot.pause()
        assert "changed" in app.export_screenshot()
        calls = counting(a)
        app.theme = "textual-light" if app.theme != "textual-light" else "nord"
        await pilot.pause()
        assert calls[0] > 0  # restyled: drawn again
        light = app.export_screenshot()
    fresh = Two()
    async with fresh.run_test(size=(60, 16)) as pilot:
        fresh.theme = app.theme
        await pilot.pause()
        fresh.query_one("#a", SteadyTable).update_cell("0", "c0", Text("changed"))
        await pilot.pause()
        assert fresh.export_screenshot() == light  # the same as a table that only knew that theme


class TreeAndTable(App[None]):
    def compose(self) -> ComposeResult:
        from tui.topology_pane import TopologyTree

        with ContentSwitcher(initial="tree"):
            yield TopologyTree(id="tree")
            yield SteadyTable(id="b")

    def on_mount(self) -> None:
        from tui.topology_pane import TopologyTree

        tree = self.query_one(TopologyTree)
        tree.root.expand()
        for p in range(3):
            pool = tree.root.add(f"pool{p}", expand=True)
            for n in range(10):
                pool.add_leaf(f"node{p}-{n}")
        tree.focus()
        b = self.query_one("#b", SteadyTable)
        b.add_column("c", width=9)
        b.add_row("x")


async def test_the_topology_tree_keeps_its_lines_across_a_switch() -> None:
    from tui.topology_pane import TopologyTree

    app = TreeAndTable()
    async with app.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        before = app.export_screenshot()
        tree = app.query_one(TopologyTree)
        drawn = [0]  # Tree reads the guides' style only when it draws a line anew
        styles = tree.get_component_styles

        def spy(*names):  # type: ignore[no-untyped-def]
            if names == ("tree--guides",):
                drawn[0] += 1
            return styles(*names)

        tree.get_component_styles = spy  # type: ignore[method-assign]
        sw = app.query_one(ContentSwitcher)
        for _ in range(3):
            sw.current = "b"
            app.query_one("#b", SteadyTable).focus()
            await pilot.pause()
            sw.current = "tree"
            tree.focus()
            await pilot.pause()
        assert drawn[0] == 0  # every line on screen came from the cache
        assert app.export_screenshot() == before  # and looks as first drawn
        await pilot.resize_terminal(70, 16)  # a new width draws them again
        await pilot.pause()
        assert drawn[0] > 0


async def test_renders_of_earlier_rows_are_not_kept() -> None:
    """Each change makes every cached render unusable (they carry the update count): the
    cache holds one screenful of the current rows, not thousands of dead cells."""
    app = Two()
    async with app.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        a = app.query_one("#a", SteadyTable)
        for i in range(60):
            a.update_cell(str(i % 10), "c1", Text(f"v{i}"))
            a.refresh()
            await pilot.pause()
        on_screen = 16 * 6  # at most every visible cell once, in the focused state
        assert 0 < len(a._cell_render_cache) <= on_screen
        assert "v59" in app.export_screenshot()


async def test_a_changed_cell_renders_its_row_alone() -> None:
    """update_cell drops its row's renders only: the other rows on screen come from the
    cache, and what is drawn is what a table built with the new value draws."""
    app = Two()
    async with app.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        a = app.query_one("#a", SteadyTable)
        calls = counting(a)
        a.update_cell("3", "c2", Text("three"))
        a.update_cell("3", "c4", Text("four"))
        await pilot.pause()
        assert calls[0] == 6  # row 3's six cells, no other
        shot = app.export_screenshot()
        assert "three" in shot and "four" in shot and "a2.2" in shot and "a4.2" in shot
    fresh = Two()
    async with fresh.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        b = fresh.query_one("#a", SteadyTable)
        b.update_cell("3", "c2", Text("three"), update_width=True)  # DataTable's own way
        b.update_cell("3", "c4", Text("four"), update_width=True)
        await pilot.pause()
        assert fresh.export_screenshot() == shot


async def test_a_changed_cell_off_screen_is_drawn_when_scrolled_to() -> None:
    app = Two()
    async with app.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        a = app.query_one("#a", SteadyTable)
        calls = counting(a)
        a.update_cell("35", "c1", Text("far"))
        await pilot.pause()
        assert calls[0] == 0  # not on screen: nothing to draw
        assert a.get_cell("35", "c1").plain == "far"
        a.move_cursor(row=35, animate=False)
        await pilot.pause()
        assert "far" in app.export_screenshot()
        a.move_cursor(row=0, animate=False)
        await pilot.pause()
        a.update_cell("35", "c1", Text("again"))  # its old line is cached: dropped at the draw
        a.move_cursor(row=35, animate=False)
        await pilot.pause()
        shot = app.export_screenshot()
        assert "again" in shot and "far" not in shot


async def test_update_cell_of_a_missing_row_is_datatables_error() -> None:
    from textual.widgets.data_table import CellDoesNotExist

    app = Two()
    async with app.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        a = app.query_one("#a", SteadyTable)
        for row, col in (("nope", "c1"), ("1", "nope")):
            try:
                a.update_cell(row, col, "x")
            except CellDoesNotExist:
                continue
            raise AssertionError(f"update_cell({row!r}, {col!r}) did not fail")


async def test_a_taller_row_takes_datatables_way() -> None:
    """With a row two lines high a row's line is not header + index: the table is
    invalidated whole, as DataTable does, and draws the new value."""
    app = Two()
    async with app.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        a = app.query_one("#a", SteadyTable)
        a.add_row(*[Text(f"tall{c}\nline2") for c in range(6)], key="tall", height=2)
        a.move_cursor(row=0, animate=False)
        await pilot.pause()
        before = a._update_count
        a.update_cell("2", "c0", Text("moved"))
        assert a._update_count == before + 1
        await pilot.pause()
        assert "moved" in app.export_screenshot()


class Filled(App[None]):
    """One table filled row by row (add_row) or at once (add_rows_keyed)."""

    def __init__(self, at_once: bool) -> None:
        super().__init__()
        self.at_once = at_once
        self.highlighted: list[int] = []

    def compose(self) -> ComposeResult:
        yield SteadyTable(id="a", cursor_type="row")

    def on_mount(self) -> None:
        t = self.query_one(SteadyTable)
        for c in range(4):
            t.add_column(f"c{c}", width=8, key=f"c{c}")
        rows = {str(r): [Text(f"r{r}.{c}", style="green" if r % 3 else "bold") for c in range(4)] for r in range(50)}
        if self.at_once:
            t.add_rows_keyed(rows)
        else:
            for k, cells in rows.items():
                t.add_row(*cells, key=k)
        t.focus()

    def on_data_table_row_highlighted(self, event: SteadyTable.RowHighlighted) -> None:
        self.highlighted.append(event.cursor_row)


async def test_rows_added_at_once_draw_and_move_as_rows_added_one_by_one() -> None:
    shots = []
    for at_once in (False, True):
        app = Filled(at_once)
        async with app.run_test(size=(50, 12)) as pilot:
            await pilot.pause()
            t = app.query_one(SteadyTable)
            assert t.row_count == 50 and t.get_row("49")[3].plain == "r49.3"
            await pilot.press("down", "down", "pagedown")
            await pilot.pause()
            shots.append((app.export_screenshot(), t.cursor_row, t.virtual_size, app.highlighted))
    assert shots[0] == shots[1]
    assert shots[1][1] > 2 and shots[1][3][-1] == shots[1][1]  # it moved, and said so


async def test_rows_added_at_once_refuse_a_key_twice() -> None:
    from textual.widgets.data_table import DuplicateKey

    app = Filled(True)
    async with app.run_test(size=(50, 12)) as pilot:
        await pilot.pause()
        t = app.query_one(SteadyTable)
        try:
            t.add_rows_keyed({"new": ["x"], "3": ["y"]})
        except DuplicateKey:
            assert t.row_count == 50 and "new" not in {k.value for k in t.rows}  # nothing added
            return
        raise AssertionError("a key the table has was added again")


async def test_many_rows_updated_at_once_draw_their_new_cells() -> None:
    """Most of the table: one invalidation for the table, and what is drawn is what the
    table draws with those values set one cell at a time, DataTable's way."""
    new = {str(r): [Text(f"n{r}.{c}") for c in range(6)] for r in range(0, 40) if r % 4}
    shots = []
    for at_once in (True, False):
        app = Two()
        async with app.run_test(size=(60, 16)) as pilot:
            await pilot.pause()
            a = app.query_one("#a", SteadyTable)
            if at_once:
                before = a._update_count
                a.update_rows(new)
                assert a._update_count == before + 1
            else:
                for k, cells in new.items():
                    for c, v in enumerate(cells):
                        a.update_cell(k, f"c{c}", v, update_width=True)
            await pilot.pause()
            a.move_cursor(row=38, animate=False)
            await pilot.pause()
            shots.append(app.export_screenshot())
            assert a.get_row("38")[5].plain == "n38.5"
    assert shots[0] == shots[1]
    assert "n37.1" in shots[0].replace("&#160;", " ")
