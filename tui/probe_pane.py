"""The machinery the DNS and egress panes share: a table of vantage rows and probe rows,
rendered from the frame's probe view (plan + stats + the keys that changed), diffed by
row key, redrawn only where it is seen.

A pane subclass sets ``COLUMNS``, ``KEY`` (the history's key type: ``ProbeKey`` or
``EgressKey``) and ``FEED`` (the frame's part: "dns" or "egress"), builds its rows in
``_take_plan`` (``self._rows``: key -> row info with ``key`` and ``order``;
``self._vantage_order``), and says how rows look (``_row_cells``, ``_vantage_cells``,
``_update_status``), how a row's stats are summarised for the redraw check
(``_raw_sig``), what health a row has (``_health_of``) and which screen opens on Enter
(``_open_detail``). A pane never reads a source: everything comes in a frame.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from typing import Any

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from probes.engine.frame import AgentsView, Frame, ProbeView
from probes.engine.health import Health
from probes.engine.history import Brief, Stats
from tui.columns import SCROLLBAR, Flex, elide_middle, fit
from tui.format import BAD, DIM, OK, WARN
from tui.probe_text import short_vantage
from tui.steadytable import SteadyTable

LATEST = object()  # a dirty row's stats: the latest view's, read when it is drawn
_NOT = object()


class SortText(Text):
    """A cell that carries its row's place: DataTable.sort orders rows by it."""

    order: tuple = ()


def cell(text: str | Text, order: tuple) -> SortText:
    t = SortText()
    t.append_text(text if isinstance(text, Text) else Text(text))
    t.no_wrap = True
    t.overflow = "ellipsis"
    t.order = order
    return t


def signature(c: Any) -> Any:
    """What a cell shows (text and styles): equal signatures need no update_cell."""
    if isinstance(c, Text):
        return (c.plain, str(c.style), tuple((s.start, s.end, str(s.style)) for s in c.spans))
    return c


def shown(widget: Any) -> bool:
    """The widget and every ancestor display: a hidden tab's pane skips its ticks."""
    node: Any = widget
    while node is not None and hasattr(node, "display"):
        if not node.display:
            return False
        node = node.parent
    return True


class ProbeTable(SteadyTable):
    """The pane's table: `p` toggles problems only; scrolling draws rows that missed values."""

    def action_toggle_problems(self) -> None:
        pane = self.parent
        if isinstance(pane, ProbePane):
            pane.toggle_problems()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        pane = self.parent
        if isinstance(pane, ProbePane):
            pane.flush_visible()  # rows scrolled into view get the values they missed

    def on_resize(self) -> None:
        pane = self.parent
        if isinstance(pane, ProbePane):
            pane.flush_visible()  # rows a taller table shows get the values they missed


