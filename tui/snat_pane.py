"""The SNAT pane: per-node Load Balancer SNAT ports from Azure Monitor, most pressed first.

It renders one part of the frame (``Frame.snat``): the SNAT service's immutable
:class:`~probes.azure.service.SnatReport`. A frame does nothing unless the report's
version moved; the pane never asks the service (``r`` asks the app to). The table shows the ``TOP`` most pressed nodes
and one summary row for the rest (a 1,000-node cluster stays a short table); rows are
diffed by key and only changed cells are updated, unless the pressure order changed.
The chart draws the top nodes' used/allocated % over the window from the report's
series (bounded by the window: one point per minute).

States in place of the data: waiting, no Azure credential (what to run), no permission
(which role on which scope), an outbound type without per-node metrics (why). Every
string from Azure goes into Rich Text as plain text, never markup.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from probes.azure.service import AzureState, SnatReport
from probes.azure.snat import NodeSnat, SnatTable
from probes.engine.frame import Frame
from tui.probe_pane import shown
from tui.probe_text import short_vantage
from tui.steadytable import SteadyTable

OK, WARN, BAD, DIM = "green", "yellow", "bold red", "dim"
STATE_STYLE = {"ok": OK, "warn": WARN, "critical": BAD, "unknown": DIM}
BULLET = {"ok": "●", "warn": "▲", "critical": "✖", "unknown": "◌"}
SEV = {"critical": ("✖", BAD), "warning": ("▲", WARN), "info": ("●", DIM)}
TOP = 40  # rows shown; the rest is one summary row
BAR = 12
CHART_LINES = 4
CHART_NODES = 3
CHART_STYLES = ("bold red", "yellow", "cyan")
COLUMNS = (
    ("node", "node", 16),
    ("bar", "used / allocated", BAR),
    ("pct", "%", 4),
    ("used", "used", 5),
    ("alloc", "alloc", 5),
    ("failed", "failed", 6),
    ("ip", "backend IP", 12),
)


def bar(used: float | None, allocated: int | None, width: int = BAR, state: str = "ok") -> Text:
    if used is None or not allocated:
        return Text("·" * width, style=DIM, no_wrap=True)
    frac = min(max(used / allocated, 0.0), 1.0)
    full = round(frac * width)
    if used > 0 and full == 0:
        full = 1
    t = Text(no_wrap=True)
    t.append("█" * full, style=STATE_STYLE.get(state, OK))
    t.append("░" * (width - full), style=DIM)
    return t


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f}"


def row_cells(n: NodeSnat) -> list[Text]:
    st = n.state
    name = Text(no_wrap=True, overflow="ellipsis")
    name.append(BULLET[st] + " ", style=STATE_STYLE[st])
    name.append(short_vantage(n.node, 14) if n.node else "(no node)", style="" if n.node else DIM)
    pct = n.pct
    failed = Text(f"{n.failed:.0f}" if n.failed else "0", style=BAD if n.failed else DIM)
    return [
        name,
        bar(n.used, n.allocated, BAR, st),
        Text("—" if pct is None else f"{pct:.0f}", style=STATE_STYLE[st]),
        Text(_num(n.used)),
        Text(_num(n.allocated)),
        failed,
        Text(n.ip, style=DIM, no_wrap=True),
    ]


def rest_cells(rest: Sequence[NodeSnat]) -> list[Text]:
    pcts = [n.pct for n in rest if n.pct is not None]
    worst = max(pcts, default=None)
    failed = sum(n.failed for n in rest)
    return [
        Text(f"… {len(rest)} more", style=DIM),
        Text(f"max {worst:.0f}%" if worst is not None else "", style=DIM),
        Text(""),
        Text(""),
        Text(""),
        Text(f"{failed:.0f}", style=BAD if failed else DIM),
        Text(""),
    ]


def chart(nodes: Sequence[NodeSnat], width: int, height: int = CHART_LINES) -> Text:
    """Used/allocated % of `nodes` over the window: one column per minute, newest right."""
    width = max(width, 10)
    plot_w = width - 6
    grid: list[list[tuple[str, str]]] = [[(" ", "")] * plot_w for _ in range(height)]
    levels = "▁▂▃▄▅▆▇█"
    for k, n in reversed(list(enumerate(nodes[:CHART_NODES]))):
        if not n.allocated:
            continue
        pts = n.used_series[-plot_w:]
        step = max(plot_w // max(len(pts), 1), 1)  # stretch a short window over the width
        off = plot_w - len(pts) * step
        for i, v in enumerate(pts):
            if v is None or v != v:  # no point that minute (NaN)
                continue
            frac = min(max(v / n.allocated, 0.0), 1.0)
            pos = frac * height * 8  # eighths of a row
            row = min(int(pos // 8), height - 1)
            sub = int(pos - row * 8)
            ch = levels[max(min(sub, 7), 0)] if row < height - 1 or sub < 8 else "█"
            for x in range(off + i * step, off + (i + 1) * step):
                grid[height - 1 - row][x] = (ch, CHART_STYLES[k])
    out = Text(no_wrap=True)
    for i, line in enumerate(grid):
        label = {0: "100%", height - 1: "  0%"}.get(i, " 50%" if i == height // 2 else "    ")
        out.append(f"{label} ", style=DIM)
        out.append("│" if i else "┤", style=DIM)
        for ch, style in line:
            out.append(ch, style=style)
        if i < height - 1:
            out.append("\n")
    return out


def legend(nodes: Sequence[NodeSnat], minutes: int) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f"      last {minutes} min, per minute:", style=DIM)
    for k, n in enumerate(nodes[:CHART_NODES]):
        t.append("  ■ ", style=CHART_STYLES[k])
        t.append(short_vantage(n.node, 14) if n.node else n.ip)
    return t


def node_matches(n: NodeSnat, needle: str) -> bool:
    """The `/` filter on the SNAT tab: part of the node's name (full or short) or backend IP."""
    return needle in (n.node or "").lower() or needle in short_vantage(n.node or "", 64).lower() or needle in n.ip


