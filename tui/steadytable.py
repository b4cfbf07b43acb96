"""A DataTable that keeps its rendered cells across tab switches.

Textual's DataTable drops every rendered cell twice on each tab switch, although nothing
in it changed: the Resize it gets when its tab is shown again (even at the same size)
bumps the counter every cache key carries, and the focus change on the way in restyles
it (`:focus` tints it), which clears every cache. Re-rendering a screenful of cells
through Rich is most of a switch's cost: 75-100 ms of the UI thread for a 24-row,
8-column table on this project's reference machine, 20-60 ms with this class.

Both are safe to skip here:

* a Resize to the size the table already had changes no cell: our tables fix their
  column widths (tui.columns) and every row is one line high, so a cell's rendering does
  not depend on the table's size (a real size change still goes to DataTable's handler);
* the rendered cells and lines are keyed by the pseudo-class state (focus, hover) they
  were drawn in, so a focus change only needs the per-state component styles recomputed.
  Only a restyle the table has not been drawn in before (a new theme, new classes, a new
  pseudo-class state) clears the caches as DataTable does.

What the caches hold is what the current rows look like, in the states drawn: renders of
earlier versions of the rows (they can never be used again) are dropped at the next draw.

A changed cell (`update_cell`) costs its row, not the table: DataTable bumps the update
count every cache key carries, so one new cell re-renders every cell on screen and marks
the whole table dirty. Here, while every row is one line high, the cell's row alone is
dropped from the caches (at the next draw) and only its line is marked dirty; a row off
screen marks nothing. New rows' cells are not measured either while every column has a
fixed width (DataTable measures each new cell for columns that fit their content).

And a cache by content, under those: a cell's rendering is also kept under its place and
state with the value it was drawn from, and reused while the value is the same object (or
an equal string). Where the whole table is drawn again anyway (a row added or removed, a
bulk update, DataTable's own update paths, a tab whose rows moved while it was hidden)
and in a changed row, a draw costs the cells whose values changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import zip_longest
from typing import Any

from textual import events
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, DuplicateKey, Row, RowKey

# cells kept by value: a few screenfuls in each focus/cursor state a table is drawn in
BY_VALUE_BOUND = 4096


class SteadyTable(DataTable):  # type: ignore[type-arg]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._style_keys: set[tuple[Any, ...]] = set()
        self._last_size: Any = None
        self._drawn_count = -1  # the update count the caches hold renders of
        self._stale: set[RowKey] = set()  # rows with a cell changed since the last draw
        # (row, column, index, style, cursor state, width) -> (value drawn, its lines): a
        # changed value replaces its cell's entry; rows gone leave theirs until the bound
        self._by_value: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def _cell_value(self, row_index: int, column_index: int) -> Any:
        column_key = self._column_locations.get_key(column_index)
        if row_index == -1:
            return self.columns[column_key].label
        row_key = self._row_locations.get_key(row_index)
        if column_index == -1:
            return self.rows[row_key].label
        return self._data[row_key][column_key]

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Any,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> Any:
        try:
            value = self._cell_value(row_index, column_index)
        except (KeyError, IndexError):  # DataTable knows what to draw for a cell it lacks
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._header_row_key if row_index == -1 else self._row_locations.get_key(row_index)
        key = (
            row_key,
            self._column_locations.get_key(column_index),
            row_index,  # the click meta carries the index
            column_index,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self.show_cursor,
            self._pseudo_class_state,
            width,
        )
        hit = self._by_value.get(key)
        if hit is not None and (hit[0] is value or (type(value) is str and hit[0] == value)):
            return hit[1]
        lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        if len(self._by_value) >= BY_VALUE_BOUND:
            self._by_value.clear()  # rows long gone, states long left: start again
        self._by_value[key] = (value, lines)
        return lines

    def render_lines(self, crop: Any) -> Any:
        # every cached render carries the update count it was drawn at, so one from an
        # earlier count can never be used again: drop them rather than keep up to 10,000
        # dead cells a table (DataTable only cleared them on the restyles skipped here)
        if self._update_count != self._drawn_count:
            self._drawn_count = self._update_count
            self._stale.clear()
            self._row_render_cache.clear()
            self._cell_render_cache.clear()
            self._line_cache.clear()
            self._row_renderable_cache.clear()
        elif self._stale:
            self._drop_stale()
        return super().render_lines(crop)

    def _drop_stale(self) -> None:
        """Forget the renders of the rows whose cells changed (their keys carry the row key,
        its index or, one line a row, its line)."""
        stale = self._stale
        self._stale = set()
        index = {self._row_locations.get(k) for k in stale} - {None}
        header = self.header_height if self.show_header else 0
        lines = {i + header for i in index if i is not None}
        for cache, part, dead in (
            (self._cell_render_cache, 0, stale),
            (self._row_render_cache, 0, stale),
            (self._line_cache, 0, lines),
            (self._row_renderable_cache, 1, index),
        ):
            for key in [k for k in cache.keys() if k[part] in dead]:
                cache.discard(key)

    def update_cell(
        self, row_key: RowKey | str, column_key: ColumnKey | str, value: Any, *, update_width: bool = False
    ) -> None:
        rk = RowKey(row_key) if isinstance(row_key, str) else row_key
        ck = ColumnKey(column_key) if isinstance(column_key, str) else column_key
        index = self._row_locations.get(rk)
        if update_width or index is None or ck not in self._column_locations or not self._one_line_rows():
            super().update_cell(rk, ck, value, update_width=update_width)  # DataTable's way (or its error)
            return
        self._data[rk][ck] = value
        self._mark(rk, index)

    def update_row(self, row_key: str, cells: Sequence[Any]) -> None:
        """Every cell of a row, in column order: update_cell's way, the row marked once."""
        self.update_rows({row_key: cells})

    def update_rows(self, rows: Mapping[str, Sequence[Any]]) -> None:
        """Every cell of each row (key -> its cells in column order), each row marked once;
        the window is measured once for them all."""
        if not rows:
            return
        keys = [c.key for c in self.ordered_columns]
        if not self._one_line_rows():
            for k, cells in rows.items():
                for col, value in zip(keys, cells):
                    self.update_cell(k, col, value)
            return
        located = []
        for k in rows:
            rk = RowKey(k)
            index = self._row_locations.get(rk)
            if index is None:
                raise CellDoesNotExist(f"No row with key={k!r}.")
            located.append((rk, index))
        data = self._data
        for (rk, _), cells in zip(located, rows.values()):
            data[rk].update(zip(keys, cells))
        if len(located) > max(8, self.row_count // 2):
            # most of the table: one invalidation costs less than marking each row (rows
            # off screen cost nothing to mark: a few hundred of a thousand are marked)
            self._update_count += 1
            self.refresh()
            return
        window = self.window_region
        width = max(self.size.width, self._row_width())
        header = self.header_height if self.show_header else 0
        for rk, index in located:
            self._mark(rk, index, window, width, header)

    def add_rows_keyed(self, rows: Mapping[str, Sequence[Any]]) -> None:
        """Rows one line high at the bottom (key -> its cells in column order), as add_row
        adds them, with the cursor checked and the table invalidated once for them all
        (add_row sets the cursor, a reactive, once per row: most of a 1,000-row fill)."""
        columns = self.ordered_columns
        keys = [c.key for c in columns]
        start = self.row_count
        for k, cells in rows.items():
            rk = RowKey(k)
            if rk in self._row_locations:
                raise DuplicateKey(f"The row key {rk!r} already exists.")
            if len(cells) > len(columns):
                raise ValueError("More values provided than there are columns.")
        for i, (k, cells) in enumerate(rows.items()):
            rk = RowKey(k)
            self._row_locations[rk] = start + i
            self._data[rk] = {c: v for c, v in zip_longest(keys, cells)}
            self.rows[rk] = Row(rk, 1, None, False)
            self._new_rows.add(rk)
        if not rows:
            return
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        if start == 0 and columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # a cell to highlight where there was none (add_row's event)
        self._update_count += 1
        self.check_idle()

    def _row_width(self) -> int:
        return sum(c.get_render_width(self) for c in self.columns.values()) + self._row_label_column_width

    def _mark(
        self, rk: RowKey, index: int, window: Region | None = None, width: int = 0, header: int | None = None
    ) -> None:
        """Row `rk` (at `index`) changed: its renders go at the next draw, its line is dirty."""
        if rk in self._stale:
            return  # its line is already marked
        self._stale.add(rk)
        if header is None:
            header = self.header_height if self.show_header else 0
        y = index + header
        region = Region(0, y, width or max(self.size.width, self._row_width()), 1)
        if (window or self.window_region).overlaps(region):
            self.refresh(region.translate(-self.scroll_offset))

    def replace_rows(self, rows: Mapping[str, Sequence[Any]]) -> None:
        """New cells for the rows the table has, in its order (the same keys): one update
        for the whole table, not one per cell and no clear() and add_row() per row."""
        keys = [c.key for c in self.ordered_columns]
        data = self._data
        for k, cells in rows.items():
            rk = RowKey(k)
            if rk not in data:
                raise CellDoesNotExist(f"No row with key={k!r}.")
            data[rk] = dict(zip(keys, cells))
        self._update_count += 1
        self.refresh()

    def _one_line_rows(self) -> bool:
        """Every row is one line high (a row's line is header + its index); the offsets are
        DataTable's own, cached per update count."""
        return len(self._y_offsets) == self.row_count

    def _update_dimensions(self, new_rows: Any) -> None:
        if all(not c.auto_width for c in self.columns.values()) and not any(
            self.rows[k].auto_height or self.rows[k].label is not None for k in new_rows if k in self.rows
        ):
            new_rows = ()  # nothing to measure: every column's width is fixed, every row's height
        super()._update_dimensions(new_rows)

    def _on_resize(self, event: events.Resize) -> None:
        if event.size == self._last_size:
            event.prevent_default()  # DataTable's handler would re-render every cell
        self._last_size = event.size

    def notify_style_update(self) -> None:
        try:
            key = (self.get_pseudo_class_state(), self.app.theme, self.rich_style, frozenset(self.classes))
        except Exception:  # noqa: BLE001 - not mounted yet (no app, no styles): DataTable's way
            super().notify_style_update()
            return
        if key in self._style_keys:
            # drawn in this state before: its cells are keyed by it, only the component
            # styles (cursor, header) are per state and must be read again
            Widget.notify_style_update(self)
            self._styles_cache.clear()
            self._get_styles_to_render_cell.cache_clear()
            self.refresh()
            return
        self._style_keys.add(key)
        self._by_value.clear()  # a new look: every cell is drawn again
        super().notify_style_update()
