"""The DNS pane: every resolver × name, grouped by vantage, with latency, loss and a sparkline.

It reads two things from its source (a :class:`probes.dnsservice.DnsService`, or any
object with ``plan()``, ``history`` and ``error``): the plan (which rows exist, in which
order) and the history (what they show). The table is diffed by row key: rows are added
and removed only when the plan or the filter changes, and each tick updates only the
cells of keys whose history moved since the last tick (``History.snapshot(since)``),
and of those only the cells whose text changed. Nothing is rebuilt per tick.

Every string from outside (resolver names, pod names, errors, answers) goes into Rich
Text as plain text, never as markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Hashable, Protocol

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from probes.dnsprobe import ProbeKey
from probes.dnsservice import DnsPlan
from probes.history import History, Stats
from probes.model import LOCAL_VANTAGE
from probes.resolvers import Resolver
from tui import format as fmt

OK, WARN, BAD, DIM, PENDING = "green", "yellow", "bold red", "dim", "dim"
SPARK = "▁▂▃▄▅▆▇█"
SPARK_MS = (0.5, 1.0, 2.0, 5.0, 10.0, 50.0, 200.0)  # upper bounds of the first 7 levels
SPARK_WIDTH = 9

SHORT_OUTCOME = {
    "ok": "ok", "nxdomain": "nxdomain", "servfail": "servfail", "refused": "refused",
    "other-rcode": "rcode", "timeout": "timeout", "truncated-tcp-ok": "tc→tcp",
    "truncated-tcp-failed": "tc,tcp✖", "network-error": "net-err", "malformed": "malformed",
    "error": "error",
}
GOOD_OUTCOMES = {"ok"}
WARN_OUTCOMES = {"nxdomain", "truncated-tcp-ok"}

# (column key, header, width)
COLUMNS = (("res", "resolver", 16), ("name", "name", 15), ("p50", "p50", 5),
           ("p95", "p95", 5), ("loss", "loss", 4), ("last", "last", 8), ("recent", "recent", SPARK_WIDTH))


class DnsSource(Protocol):
    history: History
    error: str

    def plan(self) -> DnsPlan: ...


class SortText(Text):
    """A cell that carries its row's place: DataTable.sort orders rows by it."""

    order: tuple = ()


def _cell(text: str | Text, order: tuple) -> SortText:
    t = SortText()
    t.append_text(text if isinstance(text, Text) else Text(text))
    t.no_wrap = True
    t.overflow = "ellipsis"
    t.order = order
    return t


def _sig(c: Any) -> Any:
    """What a cell shows (text and styles): equal signatures need no update_cell."""
    if isinstance(c, Text):
        return (c.plain, str(c.style), tuple((s.start, s.end, str(s.style)) for s in c.spans))
    return c


_AKS_NODE = re.compile(r"^aks-(?P<pool>[a-z0-9]+)-\d{8}-vmss(?P<id>[0-9a-z]{6})$")


