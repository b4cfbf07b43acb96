"""One finding in full: the subject's full name, the cause, every piece of evidence, the
next step with its commands on lines of their own (`c` copies them), and `g` / Enter to
jump to the row that shows the evidence in its own tab."""

from __future__ import annotations

import re

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from probes.diagnose import Finding, Severity
from tui.evidence import Evidence, evidence_of

STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "dim"}
_COMMAND = re.compile(r"`([^`]+)`")


def commands(next_step: str) -> list[str]:
    """The commands a next step names (its `back-quoted` parts), in order."""
    return [c.strip() for c in _COMMAND.findall(next_step) if c.strip()]


def detail_rows(f: Finding, ev: Evidence) -> list[tuple[str, Text]]:
    """(field, value) for the screen; every external string as plain text."""
    rows: list[tuple[str, Text]] = [
        ("finding", Text.assemble((f"{f.fault or '—'} ", "bold"), (str(f.severity), STYLE[f.severity]), f"  {f.rule}")),
        ("subject", Text(f.subject, style="bold")),
        ("cause", Text(f.cause)),
    ]
    for k, v in f.evidence.items():
        rows.append((k.replace("_", " "), Text(str(v))))
    if f.next_step:
        rows.append(("next step", Text(_COMMAND.sub(lambda m: m.group(1), f.next_step), style="cyan")))
    for i, cmd in enumerate(commands(f.next_step)):
        rows.append(("command" if i == 0 else "", Text(cmd, style="bold cyan")))
    rows.append(("evidence in", Text(ev.describe() + "  (g jumps there)", style="dim")))
    return rows


class FindingDetailScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    FindingDetailScreen { align: center middle; }
    FindingDetailScreen > VerticalScroll { width: 100%; max-width: 110; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape,q", "dismiss", "Back"),
        Binding("g,enter", "jump", "Jump to the evidence"),
        Binding("c", "copy", "Copy the commands"),
    ]

    def __init__(self, finding: Finding) -> None:
        super().__init__()
        self.finding = finding
        self.evidence = evidence_of(finding)
        self.rows = detail_rows(finding, self.evidence)
        self.plain_rows = {k: v.plain for k, v in self.rows if k}  # tests

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        for key, value in self.rows:
            table.add_row(key, value)
        with VerticalScroll() as box:
            box.border_title = Text(f"{self.finding.fault or 'finding'} {self.finding.subject}")
            box.border_subtitle = "g jump · c copy · Esc back"
            yield Static(table)

    def copy_text(self) -> str:
        cmds = commands(self.finding.next_step)
        return "\n".join(cmds) if cmds else self.finding.next_step

    def action_copy(self) -> None:
        text = self.copy_text()
        if text:
            self.app.copy_to_clipboard(text)  # OSC 52: works over SSH where the terminal allows it
            self.notify("copied to the clipboard (OSC 52)", timeout=2)

    def action_jump(self) -> None:
        f, ev = self.finding, self.evidence
        self.dismiss()
        jump = getattr(self.app, "show_evidence", None)
        if jump is not None:
            jump(f.subject, ev)
