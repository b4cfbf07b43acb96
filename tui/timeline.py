"""The replay's timeline: one line with the cursor's time, play state and speed, and a bar
of the recording with each finding's start (▲) and end (▽) marked, coloured by severity."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from probes.record.reader import Recording

STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def timeline_text(rec: Recording, cursor: float, playing: bool, speed: float, width: int) -> Text:
    head = Text.assemble(
        ("▶ " if playing else "⏸ ", "bold"),
        (f"{speed:g}× ", "dim"),
        (_clock(cursor), "bold"),
        (f" +{cursor - rec.start:.0f}s ", "dim"),
    )
    bar_w = max(10, width - len(head.plain) - 2)
    span = max(rec.end - rec.start, 1e-6)

    def col(t: float) -> int:
        return max(0, min(bar_w - 1, int((t - rec.start) / span * (bar_w - 1))))

    cells: list[tuple[str, str]] = [("─", "dim")] * bar_w
    rank = {"info": 0, "warning": 1, "critical": 2}
    for f in sorted(rec.findings, key=lambda f: rank.get(f.severity, 0)):
        style = STYLE.get(f.severity, "")
        cells[col(f.start)] = ("▲", style)
        if f.end is not None:
            cells[col(f.end)] = ("▽", style)
    cells[col(cursor)] = ("●", "bold reverse")
    bar = Text()
    for ch, style in cells:
        bar.append(ch, style)
    return Text.assemble(head, "│", bar, "│")


class Timeline(Static):
    def show(self, rec: Recording, cursor: float, playing: bool, speed: float) -> None:
        width = self.size.width or (self.app.size.width if self.app else 80)
        self.update(timeline_text(rec, cursor, playing, speed, width - 2))
