"""The DNS pane: every resolver × name, grouped by vantage, with latency, loss and a sparkline.

It reads two things from its source (a :class:`probes.dns.service.DnsService`, or any
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
from typing import Any, Protocol

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from probes.dns.probe import ProbeKey
from probes.dns.service import DnsPlan
from probes.engine.history import History, Stats
from probes.kube.model import LOCAL_VANTAGE
from probes.dns.resolvers import Resolver
from tui import format as fmt
from tui.format import BAD, DIM, OK, WARN  # the other panes import them from here too
from tui.probe_pane import ProbePane, ProbeTable

PENDING = DIM
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


@dataclass(frozen=True, slots=True)
class RowInfo:
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
    """

    COLUMNS = COLUMNS
    KEY = ProbeKey

    def __init__(self, source: DnsSource, **kwargs: Any) -> None:
        super().__init__(source, **kwargs)

    def compose(self) -> ComposeResult:
        yield Static(Text("DNS: waiting for the cluster's resolvers…", style=DIM), id="dns-status")
        table = DnsTable(cursor_type="row", zebra_stripes=False, id="dns-table")
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table

    # --- what the rows say ---------------------------------------------------------------
    def _health_of(self, st: Stats | None) -> str:
        return health(st)

    def _raw_sig(self, st: Stats) -> tuple:
        return (st.p50, st.p95, st.loss_pct, st.last_outcome, spark_levels(st.recent))

    def _open_detail(self, info: RowInfo) -> None:
        from tui.dns_detail import DnsDetailScreen

        self.app.push_screen(DnsDetailScreen(info.key, info.resolver, self.source.history))

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
        h = self.vantage_health(v)
        summary = self.vantage_summary(v, {"none": "no reachable resolvers", "warn": "warn", "pending": "probed"})
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
