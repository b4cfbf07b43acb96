"""One egress target in full: what it is for, how the last check went from this vantage
(address dialled, mode and why, handshake percentiles, the answering packet), the same
target from every other vantage (all nodes or one node: F8 vs F10), and the outcome
history. Follows the app's frames until closed (the publisher puts this row's last
results into them while the screen is open). Errors and packets are external text:
plain Text, never markup."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from probes.egress.probe import EgressKey
from probes.egress.result import EgressOutcome
from probes.egress.targets import Target
from probes.engine.frame import Frame
from probes.engine.health import Health
from tui.format import BAD, DIM, NOT_HERE
from tui.path_detail import path_section
from tui.probe_text import EGRESS_SHORT as SHORT_OUTCOME
from tui.probe_text import STYLE, fmt_ms, outcome_style, short_vantage, success_pct
from tui.probe_text import egress_health as health

HISTORY_ROWS = 20
VANTAGE_ROWS = 12


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else "--:--:--"


def _outcome(res: Any) -> str:
    out = getattr(res, "outcome", "")
    return getattr(out, "value", str(out))


class EgressDetailScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    EgressDetailScreen { align: center middle; }
    EgressDetailScreen > VerticalScroll { width: 100%; max-width: 110; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,enter", "dismiss", "Back")]

    def __init__(self, key: EgressKey, target: Target) -> None:
        super().__init__()
        self.key = key
        self.target = target
        self._seen: object = None
        self.plain = ""  # what is on screen, as text (tests)

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = Text(f"{self.key.target} · {short_vantage(self.key.vantage, 24)}")
            box.border_subtitle = "Esc back"
            yield Static(id="egress-detail")

    def on_mount(self) -> None:
        follow = getattr(self.app, "follow", None)
        if follow is not None:
            follow("egress", self.key)
        self.refresh_detail()
        self.set_interval(0.25, self.refresh_detail)

    def on_unmount(self) -> None:
        unfollow = getattr(self.app, "unfollow", None)
        if unfollow is not None:
            unfollow("egress", self.key)

    def refresh_detail(self) -> None:
        frame: Frame | None = getattr(self.app, "frame", None)
        view = frame.egress if frame is not None else None
        if view is None or (view, frame.path if frame else None) == self._seen:
            return
        self._seen = (view, frame.path if frame else None)
        stats = view.stats
        k, t = self.key, self.target
        st = stats.get(k)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style=DIM, no_wrap=True)
        grid.add_column()
        rows: list[tuple[str, Text]] = [
            ("vantage", Text(k.vantage)),
            ("target", Text(t.text)),
            (
                "needed for",
                Text(t.why or {"config": "your [egress] targets", "cli": "the command line"}.get(t.source, t.source)),
            ),
        ]
        if t.unreachable:
            rows.append(("from here", Text(t.unreachable, style=DIM)))
        if st is None and t.unreachable:
            rows.append(("results", Text(NOT_HERE, style=DIM)))
        elif st is None:
            rows.append(("results", Text("none yet: the first check is on its way", style=DIM)))
        else:
            h = health(st)
            last = st.last
            dialled = getattr(last, "address", "") or "—"
            via = getattr(last, "via", "")
            if via:
                dialled += f" (lab DNAT to {via})"
            mode = getattr(getattr(last, "mode", None), "value", "")
            fallback = getattr(last, "fallback", "")
            rows += [
                ("address", Text(dialled)),
                ("mode", Text(mode + (f" — {fallback}" if fallback else ""), style="yellow" if fallback else "")),
                ("last outcome", Text(st.last_outcome, style=STYLE[h])),
                ("handshake", Text(f"p50 {fmt_ms(st.p50)}  p95 {fmt_ms(st.p95)}  p99 {fmt_ms(st.p99)} ms")),
                ("success", Text(f"{success_pct(st):.0f}% of the last {st.attempts} ({st.count} ever)")),
            ]
            if st.last_error:
                rows.append(("last error", Text(st.last_error, style=BAD if h is Health.FAILING else "")))
        plan = view.plan
        siblings = [
            x
            for vp in plan.vantages
            if vp.vantage.name == k.vantage
            for x in vp.targets
            if x.host == t.host and x.text != t.text
        ]
        if siblings:
            line = Text()
            for x in siblings:
                s2 = stats.get(EgressKey(k.vantage, x.text))
                if line:
                    line.append("  ")
                line.append(f":{x.port} ")
                line.append(s2.last_outcome if s2 else "…", style=STYLE[health(s2)])
            rows.append(("other ports", line))
        for name, value in rows:
            grid.add_row(name, value)
        # the same target from every vantage
        everywhere = Table.grid(padding=(0, 1))
        everywhere.add_column(no_wrap=True, width=1)
        for _ in range(4):
            everywhere.add_column(no_wrap=True)
        others = [vp.vantage.name for vp in plan.vantages if any(x.text == t.text for x in vp.targets)]
        counts = {"open": 0, "failing": 0}
        for name in others:
            s = stats.get(EgressKey(name, t.text))
            if s is not None:
                counts["open" if s.last_outcome == "open" else "failing"] += 1
        for name in others[:VANTAGE_ROWS]:
            s = stats.get(EgressKey(name, t.text))
            hh = health(s)
            everywhere.add_row(
                Text("▸" if name == k.vantage else ""),
                Text(short_vantage(name, 20), style="bold" if name == k.vantage else ""),
                Text(SHORT_OUTCOME.get(s.last_outcome, s.last_outcome) if s else "…", style=STYLE[hh]),
                Text(f"p50 {fmt_ms(s.p50):>5} ms" if s else ""),
                Text(f"{success_pct(s):.0f}% ok" if s else "", style=DIM),
            )
        more = len(others) - VANTAGE_ROWS
        hist = Table.grid(padding=(0, 1))
        hist.add_column(no_wrap=True, min_width=8)
        hist.add_column(no_wrap=True, min_width=9)
        hist.add_column(no_wrap=True, min_width=11, justify="right")
        hist.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        results = list(view.details.get(k, ()))[-HISTORY_ROWS:]
        for res in reversed(results):
            out = _outcome(res)
            style = outcome_style(EgressOutcome, out)
            hist.add_row(
                Text(_clock(getattr(res, "timestamp", 0.0)), style=DIM),
                Text(SHORT_OUTCOME.get(out, out), style=style),
                Text(f"{res.latency_ms:.2f} ms"),
                Text(res.error or "", overflow="ellipsis", no_wrap=True),
            )
        raw = st.last_raw if st is not None else ""
        address = str(getattr(st.last, "address", "") or "") if st is not None else ""
        path_view, path_plain = path_section(frame, k.vantage, address, t.port)
        heading = Text(f"from every vantage ({counts['open']} open, {counts['failing']} failing)", style="bold")
        body = Group(
            grid,
            Text(""),
            heading,
            everywhere if others else Text("—", style=DIM),
            *([Text(f"  … and {more} more", style=DIM)] if more > 0 else []),
            Text(""),
            Text(f"history (newest first, last {len(results)})", style="bold"),
            hist if results else Text("—", style=DIM),
            Text(""),
            path_view,
            Text(""),
            Text("last answering packet (SYN mode)", style="bold"),
            Text(raw) if raw else Text("— (connect mode, or no answer yet)", style=DIM),
        )
        self.plain = "\n".join([*(f"{a}: {b.plain}" for a, b in rows), heading.plain, raw, path_plain])
        self.query_one("#egress-detail", Static).update(body)