def header(rep: SnatReport, clock: Callable[[], float], width: int = 78) -> Text:
    """One line, its items by importance: the ports per node and the tier drop (with its
    unit) stay; the idle timeout, the IP count and the age go first when the line is short."""
    t = rep.target
    a = rep.allocation
    out = Text(no_wrap=True, overflow="ellipsis")
    if t is None:
        return out
    if t.outbound_type != "loadBalancer" or a is None:
        out.append(f"outbound {t.outbound_type}", style="bold")
        return out
    # (priority: lower goes first when short, text, style)
    items: list[tuple[int, str, str]] = [(9, "LB kubernetes", "bold")]
    if a.fixed_ports:
        items.append((8, f"fixed {a.fixed_ports} ports/node", ""))
    else:
        items.append((8, f"{a.expected} ports/node ({a.nodes} nodes)", ""))
    items.append((3, f"{a.outbound_ips} IP{'s' if a.outbound_ips != 1 else ''}", ""))
    items.append((1, f"idle {a.idle_timeout}m", ""))
    if a.headroom_nodes is not None and a.expected:
        risky = a.during_surge < a.expected
        n = a.headroom_nodes + 1
        items.append((7 if risky else 5, f"tier drop at +{n} node{'s' if n != 1 else ''}", WARN if risky else DIM))
    if rep.updated:
        age = max(clock() - rep.updated, 0)
        ago = f"{age:.0f}s ago"
        if rep.paced:  # a refresh's CPU spaces them at scale (probes.azure.service.REFRESH_SHARE)
            ago += f", every ~{rep.paced / 60:.0f} min" if rep.paced >= 90 else f", every {rep.paced:.0f}s"
        items.append((2, ago, DIM))
    keep = list(items)
    while len(keep) > 1 and sum(len(x) for _, x, _ in keep) + 3 * (len(keep) - 1) > width:
        keep.remove(min(keep, key=lambda it: it[0]))
    for i, (_, text, style) in enumerate(keep):
        if i:
            out.append(" · ", style=DIM)
        out.append(text, style=style)
    return out