def short_vantage(vantage: str, width: int = 12) -> str:
    """'node/aks-nodepool1-57993984-vmss000001' -> 'nodepool1/1' (pool / VMSS instance)."""
    name = vantage[5:] if vantage.startswith("node/") else vantage
    m = _AKS_NODE.match(name)
    if m:
        return f"{m.group('pool')}/{int(m.group('id'), 36)}"
    if len(name) <= width:
        return name
    keep = width - 1
    return name[: keep // 2] + "…" + name[len(name) - (keep - keep // 2):]


def short_resolver(r: Resolver) -> str:
    """A column-sized label: 'nodelocal', 'kube-dns', 'coredns …4tzjn', an address."""
    if r.key.startswith("coredns/"):
        return "coredns " + r.key.rsplit("-", 1)[-1][-5:]
    if r.key.startswith("custom/"):
        return r.key[len("custom/"):]
    return r.key


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "—"
    if v < 10:
        return f"{v:.2f}"
    if v < 100:
        return f"{v:.1f}"
    if v < 10000:
        return f"{v:.0f}"
    return f"{v / 1000:.0f}s"


def spark_levels(recent: tuple[float | None, ...], width: int = SPARK_WIDTH) -> tuple[int, ...]:
    """0..7 per attempt on absolute thresholds (sub-ms … >200 ms); -1 for a lost query."""
    out = []
    for v in recent[-width:]:
        if v is None:
            out.append(-1)
        else:
            out.append(next((i for i, hi in enumerate(SPARK_MS) if v < hi), len(SPARK_MS)))
    return tuple(out)


_SPARK_CACHE: dict[tuple[int, ...], Text] = {}


def spark_text(levels: tuple[int, ...]) -> Text:
    """A steady row looks flat; × marks a lost query. Cached: rows repeat the same shapes."""
    t = _SPARK_CACHE.get(levels)
    if t is None:
        t = Text(no_wrap=True)
        for lv in levels:
            if lv < 0:
                t.append("×", style=BAD)
            else:
                t.append(SPARK[lv], style=OK if lv < 4 else WARN if lv < 6 else BAD)
        if len(_SPARK_CACHE) > 4096:
            _SPARK_CACHE.clear()
        _SPARK_CACHE[levels] = t
    return t


def sparkline(recent: tuple[float | None, ...], width: int = SPARK_WIDTH) -> Text:
    return spark_text(spark_levels(recent, width))


def health(st: Stats | None) -> str:
    """ok | warn | bad | pending, from the last outcome and the loss in the window."""
    if st is None:
        return "pending"
    if st.last_outcome not in GOOD_OUTCOMES | WARN_OUTCOMES:
        return "bad"
    if st.last_outcome in WARN_OUTCOMES or st.loss_pct > 0:
        return "warn"
    return "ok"


STYLE = {"ok": OK, "warn": WARN, "bad": BAD, "pending": PENDING}
BULLET = {"ok": "●", "warn": "▲", "bad": "✖", "pending": "◌"}
RANK = {"bad": 0, "warn": 1, "pending": 2, "ok": 3}


@dataclass(frozen=True, slots=True)
class RowInfo:
    key: ProbeKey
    resolver: Resolver
    order: tuple


class DnsTable(DataTable):
    BINDINGS = [
        Binding("enter", "select_cursor", "DNS row: last raw answer and outcome history", show=False),
        Binding("p", "toggle_problems", "Problems only", tooltip="show only vantages with a failing or lossy resolver"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def action_toggle_problems(self) -> None:
        pane = self.parent
        if isinstance(pane, DnsPane):
            pane.toggle_problems()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        pane = self.parent
        if isinstance(pane, DnsPane):
            pane.flush_visible()  # rows scrolled into view get the values they missed


class DnsPane(Vertical):
    PANE_TITLE = "DNS"
    DEFAULT_CSS = """
    DnsPane { height: 1fr; }
    DnsPane > #dns-status { height: 1; padding: 0 1; }
    DnsPane > DnsTable { height: 1fr; }
    """

    def __init__(self, source: DnsSource, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.problems_only = False
        self._plan: DnsPlan | None = None
        self._rows: dict[ProbeKey, RowInfo] = {}  # every planned row
        self._shown: set[str] = set()  # row keys in the table
        self._cells: dict[str, list[Any]] = {}  # row key -> last cell texts, for diffing
        self._raw: dict[str, tuple] = {}  # row key -> last stats signature
        self._stats: dict[ProbeKey, Stats] = {}
        self._dirty: dict[str, tuple[RowInfo, Stats]] = {}  # off-screen rows with newer stats
        self._health: dict[str, dict[ProbeKey, str]] = {}  # vantage -> key -> health
        self._seen_version = -1
        self._status: Text | None = None
        self._vantage_order: dict[str, int] = {}
        self._vantage_note: dict[str, str] = {}
        self._agent_nodes: dict[str, str] = {}  # vantage -> node, for vantages an agent probes
        self.ticks = 0

    def compose(self) -> ComposeResult:
        yield Static(Text("DNS: waiting for the cluster's resolvers…", style=DIM), id="dns-status")
        table = DnsTable(cursor_type="row", zebra_stripes=False, id="dns-table")
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table

    @property
    def table(self) -> DnsTable:
        return self.query_one(DnsTable)

    def focus(self, scroll_visible: bool = True) -> "DnsPane":
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
            h = health(st)
            vh = self._health.setdefault(info.key.vantage, {})
            if vh.get(info.key) != h:
                vh[info.key] = h
                touched.add(info.key.vantage)
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
    def _row_key(k: ProbeKey) -> str:
        return f"r|{k.vantage}|{k.resolver}|{k.name}|{k.qtype}"

    @staticmethod
    def _vantage_key(v: str) -> str:
        return f"v|{v}"

    def _take_plan(self, plan: DnsPlan) -> None:
        self._plan = plan
        rows: dict[ProbeKey, RowInfo] = {}
        self._vantage_order = {}
        self._vantage_note = {}
        self._agent_nodes = {}
        for vi, vp in enumerate(plan.vantages):
            v = vp.vantage.name
            self._vantage_order[v] = vi
            self._vantage_note[v] = "this host" if v == LOCAL_VANTAGE else (vp.vantage.node or "")
            if vp.vantage.agent and vp.vantage.node:
                self._agent_nodes[v] = vp.vantage.node
            for ri, r in enumerate(vp.resolvers):
                for ni, name in enumerate(plan.names):
                    k = ProbeKey(v, r.key, name, plan.qtype)
                    rows[k] = RowInfo(k, r, (vi, 1, ri, ni))
        self._rows = rows
        self._stats = {k: s for k, s in self._stats.items() if k in rows}
        self._health = {v: {k: h for k, h in hs.items() if k in rows} for v, hs in self._health.items()
                        if v in self._vantage_order}

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
            self._dirty.pop(k, None)
            self._shown.discard(k)
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
        scroll into view. At 1,000 results/s nearly every row changes every tick, but only
        a screenful is ever drawn: this keeps a tick's cost to what can be seen."""
        if not self._dirty:
            return
        table = self.table
        if everything:
            keys = list(self._dirty)
        else:
            first = max(0, int(table.scroll_y))
            rows = table.ordered_rows[first : first + max(1, table.size.height)]
            keys = [r.key.value for r in rows if r.key.value in self._dirty]
        for rk in keys:
            info, st = self._dirty.pop(rk)
            raw = (st.p50, st.p95, st.loss_pct, st.last_outcome, spark_levels(st.recent))
            self._put(rk, lambda i=info, s=st: self._row_cells(i, s), raw)

    def _put(self, row_key: str, cells: list[Any], raw: tuple | None = None) -> None:
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
        _, v, res, name, qtype = row_key.split("|", 4)
        info = self._rows.get(ProbeKey(v, res, name, qtype))
        return info.order if info is not None else ()

    def _row_cells(self, info: RowInfo, st: Stats | None) -> list[Any]:
        h = health(st)
        style = STYLE[h]
        res = Text.assemble((" ", ""), (BULLET[h] + " ", style), (short_resolver(info.resolver), ""))
        name = Text(info.key.name, style="" if h != "bad" else "")
        if st is None:
            return [res, name, Text("—", style=DIM), Text("—", style=DIM), Text("", style=DIM),
                    Text("…", style=DIM), Text("")]
        loss = f"{st.loss_pct:.0f}%"
        return [
            res, name,
            Text(fmt_ms(st.p50), justify="right"),
            Text(fmt_ms(st.p95), justify="right", style=WARN if (st.p95 or 0) >= 100 else ""),
            Text(loss, justify="right", style=BAD if st.loss_pct >= 50 else WARN if st.loss_pct > 0 else DIM),
            Text(SHORT_OUTCOME.get(st.last_outcome, st.last_outcome), style=style),
            spark_text(spark_levels(st.recent)),
        ]

    def _vantage_cells(self, v: str) -> list[Any]:
        hs = self._health.get(v, {})
        h = self.vantage_health(v)
        total = sum(1 for k in self._rows if k.vantage == v)
        bad = sum(1 for x in hs.values() if x == "bad")
        warn = sum(1 for x in hs.values() if x == "warn")
        if not total:
            summary = Text("no reachable resolvers", style=DIM)
        elif bad:
            summary = Text(f"{bad}/{total} fail", style=BAD)
        elif warn:
            summary = Text(f"{warn}/{total} warn", style=WARN)
        elif len(hs) < total:
            summary = Text(f"{len(hs)}/{total} probed", style=DIM)
        else:
            summary = Text(f"{total}/{total} ok", style=OK)
        head = Text.assemble((BULLET[h] + " ", STYLE[h]), (short_vantage(v), "bold"))
        note = Text(self._vantage_note.get(v, ""), style=DIM)
        if v in self._agent_nodes:
            note = Text(*fmt.agent_brief(getattr(self.source, "agents", None), self._agent_nodes[v]))
        return [head, note, Text(""), Text(""), Text(""), summary, Text("")]

    # --- status, actions -----------------------------------------------------------------
    def _update_status(self, plan: DnsPlan) -> None:
        err = plan.error or getattr(self.source, "error", "")
        if err:
            line = Text.assemble(("✖ ", BAD), (err, ""))
        elif not plan.vantages:
            line = Text("DNS: waiting for the cluster's resolvers…", style=DIM)
        else:
            failing = sum(1 for hs in self._health.values() for h in hs.values() if h == "bad")
            degraded = sum(1 for hs in self._health.values() for h in hs.values() if h == "warn")
            line = Text.assemble(
                ("DNS ", "bold"), (f"{len(plan.vantages)} vantages · {plan.jobs} probes every {plan.interval:g}s · ms", DIM))
            if plan.agents:
                line.append(f" · {plan.agents} by agents", style=DIM)
            if failing:
                line.append(f" · {failing} failing", style=BAD)
            if degraded:
                line.append(f" · {degraded} degraded", style=WARN)
            if not failing and not degraded and self._health:
                line.append(" · all answering", style=OK)
            if self.problems_only:
                line.append(" · problems only (p)", style="magenta")
        if line != self._status:
            self._status = line
            self.query_one("#dns-status", Static).update(line)

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
        _, v, res, name, qtype = key.split("|", 4)
        return self._rows.get(ProbeKey(v, res, name, qtype))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        info = self.selected()
        if info is None:
            return
        from tui.dns_detail import DnsDetailScreen

        self.app.push_screen(DnsDetailScreen(info.key, info.resolver, self.source.history))

    def plain_rows(self) -> list[str]:
        """The table as text, in display order (tests)."""
        self.flush_visible(everything=True)
        table = self.table
        out = []
        for i in range(table.row_count):
            cells = table.get_row_at(i)
            out.append(" | ".join(c.plain if isinstance(c, Text) else str(c) for c in cells))
        return out
