"""The egress pane: every TCP target × vantage, with outcome, handshake p50, success % and
a sparkline, grouped by vantage.

It reads from its source (a :class:`probes.egressservice.EgressService`, or any object
with ``plan()``, ``history`` and ``error``) the plan (which rows exist, in which order)
and the history (what they show). The table is diffed by row key: rows are added and
removed only when the plan or the filter changes; each tick looks only at keys whose
history moved (``History.snapshot(since)``) and redraws, of those, the rows on screen
and only their cells whose text changed. Off-screen rows catch up when scrolled to.

Every string from outside (target names, node names, errors, packets) goes into Rich
Text as plain text, never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Protocol

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from probes.egress import EgressKey
from probes.egressservice import EgressPlan
from probes.history import History, Stats
from probes.model import LOCAL_VANTAGE
from probes.targets import Target
from tui import format as fmt
from tui.dns_pane import BAD, DIM, OK, WARN, SortText, fmt_ms, short_vantage, spark_levels, spark_text

SHORT_OUTCOME = {
    "open": "open", "refused": "refused", "timeout": "timeout", "unreachable": "unreach",
    "dns-failure": "dns-fail", "local-error": "local-err", "error": "error",
}
STYLE = {"ok": OK, "warn": WARN, "bad": BAD, "pending": DIM}
BULLET = {"ok": "●", "warn": "▲", "bad": "✖", "pending": "◌"}
RANK = {"bad": 0, "warn": 1, "pending": 2, "ok": 3}
MODE_LABEL = {"syn": "syn", "connect": "conn"}

# (column key, header, width): 32+9+6+4+9+5 + 2×6 padding = 77 columns
COLUMNS = (("target", "target", 32), ("last", "last", 9), ("p50", "p50", 6), ("ok", "ok%", 4),
           ("recent", "recent", 9), ("mode", "mode", 5))


class EgressSource(Protocol):
    history: History
    error: str

    def plan(self) -> EgressPlan: ...


def _cell(text: str | Text, order: tuple) -> SortText:
    t = SortText()
    t.append_text(text if isinstance(text, Text) else Text(text))
    t.no_wrap = True
    t.overflow = "ellipsis"
    t.order = order
    return t


def _sig(c: Any) -> Any:
    if isinstance(c, Text):
        return (c.plain, str(c.style), tuple((s.start, s.end, str(s.style)) for s in c.spans))
    return c


def outcome_of(st: Stats | None) -> str:
    return st.last_outcome if st is not None else ""


def health(st: Stats | None) -> str:
    """ok | warn | bad | pending: the last check decides bad; an earlier failure in the
    window makes an open target warn."""
    if st is None:
        return "pending"
    if st.last_outcome != "open":
        return "bad"
    return "warn" if st.successes < st.attempts else "ok"


def success_pct(st: Stats) -> float:
    return 100.0 * st.successes / st.attempts if st.attempts else 0.0


def mode_cell(last: Any) -> Text:
    """'syn' / 'conn'; a connect that ran because SYN mode was refused is marked '*'."""
    mode = getattr(getattr(last, "mode", None), "value", "")
    if not mode:
        return Text("")
    label = MODE_LABEL.get(mode, mode[:4])
    if getattr(last, "fallback", ""):
        return Text(label + "*", style=WARN)
    return Text(label, style=DIM)


@dataclass(frozen=True, slots=True)
class RowInfo:
    key: EgressKey
    target: Target
    order: tuple


class EgressTable(DataTable):
    BINDINGS = [
        Binding("enter", "select_cursor", "Egress row: history of that target", show=False),
        Binding("p", "toggle_problems", "Problems only", tooltip="show only vantages with a failing target"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def action_toggle_problems(self) -> None:
        pane = self.parent
        if isinstance(pane, EgressPane):
            pane.toggle_problems()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        pane = self.parent
        if isinstance(pane, EgressPane):
            pane.flush_visible()


class EgressPane(Vertical):
    PANE_TITLE = "Egress"
    DEFAULT_CSS = """
    EgressPane { height: 1fr; }
    EgressPane > #egress-status { height: auto; max-height: 2; padding: 0 1;
        text-wrap: nowrap; text-overflow: ellipsis; }
    EgressPane > EgressTable { height: 1fr; }
    """

    def __init__(self, source: EgressSource, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.problems_only = False
        self._plan: EgressPlan | None = None
        self._rows: dict[EgressKey, RowInfo] = {}
        self._shown: set[str] = set()
        self._cells: dict[str, list[Any]] = {}
        self._raw: dict[str, tuple] = {}
        self._stats: dict[EgressKey, Stats] = {}
        self._dirty: dict[str, tuple[RowInfo, Stats]] = {}
        self._health: dict[str, dict[EgressKey, str]] = {}
        self._vantage_order: dict[str, int] = {}
        self._vantage_note: dict[str, str] = {}
        self._agent_nodes: dict[str, str] = {}  # vantage -> node, for vantages an agent probes
        self._modes: dict[str, tuple[str, str]] = {}  # vantage -> (mode, fallback reason)
        self._seen_version = -1
        self._status: Text | None = None
        self.ticks = 0

    def compose(self) -> ComposeResult:
        yield Static(Text("Egress: waiting for the cluster…", style=DIM), id="egress-status")
        table = EgressTable(cursor_type="row", zebra_stripes=False, id="egress-table")
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table

    @property
    def table(self) -> EgressTable:
        return self.query_one(EgressTable)

    def focus(self, scroll_visible: bool = True) -> "EgressPane":
        self.table.focus(scroll_visible)
        return self

    def _visible(self) -> bool:
        node: Any = self
        while node is not None and hasattr(node, "display"):
            if not node.display:
                return False
            node = node.parent
        return True

    # --- the tick ------------------------------------------------------------------------
    def on_show(self) -> None:
        self.tick()  # a tab just opened shows its rows now, not at the app's next refresh

    def tick(self, snap: object = None) -> None:
        """Called by the app at its refresh cadence. Cheap when nothing changed."""
        if not self.is_mounted or not self._visible():
            return
        self.ticks += 1
        plan = self.source.plan()
        hist = self.source.history
        structural = plan is not self._plan
        if structural:
            self._take_plan(plan)
        version = hist.version
        changed: dict[Hashable, Stats] = {}
        if version != self._seen_version or structural:
            since = 0 if structural else self._seen_version
            self._seen_version = version
            changed = hist.snapshot(since=max(since, 0))
        touched: set[str] = set()
        for key, st in changed.items():
            info = self._rows.get(key)  # type: ignore[arg-type]
            if info is None:
                continue
            self._stats[info.key] = st
            v = info.key.vantage
            mode = getattr(getattr(st.last, "mode", None), "value", "")
            if mode:
                self._modes[v] = (mode, getattr(st.last, "fallback", ""))
            h = health(st)
            vh = self._health.setdefault(v, {})
            if vh.get(info.key) != h:
                vh[info.key] = h
                touched.add(v)
        with self.app.batch_update():
            if structural or (self.problems_only and touched):
                self._sync_rows()
            for key, st in changed.items():
                info = self._rows.get(key)  # type: ignore[arg-type]
                if info is not None:
                    self._dirty[self._row_key(info.key)] = (info, st)
            self.flush_visible()
            if self._agent_nodes and self.ticks % 8 == 0:
                touched |= set(self._agent_nodes)  # "agent 12s ago" moves on
            for v in (set(self._vantage_order) if structural else touched):
                self._put(self._vantage_key(v), self._vantage_cells(v))
            self._update_status(plan)

    # --- rows ----------------------------------------------------------------------------
    @staticmethod
    def _row_key(k: EgressKey) -> str:
        return f"r|{k.vantage}|{k.target}"

    @staticmethod
    def _vantage_key(v: str) -> str:
        return f"v|{v}"

    def _take_plan(self, plan: EgressPlan) -> None:
        self._plan = plan
        rows: dict[EgressKey, RowInfo] = {}
        self._vantage_order = {}
        self._vantage_note = {}
        self._agent_nodes = {}
        for vi, vp in enumerate(plan.vantages):
            v = vp.vantage.name
            self._vantage_order[v] = vi
            self._vantage_note[v] = "this host" if v == LOCAL_VANTAGE else (vp.vantage.node or "")
            if vp.vantage.agent and vp.vantage.node:
                self._agent_nodes[v] = vp.vantage.node
            for ti, t in enumerate(vp.targets):
                k = EgressKey(v, t.text)
                rows[k] = RowInfo(k, t, (vi, 1, ti))
        self._rows = rows
        self._stats = {k: s for k, s in self._stats.items() if k in rows}
        self._health = {v: {k: h for k, h in hs.items() if k in rows} for v, hs in self._health.items()
                        if v in self._vantage_order}
        self._modes = {v: m for v, m in self._modes.items() if v in self._vantage_order}

    def vantage_health(self, v: str) -> str:
        hs = self._health.get(v, {})
        if not hs:
            return "pending" if any(k.vantage == v for k in self._rows) else "ok"
        return min(hs.values(), key=lambda h: RANK[h])

    def _wanted(self) -> list[tuple[str, tuple, Any]]:
        out: list[tuple[str, tuple, Any]] = []
        for v, vi in self._vantage_order.items():
            if self.problems_only and self.vantage_health(v) not in ("bad", "warn"):
                continue
            out.append((self._vantage_key(v), (vi, 0), v))
        keep = {o[2] for o in out}
        for info in self._rows.values():
            if info.key.vantage in keep:
                out.append((self._row_key(info.key), info.order, info))
        return out

    def _sync_rows(self) -> None:
        table = self.table
        wanted = self._wanted()
        wanted_keys = {k for k, _, _ in wanted}
        cursor_key = None
        if table.row_count and 0 <= table.cursor_row < table.row_count:
            try:
                cursor_key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
            except Exception:  # noqa: BLE001
                cursor_key = None
        for k in [k for k in self._shown if k not in wanted_keys]:
            table.remove_row(k)
            self._shown.discard(k)
            self._dirty.pop(k, None)
            self._cells.pop(k, None)
            self._raw.pop(k, None)
        added = False
        for k, order, what in wanted:
            if k in self._shown:
                continue
            if isinstance(what, RowInfo):
                cells = self._row_cells(what, self._stats.get(what.key))
            else:
                cells = self._vantage_cells(what)
            cells[0] = _cell(cells[0], order)
            table.add_row(*cells, key=k)
            self._cells[k] = [_sig(c) for c in cells]
            self._shown.add(k)
            added = True
        if added:
            table.sort(key=lambda row: row[0].order if isinstance(row[0], SortText) else ())
        if cursor_key is not None and cursor_key in self._shown:
            table.move_cursor(row=table.get_row_index(cursor_key), animate=False)

    def flush_visible(self, everything: bool = False) -> None:
        """Redraw the rows on screen whose stats moved; off-screen rows wait until they
        scroll into view, so a tick costs what can be seen."""
        if not self._dirty:
            return
        table = self.table
        if everything:
            keys = list(self._dirty)
        else:
            first = max(0, int(table.scroll_y))
            rows = table.ordered_rows[first: first + max(1, table.size.height)]
            keys = [r.key.value for r in rows if r.key.value in self._dirty]
        for rk in keys:
            info, st = self._dirty.pop(rk)
            raw = (st.p50, st.successes, st.attempts, st.last_outcome, spark_levels(st.recent),
                   getattr(getattr(st.last, "mode", None), "value", ""), bool(getattr(st.last, "fallback", "")))
            self._put(rk, lambda i=info, s=st: self._row_cells(i, s), raw)

    def _put(self, row_key: str, cells: Any, raw: tuple | None = None) -> None:
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
        for i, (col, _, _) in enumerate(COLUMNS):
            c = cells[i]
            sig = _sig(c)
            if old[i] == sig:
                continue
            old[i] = sig
            if i == 0:
                c = _cell(c, self._order_of(row_key))
            table.update_cell(row_key, col, c, update_width=False)

    def _order_of(self, row_key: str) -> tuple:
        if row_key.startswith("v|"):
            return (self._vantage_order.get(row_key[2:], 0), 0)
        _, v, target = row_key.split("|", 2)
        info = self._rows.get(EgressKey(v, target))
        return info.order if info is not None else ()

    def _row_cells(self, info: RowInfo, st: Stats | None) -> list[Any]:
        h = health(st)
        style = STYLE[h]
        name = Text.assemble((" ", ""), (BULLET[h] + " ", style), (info.key.target, ""))
        if st is None:
            return [name, Text("…", style=DIM), Text("—", style=DIM, justify="right"), Text(""),
                    Text(""), Text("")]
        pct = success_pct(st)
        return [
            name,
            Text(SHORT_OUTCOME.get(st.last_outcome, st.last_outcome[:9]), style=style),
            Text(fmt_ms(st.p50), justify="right"),
            Text(f"{pct:.0f}", justify="right", style=OK if pct >= 100 else WARN if pct >= 50 else BAD),
            spark_text(spark_levels(st.recent)),
            mode_cell(st.last),
        ]

    def _vantage_cells(self, v: str) -> list[Any]:
        hs = self._health.get(v, {})
        h = self.vantage_health(v)
        total = sum(1 for k in self._rows if k.vantage == v)
        bad = sum(1 for x in hs.values() if x == "bad")
        warn = sum(1 for x in hs.values() if x == "warn")
        if not total:
            summary = Text("no targets", style=DIM)
        elif bad:
            summary = Text(f"{bad}/{total} fail", style=BAD)
        elif warn:
            summary = Text(f"{warn}/{total} flaky", style=WARN)
        elif len(hs) < total:
            summary = Text(f"{len(hs)}/{total} done", style=DIM)
        else:
            summary = Text(f"{total}/{total} ok", style=OK)
        head = Text.assemble((BULLET[h] + " ", STYLE[h]), (short_vantage(v), "bold"))
        note = self._vantage_note.get(v, "")
        if v in self._agent_nodes:
            words, style = fmt.agent_brief(getattr(self.source, "agents", None), self._agent_nodes[v])
            head.append("  " + words, style=style)
        elif note:
            head.append("  " + note, style=DIM)
        return [head, summary, Text(""), Text(""), Text(""), Text("")]

    # --- status, actions -----------------------------------------------------------------
    def mode_line(self) -> Text | None:
        """Which mode ran; when SYN mode was asked for and refused, say so and why."""
        fallbacks = sorted({fb for _, fb in self._modes.values() if fb})
        if fallbacks:
            return Text.assemble(("connect mode", WARN), (": " + fallbacks[0], ""))
        return None

    def _update_status(self, plan: EgressPlan) -> None:
        err = plan.error or getattr(self.source, "error", "")
        if err:
            line = Text.assemble(("✖ ", BAD), (err, ""))
        elif not plan.vantages:
            line = Text("Egress: waiting for the cluster…", style=DIM)
        else:
            failing = sum(1 for hs in self._health.values() for h in hs.values() if h == "bad")
            flaky = sum(1 for hs in self._health.values() for h in hs.values() if h == "warn")
            modes = sorted({m for m, _ in self._modes.values()})
            line = Text.assemble(
                ("Egress ", "bold"),
                (f"{len(plan.vantages)} vantages · {plan.jobs} checks/{plan.interval:g}s · "
                 f"{'/'.join(modes) or plan.mode} · ms", DIM))
            if failing:
                line.append(f" · {failing} failing", style=BAD)
            if flaky:
                line.append(f" · {flaky} flaky", style=WARN)
            if not failing and not flaky and self._health:
                line.append(" · all open", style=OK)
            if self.problems_only:
                line.append(" · problems only (p)", style="magenta")
            more = self.mode_line()
            if plan.note:
                more = Text.assemble(*(([more, ("  ", "")]) if more else []), (plan.note, WARN))
            if more is not None:
                line.append("\n")
                line.append_text(more)
        line.no_wrap = True
        line.overflow = "ellipsis"
        if line != self._status:
            self._status = line
            self.query_one("#egress-status", Static).update(line)

    def toggle_problems(self) -> None:
        self.problems_only = not self.problems_only
        if self._plan is not None:
            with self.app.batch_update():
                self._sync_rows()
                self._update_status(self._plan)

    def selected(self) -> RowInfo | None:
        table = self.table
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        except Exception:  # noqa: BLE001
            return None
        if not key or not key.startswith("r|"):
            return None
        _, v, target = key.split("|", 2)
        return self._rows.get(EgressKey(v, target))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        info = self.selected()
        if info is None:
            return
        from tui.egress_detail import EgressDetailScreen

        self.app.push_screen(EgressDetailScreen(info.key, info.target, self.source))

    def plain_rows(self) -> list[str]:
        """The table as text, in display order (tests)."""
        self.flush_visible(everything=True)
        table = self.table
        out = []
        for i in range(table.row_count):
            cells = table.get_row_at(i)
            out.append(" | ".join(c.plain if isinstance(c, Text) else str(c) for c in cells))
        return out