STATE_TITLE = {
    AzureState.DISABLED: ("○ SNAT: Azure is off", DIM),
    AzureState.WAITING: ("◌ SNAT: waiting", DIM),
    AzureState.CONNECTING: ("◌ SNAT: connecting to Azure", DIM),
    AzureState.NO_CREDENTIAL: ("✖ SNAT: no Azure credential", BAD),
    AzureState.UNAUTHORIZED: ("✖ SNAT: Azure rejected the credential", BAD),
    AzureState.FORBIDDEN: ("✖ SNAT: no permission", BAD),
    AzureState.THROTTLED: ("▲ SNAT: throttled by Azure", WARN),
    AzureState.NOT_FOUND: ("✖ SNAT: not found", BAD),
    AzureState.ERROR: ("▲ SNAT: Azure error", WARN),
    AzureState.CLUSTER_LEVEL: ("● SNAT: no per-node metrics", WARN),
}


def status_text(rep: SnatReport) -> Text:
    """The state block: title, message, what to do. Empty when live."""
    if rep.state is AzureState.LIVE:
        t = Text()
        if rep.detail:
            t.append(rep.detail, style=DIM)
        return t
    title, style = STATE_TITLE.get(rep.state, ("SNAT", DIM))
    t = Text()
    t.append(title, style=style)
    if rep.message:
        t.append(": ")
        t.append(rep.message)
    if rep.detail:
        t.append("\n→ ", style="bold")
        t.append(rep.detail)
    return t


def findings_text(rep: SnatReport, limit: int = 2) -> Text:
    t = Text()
    shown = sorted(rep.findings, key=lambda f: ("critical", "warning", "info").index(f.severity))[:limit]
    for i, f in enumerate(shown):
        mark, style = SEV[f.severity]
        if i:
            t.append("\n")
        t.append(f"{mark} ", style=style)
        t.append(f.text)
    return t


class SnatTableWidget(SteadyTable):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]


