"""The findings pane: the diagnosis, most severe first; Enter jumps to the evidence."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from probes.diagnose import Finding, Severity
from probes.engine.frame import Frame

STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "dim"}
MARK = {Severity.CRITICAL: "✖", Severity.WARNING: "▲", Severity.INFO: "·"}
COLUMNS = (
    ("sev", "sev", 5),
    ("fault", "id", 4),
    ("subject", "subject", 28),
    ("cause", "cause", 34),
)  # 80 columns, no sideways scroll


def finding_key(f: Finding) -> str:
    return f"{f.rule}|{f.subject}"


def short_subject(subject: str, width: int = 28) -> str:
    kind, _, rest = subject.partition("/")
    text = rest if kind == "node" else subject
    return text if len(text) <= width else "…" + text[-(width - 1) :]


class FindingsTable(DataTable):
    BINDINGS = [
        Binding("enter", "select_cursor", "Finding: jump to its evidence", show=False),
        Binding("i", "toggle_info", "Show info findings"),
    ]

    def action_toggle_info(self) -> None:
        pane = self.parent
        if isinstance(pane, FindingsPane):
            pane.show_info = not pane.show_info
            pane.redraw(force=True)


class FindingsPane(Vertical):
    """The frame's findings (the publisher runs the rules, off the UI thread)."""

    PANE_TITLE = "Findings"
    DEFAULT_CSS = """
    FindingsPane { height: 1fr; }
    FindingsPane > #findings-status { height: 1; padding: 0 1; }
    FindingsPane > #findings-detail { height: auto; max-height: 6; padding: 0 1; color: $text-muted; }
    FindingsPane > FindingsTable { height: 1fr; }
    """

    NEEDS_FINDINGS = True  # the app asks its publisher to run the rules

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.show_info = False
        self.findings: list[Finding] = []
        self._judged: tuple[Any, ...] | None = None
        self._shown: dict[str, tuple[Any, ...]] = {}

    def compose(self) -> ComposeResult:
        yield Static(Text("findings: waiting for the cluster…", style="dim"), id="findings-status")
        table = FindingsTable(cursor_type="row", id="findings-table")
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table
        yield Static("", id="findings-detail")

    def focus(self, scroll_visible: bool = True) -> FindingsPane:
        self.query_one(FindingsTable).focus(scroll_visible)
        return self

    def tick(self, frame: Frame) -> None:
        """Redraw when the frame carries a new judgement (the same tuple otherwise)."""
        if frame.findings is None or frame.findings is self._judged or not self.is_mounted:
            return
        self._judged = frame.findings
        self.findings = list(frame.findings)
        self.redraw()

    def redraw(self, force: bool = False) -> None:
        if self._judged is None:
            return
        self._sync(force)

    def _rows(self) -> list[tuple[str, Finding]]:
        return [(finding_key(f), f) for f in self.findings if self.show_info or f.severity > Severity.INFO]

    def _sync(self, force: bool) -> None:
        table = self.query_one(FindingsTable)
        rows = self._rows()
        wanted = {k: (f.severity, f.fault, f.subject, f.cause) for k, f in rows}
        if force or list(wanted) != list(self._shown):
            cursor_key = self._cursor_key()
            table.clear()
            for k, f in rows:
                table.add_row(*self._cells(f), key=k)
            if cursor_key in wanted:
                table.move_cursor(row=list(wanted).index(cursor_key), animate=False)
        else:  # same rows, same order: touch only what changed
            for k, f in rows:
                if self._shown.get(k) != wanted[k]:
                    for (col, _, _), cell in zip(COLUMNS, self._cells(f)):
                        table.update_cell(k, col, cell)
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
        )
        if not crit and not warn:
            status.append("  healthy", style="green")
        self.query_one("#findings-status", Static).update(status, layout=False)  # one fixed row
        self._show_detail()

    @staticmethod
    def _cells(f: Finding) -> list[Text]:
        style = STYLE[f.severity]
        return [
            Text(f"{MARK[f.severity]} {str(f.severity)[:4]}", style=style),
            Text(f.fault or "", style=style),
            Text(short_subject(f.subject)),
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

    def _show_detail(self) -> None:
        f = self.selected()
        detail = self.query_one("#findings-detail", Static)
        if f is None:
            detail.update("")
            return
        text = Text.assemble((f.subject, "bold"), "\n")
        if f.evidence:
            text.append("evidence: " + ", ".join(f"{k}={v}" for k, v in f.evidence.items()) + "\n")
        if f.next_step:
            text.append("next: " + f.next_step, style="cyan")
        detail.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        f = self.selected()
        if f is not None:
            jump = getattr(self.app, "show_evidence", None)
            if jump is not None:
                jump(f.subject)
