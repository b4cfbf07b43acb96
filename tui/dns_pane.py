"""The DNS pane: every resolver × name, grouped by vantage, with latency, loss and a sparkline.

It renders the frame's DNS view (``Frame.dns``: the service's plan, the history's stats
and the keys that changed since the previous frame); it never reads the service. The
table is diffed by row key: rows are added and removed only when the plan or the filter
changes, and each frame updates only the cells of keys whose stats moved, and of those
only the cells whose text changed. Nothing is rebuilt per frame.

Every string from outside (resolver names, pod names, errors, answers) goes into Rich
Text as plain text, never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from probes.dns.probe import DnsOutcome, ProbeKey
from probes.dns.resolvers import Resolver
from probes.dns.service import EMPTY_PLAN, DnsPlan
from probes.engine.health import Health
from probes.engine.history import Brief, Stats
from probes.engine.reach import short_why
from probes.kube.model import LOCAL_VANTAGE
from tui import format as fmt
from tui.columns import Flex
from tui.dns_detail import DnsDetailScreen
from tui.format import BAD, DIM, OK, WARN
from tui.probe_pane import ProbePane, ProbeTable
from tui.probe_text import (
    BULLET,
    DNS_SHORT,
    NO_EDNS_SHORT,
    STYLE,
    dns_health,
    fmt_ms,
    short_vantage,
    spark_levels,
    spark_text,
)

SHORT_OUTCOME = DNS_SHORT

# (column key, header, width)
COLUMNS = (
    ("res", "resolver", 16),
    ("name", "name", 15),
    ("p50", "p50", 5),
    ("p95", "p95", 5),
    ("loss", "loss", 4),
    ("last", "last", 8),
    ("recent", "recent", 9),
)


def short_resolver(r: Resolver) -> str:
    """A column-sized label: 'nodelocal', 'kube-dns', 'coredns …4tzjn', an address."""
    if r.key.startswith("coredns/"):
        return "coredns " + r.key.rsplit("-", 1)[-1][-5:]
    if r.key.startswith("custom/"):
        return r.key[len("custom/") :]
    return r.key


def _no_edns(st: Stats) -> str:
    return str(getattr(st.last, "no_edns", "") or "")


def _last_word(st: Stats) -> str:
    """The last outcome; an EDNS answer that came whole while a 512-byte client's was
    truncated reads '512:tc' (the detail screen says which clients)."""
    small = _no_edns(st)
    if st.last_outcome == "ok" and small in NO_EDNS_SHORT:
        return NO_EDNS_SHORT[small]
    return SHORT_OUTCOME.get(st.last_outcome, st.last_outcome)


def reachable(r: Resolver) -> bool:
    """The plan may say a resolver cannot be reached from its vantage (grey, not failing)."""
    return r.reachable


@dataclass(frozen=True, slots=True)
class DnsPaneRow:
    key: ProbeKey
    resolver: Resolver
    order: tuple


class DnsTable(ProbeTable):
    BINDINGS = [
        Binding("enter", "select_cursor", "DNS row: last raw answer and outcome history", show=False),
        Binding("p", "toggle_problems", "Problems only", tooltip="show only vantages with a failing or lossy resolver"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]


class DnsPane(ProbePane):
    PANE_TITLE = "DNS"
    DEFAULT_CSS = """
    DnsPane { height: 1fr; }
    DnsPane > #dns-status { height: 1; padding: 0 1; }
    DnsPane > DnsTable { height: 1fr; }
    DnsPane > .empty { height: auto; padding: 0 1; display: none; }
    """

    COLUMNS = COLUMNS
    FLEX = {"name": Flex(15, 48)}  # DNS names are long: they take what the numbers leave
    FILTER_WHAT = "DNS rows"
    PALETTE_SCOPE = "dns"
    KEY = ProbeKey
    FEED = "dns"
    NO_PLAN = EMPTY_PLAN
    OUTCOMES = DnsOutcome  # its health is `dns_health`: a replay judges its rows from their bytes

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._plan_memo: tuple[DnsPlan, tuple[str, ...]] | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("DNS: waiting for the cluster's resolvers…", style=DIM), id="dns-status")
        table = DnsTable(cursor_type="row", zebra_stripes=False, id="dns-table")
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield Static("", classes="empty")
        yield table

    # --- what the rows say ---------------------------------------------------------------
    def _health_of(self, info: DnsPaneRow, st: Stats | Brief | None) -> Health:
        return dns_health(st, reachable(info.resolver))

    def _raw_sig(self, st: Stats) -> tuple:
        return (st.p50, st.p95, st.loss_pct, st.last_outcome, _no_edns(st), spark_levels(st.recent))

    def _why_not(self, info: DnsPaneRow) -> str:
        return info.resolver.unreachable

    def _needs(self) -> dict[str, int]:
        names = self._plan.names if self._plan is not None else ()
        return {"name": max((len(n) for n in names), default=15)}

    def _open_detail(self, info: DnsPaneRow) -> None:
        self.app.push_screen(DnsDetailScreen(info.key, info.resolver))

    def _take_plan(self, plan: DnsPlan) -> None:
        self._plan = plan
        rows: dict[ProbeKey, DnsPaneRow] = {}
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
                    rows[k] = DnsPaneRow(k, r, (vi, 1, ri, ni))
        self._rows = rows
        self._stats = {k: s for k, s in self._stats.items() if k in rows}
        self._health = {
            v: {k: h for k, h in hs.items() if k in rows} for v, hs in self._health.items() if v in self._vantage_order
        }

    def _row_cells(self, info: DnsPaneRow, st: Stats | None) -> list[Any]:
        h = dns_health(st, reachable(info.resolver))
        style = STYLE[h]
        res = Text.assemble((" ", ""), (BULLET[h] + " ", style), (short_resolver(info.resolver), ""))
        name = Text(self.fit_text("name", info.key.name))
        why = info.resolver.unreachable
        if why:  # never probed from this vantage: grey, with the reason, not a failure
            res = Text.assemble((" ", ""), (BULLET[h] + " ", DIM), (short_resolver(info.resolver), DIM))
            blank = Text("—", style=DIM)
            return [
                res,
                Text(self.fit_text("name", info.key.name), style=DIM),
                blank,
                blank,
                Text(""),
                Text("not here", style=DIM),
                Text(short_why(why), style=DIM),
            ]
        if st is None:
            return [
                res,
                name,
                Text("—", style=DIM),
                Text("—", style=DIM),
                Text("", style=DIM),
                Text("…", style=DIM),
                Text(""),
            ]
        loss = f"{st.loss_pct:.0f}%"
        return [
            res,
            name,
            Text(fmt_ms(st.p50), justify="right"),
            Text(fmt_ms(st.p95), justify="right", style=WARN if (st.p95 or 0) >= 100 else ""),
            Text(loss, justify="right", style=BAD if st.loss_pct >= 50 else WARN if st.loss_pct > 0 else DIM),
            Text(_last_word(st), style=style),
            spark_text(spark_levels(st.recent)),
        ]

    def _vantage_cells(self, v: str) -> list[Any]:
        h = self.vantage_health(v)
        summary = self.vantage_summary(v, {"none": "no reachable resolvers", "warn": "warn", "pending": "probed"})
        head = Text.assemble((BULLET[h] + " ", STYLE[h]), (short_vantage(v), "bold"))
        note = Text(self._vantage_note.get(v, ""), style=DIM)
        if v in self._agent_nodes:
            note = Text(*fmt.agent_brief(self.agents, self._agent_nodes[v], fmt.now_of(self)))
        return [head, note, Text(""), Text(""), Text(""), summary, Text("")]

    # --- status, actions -----------------------------------------------------------------
    def _plan_words(self, plan: DnsPlan) -> tuple[str, ...]:
        """The status line's words on the plan (the same while the plan is)."""
        memo = self._plan_memo
        if memo is None or memo[0] is not plan:
            words = [f"{len(plan.vantages)} vantages · {plan.jobs} probes every {plan.interval:g}s · ms"]
            if plan.agents:
                words.append(f" · {plan.agents} by agents")
            if plan.unreachable:
                words.append(f" · {plan.unreachable} not reachable here")
            memo = self._plan_memo = (plan, tuple(words))
        return memo[1]

    def _update_status(self, plan: DnsPlan) -> None:
        err = plan.error or self.error
        if err:
            line = Text.assemble(("✖ ", BAD), (err, ""))
        elif not plan.vantages:
            line = Text("DNS: waiting for the cluster's resolvers…", style=DIM)
        else:
            tally = self.tally()
            failing, degraded = tally[Health.FAILING], tally[Health.DEGRADED]
            # by importance, as a short row cuts from the right: the view, the verdict, the plan
            line = Text.assemble(("DNS ", "bold"), *self.view_words(), no_wrap=True, overflow="ellipsis")
            if failing:
                line.append(f"{failing} failing · ", style=BAD)
            if degraded:
                line.append(f"{degraded} degraded · ", style=WARN)
            if not failing and not degraded and tally.total() > tally[Health.UNREACHABLE]:
                line.append("all answering · ", style=OK)
            for words in self._plan_words(plan):
                line.append(words, style=DIM)
        if line != self._status:
            self._status = line
            self.query_one("#dns-status", Static).update(line, layout=False)  # one fixed row
