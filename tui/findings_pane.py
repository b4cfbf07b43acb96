"""The findings pane: the diagnosis, most severe first, each cause in full.

A row is the severity, the fault id, the subject the short way operators say it
(`userpool/1`; the full name is in the detail) and the cause, wrapped in the width the
other columns leave. Enter opens the finding's detail (evidence, next step, a jump to the
row that shows the evidence in its own tab).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from probes.diagnose import Finding, Severity
from probes.engine.frame import Frame
from tui.columns import SCROLLBAR, Flex, elide_middle, fit
from tui.finding_detail import FindingDetailScreen
from tui.probe_text import short_vantage
from tui.steadytable import SteadyTable

STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "dim"}
MARK = {Severity.CRITICAL: "✖", Severity.WARNING: "▲", Severity.INFO: "·"}
COLUMNS = (
    ("sev", "sev", 5),
    ("fault", "id", 3),
    ("subject", "subject", 12),
    ("cause", "cause", 40),
)
SUBJECT = Flex(7, 24)  # the short subject's width: what it needs, up to 24
CAUSE_LOW = 24  # the cause never gets less; it wraps within what it gets


def finding_key(f: Finding) -> str:
    return f"{f.rule}|{f.subject}"


def short_subject(subject: str) -> str:
    """How operators say a subject: `userpool/1` for an AKS node, `default/web` for a
    service, the target or resolver as it is, `cluster` for the cluster."""
    kind, _, rest = subject.partition("/")
    if kind == "node":
        return short_vantage(rest, 64)
    if kind in ("target", "resolver", "service", "route") and rest:
        return rest
    return subject


def matches(f: Finding, needle: str) -> bool:
    """The `/` filter: part of the fault id, the subject (short or full) or the cause."""
    if not needle:
        return True
    n = needle.lower()
    return any(n in s.lower() for s in (f.fault or "", f.subject, short_subject(f.subject), f.cause, f.rule))


class FindingsTable(SteadyTable):
    BINDINGS = [
        Binding("enter", "select_cursor", "Details", tooltip="evidence, next step, jump to the evidence row"),
        Binding("i", "toggle_info", "Show info findings"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def action_toggle_info(self) -> None:
        pane = self.parent
        if isinstance(pane, FindingsPane):
            pane.show_info = not pane.show_info
            pane.redraw(force=True)


class FindingsPane(Vertical):
    """The frame's findings (the publisher runs the rules, off the UI thread)."""

    PANE_TITLE = "Findings"
    FILTER_WHAT = "findings"
    PALETTE_SCOPE = "finding"
    DEFAULT_CSS = """
    FindingsPane { height: 1fr; }
    FindingsPane > #findings-status { height: 1; padding: 0 1; }
    FindingsPane > #findings-empty { height: auto; padding: 1 1; display: none; }
    FindingsPane > FindingsTable { height: 1fr; }
    """

    NEEDS_FINDINGS = True  # the app asks its publisher to run the rules

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.show_info = False
        self.filter = ""
        self.findings: list[Finding] = []
        self.widths: dict[str, int] = {k: w for k, _, w in COLUMNS}
        self._judged: tuple[Any, ...] | None = None
        self._shown: dict[str, tuple[Any, ...]] = {}

    def compose(self) -> ComposeResult:
        yield Static(Text("findings: waiting for the cluster…", style="dim"), id="findings-status")
        yield Static("", id="findings-empty")
        table = FindingsTable(cursor_type="row", id="findings-table")
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table

    def focus(self, scroll_visible: bool = True) -> FindingsPane:
        self.query_one(FindingsTable).focus(scroll_visible)
        return self

    def tick(self, frame: Frame | None = None) -> None:
        """Redraw when the frame carries a new judgement (the same tuple otherwise)."""
        if frame is None or frame.findings is None or frame.findings is self._judged or not self.is_mounted:
            return
        self._judged = frame.findings
        self.findings = list(frame.findings)
        self.redraw()

    def on_resize(self) -> None:
        self.redraw(force=True)

    def set_filter(self, needle: str) -> None:
        if needle != self.filter:
            self.filter = needle
            self.redraw(force=True)

    def redraw(self, force: bool = False) -> None:
        if self._judged is None:
            return
        self._sync(force)

    def _rows(self) -> list[tuple[str, Finding]]:
        needle = self.filter.strip()
        return [
            (finding_key(f), f)
            for f in self.findings
            if (self.show_info or f.severity > Severity.INFO) and matches(f, needle)
        ]

    def _fit(self, rows: list[tuple[str, Finding]]) -> bool:
        """Subject as wide as the longest (up to 24), the cause the rest; True if moved."""
        total = self.size.width - SCROLLBAR
        if total <= 0:
            return False
        need = {"subject": max((len(short_subject(f.subject)) for _, f in rows), default=SUBJECT.low)}
        widths = fit(total, [(k, w) for k, _, w in COLUMNS if k != "cause"], {"subject": SUBJECT}, need)
        used = sum(w + 2 for w in widths.values())
        widths["cause"] = max(total - used - 2, CAUSE_LOW)
        if widths == self.widths:
            return False
        self.widths = widths
        for col in self.query_one(FindingsTable).columns.values():
            col.width = widths[str(col.key.value)]
            col.auto_width = False
        return True

    def _sync(self, force: bool) -> None:
        table = self.query_one(FindingsTable)
        rows = self._rows()
        moved = self._fit(rows)
        wanted = {k: (f.severity, f.fault, f.subject, f.cause) for k, f in rows}
        if force or moved or list(wanted) != list(self._shown) or wanted != self._shown:
            cursor_key = self._cursor_key()
            table.clear()
            for k, f in rows:
                table.add_row(*self._cells(f), key=k, height=None)  # the cause wraps
            if cursor_key in wanted:
                table.move_cursor(row=list(wanted).index(cursor_key), animate=False)
        self._shown = wanted
        crit = sum(1 for f in self.findings if f.severity is Severity.CRITICAL)
        warn = sum(1 for f in self.findings if f.severity is Severity.WARNING)
        info = len(self.findings) - crit - warn
        status = Text.assemble(
            ("findings ", "dim"),
            (f"{crit} critical", "bold red" if crit else "dim"),
            (" · ", "dim"),
            (f"{warn} warning", "yellow" if warn else "dim"),
            (" · ", "dim"),
            (f"{info} info {'shown' if self.show_info else 'hidden (i)'}", "dim"),
            no_wrap=True,
            overflow="ellipsis",
        )
        if not crit and not warn:
            status.append("  healthy", style="green")
        if self.filter.strip():
            status.append(f"  filter “{self.filter.strip()}”", style="magenta")
        self.query_one("#findings-status", Static).update(status, layout=False)  # one fixed row
        self._show_empty(rows)

    def empty_words(self, rows: list[tuple[str, Finding]] | None = None) -> str:
        rows = self._rows() if rows is None else rows
        if rows or self._judged is None:
            return ""
        if self.filter.strip():
            return f"No finding matches “{self.filter.strip()}” (Esc clears the filter)."
        hidden = sum(1 for f in self.findings if f.severity is Severity.INFO)
        more = f" {hidden} info finding{'s' if hidden != 1 else ''} hidden: i shows them." if hidden else ""
        return "No findings: every rule passed on what the other tabs observe." + more

    def _show_empty(self, rows: list[tuple[str, Finding]]) -> None:
        words = self.empty_words(rows)
        box = self.query_one("#findings-empty", Static)
        box.update(Text(words, style="green" if words.startswith("No findings") else "dim"))
        box.display = bool(words)

    def _cells(self, f: Finding) -> list[Text]:
        style = STYLE[f.severity]
        return [
            Text(f"{MARK[f.severity]} {str(f.severity)[:4]}", style=style, no_wrap=True),
            Text(f.fault or "—", style=style, no_wrap=True),
            Text(elide_middle(short_subject(f.subject), self.widths["subject"]), no_wrap=True),
            Text(f.cause),
        ]

    def _cursor_key(self) -> str | None:
        table = self.query_one(FindingsTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        except Exception:  # noqa: BLE001 - an empty or shrinking table
            return None

    def selected(self) -> Finding | None:
        key = self._cursor_key()
        return next((f for k, f in self._rows() if k == key), None)

    def select_key(self, key: Any) -> bool:
        """Put the cursor on the finding keyed `key` (the palette's `finding:`)."""
        rows = [k for k, _ in self._rows()]
        if key not in rows and (self.filter or not self.show_info):
            self.filter, self.show_info = "", True
            self.redraw(force=True)
            rows = [k for k, _ in self._rows()]
        if key not in rows:
            return False
        self.query_one(FindingsTable).move_cursor(row=rows.index(key), animate=False)
        return True

    def palette_rows(self) -> list[tuple[str, Any, str]]:
        return [
            (f"finding: {f.fault or f.rule} {short_subject(f.subject)} {f.cause}", finding_key(f), str(f.severity))
            for f in self.findings
        ]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        f = self.selected()
        if f is not None:
            self.app.push_screen(FindingDetailScreen(f))
