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

One more cache, by content: DataTable keys every rendered cell by the table's update
count, so one `update_cell` (a probe row's latency, a clock) re-renders every cell on
screen at the next draw, and a tab whose rows moved while it was hidden re-renders all of
them when shown. Here a cell's rendering is also kept under its place and state with the
value it was drawn from: while the value is the same object (or an equal string) the
rendering is reused, so a draw costs the cells that changed.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.widget import Widget
from textual.widgets import DataTable


# cells kept by value: a few screenfuls in each focus/cursor state a table is drawn in
BY_VALUE_BOUND = 4096


class SteadyTable(DataTable):  # type: ignore[type-arg]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._style_keys: set[tuple[Any, ...]] = set()
        self._last_size: Any = None
        self._drawn_count = -1  # the update count the caches hold renders of
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
            self._row_render_cache.clear()
            self._cell_render_cache.clear()
            self._line_cache.clear()
        return super().render_lines(crop)

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