class ProbePane(Vertical):
    COLUMNS: tuple[tuple[str, str, int], ...] = ()
    FLEX: dict[str, Flex] = {}  # name columns that take the width they need (tui.columns)
    FILTER_WHAT = "rows"  # what `/` filters, as the key bar says it
    PALETTE_SCOPE = ""  # the palette's prefix for this pane's rows ("dns", "egress")
    KEY: Any = tuple  # the history key type (a NamedTuple)
    FEED = ""  # the frame's part this pane shows: "dns" or "egress"
    NO_PLAN: Any = None  # the plan a view without one (a recording's plan recorded as none) reads as
    # the outcomes a row's health is judged with (`judge`), from a view that judges its rows
    # without decoding them (a replay's `healths`); None: every changed row decoded (a pane
    # whose `_on_result` reads every new result)
    OUTCOMES: Any = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problems_only = False
        self.filter = ""  # `/`: rows whose vantage, resolver/target or name contain it
        self.widths: dict[str, int] = {k: w for k, _, w in self.COLUMNS}
        self.frame: Frame | None = None  # the latest frame handed over (shown or not)
        self.agents: AgentsView | None = None
        self.error = ""  # the service's error line, from the frame
        self._view: ProbeView | None = None
        self._plan: Any = None
        self._rows: dict[Any, Any] = {}  # every planned row: key -> row info (key, order)
        self._counted: dict[Any, Any] | None = None  # the _rows that _counts counts
        self._counts: Counter[str] = Counter()
        self._shown: set[str] = set()  # row keys in the table
        self._cells: dict[str, list[Any]] = {}  # row key -> last cell signatures, for diffing
        self._raw: dict[str, tuple] = {}  # row key -> last stats signature
        self._stats: dict[Any, Stats] = {}  # the rows' stats taken (not kept for a view judged from its bytes)
        self._lazy = False  # the view's rows decode when read: judged from their bytes, read when drawn
        self._stale: set[Any] = set()  # rows to draw from the latest view once on screen (lazy)
        self._flat: dict[Any, Health] = {}  # key -> health, as in `_health`
        self._unreach: set[Any] = set()  # the plan's rows whose vantage cannot reach their far end
        self._tally: Counter[Health] | None = None  # `tally`
        # off-screen rows with newer stats: a probe row's (info, stats or LATEST: the latest
        # view's, read when drawn), a vantage row's (vantage, None)
        self._dirty: dict[str, tuple[Any, Any]] = {}
        self._health: dict[str, dict[Any, Health]] = {}  # vantage -> key -> health
        self._vantage_order: dict[str, int] = {}
        self._vantage_note: dict[str, str] = {}
        self._agent_nodes: dict[str, str] = {}  # vantage -> node, for vantages an agent probes
        self._seen_version = -1
        self._status: Text | None = None
        self._cursor_before_clear: str | None = None
        self.ticks = 0

    @property
    def table(self) -> ProbeTable:
        return self.query_one(ProbeTable)

    def focus(self, scroll_visible: bool = True) -> ProbePane:
        self.table.focus(scroll_visible)
        return self

    def on_show(self) -> None:
        self.tick()  # a tab just opened shows the latest frame now, not at the next one

    # --- hooks ----------------------------------------------------------------------------
    def _take_plan(self, plan: Any) -> None:
        raise NotImplementedError

    def _row_cells(self, info: Any, st: Stats | None) -> list[Any]:
        raise NotImplementedError

    def _vantage_cells(self, v: str) -> list[Any]:
        raise NotImplementedError

    def _update_status(self, plan: Any) -> None:
        raise NotImplementedError

    def _raw_sig(self, st: Stats) -> tuple:
        raise NotImplementedError

    def _health_of(self, info: Any, st: Stats | Brief | None) -> Health:
        raise NotImplementedError

    def _on_result(self, info: Any, st: Stats) -> None:
        """A row got new stats (before its health is taken)."""

    def _open_detail(self, info: Any) -> None:
        raise NotImplementedError

    def _why_not(self, info: Any) -> str:
        """Why this row's vantage cannot reach its far end ("" when it can): grey, never failing."""
        return ""

    def _needs(self) -> dict[str, int]:
        """The widest value of each FLEX column, in cells."""
        return {}

    # --- widths ----------------------------------------------------------------------------
    def on_resize(self) -> None:
        if self._plan is not None and self._relayout():
            with self.app.batch_update():
                self._sync_rows()

    def _relayout(self) -> bool:
        """Fit the columns to the pane's width; True when they moved (the rows were cleared
        and must be added again, drawn at the new widths)."""
        total = self.size.width - SCROLLBAR
        if total <= 0 or not self.FLEX:
            return False
        widths = fit(total, [(k, w) for k, _, w in self.COLUMNS], self.FLEX, self._needs())
        if widths == self.widths:
            return False
        self.widths = widths
        table = self.table
        for col in table.columns.values():
            w = widths.get(str(col.key.value))
            if w is not None:
                col.width = w
                col.auto_width = False
        self._cursor_before_clear = self._cursor_row_key()
        table.clear()
        self._shown.clear()
        self._cells.clear()
        self._raw.clear()
        self._dirty.clear()
        self._stale.clear()  # the rows are added again (`_sync_rows`)
        return True

    def fit_text(self, col: str, text: str) -> str:
        """`text` elided in the middle to the column's width."""
        return elide_middle(text, self.widths.get(col, len(text)))

    # --- the tick ------------------------------------------------------------------------
    def tick(self, frame: Frame | None = None) -> None:
        """Render `frame` (None: the last one handed over). Cheap when nothing changed; a
        hidden pane keeps the frame and renders it when shown."""
        if frame is not None:
            self.frame = frame
        frame = self.frame
        if frame is None or not self.is_mounted or not shown(self):
            return
        view: ProbeView | None = getattr(frame, self.FEED)
        if view is None:
            return
        self.ticks += 1
        agents_moved = frame.agents is not self.agents
        self.agents = frame.agents
        if view is self._view and not (self._agent_nodes and (agents_moved or self.ticks % 8 == 0)):
            return
        plan = view.plan if view.plan is not None else self.NO_PLAN
        structural = plan is not self._plan
        if structural:
            self._take_plan(plan)
            self._unreach = {k for k, info in self._rows.items() if self._why_not(info)}
            for k in self._unreach:  # never probed: their health is known now
                self._health.setdefault(k.vantage, {})[k] = Health.UNREACHABLE
            self._flat = {k: h for hs in self._health.values() for k, h in hs.items()}
            self._tally = None
            self._stale.clear()
            self._relayout()
        self.error = view.error
        stats = view.stats
        # a replay's rows (decoded when read) judged from their bytes: a seek decodes only
        # the rows drawn, not the thousands it moved
        healths: Any = getattr(stats, "healths", None) if self.OUTCOMES is not None else None
        lazy = healths is not None
        everything = structural or lazy != self._lazy
        if lazy != self._lazy:
            self._lazy = lazy
            self._stats.clear()
        keys: list[Hashable]
        if everything:
            keys = list(stats)
        elif view.version == self._seen_version:
            keys = []
        elif view.since == self._seen_version:
            keys = list(view.changed)
        elif lazy:  # frames went by unseen (a hidden tab): every row judged again, from its bytes
            keys = list(stats)
        else:  # frames went by unseen (a hidden tab): what differs from what we drew
            mine = self._stats
            keys = [k for k, st in stats.items() if mine.get(k) is not st]
        self._seen_version = view.version
        self._view = view
        rows = self._rows
        if lazy and len(keys) * 2 >= len(stats):  # a seek: every row judged, in the view's order
            keys = list(stats)
            touched = self._judged(keys, healths(None, self.OUTCOMES))
        elif lazy:
            keys = [k for k in keys if k in rows]
            touched = self._judged(keys, healths(keys, self.OUTCOMES))
        else:
            keys = [k for k in keys if k in rows and k in stats]
            touched = self._judge(keys, stats)
        with self.app.batch_update():
            if structural or (self.problems_only and touched):
                self._sync_rows()
            if lazy:  # drawn from the latest view when on screen (a frozenset's keys: not hashed again)
                self._stale.update(keys if everything or not isinstance(view.changed, frozenset) else view.changed)
            else:
                dirty, row_key, mine = self._dirty, self._row_key, self._stats
                for key in keys:
                    dirty[row_key(key)] = (rows[key], mine[key])
            if self._agent_nodes and (agents_moved or self.ticks % 8 == 0):
                touched |= set(self._agent_nodes)  # "agent 12s ago" moves on
            # a vantage's header too waits until on screen (a seek at 1,000 nodes touches all)
            for v in set(self._vantage_order) if structural else touched:
                self._dirty[self._vantage_key(v)] = (v, None)
            self.flush_visible()
            self._update_status(self._plan)

    def _judge(self, keys: list[Hashable], stats: Mapping[Hashable, Stats]) -> set[str]:
        """Take the stats of `keys` (planned rows): each row's health; the vantages whose
        rows' healths moved."""
        rows, mine = self._rows, self._stats
        moved: list[tuple[Any, Health]] = []
        flat = self._flat
        for key in keys:
            info = rows[key]
            st = mine[key] = stats[key]
            self._on_result(info, st)
            h = self._health_of(info, st)
            if flat.get(key) is not h:
                moved.append((key, h))
        return self._moved(moved)

    def _judged(self, keys: list[Hashable], healths: list[Health]) -> set[str]:
        """`_judge` from the rows' healths (a view's `healths`: none decoded); a row the
        plan does not have, or whose vantage cannot reach it (grey whatever it holds), is
        left as it is."""
        flat, rows, unreach = self._flat, self._rows, self._unreach
        moved = [(k, h) for k, h in zip(keys, healths) if flat.get(k, _NOT) is not h]
        return self._moved([(k, h) for k, h in moved if k in rows and k not in unreach])

    def tally(self) -> Counter[Health]:
        """How many rows have each health (counted again only after one moved)."""
        if self._tally is None:
            self._tally = Counter(self._flat.values())
        return self._tally

    def _moved(self, moved: list[tuple[Any, Health]]) -> set[str]:
        """Rows' new healths; the vantages they are in."""
        flat, health = self._flat, self._health
        touched: set[str] = set()
        if moved:
            self._tally = None
        for key, h in moved:
            flat[key] = h
            v = key.vantage
            vh = health.get(v)
            if vh is None:
                vh = health[v] = {}
            vh[key] = h
            touched.add(v)
        return touched

    def _stats_of(self, key: Hashable) -> Stats | None:
        """A row's stats now: the latest view's, read (decoded) now when it decodes rows when read."""
        if self._lazy:
            view = self._view
            return view.stats.get(key) if view is not None else None
        return self._stats.get(key)

    # --- rows ----------------------------------------------------------------------------
    @staticmethod
    def _row_key(k: tuple) -> str:
        return "r|" + "|".join(k)

    def _key_of(self, row_key: str) -> Any:
        """The history key of a probe row's key ("r|…"), or None for a vantage row."""
        if not row_key.startswith("r|"):
            return None
        return self.KEY(*row_key.split("|", len(self.KEY._fields))[1:])

    @staticmethod
    def _vantage_key(v: str) -> str:
        return f"v|{v}"

    def _row_count(self, v: str) -> int:
        """How many planned rows vantage `v` has (counted once per plan: a scan of every
        row per vantage header was O(vantages x rows) per frame at 5,000 nodes)."""
        if self._counted is not self._rows:
            self._counted = self._rows
            self._counts = Counter(k.vantage for k in self._rows)
        return self._counts.get(v, 0)

    def vantage_health(self, v: str) -> Health:
        hs = self._health.get(v, {})
        if not hs:
            return Health.PENDING if self._row_count(v) else Health.GOOD
        probed = [h for h in hs.values() if h is not Health.UNREACHABLE]  # grey rows do not colour it
        if not probed:
            return Health.PENDING if len(hs) < self._row_count(v) else Health.UNREACHABLE
        return min(probed, key=lambda h: h.rank)

    def vantage_summary(self, v: str, words: dict[str, str]) -> Text:
        """'2/4 fail', '1/8 flaky', '3/8 done', '8/8 ok' for a vantage's header row;
        `words` names the none/warn/pending cases in the pane's language."""
        every = self._health.get(v, {})
        hs = {k: x for k, x in every.items() if x is not Health.UNREACHABLE}
        total = self._row_count(v) - (len(every) - len(hs))
        bad = sum(1 for x in hs.values() if x is Health.FAILING)
        warn = sum(1 for x in hs.values() if x is Health.DEGRADED)
        if not total:
            return Text("not here" if every else words["none"], style=DIM)
        if bad:
            return Text(f"{bad}/{total} fail", style=BAD)
        if warn:
            return Text(f"{warn}/{total} {words['warn']}", style=WARN)
        if len(hs) < total:
            return Text(f"{len(hs)}/{total} {words['pending']}", style=DIM)
        return Text(f"{total}/{total} ok", style=OK)

    def row_matches(self, key: Any, needle: str) -> bool:
        """The `/` filter: a case-insensitive part of the vantage (as shown or in full) or
        of any other field of the row's key (resolver, name; target)."""
        if not needle:
            return True
        n = needle.lower()
        return n in short_vantage(key.vantage).lower() or any(n in str(f).lower() for f in key)

    def _wanted(self) -> list[tuple[str, tuple, Any]]:
        needle = self.filter.strip()
        rows = [info for info in self._rows.values() if self.row_matches(info.key, needle)]
        with_rows = {info.key.vantage for info in rows}
        out: list[tuple[str, tuple, Any]] = []
        for v, vi in self._vantage_order.items():
            if self.problems_only and not self.vantage_health(v).problem:
                continue
            if needle and v not in with_rows:
                continue
            out.append((self._vantage_key(v), (vi, 0), v))
        keep = {o[2] for o in out}
        for info in rows:
            if info.key.vantage in keep:
                out.append((self._row_key(info.key), info.order, info))
        return out

    def _cursor_row_key(self) -> str | None:
        table = self.table
        if table.row_count and 0 <= table.cursor_row < table.row_count:
            try:
                return str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)
            except Exception:  # noqa: BLE001
                return None
        return None

    def view_words(self) -> list[tuple[str, str]]:
        """The view's state for the status line, right after its title (cut last at 80
        columns): problems only, the filter."""
        out: list[tuple[str, str]] = []
        if self.problems_only:
            out.append(("problems only (p) · ", "magenta"))
        if self.filter.strip():
            out.append((f"filter “{self.filter.strip()}” · ", "magenta"))
        return out

    def empty_words(self) -> str:
        """What an empty table says, in words ("" when it has rows or no plan yet)."""
        if self._plan is None or self._shown:
            return ""
        if self.filter.strip():
            return f"no row matches “{self.filter.strip()}” (Esc clears the filter)"
        if self.problems_only:
            return "no problems: every vantage answers (p shows all rows)"
        return ""

    def _show_empty(self) -> None:
        words = self.empty_words()
        for w in self.query(".empty"):
            if isinstance(w, Static):
                w.update(Text(words, style=DIM))
                w.display = bool(words)

    def set_filter(self, needle: str) -> None:
        if needle == self.filter:
            return
        self.filter = needle
        if self._plan is not None:
            with self.app.batch_update():
                self._sync_rows()
                self._update_status(self._plan)

    def _sync_rows(self) -> None:
        table = self.table
        wanted = self._wanted()
        wanted_keys = {k for k, _, _ in wanted}
        cursor_key = self._cursor_row_key() or self._cursor_before_clear
        self._cursor_before_clear = None
        for k in [k for k in self._shown if k not in wanted_keys]:
            table.remove_row(k)
            self._dirty.pop(k, None)
            self._shown.discard(k)
            self._cells.pop(k, None)
            self._raw.pop(k, None)
        added = False
        for k, order, what in wanted:
            if k in self._shown:
                continue
            if isinstance(what, str):
                cells = self._vantage_cells(what)
            elif self._lazy:  # drawn when on screen (flush_visible), decoded then
                cells = self._row_cells(what, None)
                self._stale.add(what.key)
            else:
                cells = self._row_cells(what, self._stats.get(what.key))
            cells[0] = cell(cells[0], order)
            table.add_row(*cells, key=k)
            self._cells[k] = [signature(c) for c in cells]
            self._shown.add(k)
            added = True
        if added:
            table.sort(key=lambda row: row[0].order if isinstance(row[0], SortText) else ())
        if cursor_key is not None and cursor_key in self._shown:
            table.move_cursor(row=table.get_row_index(cursor_key), animate=False)
        self._show_empty()
        if added and self._lazy:
            self.flush_visible()

    def select_key(self, key: Any) -> bool:
        """Put the cursor on a row (a finding's evidence), clearing a filter or problems-only
        view that hides it. `key` is a history key, or a tui.evidence.Evidence: the first
        matching row in display order, a failing one first. False when there is none."""
        if hasattr(key, "matches"):
            found = sorted((info for info in self._rows.values() if key.matches(info.key)), key=lambda i: i.order)
            if getattr(key, "failing_first", False):
                failing = [i for i in found if self._health.get(i.key.vantage, {}).get(i.key, Health.GOOD).problem]
                found = failing + [i for i in found if i not in failing]
            info = found[0] if found else None
        else:
            info = self._rows.get(key)
        if info is None:
            return False
        rk = self._row_key(info.key)
        if rk not in self._shown:
            self.filter = ""
            self.problems_only = False
            self._sync_rows()
            if self._plan is not None:
                self._update_status(self._plan)
        if rk not in self._shown:
            return False
        self.table.move_cursor(row=self.table.get_row_index(rk), animate=False)
        return True

    def palette_rows(self) -> list[tuple[str, Any, str]]:
        """(label, history key, help) for every row probed so far, from the latest frame
        (a hidden tab has not drawn it): the palette's search."""
        view: ProbeView | None = getattr(self.frame, self.FEED, None) if self.frame is not None else None
        keys = sorted(view.stats) if view is not None else sorted(info.key for info in self._rows.values())
        return [
            (f"{self.PALETTE_SCOPE}: {short_vantage(k.vantage)} " + " ".join(str(f) for f in k[1:]), k, k.vantage)
            for k in keys
        ]

    def flush_visible(self, everything: bool = False) -> None:
        """Redraw the rows on screen whose stats moved; off-screen rows wait until they
        scroll into view. At 1,000 results/s nearly every row changes every tick, but only
        a screenful is ever drawn: this keeps a tick's cost to what can be seen."""
        dirty, stale = self._dirty, self._stale
        if not dirty and not stale:
            return
        table = self.table
        if everything:
            keys = list(dirty) + [rk for k in stale if (rk := self._row_key(k)) in self._shown and rk not in dirty]
        else:
            first = max(0, int(table.scroll_y))
            rows = table.ordered_rows[first : first + max(1, table.size.height)]
            keys = [r.key.value for r in rows]
        for rk in keys:
            entry = dirty.pop(rk, None)
            if entry is None:
                key = self._key_of(rk) if stale else None
                if key is None or key not in stale:
                    continue
                stale.discard(key)
                entry = (self._rows.get(key), LATEST)
                if entry[0] is None:
                    continue
            info, st = entry
            if st is None:  # a vantage's header
                self._put(rk, self._vantage_cells(info))
                continue
            if st is LATEST:
                st = self._stats_of(info.key)
                if st is None:  # no stats (any more): drawn as not probed yet
                    self._raw.pop(rk, None)
                    self._put(rk, self._row_cells(info, None))
                    continue
            self._put(rk, lambda i=info, s=st: self._row_cells(i, s), self._raw_sig(st))

    def _put(self, row_key: str, cells: Any, raw: tuple | None = None) -> None:
        """update_cell for what changed in a shown row. `raw`, when given, is a cheap
        signature of the row: unchanged rows cost one comparison."""
        old = self._cells.get(row_key)
        if old is None:
            return
        if raw is not None:
            if self._raw.get(row_key) == raw:
                return
            self._raw[row_key] = raw
        if callable(cells):
            cells = cells()
        table = self.table
        for i, (col, _, _) in enumerate(self.COLUMNS):
            c = cells[i]
            sig = signature(c)
            if old[i] == sig:
                continue
            old[i] = sig
            if i == 0:
                c = cell(c, self._order_of(row_key))
            table.update_cell(row_key, col, c, update_width=False)

    def _order_of(self, row_key: str) -> tuple:
        if row_key.startswith("v|"):
            return (self._vantage_order.get(row_key[2:], 0), 0)
        info = self._rows.get(self._key_of(row_key))
        return info.order if info is not None else ()

    # --- actions ---------------------------------------------------------------------------
    def toggle_problems(self) -> None:
        self.problems_only = not self.problems_only
        if self._plan is not None:
            with self.app.batch_update():
                self._sync_rows()
                self._update_status(self._plan)

    def selected(self) -> Any:
        table = self.table
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        except Exception:  # noqa: BLE001
            return None
        return self._rows.get(self._key_of(key)) if key else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        info = self.selected()
        if info is not None:
            self._open_detail(info)

    def unreachable_rows(self) -> int:
        return sum(1 for hs in self._health.values() for h in hs.values() if h is Health.UNREACHABLE)

    def plain_rows(self) -> list[str]:
        """The table as text, in display order (tests)."""
        self.flush_visible(everything=True)
        table = self.table
        out = []
        for i in range(table.row_count):
            cells = table.get_row_at(i)
            out.append(" | ".join(c.plain if isinstance(c, Text) else str(c) for c in cells))
        return out
