"""Table cells built when first drawn: a row of Rich Text made on demand.

A table of 1,000 rows shows twenty; building every row's Text up front (and again each
time a row's inputs move) is most of a pane's cost. `LazyRow(make)` holds the function
that builds the row's cells; `LazyRow.cells()` builds them once. Each `LazyCell` is one
cell for the DataTable: Rich asks it for its Text (`__rich__`) only when it renders it, so
a row off screen is never built.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text


class LazyRow:
    __slots__ = ("_make", "_cells")

    def __init__(self, make: Callable[[], list[Text]]) -> None:
        self._make: Callable[[], list[Text]] | None = make
        self._cells: list[Text] | None = None

    def cells(self) -> list[Text]:
        if self._cells is None:
            make = self._make
            assert make is not None
            self._cells = make()
            self._make = None  # drop what it closed over
        return self._cells

    @property
    def built(self) -> bool:
        return self._cells is not None

    def plain(self) -> tuple[str, ...]:
        return tuple(c.plain for c in self.cells())

    def lazy(self, width: int) -> list[LazyCell]:
        """The row's `width` cells, for add_row / update_cell."""
        return [LazyCell(self, i) for i in range(width)]


class LazyCell:
    __slots__ = ("row", "index")

    def __init__(self, row: LazyRow, index: int) -> None:
        self.row = row
        self.index = index

    def __rich__(self) -> Text:
        return self.row.cells()[self.index]

    @property
    def plain(self) -> str:
        return self.row.cells()[self.index].plain
