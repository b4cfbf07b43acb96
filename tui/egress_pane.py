"""The egress pane: every TCP target × vantage, with outcome, handshake p50, success % and
a sparkline, grouped by vantage.

It renders the frame's egress view (``Frame.egress``: the service's plan, the history's
stats and the keys that changed since the previous frame); it never reads the service.
The table is diffed by row key: rows are added and removed only when the plan or the
filter changes; each frame looks only at keys whose stats moved and redraws, of those,
the rows on screen and only their cells whose text changed. Off-screen rows catch up
when scrolled to.

Every string from outside (target names, node names, errors, packets) goes into Rich
Text as plain text, never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from probes.azure.egressid import gateway_summary
from probes.azure.path import PathData
from probes.egress.probe import EgressKey
from probes.egress.service import EMPTY_PLAN, EgressPlan
from probes.egress.targets import Target
from probes.engine.health import Health
from probes.engine.history import Stats
from probes.engine.reach import short_why
from probes.kube.model import LOCAL_VANTAGE
from tui import format as fmt
from tui.columns import Flex, elide_middle
from tui.egress_detail import EgressDetailScreen
from tui.format import BAD, DIM, OK, WARN
from tui.probe_pane import ProbePane, ProbeTable
from tui.probe_text import (
    BULLET,
    EGRESS_SHORT,
    STYLE,
    egress_health,
    fmt_ms,
    mode_cell,
    short_vantage,
    spark_levels,
    spark_text,
    success_pct,
)

SHORT_OUTCOME = EGRESS_SHORT

# (column key, header, width): 32+9+6+4+9+5 + 2×6 padding = 77 columns
COLUMNS = (
    ("target", "target", 32),
    ("last", "last", 9),
    ("p50", "p50", 6),
    ("ok", "ok%", 4),
    ("recent", "recent", 9),
    ("mode", "mode", 5),
)


@dataclass(frozen=True, slots=True)
class EgressPaneRow:
    key: EgressKey
    target: Target
    order: tuple


class EgressTable(ProbeTable):
    BINDINGS = [
        Binding("enter", "select_cursor", "Egress row: history of that target", show=False),
        Binding("p", "toggle_problems", "Problems only", tooltip="show only vantages with a failing target"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]


class EgressPane(ProbePane):
    PANE_TITLE = "Egress"
    DEFAULT_CSS = """
    EgressPane { height: 1fr; }
    EgressPane > #egress-status { height: auto; max-height: 2; padding: 0 1;
        text-wrap: nowrap; text-overflow: ellipsis; }
    EgressPane > EgressTable { height: 1fr; }
    EgressPane > .empty { height: auto; padding: 0 1; display: none; }
    """

    COLUMNS = COLUMNS
    FLEX = {"target": Flex(24, 56)}
    FILTER_WHAT = "egress rows"
    PALETTE_SCOPE = "egress"
    KEY = EgressKey
    FEED = "egress"
    NO_PLAN = EMPTY_PLAN

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._modes: dict[str, tuple[str, str]] = {}  # vantage -> (mode, fallback reason)
        self._ident: tuple[Any, str] = (None, "")  # (the PathData, its identity's short line)

    def compose(self) -> ComposeResult:
        yield Static(Text("Egress: waiting for the cluster…", style=DIM), id="egress-status")
        table = EgressTable(cursor_type="row", zebra_stripes=False, id="egress-table")
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield Static("", classes="empty")
        yield table

    # --- what the rows say ---------------------------------------------------------------
    def _health_of(self, info: EgressPaneRow, st: Stats | None) -> Health:
        return egress_health(st, info.target.reachable)

    def _on_result(self, info: EgressPaneRow, st: Stats) -> None:
        mode = getattr(getattr(st.last, "mode", None), "value", "")
        if mode:
            self._modes[info.key.vantage] = (mode, getattr(st.last, "fallback", ""))

    def _raw_sig(self, st: Stats) -> tuple:
        return (
            st.p50,
            st.successes,
            st.attempts,
            st.last_outcome,
            spark_levels(st.recent),
            getattr(getattr(st.last, "mode", None), "value", ""),
            bool(getattr(st.last, "fallback", "")),
        )

    def _why_not(self, info: EgressPaneRow) -> str:
        return info.target.unreachable

    def _needs(self) -> dict[str, int]:
        return {"target": max((len(k.target) + 3 for k in self._rows), default=24)}

    def _open_detail(self, info: EgressPaneRow) -> None:
        self.app.push_screen(EgressDetailScreen(info.key, info.target))

    def _take_plan(self, plan: EgressPlan) -> None:
        self._plan = plan
        rows: dict[EgressKey, EgressPaneRow] = {}
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
                rows[k] = EgressPaneRow(k, t, (vi, 1, ti))
        self._rows = rows
        self._stats = {k: s for k, s in self._stats.items() if k in rows}
        self._health = {
            v: {k: h for k, h in hs.items() if k in rows} for v, hs in self._health.items() if v in self._vantage_order
        }
        self._modes = {v: m for v, m in self._modes.items() if v in self._vantage_order}

    def _row_cells(self, info: EgressPaneRow, st: Stats | None) -> list[Any]:
        h = self._health_of(info, st)
        style = STYLE[h]
        target = elide_middle(info.key.target, self.widths["target"] - 3)  # after " ● "
        name = Text.assemble((" ", ""), (BULLET[h] + " ", style), (target, ""))
        why = info.target.unreachable
        if why:  # never checked from this vantage: grey, with the reason, not a failure
            name = Text.assemble((" ", ""), (BULLET[h] + " ", DIM), (target, DIM))
            return [
                name,
                Text("not here", style=DIM),
                Text("—", style=DIM, justify="right"),
                Text(""),
                Text(short_why(why), style=DIM),
                Text(""),
            ]
        if st is None:
            return [name, Text("…", style=DIM), Text("—", style=DIM, justify="right"), Text(""), Text(""), Text("")]
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
        h = self.vantage_health(v)
        summary = self.vantage_summary(v, {"none": "no targets", "warn": "flaky", "pending": "done"})
        head = Text.assemble((BULLET[h] + " ", STYLE[h]), (short_vantage(v), "bold"))
        note = self._vantage_note.get(v, "")
        if v in self._agent_nodes:
            words, style = fmt.agent_brief(self.agents, self._agent_nodes[v], fmt.now_of(self))
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

    def identity(self) -> str:
        """'leaves via LB 20.x.y.z (+1)': the nodes' egress identity from ARM's path, or ""."""
        frame = self.frame
        data = frame.path.data if frame is not None and frame.path is not None else None
        if not isinstance(data, PathData) or data.error or not data.public_ips_read:
            return ""
        if self._ident[0] is not data:
            self._ident = (data, data.egress_identity().short())
        return self._ident[1]

    def gateways(self) -> str:
        """'2 static gateways 20.65.41.84/30, …': the pods that leave through a static egress
        gateway do not leave with the nodes' IP; "" where the CRD is absent."""
        frame = self.frame
        return gateway_summary(frame.kube.gateways) if frame is not None else ""

    def _update_status(self, plan: EgressPlan) -> None:
        err = plan.error or self.error
        if err:
            line = Text.assemble(("✖ ", BAD), (err, ""))
        elif not plan.vantages:
            line = Text("Egress: waiting for the cluster…", style=DIM)
        else:
            failing = sum(1 for hs in self._health.values() for h in hs.values() if h is Health.FAILING)
            flaky = sum(1 for hs in self._health.values() for h in hs.values() if h is Health.DEGRADED)
            modes = sorted({m for m, _ in self._modes.values()})
            # by importance, as a short row cuts from the right: the view, the verdict, the plan
            line = Text.assemble(("Egress ", "bold"), *self.view_words())
            if failing:
                line.append(f"{failing} failing · ", style=BAD)
            if flaky:
                line.append(f"{flaky} flaky · ", style=WARN)
            if (
                not failing
                and not flaky
                and any(h is not Health.UNREACHABLE for hs in self._health.values() for h in hs.values())
            ):
                line.append("all open · ", style=OK)
            ident = self.identity()
            if ident:
                line.append(f"{ident} · ", style=DIM)
            gw = self.gateways()
            if gw:
                line.append(f"{gw} · ", style=DIM)
            line.append(
                f"{len(plan.vantages)} vantages · {plan.jobs} checks/{plan.interval:g}s · "
                f"{'/'.join(modes) or plan.mode} · ms",
                style=DIM,
            )
            if plan.unreachable:
                line.append(f" · {plan.unreachable} not reachable here", style=DIM)
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