class SnatPane(Vertical):
    PANE_TITLE = "SNAT"
    FILTER_WHAT = "SNAT nodes"
    DEFAULT_CSS = """
    SnatPane { height: 1fr; }
    SnatPane > #snat-header { height: 1; padding: 0 1; background: $boost; }
    SnatPane > #snat-status { height: auto; max-height: 4; padding: 0 1; }
    SnatPane > #snat-findings { height: auto; max-height: 3; padding: 0 1; }
    SnatPane > #snat-chart { height: auto; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    SnatPane > SnatTableWidget { height: 1fr; }
    SnatPane > #snat-empty { height: auto; padding: 0 1; display: none; }
    """
    BINDINGS = [
        Binding("r", "refresh_now", "Refresh SNAT", tooltip="ask Azure Monitor now instead of at the next minute")
    ]

    def __init__(self, *, clock: Callable[[], float] = time.time, top: int = TOP, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.frame: Frame | None = None
        self.clock = clock
        self.top = top
        self._version = -1
        self._order: list[str] = []
        self._cells: dict[str, list[Text]] = {}
        self._row_nodes: list[str] = []  # the node of each row shown, by rank
        self._rep: SnatReport | None = None
        self.filter = ""  # `/`: nodes whose name (full or short) or backend IP contain it
        self.ticks = 0
        self.redraws = 0

    def compose(self) -> ComposeResult:
        yield Static(Text(""), id="snat-header")
        yield Static(Text("◌ SNAT: waiting for the cluster", style=DIM), id="snat-status")
        yield Static(Text(""), id="snat-findings")
        yield Static(Text(""), id="snat-chart")
        yield Static("", id="snat-empty")
        table = SnatTableWidget(cursor_type="row", zebra_stripes=False, id="snat-table")
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table

    @property
    def table(self) -> SnatTableWidget:
        return self.query_one(SnatTableWidget)

    def focus(self, scroll_visible: bool = True) -> SnatPane:
        self.table.focus(scroll_visible)
        return self

    def action_refresh_now(self) -> None:
        ask = getattr(self.app, "refresh_snat", None)
        if ask is not None:
            ask()

    def on_show(self) -> None:
        self.tick()  # a tab just opened shows the latest frame now

    def tick(self, frame: Frame | None = None) -> None:
        if frame is not None:
            self.frame = frame
        if self.frame is None or not self.is_mounted or not shown(self):
            return
        self.ticks += 1
        rep = self.frame.snat
        if rep is None or rep.version == self._version:
            return
        self._version = rep.version
        self.show(rep)

    def show(self, rep: SnatReport) -> None:
        """Draw a report: header, state, findings, chart, then diff the table."""
        self.redraws += 1
        self._rep = rep
        width = max(self.size.width - 2, 20) if self.size.width else 78
        self.query_one("#snat-header", Static).update(header(rep, self.clock, width), layout=False)  # one fixed row
        st = status_text(rep)
        status = self.query_one("#snat-status", Static)
        status.update(st)
        status.display = bool(st.plain)
        self.query_one("#snat-findings", Static).update(findings_text(rep))
        table_data: SnatTable | None = rep.table
        chart_w = max(self.size.width - 2, 20) if self.size.width else 78  # its row never wraps
        nodes = table_data.nodes if table_data is not None else ()
        ch = self.query_one("#snat-chart", Static)
        if nodes:
            c = chart(nodes, chart_w)
            c.append("\n")
            c.append_text(legend(nodes, rep.window_minutes))
            ch.update(c)
            ch.display = True
        else:
            ch.display = False
        needle = self.filter.strip().lower()
        if needle:
            nodes = [n for n in nodes if node_matches(n, needle)]
        self._diff(nodes)
        words = ""
        if needle and not nodes and table_data is not None:
            words = f"no node matches “{self.filter.strip()}” (Esc clears the filter)"
        empty = self.query_one("#snat-empty", Static)
        empty.update(Text(words, style=DIM))
        empty.display = bool(words)

    def on_resize(self) -> None:
        if self._rep is not None:
            self.show(self._rep)

    def set_filter(self, needle: str) -> None:
        if needle != self.filter:
            self.filter = needle
            if self._rep is not None:
                self.show(self._rep)

    def select_key(self, key: Any) -> bool:
        """Put the cursor on a node's row (`key`: a node name, or a tui.evidence.Evidence
        naming one), clearing a filter that hides it."""
        node = getattr(key, "node", key)
        if not isinstance(node, str) or not node:
            return False
        if node not in self._row_nodes and self.filter and self._rep is not None:
            self.filter = ""
            self.show(self._rep)
        if node not in self._row_nodes:
            return False
        self.table.move_cursor(row=self._row_nodes.index(node), animate=False)
        return True

    def _diff(self, nodes: Sequence[NodeSnat]) -> None:
        """Rows are keyed by rank (r0 = most pressed): a new order rewrites only the cells
        whose text changed, rows are added or removed only at the end."""
        table = self.table
        shown = nodes[: self.top]
        rest = nodes[self.top :]
        rows = [row_cells(n) for n in shown] + ([rest_cells(rest)] if rest else [])
        order = [f"r{i}" for i in range(len(rows))]
        self._row_nodes = [n.node for n in shown]
        for key in self._order[len(order) :]:
            table.remove_row(key)
        for key, new in zip(order, rows):
            old = self._cells.get(key)
            if old is None:
                table.add_row(*new, key=key)
                continue
            for (col, _l, _w), o, c in zip(COLUMNS, old, new):
                if o.plain != c.plain or o.style != c.style or o.spans != c.spans:
                    table.update_cell(key, col, c)
        self._order = order
        self._cells = dict(zip(order, rows))

    def plain_rows(self) -> list[str]:
        """What the table shows, as text (tests)."""
        return [" | ".join(c.plain for c in self._cells[k]) for k in self._order]
