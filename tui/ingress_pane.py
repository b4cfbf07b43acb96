"""The Ingress tab: the ingress path from the frame (``Frame.ingress``, an IngressView).

Section 1, one row per host grouped under its IngressClass (or Gateway class) and
controller: the group row says the controller's load balancer IP and its pods ready;
a host row what the host resolves to (✓ the LB's IP, ✗ elsewhere or NXDOMAIN), the HTTPS
column (what the HTTPS probe was served from here at the first address a client gets:
✓/▲ days left, ✗ expired, wrong host, untrusted, refused, timeout; HEAD /'s status when
asked for; the issuer when the width allows; `—` until a result exists), TLS from cert-manager (days left,
expired, not Ready, a pending challenge) and its backends' ready endpoints. Section 2,
one row per LoadBalancer service: its IP (or <pending> with the cloud provider's event)
and what Azure makes of its annotations. Enter opens the detail with the objects' fields.

Tables are diffed by row key: a frame whose IngressView is the previous one costs
nothing; otherwise only changed cells are updated, unless the rows themselves changed.
A frame whose rows are the previous frame's rows (the same hosts in the same order, the
same groups; only answers, endpoints, certificates or HTTPS results moved) is patched:
only the host rows that are new objects, and those whose host has a new HTTPS result,
are looked at again (`_patch`), and the status line's counts move by their difference.
Anything else (rows added, removed or reordered, a new minute, widths to fit again)
takes the whole view again (`redraw`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from probes.engine.frame import Frame, ProbeView
from probes.engine.history import Stats
from probes.ingress.served import results_for
from probes.ingress.view import ClassGroup, HostRow, IngressView, LbRow
from tui import ingress_text as it
from tui.columns import SCROLLBAR, Flex, elide_middle, elide_text, fit
from tui.ingress_detail import IngressDetailScreen
from tui.lazycells import LazyCell, LazyRow
from tui.steadytable import SteadyTable

HOST_COLUMNS = (
    ("host", "host", 24),
    ("dns", "resolves to", 16),
    ("https", "https", 12),
    ("tls", "tls", 12),
    ("ready", "ready", 5),
)
LB_COLUMNS = (("svc", "service", 22), ("ip", "IP", 15), ("azure", "what Azure does", 24), ("ready", "ready", 5))
HOST = Flex(16, 48)
HTTPS = Flex(12, 40)  # gets what the host column leaves: the issuer is worth less than the name
SVC = Flex(14, 30)
AZURE_LOW = 16


def _cut(t: Text, width: int) -> Text:
    """A summary cut at its end (its first words matter most)."""
    t.truncate(width, overflow="ellipsis")
    return t


_UNSET: Any = object()


def _tls_of(r: HostRow, now: float) -> tuple[str, str] | None:
    return it.tls_words(r.tls, now) if r.tls is not None else None


def _host_sig(r: HostRow, now: float, tls: Any = _UNSET) -> tuple[Any, ...]:
    """What a host row's cells show (the TLS words as shown: days, minutes, rounded);
    equal signatures, equal cells (the diff compares these, not the cells' text).
    `tls`: the row's TLS words when the caller has them."""
    if tls is _UNSET:
        tls = _tls_of(r, now)
    first = r.answers[0].outcome if r.answers else ""
    return (r.host, r.dns, r.resolved, first, tls, r.backends)


def _group_sig(g: ClassGroup) -> tuple[Any, ...]:
    return (g.class_name, g.family, g.controller, g.lb_ips, g.service, g.pods_ready, g.pods_total)


def _tls_host(host: str) -> str:
    """A host as the HTTPS probe's keys spell it (served.results_for's match)."""
    return host.lower().rstrip(".")


def _same(a: Any, b: Any) -> bool:
    """The same object, or tuples of the same objects (a host row with its HTTPS stats)."""
    if a is b:
        return True
    return type(a) is tuple and type(b) is tuple and len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _https_sig(st: Stats | None, words: tuple[str, str] | None = None) -> tuple[Any, ...]:
    """What the HTTPS cell shows: the verdict as worded, HEAD's status, the leaf (its issuer)."""
    if st is None:
        return ()
    r = st.last
    leaf = getattr(r, "leaf", None)
    return (
        words or it.https_words(st),
        getattr(r, "outcome", None),
        getattr(r, "http_status", None),
        bool(getattr(r, "http_error", "")),
        leaf.sha256 if leaf is not None else "",
    )


def _names(r: HostRow, kind: str, rest: str) -> bool:
    """Whether host row `r` is what a finding's subject (kind/rest) is about."""
    if kind == "host":
        return r.host == rest
    t = r.tls
    if kind == "certificate":
        return t is not None and t.certificate == rest
    if kind == "challenge":
        ch = t.challenge if t is not None else None
        return ch is not None and f"{ch.namespace}/{ch.name}" == rest
    return False


def _matches(needle: str, *texts: str) -> bool:
    n = needle.lower()
    return not n or any(n in t.lower() for t in texts)


class IngressTable(SteadyTable):
    BINDINGS = [
        Binding("enter", "select_cursor", "Details", tooltip="the objects' fields behind the row"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]


class IngressPane(Vertical):
    PANE_TITLE = "Ingress"
    FILTER_WHAT = "hosts and services"
    DEFAULT_CSS = """
    IngressPane { height: 1fr; }
    IngressPane > .ingress-line { height: 1; padding: 0 1; }
    IngressPane > #ingress-hosts { height: 3fr; }
    IngressPane > #ingress-lbs { height: 2fr; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view: IngressView | None = None
        self.https: ProbeView | None = None  # the HTTPS probe's rows (TlsKey -> Stats)
        # (HTTPS view, id(host row) -> (row, its stats)): rows are kept alive by the entry
        self._served_memo: tuple[Any, dict[int, tuple[HostRow, Stats | None]]] = (None, {})
        self.filter = ""
        self._shown: dict[str, dict[str, tuple[str, ...]]] = {"ingress-hosts": {}, "ingress-lbs": {}}
        self._rows: dict[str, dict[str, Any]] = {"ingress-hosts": {}, "ingress-lbs": {}}
        self.widths: dict[str, dict[str, int]] = {
            "ingress-hosts": {k: w for k, _, w in HOST_COLUMNS},
            "ingress-lbs": {k: w for k, _, w in LB_COLUMNS},
        }
        self._kube_note = ""
        # row key -> (its inputs, the minute, what its cells show, its cells): a row whose
        # inputs did not change keeps its cells; cells are LazyCells, built when first drawn
        # (building Rich Text for 1,000 rows, most never on screen, was the cost)
        self._cells: dict[str, tuple[Any, int, Any, list[LazyCell]]] = {}
        self._minute = 0
        self._fitted: dict[str, tuple[tuple[int, int], int, list[str]]] = {}
        self._https_need = HTTPS.low  # the widest HTTPS cell uncut (verdict, HEAD status, issuer)
        self._https_len: dict[str, tuple[Any, int]] = {}  # row key -> (its stats, its HTTPS cell's width)
        # every host row of the view (filtered or not): key -> (row, its HTTPS stats, its
        # (bad DNS, TLS, HTTPS) counts for the status line); the counts' sums; the host rows'
        # keys by host as the HTTPS probe's keys spell it; the shown rows' HTTPS widths
        self._facts: dict[str, tuple[HostRow, Stats | None, tuple[int, int, int]]] = {}
        self._counts = (0, 0, 0)
        self._by_tls_host: dict[str, list[str]] = {}
        self._widths_seen: dict[int, int] = {}  # HTTPS cell width -> how many shown rows have it

    def compose(self) -> ComposeResult:
        yield Static(
            Text("ingress: waiting for the cluster…", style="dim"), id="ingress-status", classes="ingress-line"
        )
        hosts = IngressTable(cursor_type="row", id="ingress-hosts")
        for key, label, width in HOST_COLUMNS:
            hosts.add_column(label, key=key, width=width)
        yield hosts
        yield Static(Text("LoadBalancer services", style="bold"), id="ingress-lb-title", classes="ingress-line")
        lbs = IngressTable(cursor_type="row", id="ingress-lbs")
        for key, label, width in LB_COLUMNS:
            lbs.add_column(label, key=key, width=width)
        yield lbs

    def focus(self, scroll_visible: bool = True) -> IngressPane:
        self.query_one("#ingress-hosts", IngressTable).focus(scroll_visible)
        return self

    def now(self) -> float:
        clock = getattr(self.app, "wall_clock", time.time)
        return float(clock())

    # --- frames ------------------------------------------------------------------------
    def tick(self, frame: Frame | None = None) -> None:
        if frame is None or not self.is_mounted:
            return
        note = self._statuses(frame)
        view = frame.ingress
        https = frame.https
        if view is self.view and https is self.https and note == self._kube_note:
            return
        prev_view, prev_https = self.view, self.https
        self._kube_note = note
        self.view = view
        self.https = https
        if not self._patch(prev_view, prev_https):
            self.redraw()

    def served(self, r: HostRow) -> Stats | None:
        """The host's HTTPS row a client here gets first (its resolved address), if probed;
        kept per row object while the HTTPS view is the same (a redraw asks twice per row)."""
        https = self.https
        memo = self._served_memo
        if memo[0] is not https:
            memo = self._served_memo = (https, {})
        hit = memo[1].get(id(r))
        if hit is not None and hit[0] is r:
            return hit[1]
        got = results_for(https.stats if https is not None else None, r)
        st = got[0][1] if got else None
        memo[1][id(r)] = (r, st)
        return st

    def _statuses(self, frame: Frame) -> str:
        """The ingress kinds' states worth a word: forbidden, erroring, still listing."""
        bad = [s for s in frame.kube.statuses if s.source.startswith("ingress/") and s.state.value not in ("live",)]
        if not bad:
            return ""
        s = bad[0]
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        return f"{s.source}: {s.state.value} {s.message}{more}"

    def on_resize(self) -> None:
        self._fitted.clear()
        self.redraw(force=True)

    def set_filter(self, needle: str) -> None:
        if needle != self.filter:
            self.filter = needle
            self._fitted.clear()
            self.redraw(force=True)

    def _cached(self, key: str, obj: Any, sig: Any, make: Any) -> tuple[list[LazyCell], Any]:
        """The row's cells: kept while it is the same object within the same minute (the
        publisher keeps unchanged rows), or while what its cells show is the same."""
        kept = self._cells.get(key)
        minute = self._minute
        if kept is not None and kept[1] == minute and _same(kept[0], obj):
            return kept[3], kept[2]
        shown = sig(obj) if callable(sig) else sig
        if kept is not None and kept[2] == shown:
            self._cells[key] = (obj, minute, shown, kept[3])
            return kept[3], shown
        cells = LazyRow(make).lazy(len(self.widths["ingress-lbs" if key.startswith("lb|") else "ingress-hosts"]))
        self._cells[key] = (obj, minute, shown, cells)
        return cells, shown

    def redraw(self, force: bool = False) -> None:
        view = self.view
        if view is None:
            return
        now = self.now()
        self._minute = int(now // 60)
        needle = self.filter.strip()
        hosts: dict[str, tuple[list[LazyCell], Any, Any]] = {}
        https_need = HTTPS.low
        for g in view.groups:
            rows = (
                [r for r in g.hosts if _matches(needle, r.host, g.class_name, *r.resolved, *r.expected)]
                if needle
                else g.hosts
            )
            if not rows and needle and not _matches(needle, g.class_name):
                continue
            key = f"g|{g.class_name}"
            cells, plain = self._cached(key, g, _group_sig(g), lambda g=g: self._group_cells(g))
            hosts[key] = (cells, g, plain)
            prefix = f"h|{g.class_name}|"
            for r in rows:
                key = prefix + r.host + "|" + r.source
                st = self.served(r)
                kept_len = self._https_len.get(key)
                if kept_len is None or kept_len[0] is not st:
                    kept_len = self._https_len[key] = (st, it.https_width(st))
                https_need = max(https_need, kept_len[1])
                cells, plain = self._cached(
                    key,
                    (r, st),
                    lambda o: (*_host_sig(o[0], now), _https_sig(o[1])),
                    lambda r=r, st=st: self._host_cells(r, now, st),
                )
                hosts[key] = (cells, r, plain)
        lbs = self._lb_rows(view, needle)
        self._https_need = https_need
        self._widths_seen = {}
        for k in hosts:
            if k.startswith("h|"):
                w = self._https_len[k][1]
                self._widths_seen[w] = self._widths_seen.get(w, 0) + 1
        self._count_all(view, now)
        self._sync("ingress-hosts", hosts, force)
        self._sync("ingress-lbs", lbs, force)
        self._status(view, now)

    def _lb_rows(self, view: IngressView, needle: str) -> dict[str, tuple[list[LazyCell], Any, Any]]:
        lbs: dict[str, tuple[list[LazyCell], Any, Any]] = {}
        for lb in view.lbs:
            s = lb.service
            if not needle or _matches(needle, s.key, *s.external):
                cells, plain = self._cached(f"lb|{s.key}", lb, lb, lambda lb=lb: self._lb_cells(lb))
                lbs[s.key] = (cells, lb, plain)
        return lbs

    def _bad(
        self, r: HostRow, st: Stats | None, now: float, tls: Any = _UNSET, words: tuple[str, str] | None = None
    ) -> tuple[int, int, int]:
        """A host row's part of the status line's counts: DNS ✗, TLS ▲, HTTPS ✗ (`tls`,
        `words`: its TLS and HTTPS words when the caller has them)."""
        if tls is _UNSET:
            tls = _tls_of(r, now)
        return (
            int(r.dns in ("elsewhere", "nxdomain")),
            int(tls is not None and tls[1] in (it.BAD, it.WARN)),
            int((words or it.https_words(st))[1] in (it.BAD, it.WARN)),
        )

    def _count_all(self, view: IngressView, now: float) -> None:
        """Every host row's facts and the counts, from the whole view."""
        facts: dict[str, tuple[HostRow, Stats | None, tuple[int, int, int]]] = {}
        by_host: dict[str, list[str]] = {}
        d = t = h = 0
        for g in view.groups:
            prefix = f"h|{g.class_name}|"
            for r in g.hosts:
                key = prefix + r.host + "|" + r.source
                st = self.served(r)
                bad = self._bad(r, st, now)
                facts[key] = (r, st, bad)
                by_host.setdefault(_tls_host(r.host), []).append(key)
                d, t, h = d + bad[0], t + bad[1], h + bad[2]
        self._facts = facts
        self._by_tls_host = by_host
        self._counts = (d, t, h)

    def _patch(self, prev_view: IngressView | None, prev_https: ProbeView | None) -> bool:
        """Bring the tables to the new frame by the host rows that changed; False when the
        rows themselves changed (or the minute, or the widths) and `redraw` must run."""
        view, https = self.view, self.https
        if view is None or prev_view is None or not self._facts:
            return False
        now = self.now()
        if len(view.groups) != len(prev_view.groups):
            return False
        changed: dict[str, HostRow] = {}
        groups: list[ClassGroup] = []
        for g, pg in zip(view.groups, prev_view.groups):
            if g is pg:
                continue
            if len(g.hosts) != len(pg.hosts) or _group_sig(g) != _group_sig(pg):
                return False
            groups.append(g)
            prefix = f"h|{g.class_name}|"
            for r, pr in zip(g.hosts, pg.hosts):
                if r is not pr:
                    if r.host != pr.host or r.source != pr.source:
                        return False
                    changed[prefix + r.host + "|" + r.source] = r
        if https is not prev_https:
            if https is None or prev_https is None:
                return False
            if https.since == prev_https.version and https.since >= 0:
                moved: Any = https.changed
            else:  # frames were skipped: the stats that are not the same objects
                old = prev_https.stats
                moved = [k for k, st in https.stats.items() if old.get(k) is not st]
                moved += [k for k in old if k not in https.stats]
            facts = self._facts
            for k in moved:
                for key in self._by_tls_host.get(getattr(k, "host", ""), ()):
                    if key not in changed:
                        changed[key] = facts[key][0]
        if not self._patch_hosts(changed, groups, now):
            return False
        self._minute = int(now // 60)
        if view.lbs is not prev_view.lbs:
            self._sync("ingress-lbs", self._lb_rows(view, self.filter.strip()), False)
        self._status(view, now)
        return True

    def _patch_hosts(self, changed: dict[str, HostRow], groups: list[ClassGroup], now: float) -> bool:
        table_id = "ingress-hosts"
        shown = self._shown[table_id]
        rows = self._rows[table_id]
        for g in groups:
            if f"g|{g.class_name}" in rows:
                rows[f"g|{g.class_name}"] = g
        needle = self.filter.strip()
        facts = self._facts
        d, t, h = self._counts
        seen = self._widths_seen
        updates: list[tuple[str, list[LazyCell], Any, Any]] = []
        minute = int(now // 60)
        todo: Iterable[tuple[str, HostRow | None]] = changed.items()
        if minute != self._minute:
            # days left and challenge ages move with the clock: every row is looked at, the
            # ones that did not change with the HTTPS stats they had
            self._minute = minute
            todo = [*changed.items(), *((k, None) for k in facts if k not in changed)]
        for key, got in todo:
            was = facts.get(key)
            if was is None:
                return False
            r, st = (got, self.served(got)) if got is not None else (was[0], was[1])
            tls, words = _tls_of(r, now), it.https_words(st)  # once a row: the counts, the width, the diff
            bad = self._bad(r, st, now, tls, words)
            d, t, h = d + bad[0] - was[2][0], t + bad[1] - was[2][1], h + bad[2] - was[2][2]
            facts[key] = (r, st, bad)
            on = key in shown
            if needle and on != _matches(needle, r.host, r.class_name, *r.resolved, *r.expected):
                return False  # it enters or leaves the filtered rows
            if not on:
                continue
            kept_len = self._https_len.get(key)
            if kept_len is None or kept_len[0] is not st:
                width = it.https_width(st, words)
                if kept_len is not None:
                    seen[kept_len[1]] -= 1
                seen[width] = seen.get(width, 0) + 1
                self._https_len[key] = (st, width)
            cells, plain = self._cached(
                key,
                (r, st),
                lambda o, tls=tls, words=words: (*_host_sig(o[0], now, tls), _https_sig(o[1], words)),
                lambda r=r, st=st: self._host_cells(r, now, st),
            )
            rows[key] = r
            updates.append((key, cells, plain, shown.get(key)))
        self._counts = (d, t, h)
        table = self.query_one(f"#{table_id}", IngressTable)
        need = max([HTTPS.low, *(w for w, n in seen.items() if n > 0)])
        if need != self._https_need:
            self._https_need = need
            if self._fit(table_id, rows):  # the HTTPS column's width moved: new cells for all
                table.replace_rows(self._remake(table_id, rows))
                for key, _, sig, _ in updates:
                    shown[key] = sig
                return True
        table.update_rows({key: cells for key, cells, sig, old in updates if old != sig})
        for key, _, sig, old in updates:
            if old != sig:
                shown[key] = sig
        return True

    def _status(self, view: IngressView, now: float) -> None:
        bad_dns, bad_tls, bad_https = self._counts
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"{view.hosts} host{'s' if view.hosts != 1 else ''}", style="bold")
        t.append(f" · {len(view.groups)} class{'es' if len(view.groups) != 1 else ''}", style="dim")
        t.append(" · DNS ", style="dim")
        t.append(f"{bad_dns} ✗", style=it.BAD if bad_dns else "dim")
        t.append(" · TLS ", style="dim")
        t.append(f"{bad_tls} ▲", style=it.WARN if bad_tls else "dim")
        if self.https is not None:
            t.append(" · HTTPS ", style="dim")
            t.append(f"{bad_https} ✗", style=it.BAD if bad_https else "dim")
        kinds = {k for k, _ in view.absent}
        if {"certificates", "challenges"} & kinds:
            t.append(" · no cert-manager", style="dim")
        if {"gateways", "httproutes"} & kinds:
            t.append(" · no Gateway API", style="dim")
        if self._kube_note:
            t.append(f" · {self._kube_note}", style=it.WARN)
        if self.filter.strip():
            t.append(f"  filter “{self.filter.strip()}”", style="magenta")
        self.query_one("#ingress-status", Static).update(t, layout=False)
        pending = sum(1 for lb in view.lbs if lb.service.pending)
        title = Text.assemble(
            ("LoadBalancer services ", "bold"),
            (f"{len(view.lbs)}", "bold"),
            (f" · {pending} pending" if pending else "", it.WARN),
            no_wrap=True,
        )
        self.query_one("#ingress-lb-title", Static).update(title, layout=False)

    # --- cells -------------------------------------------------------------------------
    def _group_cells(self, g: ClassGroup) -> list[Text]:
        w = self.widths["ingress-hosts"]
        return [
            elide_text(it.group_label(g), w["host"]),
            elide_text(it.group_lb(g), w["dns"] + w["https"] + w["tls"] + 6),
            Text(""),
            Text(""),
            it.group_pods(g),
        ]

    def _host_cells(self, r: HostRow, now: float, st: Stats | None = None) -> list[Text]:
        w = self.widths["ingress-hosts"]
        return [
            Text("  " + elide_middle(r.host, w["host"] - 2), no_wrap=True),
            elide_text(it.dns_cell(r), w["dns"]),
            _cut(it.https_cell(st, w["https"]), w["https"]) if st is not None else it.HTTPS_CELL,
            elide_text(it.tls_cell(r, now), w["tls"]),
            it.backends_cell(r),
        ]

    def _lb_cells(self, lb: LbRow) -> list[Text]:
        w = self.widths["ingress-lbs"]
        return [
            Text(elide_middle(lb.service.key, w["svc"]), no_wrap=True),
            elide_text(it.lb_ip_cell(lb), w["ip"]),
            it.lb_summary(lb).copy()
            if it.lb_summary(lb).cell_len <= w["azure"]
            else _cut(it.lb_summary(lb), w["azure"]),
            it.lb_ready_cell(lb),
        ]

    # --- tables ------------------------------------------------------------------------
    def _fit(self, table_id: str, rows: dict[str, Any]) -> bool:
        """Fit the columns to the width and to `rows` (key -> the row's object); True when
        the widths moved (every cell must be made again)."""
        total = self.size.width - SCROLLBAR
        if total <= 0:
            return False
        keys = rows.keys()
        last = self._fitted.get(table_id)
        total_key = (total, self._https_need) if table_id == "ingress-hosts" else (total, 0)
        if last is not None and last[0] == total_key and last[1] == len(rows) and list(keys) == last[2]:
            return False  # the same rows in the same width: the same widths
        self._fitted[table_id] = (total_key, len(rows), list(keys))
        if table_id == "ingress-hosts":
            need = {
                "host": max(
                    (len(o.host) + 2 if isinstance(o, HostRow) else it.group_label(o).cell_len for o in rows.values()),
                    default=HOST.low,
                ),
            }
            widths = fit(total, [(k, w) for k, _, w in HOST_COLUMNS], {"host": HOST}, need)
            spare = total - sum(v + 2 for v in widths.values())
            widths["https"] = max(HTTPS.low, min(HTTPS.cap, self._https_need, widths["https"] + max(spare, 0)))
        else:
            need = {"svc": max((len(o.service.key) for o in rows.values()), default=SVC.low)}
            cols = [(k, AZURE_LOW if k == "azure" else w) for k, _, w in LB_COLUMNS]
            widths = fit(total, cols, {"svc": SVC}, need)
            used = sum(v + 2 for k, v in widths.items() if k != "azure")
            widths["azure"] = max(total - used - 2, AZURE_LOW)
        if widths == self.widths[table_id]:
            return False
        self.widths[table_id] = widths
        for col in self.query_one(f"#{table_id}", IngressTable).columns.values():
            col.width = widths[str(col.key.value)]
            col.auto_width = False
        return True

    def _remake(self, table_id: str, rows: dict[str, Any]) -> dict[str, list[LazyCell]]:
        """New cells for every row (key -> its object) after the widths moved; the cache
        keeps them for the rows' inputs it holds."""
        now = self.now()
        width = len(self.widths[table_id])
        out: dict[str, list[LazyCell]] = {}
        for k, o in rows.items():
            make = (
                (lambda o=o: self._host_cells(o, now, self.served(o)))
                if isinstance(o, HostRow)
                else (lambda o=o: self._group_cells(o))
                if isinstance(o, ClassGroup)
                else (lambda o=o: self._lb_cells(o))
            )
            cells = out[k] = LazyRow(make).lazy(width)
            key = k if table_id == "ingress-hosts" else f"lb|{k}"
            kept = self._cells.get(key)
            if kept is not None:
                self._cells[key] = (kept[0], kept[1], kept[2], cells)
        # the table's other rows (filtered out) were made at the old widths: forget them
        mine = ("lb|",) if table_id == "ingress-lbs" else ("h|", "g|")
        kept_keys = {k if table_id == "ingress-hosts" else f"lb|{k}" for k in rows}
        for key in [key for key in self._cells if key.startswith(mine) and key not in kept_keys]:
            del self._cells[key]
        return out

    def _sync(self, table_id: str, rows: dict[str, tuple[list[LazyCell], Any, Any]], force: bool) -> None:
        table = self.query_one(f"#{table_id}", IngressTable)
        if self._fit(table_id, {k: o for k, (_, o, _) in rows.items()}):
            force = True  # cells depend on the widths: make them again
            remade = self._remake(table_id, {k: o for k, (_, o, _) in rows.items()})
            rows = {k: (remade[k], o, sig) for k, (_, o, sig) in rows.items()}
        wanted = {k: sig for k, (_, _, sig) in rows.items()}
        shown = self._shown[table_id]
        if list(wanted) != list(shown):
            cursor = self._cursor_key(table)
            table.clear()
            table.add_rows_keyed({k: cells for k, (cells, _, _) in rows.items()})
            if cursor in wanted:
                table.move_cursor(row=list(wanted).index(cursor), animate=False)
        elif force:
            table.replace_rows({k: cells for k, (cells, _, _) in rows.items()})  # the same rows, new cells
        else:
            for k, sig in wanted.items():
                if shown.get(k) != sig:
                    table.update_row(k, rows[k][0])
        self._shown[table_id] = wanted
        self._rows[table_id] = {k: o for k, (_, o, _) in rows.items()}

    @staticmethod
    def _cursor_key(table: DataTable) -> str | None:
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)
        except Exception:  # noqa: BLE001 - an empty or shrinking table
            return None

    def row_texts(self, table_id: str) -> dict[str, tuple[str, ...]]:
        """What each row of a table shows, as plain text (its cells built if they were not)."""
        table = self.query_one(f"#{table_id}", IngressTable)
        return {k: tuple(getattr(c, "plain", str(c)) for c in table.get_row(k)) for k in self._shown[table_id]}

    def selected(self, table_id: str) -> Any:
        table = self.query_one(f"#{table_id}", IngressTable)
        key = self._cursor_key(table)
        return self._rows[table_id].get(key) if key is not None else None

    def select_key(self, evidence: Any) -> bool:
        """Put the cursor on the row a finding's evidence names (`subject`: host/…,
        service/…, certificate/…, challenge/…)."""
        subject = dict(getattr(evidence, "fields", ())).get("subject", "")
        kind, _, rest = subject.partition("/")
        if self.filter:
            self.filter = ""
        self.redraw(force=True)
        if kind == "service":
            table_id, keys = "ingress-lbs", [k for k in self._rows["ingress-lbs"] if k == rest]
        else:
            table_id = "ingress-hosts"
            keys = [k for k, o in self._rows[table_id].items() if isinstance(o, HostRow) and _names(o, kind, rest)]
        if not keys:
            return False
        table = self.query_one(f"#{table_id}", IngressTable)
        table.move_cursor(row=list(self._rows[table_id]).index(keys[0]), animate=False)
        table.focus()
        return True

    def empty_words(self) -> str:
        if self.view is None:
            return ""
        if not self.view.hosts and not self.view.lbs:
            return "No Ingress, HTTPRoute or LoadBalancer service in the cluster."
        return ""

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        table_id = event.data_table.id or ""
        obj = self.selected(table_id)
        if obj is not None and self.view is not None:
            https = self.https.stats if self.https is not None else None
            self.app.push_screen(IngressDetailScreen(obj, self.view, self.now(), https))
