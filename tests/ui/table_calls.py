"""Count what a pane does to its DataTable (the panes must update cells, not rebuild rows)."""

from __future__ import annotations

from typing import Any


def count_table_calls(table: Any) -> dict[str, int]:
    """Wrap add_row, remove_row, update_cell and clear; returns the live counters."""
    calls = {"add": 0, "remove": 0, "update": 0, "clear": 0}
    for name in ("add_row", "remove_row", "update_cell", "clear"):
        orig = getattr(table, name)

        def wrapped(*a: Any, _o: Any = orig, _n: str = name.split("_")[0], **kw: Any) -> Any:
            calls[_n] += 1
            return _o(*a, **kw)

        setattr(table, name, wrapped)
    return calls
