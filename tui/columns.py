"""Column widths that follow the terminal: fixed columns (numbers, outcomes) keep their
width and never wrap; name columns get the width their longest value needs, up to a cap,
out of what is left, and longer values are elided in the middle
(`kubernetes…cluster.local`), where both ends stay readable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text

CELL_PADDING = 1  # DataTable's default: one column each side of a cell
SCROLLBAR = 2  # a vertical scrollbar's width, kept free so a long table never scrolls sideways


@dataclass(frozen=True, slots=True)
class Flex:
    """A name column: at least `low` columns, never more than `cap`."""

    low: int
    cap: int


def elide_middle(text: str, width: int) -> str:
    """`text` in at most `width` cells: its start and end around one '…'."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text
    if width == 1:
        return "…"
    keep = width - 1
    head = keep - keep // 2
    tail = keep // 2
    return text[:head] + "…" + (text[len(text) - tail :] if tail else "")


def elide_text(text: Text, width: int) -> Text:
    """A styled cell in at most `width` cells, cut in the middle, its styles kept where
    the characters are kept."""
    if width <= 0 or cell_len(text.plain) <= width:
        return text
    plain = text.plain
    keep = width - 1
    head = keep - keep // 2
    tail = keep // 2
    out = text[:head]
    out.append("…", style="dim")
    if tail:
        out.append_text(text[len(plain) - tail :])
    out.no_wrap = True
    return out


def fit(
    total: int,
    columns: Sequence[tuple[str, int]],
    flex: Mapping[str, Flex],
    need: Mapping[str, int],
    padding: int = CELL_PADDING,
) -> dict[str, int]:
    """Widths for `columns` ((key, fixed width)) in `total` cells. A column named in
    `flex` gets `need[key]` (its widest value) clamped to [low, cap], shrunk back towards
    `low` (the widest first) when the row would not fit."""
    used = sum(w + 2 * padding for k, w in columns if k not in flex) + sum(2 * padding for k, _ in columns if k in flex)
    room = max(total - used, 0)
    widths = {k: w for k, w in columns}
    want = {k: max(f.low, min(f.cap, need.get(k, f.low))) for k, f in flex.items() if k in widths}
    while sum(want.values()) > room:
        k = max(want, key=lambda x: want[x] - flex[x].low)
        if want[k] <= flex[k].low:
            break
        want[k] -= 1
    widths.update(want)
    return widths
