"""One DNS row in full: where the query went, its statistics, the outcome history and the
last raw answer. Follows the app's frames until closed (the publisher puts this row's last
results into them while the screen is open). Answers are external text: they are shown
as plain Text, never parsed as markup."""

from __future__ import annotations

import time

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from probes.dns.probe import EDNS_PAYLOAD, DnsOutcome, ProbeKey
from probes.dns.resolvers import Resolver
from probes.dns.result import profile_words
from probes.engine.frame import Frame
from probes.engine.health import Health
from tui.format import BAD, DIM, NOT_HERE
from tui.probe_text import DNS_SHORT as SHORT_OUTCOME
from tui.probe_text import STYLE, dns_health, fmt_ms, outcome_style

HISTORY_ROWS = 20


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else "--:--:--"


class DnsDetailScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    DnsDetailScreen { align: center middle; }
    DnsDetailScreen > VerticalScroll { width: 100%; max-width: 110; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,enter", "dismiss", "Back")]

    def __init__(self, key: ProbeKey, resolver: Resolver) -> None:
        super().__init__()
        self.key = key
        self.resolver = resolver
        self._seen: tuple[object, object] | None = None
        self.plain = ""  # what is on screen, as text (tests)

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = Text(f"{self.key.resolver} · {self.key.name}")
            box.border_subtitle = "Esc back"
            yield Static(id="dns-detail")

    def on_mount(self) -> None:
        follow = getattr(self.app, "follow", None)
        if follow is not None:
            follow("dns", self.key)
        self.refresh_detail()
        self.set_interval(0.25, self.refresh_detail)

    def on_unmount(self) -> None:
        unfollow = getattr(self.app, "unfollow", None)
        if unfollow is not None:
            unfollow("dns", self.key)

    def refresh_detail(self) -> None:
        frame: Frame | None = getattr(self.app, "frame", None)
        view = frame.dns if frame is not None else None
        st = view.stats.get(self.key) if view is not None else None
        results = list(view.details.get(self.key, ())) if view is not None else []
        seen = (st, len(results) and results[-1])
        if seen == self._seen:
            return
        self._seen = seen
        r, k = self.resolver, self.key
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style=DIM, no_wrap=True)
        grid.add_column()
        host, port = r.dest
        rows: list[tuple[str, Text]] = [
            ("vantage", Text(k.vantage)),
            ("resolver", Text(f"{r.key} ({r.kind.value})" + (f" on {r.detail}" if r.detail else ""))),
            ("address", Text(r.label.split(" ", 1)[-1])),
            (
                "dialled",
                Text(f"[{host}]:{port}" if ":" in host else f"{host}:{port}", style=DIM if r.target is None else ""),
            ),
            ("query", Text(f"{k.name} {k.qtype}")),
        ]
        if r.unreachable:
            rows.append(("from here", Text(r.unreachable, style=DIM)))
        if st is None and r.unreachable:
            rows.append(("results", Text(NOT_HERE, style=DIM)))
        elif st is None:
            rows.append(("results", Text("none yet: the first query is on its way", style=DIM)))
        else:
            h = dns_health(st)
            rows += [
                ("last outcome", Text(st.last_outcome, style=STYLE[h])),
                ("latency", Text(f"p50 {fmt_ms(st.p50)}  p95 {fmt_ms(st.p95)}  p99 {fmt_ms(st.p99)} ms")),
                ("loss", Text(f"{st.loss_pct:.0f}% of the last {st.attempts} ({st.count} ever)")),
            ]
            if st.last_error:
                rows.append(("last error", Text(st.last_error, style=BAD if h is Health.FAILING else "")))
            size = int(getattr(st.last, "size", 0) or 0)
            if size:
                rows.append(("answer", Text(f"{size} bytes (EDNS, {EDNS_PAYLOAD}-byte buffer)")))
            words = profile_words(st.last)
            if words:
                small = getattr(st.last, "profile_outcome", None)
                rows.append(("no-EDNS client", Text(words, style=STYLE[small.health] if small is not None else "")))
        for name, value in rows:
            grid.add_row(name, value)
        hist = Table.grid(padding=(0, 1))
        for _ in range(5):
            hist.add_column(no_wrap=True)
        results = results[-HISTORY_ROWS:]
        for res in reversed(results):
            out = getattr(res.outcome, "value", str(res.outcome))
            flags = ",".join(
                f
                for f, on in (
                    ("TC", getattr(res, "tc_seen", False)),
                    ("TCP", getattr(res, "via_tcp", False)),
                    ("TC@512", getattr(res, "profile_outcome", None) is not None),
                )
                if on
            )
            style = outcome_style(DnsOutcome, out)
            hist.add_row(
                Text(_clock(res.timestamp), style=DIM),
                Text(SHORT_OUTCOME.get(out, out), style=style),
                Text(f"{res.latency_ms:.2f} ms", justify="right"),
                Text(flags, style=DIM),
                Text(res.error or "", overflow="ellipsis"),
            )
        raw = st.last_raw if st is not None else ""
        body = Group(
            grid,
            Text(""),
            Text(f"outcome history (newest first, last {len(results)})", style="bold"),
            hist if results else Text("—", style=DIM),
            Text(""),
            Text("last raw answer", style="bold"),
            Text(raw, style="") if raw else Text("— (no answer received yet)", style=DIM),
        )
        self.plain = "\n".join(f"{a}: {b.plain}" for a, b in rows) + "\n" + raw
        self.query_one("#dns-detail", Static).update(body)
