"""How a frame's parts become a recording's channels, and back.

A recording is a map channel -> value (msgpack-able builtins) that moves in time. The
channels are small on purpose, so a frame's change is a few rows:

- ``kube``: the topology's header (cluster, plugin, CIDRs, …), the sources' statuses,
  the synced collections and the target;  ``pods``: CoreDNS, NodeLocal DNS, services;
- ``n\\t<node>``: one node's record (a node added, changed, or — value None — removed);
- ``dns.plan`` / ``egress.plan``: a probe service's plan and error line;
- ``d\\t<key>`` / ``e\\t<key>`` / ``h\\t<key>``: one DNS / egress / HTTPS row's stats (a positional list of integers;
  in a delta, a patch carrying only the probe results since the row's previous value);
- ``snat``: the SNAT report without its nodes, and ``s\\t<ip>``: one node's SNAT row (in a
  delta, only the minutes since its previous value); ``routes``: ARM's routes;
- ``agents`` and ``a\\t<node>``: the agent reader's header and one node's agent;
- ``ingress`` and ``ingress.answers``: the ingress path's objects and the hosts' answers
  (probes/record/ingresschan.py); ``https.plan``: the HTTPS probe's plan;
- ``findings``: the rules' verdict; ``error``: the publisher's own failure.

`Differ` (writer side) says which channels a frame changed; `apply` puts a delta on a state
(resolving the patches); `Thawer` (reader side) turns channels back into a `Frame` that the
app's panes render as they rendered the original.
Every string that could carry a credential goes through `probes.record.redact`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import operator
import threading
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, Literal

import msgspec

from probes.agent.reader import AgentStatus
from probes.azure.routes import RouteData, compare
from probes.azure.service import SnatReport
from probes.azure.snat import ClusterMetric, NodeSnat, SnatTable, pressure_key
from probes.diagnose.model import Finding, Severity
from probes.dns.result import DnsResult, ProbeKey
from probes.dns.service import DnsPlan
from probes.egress.result import EgressKey, EgressResult
from probes.egress.service import EgressPlan
from probes.engine.frame import EMPTY, AgentsView, Frame, ProbeView, RouteView
from probes.engine.health import Health
from probes.engine.history import Brief, Stats, judge
from probes.engine.store import Snapshot
from probes.ingress.httpsservice import HttpsPlan
from probes.ingress.tlsresult import TlsKey, TlsResult
from probes.kube.model import NetworkPlugin, NodeInfo, PodState, ServiceInfo, SourceStatus, Topology
from probes.kube.topology import build_pools
from probes.record import ingresschan, redact

NODE, DNS, EGRESS, AGENT, SNAT_NODE, HTTPS = "n\t", "d\t", "e\t", "a\t", "s\t", "h\t"
_ROWS = (DNS, EGRESS, HTTPS)
_CLASSES: tuple[type, ...] = (DnsResult, EgressResult, TlsResult)  # a row's last result: its class's index
RAW_MAX = 400  # characters of a row's last raw answer kept


def _b(obj: Any) -> Any:
    return msgspec.to_builtins(obj, enc_hook=repr)


def key_text(key: Hashable) -> str:
    return json.dumps(list(key) if isinstance(key, tuple) else [key], separators=(",", ":"))


# --- kube --------------------------------------------------------------------------------
def kube_head(snap: Snapshot, now_mono: float, now_wall: float | None = None) -> dict[str, Any]:
    """The topology's header and the sources' statuses. A status's monotonic times become
    an age (``retry_in``) or, for the moment its data went stale, a wall-clock time
    (``stale_at``, from `now_wall`): the header's "stale 14s" then reads the same in a
    viewer's process and at a replay's cursor."""
    t = snap.topology
    wall = time.time() if now_wall is None else now_wall
    return redact.scrub(
        {
            "cluster": t.cluster,
            "plugin": t.plugin.value,
            "dataplane": t.dataplane,
            "pod_cidrs": list(t.pod_cidrs),
            "dns_service_ip": t.dns_service_ip,
            "nodelocal_enabled": t.nodelocal_enabled,
            "server_version": t.server_version,
            "version": snap.version,
            "statuses": [
                # monotonic times become ages: they mean nothing in another process
                {
                    "source": s.source,
                    "state": s.state.value,
                    "message": s.message,
                    "detail": s.detail,
                    "retry_in": None if s.retry_at is None else round(s.retry_at - now_mono, 1),
                    "stale_at": None if s.stale_since is None else round(wall - (now_mono - s.stale_since), 1),
                    "fatal": s.fatal,
                }
                for s in snap.statuses
            ],
            "synced": sorted(snap.synced),
            "target": snap.target,
        }
    )


def pods_of(t: Topology) -> dict[str, Any]:
    return redact.scrub(
        {
            "coredns": [_b(p) for p in t.coredns],
            "nodelocal": {k: _b(p) for k, p in t.nodelocal.items()},
            "services": [_b(s) for s in t.services],
            "events": {k: list(v) for k, v in t.service_events.items()},
        }
    )


def _sparse(obj: Any) -> dict[str, Any]:
    """A dataclass as the fields that differ from their defaults (the reader fills those in)."""
    defaults = _defaults(type(obj))
    return {k: v for k, v in _b(obj).items() if k not in defaults or defaults[k] != v}


def node_row(n: NodeInfo) -> Any:
    return _sparse(n)


# --- probe rows --------------------------------------------------------------------------
# A row is a positional list (no field names), latencies in 10 µs units and times in ms
# from an epoch (the recording's start) as integers: msgpack writes them in 1-5 bytes where
# a float takes 9. `recent` travels as (keep, tail): keep [a, k] means the previous row's
# points a..a+k, then `tail` — only a probe's new points are written; a full row has keep
# 0. The last result keeps only the fields its key, the row and its class do not already say.
CS = 100.0  # latency units per ms (10 µs)
LAST = 13  # where a row's last result sits; SAME in a patch: the previous row's
SAME = 1
KEEP, TAIL = 11, 12  # where a row's recent sits: ([a, k] of the previous row's points, or 0) and the rest


def _lat(x: float | None) -> int | None:
    return None if x is None else round(x * CS)


def _unlat(x: int | None) -> float | None:
    return None if x is None else x / CS


def _ms(t: float, epoch: float) -> int:
    return round((t - epoch) * 1000)


_KEY_FIELDS = {"name": "qname"}  # ProbeKey's field -> DnsResult's
_DEFAULTS: dict[type, dict[str, Any]] = {}


def _defaults(cls: type) -> dict[str, Any]:
    d = _DEFAULTS.get(cls)
    if d is None:
        d = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                d[f.name] = _b(f.default)
        _DEFAULTS[cls] = d
    return d


def _template(cls: type, st: Stats, key: Any) -> dict[str, Any]:
    t = dict(_defaults(cls))
    if key is not None and hasattr(key, "_asdict"):
        for k, v in key._asdict().items():
            t[_KEY_FIELDS.get(k, k)] = v
    t["outcome"] = st.last_outcome
    t["timestamp"] = st.last_ts
    if st.recent and st.recent[-1] is not None:
        t["latency_ms"] = round(st.recent[-1], 2)
    return t


def stats_row(st: Stats, key: Any = None, epoch: float = 0.0) -> list[Any]:
    """`st` as a full row (keep 0); `key` (ProbeKey/EgressKey) lets the last result drop
    the fields its key already holds; `epoch` is what times are counted from."""
    last = st.last
    cls = type(last)
    if cls in _CLASSES:
        body = redact.scrub(_b(last))
        if "raw" in body:
            body["raw"] = body["raw"][:RAW_MAX]
        if isinstance(body.get("latency_ms"), float):
            body["latency_ms"] = round(body["latency_ms"], 2)
        tmpl = _template(cls, st, key)
        lastv: Any = {k: v for k, v in body.items() if k not in tmpl or tmpl[k] != v}
        lastv[""] = _CLASSES.index(cls)  # the class
    else:
        lastv = None
    return [
        st.count,
        st.attempts,
        st.successes,
        _lat(st.p50),
        _lat(st.p95),
        _lat(st.p99),
        round(st.loss_pct * 100),
        st.last_outcome,
        redact.text(st.last_error),
        redact.text(st.last_raw[:RAW_MAX]),
        _ms(st.last_ts, epoch),
        0,
        [_lat(x) for x in st.recent],
        lastv,
        st.version,
    ]


def _shared(prev: list[Any], cur: list[Any], a: int) -> int:
    """How many of `cur`'s first points are `prev[a:]`'s first points."""
    k = 0
    for x, y in zip(prev[a:], cur):
        if x != y:
            break
        k += 1
    return k


def patch_row(old: list[Any] | None, row: list[Any]) -> list[Any]:
    """`row` (full) as a patch on `old` (the channel's previous full row): `recent` as
    [a, k] (the previous row's points a..a+k) and the points after them. `row` itself
    when nothing is shared."""
    if old is None or old[KEEP]:
        return row
    prev, cur = old[TAIL], row[TAIL]
    # the window took `new` results and dropped from its start what no longer fits
    a = max(0, len(prev) + max(0, row[0] - old[0]) - len(cur))
    k = _shared(prev, cur, a)
    if k < 2:
        return row
    out = list(row)
    out[KEEP], out[TAIL] = [a, k], cur[k:]
    if row[LAST] is not None and row[LAST] == old[LAST]:
        out[LAST] = SAME  # the last result says what the previous one said (but its time and latency)
    return out


def unpatch_row(old: Any, row: list[Any]) -> list[Any]:
    """The full row from a patch and the channel's previous full row."""
    keep = row[KEEP]
    if not keep:
        return row
    a, k = keep
    prev = old[TAIL] if isinstance(old, list) and len(old) > TAIL else []
    out = list(row)
    out[KEEP], out[TAIL] = 0, prev[a : a + k] + row[TAIL]
    if row[LAST] == SAME:
        out[LAST] = old[LAST] if isinstance(old, list) and len(old) > LAST else None
    return out


def stats_signature(st: Stats) -> tuple[Any, ...]:
    """What makes a row's change worth recording at once (its health can move)."""
    return (st.last_outcome, st.attempts - st.successes, round(st.loss_pct), st.last_error)


_BASES: dict[tuple[type, Any], dict[str, Any]] = {}  # (class, key) -> its defaults and the key's fields


def _base(cls: type, key: Any) -> dict[str, Any]:
    """What `_template` takes from the class and the key alone (the same for every row of
    a key: a replay decodes thousands of rows a seek)."""
    b = _BASES.get((cls, key))
    if b is None:
        if len(_BASES) > 100_000:  # keys of many recordings: start again
            _BASES.clear()
        b = dict(_defaults(cls))
        if key is not None and hasattr(key, "_asdict"):
            for k, v in key._asdict().items():
                b[_KEY_FIELDS.get(k, k)] = v
        _BASES[(cls, key)] = b
    return b


def decode_stats(v: list[Any], key: Any = None, epoch: float = 0.0) -> Stats:
    last: Any = None
    recent = tuple([None if x is None else x / CS for x in v[TAIL]])  # _unlat, inline
    ts = v[10] / 1000.0 + epoch
    if v[13] is not None:
        body = dict(v[13])
        code = body.pop("", 0)
        cls = _CLASSES[code] if isinstance(code, int) and 0 <= code < len(_CLASSES) else DnsResult
        try:
            base = _base(cls, key)
        except TypeError:  # a key that cannot be hashed
            base = _template(cls, Stats(0, 0, 0, None, None, None, 0.0, "", "", "", 0.0, None, (), 0), key)
        # _template's, for this row: the outcome, the time and the last latency
        tmpl = {**base, "outcome": v[7], "timestamp": ts}
        if recent and recent[-1] is not None:
            tmpl["latency_ms"] = round(recent[-1], 2)
        tmpl.update(body)
        try:
            last = msgspec.convert(tmpl, cls)
        except msgspec.ValidationError:
            last = None
    return Stats(
        v[0],  # count
        v[1],  # attempts
        v[2],  # successes
        None if v[3] is None else v[3] / CS,  # p50
        None if v[4] is None else v[4] / CS,  # p95
        None if v[5] is None else v[5] / CS,  # p99
        v[6] / 100.0,  # loss_pct
        v[7],  # last_outcome
        v[8],  # last_error
        v[9],  # last_raw
        ts,  # last_ts
        last,
        recent,
        v[14],  # version
    )


def plan_row(view: ProbeView) -> dict[str, Any]:
    return {"plan": redact.scrub(_b(view.plan)), "error": redact.text(view.error)}


def agent_row(a: AgentStatus, now_mono: float, t: float, epoch: float = 0.0) -> dict[str, Any]:
    """An agent's record at frame time `t` (wall clock); its monotonic `read_at` becomes
    the wall-clock moment of the read in ms from `epoch` (``read_t``): an age would be
    right only at the moment it was written, and a replay shows the row at any later one."""
    row = redact.scrub(_sparse(a))
    row.pop("read_at", None)
    row["read_t"] = None if a.read_at is None else _ms(t - (now_mono - a.read_at), epoch)
    return row


# --- SNAT --------------------------------------------------------------------------------
# The report without its node rows is one channel (`snat`); each node's row is its own
# (`s\t<ip>`), its per-minute series as (keep, tail) like a probe row's recent: a refresh
# writes the minute that came, not the window again.
S_KEEP, S_TIMES, S_SERIES = 8, 9, 10


def _num(x: float) -> Any:
    """A series point: NaN as None, a whole number as an int."""
    if x != x:
        return None
    i = int(x)
    return i if i == x else round(x, 3)


_NAN = math.nan


def _unnum(x: Any) -> float:
    return math.nan if x is None else float(x)


def snat_head(r: SnatReport) -> dict[str, Any]:
    table = r.table
    head: dict[str, Any] = redact.scrub(_b(dataclasses.replace(r, table=None, cluster=())))
    head["table"] = (
        None
        if table is None
        else {"unmatched": list(table.unmatched), "silent": list(table.silent), "start": table.start, "end": table.end}
    )
    head["cluster"] = [
        {"name": c.name, "unit": c.unit, "latest": c.latest, "series": [_num(x) for x in c.series]} for c in r.cluster
    ]
    return head


def snat_row(n: NodeSnat, times: dict[int, list[int]] | None = None) -> list[Any]:
    """`times`: a memo for one table, whose nodes share their times column (by identity)."""
    ts = times.get(id(n.times)) if times is not None else None  # the table holds every node: ids stay
    if ts is None:
        ts = [round(t) for t in n.times]
        if times is not None:
            times[id(n.times)] = ts
    return [
        n.node,
        n.pool,
        n.allocated,
        n.used,
        n.used_avg,
        n.failed,
        n.failed_last,
        n.expected,
        0,
        ts,
        [_num(x) for x in n.used_series],
    ]


def patch_snat(old: list[Any] | None, row: list[Any]) -> list[Any]:
    """`row` (full) as a patch on the node's previous row: the minutes both hold, as [a, k]."""
    if old is None or old[S_KEEP] or not row[S_TIMES] or not old[S_TIMES]:
        return row
    try:
        a = old[S_TIMES].index(row[S_TIMES][0])
    except ValueError:
        return row
    k = min(_shared(old[S_TIMES], row[S_TIMES], a), _shared(old[S_SERIES], row[S_SERIES], a))
    if k < 2:
        return row
    out = list(row)
    out[S_KEEP], out[S_TIMES], out[S_SERIES] = [a, k], row[S_TIMES][k:], row[S_SERIES][k:]
    return out


def unpatch_snat(old: Any, row: list[Any]) -> list[Any]:
    keep = row[S_KEEP]
    if not keep:
        return row
    a, k = keep
    ok = isinstance(old, list) and len(old) > S_SERIES
    out = list(row)
    out[S_KEEP] = 0
    out[S_TIMES] = (old[S_TIMES][a : a + k] if ok else []) + row[S_TIMES]
    out[S_SERIES] = (old[S_SERIES][a : a + k] if ok else []) + row[S_SERIES]
    return out


def snat_node(ip: str, v: list[Any]) -> NodeSnat:
    return NodeSnat(
        ip,
        v[0],
        v[1],
        v[2],
        v[3],
        v[4],
        v[5],
        v[6],
        array("d", v[S_TIMES]),
        array("d", [_NAN if x is None else x for x in v[S_SERIES]]),  # _unnum, inline: 1,000 rows a seek
        v[7],
    )


def decode_snat(head: Mapping[str, Any], rows: Sequence[NodeSnat], ordered: bool = False) -> SnatReport | None:
    """The report from its head and its nodes' rows, the nodes most pressed first (`ordered`:
    they are already)."""
    nodes: Sequence[NodeSnat] = rows if ordered else tuple(sorted(rows, key=lambda n: n.pressure))
    h = dict(head)
    t = h.pop("table", None)
    cluster = h.pop("cluster", None) or []
    rep = _typed(h, SnatReport)
    if rep is None:
        return None
    table = None if t is None else SnatTable(nodes, tuple(t["unmatched"]), tuple(t["silent"]), t["start"], t["end"])
    metrics = tuple(
        ClusterMetric(c["name"], c["unit"], c["latest"], array("d", [_unnum(x) for x in c["series"]])) for c in cluster
    )
    return dataclasses.replace(rep, table=table, cluster=metrics)


def apply(state: dict[str, Any], channels: Mapping[Any, Any], names: Mapping[int, str] | None = None) -> None:
    """A delta's channels onto `state` (patches resolved against the values they patch);
    `names`: the channels' names when the delta names them by id."""
    for cid, value in channels.items():
        name = cid if names is None else names.get(cid)
        if name is None:
            continue
        if value is None:
            state.pop(name, None)
        elif name[:2] in _ROWS and value[KEEP]:
            state[name] = unpatch_row(state.get(name), value)
        elif name[:2] == SNAT_NODE and value[S_KEEP]:
            state[name] = unpatch_snat(state.get(name), value)
        else:
            state[name] = value


# --- rows left undecoded (replay) ----------------------------------------------------------
# A seek in a recording reads a keyframe's 14,000 channels and the batches after it, but a
# frame needs few of the probe rows decoded (a pane reads those on screen) and no patch
# resolved until then. The reader keeps such a row's bytes (`msgspec.Raw`), or for a value
# from a batch a `Pending` (its bytes and the value it may patch, one frame at a time) or a
# stretch's row (the frames a seek applies at once, `Stretch`); `resolve` decodes any.
LAZY_KINDS = frozenset({DNS, EGRESS, HTTPS, SNAT_NODE, NODE, AGENT})


def left_undecoded(name: str) -> bool:
    """Whether replay leaves channel `name` undecoded until read: the rows, and the probe
    plans (a plan of 1,000 vantages: 400 KB, 5 ms to decode, a seek compares its bytes)."""
    return name[:2] in LAZY_KINDS or name.endswith(".plan")


_raw_dec = msgspec.msgpack.Decoder()
_resolving = threading.Lock()
NIL = msgspec.Raw(b"\xc0")  # msgpack's nil: in a batch, the channel is gone


def _unpatched(kind: str, old: Any, v: Any) -> Any:
    """Value `v` (decoded) of a channel of `kind`, its patch (if it is one) put on `old`."""
    if isinstance(v, list):
        if kind == SNAT_NODE:
            return unpatch_snat(old, v) if len(v) > S_KEEP and v[S_KEEP] else v
        if kind in _ROWS and len(v) > KEEP and v[KEEP]:
            return unpatch_row(old, v)
    return v


class Pending:
    """A row from a batch, not decoded yet: its bytes and, as it may be a patch, the value
    it patches (itself a row, a `Raw`, a stretch's row or a `Pending`). Decoded once, when
    first read."""

    __slots__ = ("raw", "prev", "kind", "depth", "_v", "whole")
    MAX_DEPTH = 8  # patches left unresolved on one row before the oldest are resolved

    def __init__(self, raw: msgspec.Raw, prev: Any, kind: str) -> None:
        self.raw: msgspec.Raw | None = raw
        self.kind = kind
        self._v: Any = None
        # a row of a kind written whole: its bytes, kept once decoded (a copy: not the batch's
        # buffer), so a seek that reads the same row again compares bytes (`raw_of`, `__eq__`)
        self.whole: msgspec.Raw | None = None
        depth: int = prev.depth + 1 if type(prev) is Pending and prev.raw is not None else 1
        if depth > self.MAX_DEPTH:  # a long play that never reads this row: keep the chain short
            prev.value()
            depth = 1
        self.prev: Any = prev
        self.depth: int = depth

    def value(self) -> Any:
        if self.raw is None:
            return self._v
        with _resolving:  # replay's thread seeks while a pane reads rows on the UI thread
            return self._resolve()

    def _resolve(self) -> Any:
        if self.raw is None:
            return self._v
        chain = [self]  # the unresolved patches down to a decoded value (no recursion)
        while type(chain[-1].prev) is Pending and chain[-1].prev.raw is not None:
            chain.append(chain[-1].prev)
        base = chain[-1].prev
        old = base._v if type(base) is Pending else resolve(base)
        for p in reversed(chain):
            assert p.raw is not None
            v = _unpatched(p.kind, old, _raw_dec.decode(p.raw))
            if p.kind in _WHOLE:
                p.whole = p.raw.copy()
            p._v, p.raw, p.prev = v, None, None
            old = v
        return self._v

    def __eq__(self, other: object) -> bool:
        raw = self.raw if self.raw is not None else self.whole
        if raw is not None and self.kind in _WHOLE:  # its bytes are its whole value
            o = other
            if type(other) is Pending and other.kind in _WHOLE:
                o = other.raw if other.raw is not None else other.whole
            if type(o) is msgspec.Raw and o == raw:  # the same bytes: the same value (a seek's node rows)
                return True
        return bool(self.value() == resolve(other))

    __hash__ = None  # type: ignore[assignment]


class Stretch:
    """The frames a seek applied at once (`probes.record.reader`): a channel they changed
    is left in the state as its last bytes — a `Raw`, which the garbage collector never
    walks, put there by C loops (dict.update, zip) without a line of Python per channel —
    and folded, when read, from its value before the stretch and every value the stretch
    gave it, in order (`thaw`). A frame keeps the stretch it was built on: a row read
    after the reader moved on still folds from these frames, which never change.

    A row the reader patches again before it is read (a step forward) refers to it as
    ``(stretch, channel id)`` (`resolve`)."""

    __slots__ = ("frames", "kinds", "ids", "last", "before", "_runs", "_asked", "_list_after")
    LISTED_AFTER = 16  # rows folded one by one before every channel's values are listed
    # listing a value costs some 20 lookups of a row in a frame; 4: a pane reading every row
    # lists them soon (after 200 rows of a 100 s stretch at 1,000 nodes), one drawing a
    # screenful never does
    LIST_COST = 4

    def __init__(
        self,
        frames: list[dict[int, msgspec.Raw]],
        kinds: Mapping[int, str],
        ids: Mapping[str, int],
        last: dict[int, msgspec.Raw],
        before: dict[int, Any],
    ) -> None:
        self.frames = frames
        self.kinds = kinds  # channel id -> its kind ("" for a named channel)
        self.ids = ids  # channel name -> its id
        self.last = last  # channel id -> its last value in the stretch (what the state holds)
        self.before = before  # channel id -> its value before the stretch
        self._runs: dict[int, list[msgspec.Raw]] | None = None
        self._asked = 0
        self._list_after = self.LISTED_AFTER

    def owns(self, name: str, v: Any) -> int | None:
        """The id of channel `name` when `v` is the value the stretch left it (else None)."""
        cid = self.ids.get(name)
        return cid if cid is not None and self.last.get(cid) is v else None

    def values(self, cid: int) -> list[msgspec.Raw]:
        """Channel `cid`'s values in the stretch, in order: looked up frame by frame for the
        first rows read (a seek's changed node, the rows a pane draws), then, when more are
        read than listing them all costs (a row's lookups cost one step per frame, listing
        one per value: `LISTED_AFTER`, or the values per frame times `LIST_COST` if more),
        every channel written listed, once (a pane reading all its rows)."""
        runs = self._runs
        if runs is None and self._asked < self._list_after:
            self._asked += 1
            if self._asked == self.LISTED_AFTER:  # the values per frame: what listing costs in rows
                frames = self.frames
                self._list_after = max(self.LISTED_AFTER, self.LIST_COST * sum(map(len, frames)) // len(frames))
            return [f[cid] for f in self.frames if cid in f]
        if runs is None:
            runs = defaultdict(list)
            for f in self.frames:
                for c, raw in f.items():
                    runs[c].append(raw)
            self._runs = runs
        return runs.get(cid) or [self.last[cid]]

    def fold(self, cid: int) -> Any:
        """Channel `cid`'s value at the end of the stretch, decoded."""
        kind = self.kinds.get(cid, "")
        old = resolve(self.before.get(cid))
        for raw in self.values(cid):
            old = None if raw == NIL else _unpatched(kind, old, _raw_dec.decode(raw))
        return old


def resolve(v: Any) -> Any:
    """A channel's value, decoded (a `Raw`, `Pending` or a stretch's (stretch, id) the
    reader left; anything else as it is). A `Raw` is read whole: one a stretch left goes
    through `thaw`, which knows the stretch."""
    t = type(v)
    if t is Pending:
        return v.value()
    if t is msgspec.Raw:
        return _raw_dec.decode(v)
    if t is tuple and len(v) == 2 and type(v[0]) is Stretch:
        return v[0].fold(v[1])
    return v


def thaw(name: str, v: Any, stretch: Stretch | None) -> Any:
    """Channel `name`'s value `v` as a state built on `stretch` holds it, decoded."""
    if stretch is not None and type(v) is msgspec.Raw:
        cid = stretch.owns(name, v)
        if cid is not None:
            return stretch.fold(cid)
    return resolve(v)


_PATCHED = frozenset({DNS, EGRESS, HTTPS, SNAT_NODE})  # kinds a batch may write as a patch
_WHOLE = frozenset({NODE, AGENT, ""})  # lazy kinds a batch writes whole ("": a named channel, a plan)


def _owned(name: str, v: Any, stretch: Stretch | None) -> int | None:
    """The channel id when `v` is the last bytes `stretch` left channel `name` (else None)."""
    return stretch.owns(name, v) if stretch is not None and type(v) is msgspec.Raw else None


def raw_of(name: str, v: Any, owned: int | None) -> msgspec.Raw | None:
    """The bytes that are the whole of channel `name`'s value `v` as the reader leaves it
    (a keyframe's `Raw`; a batch's node or agent row or plan, not decoded yet), else None: equal
    bytes, an equal value — a seek that reads the same row again compares bytes. `owned`:
    `v` is a stretch's (`_owned`), maybe a patch."""
    t = type(v)
    if t is msgspec.Raw:
        return None if owned is not None and name[:2] in _PATCHED else v
    if t is Pending and v.kind in _WHOLE:
        return v.raw if v.raw is not None else v.whole
    return None


def findings_row(findings: tuple[Any, ...] | None, at: float) -> dict[str, Any] | None:
    if findings is None:
        return None
    return {"at": at, "list": [redact.scrub(_b(f)) for f in findings]}


def finding_key(f: Any) -> str:
    return f"{f.rule}\t{f.subject}"


# --- the writer's side: which channels a frame changed ------------------------------------
@dataclass
class Change:
    """One frame's changes: channel -> new value (None: gone), and what a person would
    call a change (timeline marks), as (kind, text)."""

    channels: dict[str, Any] = field(default_factory=dict)
    marks: list[tuple[str, str]] = field(default_factory=list)
    opened: list[Any] = field(default_factory=list)  # findings that started
    closed: list[str] = field(default_factory=list)  # finding keys that ended


class Differ:
    """Follows the frames (on the recorder's thread) and keeps the recording's state: the
    current value of every channel (what a keyframe holds). A probe row whose health
    cannot have moved is recorded at most every `stats_every` seconds."""

    def __init__(
        self, stats_every: float = 30.0, mono: Callable[[], float] = time.monotonic, epoch: float = 0.0
    ) -> None:
        self.state: dict[str, Any] = {}
        self.epoch = epoch  # what the rows' times are counted from
        self._snat_nodes: set[str] = set()
        self.stats_every = stats_every
        self.mono = mono
        self._prev: Frame | None = None
        self._sig: dict[str, tuple[float, tuple[Any, ...]]] = {}
        self._open: dict[str, Any] = {}
        self._chans: dict[tuple[str, Hashable], str] = {}  # (prefix, row key) -> its channel's name

    def _put(self, ch: Change, name: str, value: Any) -> None:
        if value is None:
            if self.state.pop(name, None) is not None:
                ch.channels[name] = None
        elif self.state.get(name) != value:
            self.state[name] = value
            ch.channels[name] = value

    def step(self, t: float, f: Frame) -> Change:
        ch = Change()
        p = self._prev
        now_mono = self.mono()
        if p is None or f.kube is not p.kube:
            self._kube(ch, t, f, p, now_mono)
        for name, prefix, view, old in (
            ("dns", DNS, f.dns, p.dns if p else None),
            ("egress", EGRESS, f.egress, p.egress if p else None),
            ("https", HTTPS, f.https, p.https if p else None),
        ):
            if view is not None and view is not old:
                self._probe(ch, t, name, prefix, view, old)
        if p is None or f.ingress is not p.ingress:
            for name, value in ingresschan.channels(f.ingress, p.ingress if p else None):
                self._put(ch, name, value)
        if f.snat is not None and (p is None or f.snat is not p.snat):
            old_state = (self.state.get("snat") or {}).get("state")
            self._snat(ch, f.snat)
            if f.snat.state.value != old_state:
                ch.marks.append(("snat", f"SNAT source {f.snat.state.value}"))
        if f.routes is not None and (p is None or p.routes is None or f.routes.data is not p.routes.data):
            self._put(ch, "routes", redact.scrub(_b(f.routes.data)))
        if f.agents is not None and (p is None or f.agents is not p.agents):
            self._agents(ch, t, f.agents, p.agents if p else None, now_mono)
        if p is None or f.findings is not p.findings:
            self._findings(ch, f)
        self._put(ch, "error", redact.text(f.error) or None)
        self._prev = f
        return ch

    def _kube(self, ch: Change, t: float, f: Frame, p: Frame | None, now_mono: float) -> None:
        head = kube_head(f.kube, now_mono, t)
        old_head = self.state.get("kube")
        # statuses carry ages that move every frame: compare without them
        if old_head is None or {**head, "statuses": _st(head), "version": 0} != {
            **old_head,
            "statuses": _st(old_head),
            "version": 0,
        }:
            self.state["kube"] = head
            ch.channels["kube"] = head
            if old_head is None or _st(head) != _st(old_head):
                for s in head["statuses"]:
                    ch.marks.append(("source", f"{s['source']}: {s['state']}"))
        topo, old = f.topology, (p.topology if p is not None else None)
        if old is topo:
            return
        if old is None or (topo.coredns, topo.nodelocal, topo.services, topo.service_events) != (
            old.coredns,
            old.nodelocal,
            old.services,
            old.service_events,
        ):
            self._put(ch, "pods", pods_of(topo))
        if old is not None and topo.nodes is old.nodes:
            return
        before = {n.name: n for n in old.nodes} if old is not None else {}
        listed = bool(before)  # a first listing is one mark, not one per node
        if not listed and topo.nodes:
            ch.marks.append(("node", f"{len(topo.nodes)} nodes listed"))
        for n in topo.nodes:
            o = before.pop(n.name, None)
            if o is None or o != n:
                self._put(ch, NODE + n.name, node_row(n))
                if listed:
                    if o is None:
                        ch.marks.append(("node", f"node {n.name} added"))
                    elif (o.ready, o.cordoned, o.network_unavailable) != (n.ready, n.cordoned, n.network_unavailable):
                        what = "Ready" if n.ready else "NotReady"
                        ch.marks.append(("node", f"node {n.name} {what}{', cordoned' if n.cordoned else ''}"))
        for name in before:
            self._put(ch, NODE + name, None)
            ch.marks.append(("node", f"node {name} removed"))

    def _probe(self, ch: Change, t: float, name: str, prefix: str, view: ProbeView, old: ProbeView | None) -> None:
        if old is None or view.plan is not old.plan or view.error != old.error:
            self._put(ch, name + ".plan", plan_row(view))
        if old is not None and view.since == old.version:
            keys: Any = view.changed
        elif old is not None:  # a frame was skipped: compare the rows themselves
            keys = [k for k, st in view.stats.items() if old.stats.get(k) is not st]
        else:
            keys = view.stats.keys()
        chans = self._chans
        for k in keys:
            st = view.stats.get(k)
            if st is None:
                continue
            chan = chans.get((prefix, k))
            if chan is None:  # a JSON dump per row key once, not per changed row per frame
                if len(chans) > 100_000:  # rows come and go over a long run: start again
                    chans.clear()
                chan = chans[(prefix, k)] = prefix + key_text(k)
            sig = stats_signature(st)
            seen = self._sig.get(chan)
            if seen is not None and seen[1] == sig and t - seen[0] < self.stats_every:
                continue
            self._sig[chan] = (t, sig)
            row = stats_row(st, k, self.epoch)
            old_row = self.state.get(chan)
            self.state[chan] = row
            ch.channels[chan] = patch_row(old_row, row)

    def _snat(self, ch: Change, rep: SnatReport) -> None:
        self._put(ch, "snat", snat_head(rep))
        times: dict[int, list[int]] = {}
        rows = {SNAT_NODE + n.ip: snat_row(n, times) for n in (rep.table.nodes if rep.table is not None else ())}
        for name in self._snat_nodes - rows.keys():
            self._put(ch, name, None)
        self._snat_nodes = set(rows)
        for name, row in rows.items():
            old = self.state.get(name)
            if old != row:
                self.state[name] = row
                ch.channels[name] = patch_snat(old, row)

    def _agents(self, ch: Change, t: float, v: AgentsView, old: AgentsView | None, now_mono: float) -> None:
        self._put(ch, "agents", {"discovered": v.discovered, "error": redact.text(v.error), "stale": v.stale})
        changed = (
            v.changed
            if old is not None and v.since == old.seq
            else frozenset(v.by_node) | (frozenset(old.by_node) if old is not None else frozenset())
        )
        for node in changed:
            a = v.by_node.get(node)
            self._put(ch, AGENT + node, None if a is None else agent_row(a, now_mono, t, self.epoch))

    def _findings(self, ch: Change, f: Frame) -> None:
        row = findings_row(f.findings, f.findings_at)
        if row is None:
            return
        old = self.state.get("findings")
        if old is None or old["list"] != row["list"]:
            self.state["findings"] = row
            ch.channels["findings"] = row
        now = {finding_key(x): x for x in (f.findings or ())}
        for k, x in now.items():
            if k not in self._open:
                ch.opened.append(x)
                ch.marks.append(("finding", f"{x.severity} {x.subject}: {x.cause}"[:200]))
        for k, x in self._open.items():
            if k not in now:
                ch.closed.append(k)
                ch.marks.append(("finding", f"cleared {x.subject}: {x.rule}"[:200]))
        self._open = now


def _st(head: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The statuses without their times (which jitter by a rounding): whether the data is
    stale is in, so its going stale is a change."""
    return [
        (s["source"], s["state"], s["message"], s["detail"], s.get("stale_at") is None, s.get("fatal", False))
        for s in head["statuses"]
    ]


# --- the reader's side: channels back into a frame ----------------------------------------
def _typed(value: Any, typ: type, default: Any = None) -> Any:
    try:
        return msgspec.convert(value, typ)
    except (msgspec.ValidationError, TypeError):
        return default


# --- a row's health, read from its bytes ----------------------------------------------------
# `judge` reads a row's attempts, successes and last outcome, which every row holds whole
# (a patch too), and its last result's second client outcome (DNS: `no_edns`), which is
# there only when it is not "": a row whose last result does not name one judges from its
# leading fields. A patch's last result may be SAME (the previous row's): it names none when
# no bytes the state stands on do (`PROFILE_MARK`).
PROFILE_MARK = b"no_edns"  # the one field of a last result that names a second client's outcome


class _LastBrief(msgspec.Struct, gc=False):
    no_edns: Literal[""] | None = None  # one that names an outcome does not read here: decoded


class _RowBrief(msgspec.Struct, array_like=True, gc=False):
    """A probe row's leading fields and its last result's second client outcome (`stats_row`)."""

    count: Any
    attempts: Any
    successes: Any
    p50: Any
    p95: Any
    p99: Any
    loss: Any
    last_outcome: Any
    last_error: msgspec.Raw
    last_raw: msgspec.Raw
    last_ts: Any
    keep: msgspec.Raw  # 0 in a whole row (no list: nothing here for the cyclic GC to walk)
    tail: msgspec.Raw
    last: _LastBrief | int | None = None


_brief_dec = msgspec.msgpack.Decoder(_RowBrief)
_briefs_dec = msgspec.msgpack.Decoder(list[_RowBrief])  # rows' bytes joined as one array


class RowStats(Mapping[Hashable, Stats]):
    """A replayed probe view's rows, each decoded when first read: a seek decodes only the
    rows a pane on screen reads, and a row that did not move is the previous frame's Stats.
    `healths` judges every row from its bytes, decoding none."""

    __slots__ = ("_rows", "_names", "_thawer", "_stretch", "_plain")

    def __init__(
        self,
        rows: Mapping[Hashable, Any],
        names: Mapping[Hashable, str],
        thawer: Thawer,
        stretch: Stretch | None = None,
        plain: Callable[[], bool] | None = None,
    ) -> None:
        self._rows = rows
        self._names = names
        self._thawer = thawer
        self._stretch = stretch  # the one the state was built on (`Stretch`)
        self._plain = plain  # True: no row of the state names a second client's outcome (`Thawer.healths`)

    def __getitem__(self, key: Hashable) -> Stats:
        return self._thawer.stats(self._names[key], key, self._rows[key], self._stretch)

    def healths(self, keys: Sequence[Hashable] | None, kind: type[Enum]) -> list[Health]:
        """`judge(self.get(key), kind)` for each of `keys` (None: every row, in the order
        the view iterates them), read from the rows' bytes: a seek's pane judges its
        thousands of rows decoding none."""
        rows = self._rows
        if keys is None:
            keys = list(rows)
            values = list(rows.values())
        else:
            values = list(map(rows.get, keys))
        return self._thawer.healths(self._names.get, keys, values, kind, self._stretch, self._plain)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows


class _SnatFields(msgspec.Struct, array_like=True):
    """A SNAT node's row's leading fields (what its pressure reads), its series skipped."""

    node: Any
    pool: Any
    allocated: Any
    used: Any
    used_avg: Any
    failed: Any


_snat_fields = msgspec.msgpack.Decoder(_SnatFields)


def _snat_key(ip: str, v: Any) -> tuple[Any, ...]:
    """The pressure of a SNAT node's row as the state holds it (decoded, `Raw` or `Pending`),
    from its last value's leading fields: a patch writes them whole, so no patch is resolved."""
    t = type(v)
    if t is Pending:
        raw = v.raw
        v = v._v if raw is None else raw
        t = type(v)
    if t is msgspec.Raw:
        f = _snat_fields.decode(v)
        return pressure_key(ip, f.node, f.allocated, f.used, f.failed)
    return pressure_key(ip, v[0], v[2], v[3], v[5])


class SnatNodes(Sequence[NodeSnat]):
    """A replayed SNAT table's nodes, most pressed first, each decoded when first read: a
    seek orders the rows by their leading fields and decodes none until the SNAT pane
    (or anything else) reads them; a row that did not move is the previous frame's."""

    __slots__ = ("_rows", "_thawer", "_stretch")

    def __init__(self, rows: list[tuple[str, Any]], thawer: Thawer, stretch: Stretch | None = None) -> None:
        self._rows = rows  # (channel, value), most pressed first
        self._thawer = thawer
        self._stretch = stretch  # the one the state was built on (`Stretch`)

    def _node(self, row: tuple[str, Any]) -> NodeSnat:
        name, value = row
        node: NodeSnat = self._thawer.decoded(
            name, value, lambda v: snat_node(name[len(SNAT_NODE) :], v), self._stretch
        )
        return node

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return tuple(self._node(r) for r in self._rows[i])
        return self._node(self._rows[i])

    def __iter__(self) -> Iterator[NodeSnat]:
        for r in self._rows:
            yield self._node(r)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]


class Thawer:
    """Builds frames from channel states. Parts whose channels did not move are the
    previous frame's objects, so the panes' identity checks skip them as in the app.

    The frame's monotonic times (a source's `stale_since`, an agent's `read_at`) are on
    the clock its viewer reads: this process's `time.monotonic()` for a live viewer, or,
    with `replay_clock`, the recording's own time — a replay's panes then measure ages
    against the cursor (`probes.record.replay.ReplayPublisher.clock`), and a paused
    replay's "stale 14s" stays 14 s."""

    def __init__(self, epoch: float = 0.0, *, replay_clock: bool = False) -> None:
        self.epoch = epoch  # what the rows' times are counted from (the recording's)
        self.replay_clock = replay_clock
        self._keys: dict[str, Any] = {}  # channel -> its probe key
        self._channel: dict[Hashable, str] = {}  # probe key -> its channel
        # "dns"/"egress"/"https" -> the last view's (channels, keys, values undecoded, key -> value)
        self._raw: dict[str, tuple[list[str], list[Any], list[Any], dict[Hashable, Any]]] = {}
        self._seq = 0
        # channel -> (value it was decoded from, that value resolved, object): a value read
        # again after a seek (new bytes, or a patch) is the same object when it resolves equal
        self._cache: dict[str, tuple[Any, ...]] = {}
        self._prev: Frame | None = None
        self._probe_version = {"dns": 0, "egress": 0, "https": 0}
        self._ingress_memo: list[Any] = []
        self._agents_seq = 0
        self._groups: Mapping[str, list[str]] = {}
        self._stretch: Stretch | None = None  # the one the state of the frame being built is on
        self._plain: Callable[[], bool] | None = None  # and whether its bytes name no second client (`healths`)

    def _get(self, state: Mapping[str, Any], name: str, decode: Callable[[Any], Any]) -> Any:
        """Channel `name`'s object, decoded by `decode` from its value (resolved): the same
        object while the value is, or resolves equal (each side decoded once)."""
        return self.decoded(name, state.get(name), decode, self._stretch)

    def decoded(self, name: str, v: Any, decode: Callable[[Any], Any], stretch: Stretch | None = None) -> Any:
        """Channel `name`'s object for value `v` of a state built on `stretch` (see `_get`)."""
        hit = self._cache.get(name)
        if hit is not None and hit[0] is v:
            return hit[2]
        cid = _owned(name, v, stretch)
        raw = raw_of(name, v, cid)
        if hit is not None and raw is not None and raw == hit[3]:  # the same bytes read again (a seek)
            self._cache[name] = (v, hit[1], hit[2], raw)
            return hit[2]
        r = resolve(v) if cid is None or stretch is None else stretch.fold(cid)
        if hit is not None and r is not None and (hit[1] is r or hit[1] == r):
            self._cache[name] = (v, hit[1], hit[2], raw)  # a seek read it again: the same object
            return hit[2]
        obj = None if r is None else decode(r)
        self._cache[name] = (v, r, obj, raw)
        return obj

    def _now(self, at: float) -> float:
        """The viewer's clock at frame time `at` (see the class)."""
        return at if self.replay_clock else time.monotonic()

    def frame(
        self,
        state: Mapping[str, Any],
        at: float,
        groups: Mapping[str, list[str]] | None = None,
        stretch: Stretch | None = None,
        plain: Callable[[], bool] | None = None,
    ) -> Frame:
        """The frame of `state`; `groups`: its channels by kind ("n\t", "d\t", …) in the
        state's order, when the caller keeps them (else read from the state); `stretch`: the
        one the state was built on, if any (its rows are its last bytes: `Stretch`); `plain`:
        says, when asked, that no bytes the state stands on name a second client's outcome
        (`PROFILE_MARK`: a patch's "the previous one's" then names none either)."""
        p = self._prev
        self._stretch = stretch
        self._plain = plain
        if groups is None:
            found: dict[str, list[str]] = {}  # "n\t", "d\t", … -> the state's channels of that kind
            for ch in state:
                if ch[1:2] == "\t":
                    g = found.get(ch[:2])
                    if g is None:
                        g = found[ch[:2]] = []
                    g.append(ch)
            groups = found
        self._groups = groups
        kube = self._kube(state, p, at)
        dns = self._probe(state, "dns", DNS, DnsPlan, ProbeKey, p.dns if p else None)
        egress = self._probe(state, "egress", EGRESS, EgressPlan, EgressKey, p.egress if p else None)
        https = self._probe(state, "https", HTTPS, HttpsPlan, TlsKey, p.https if p else None)
        ingress = ingresschan.thaw(state, self._get, kube.topology, p.ingress if p else None, self._ingress_memo)
        snat = self._snat(state)
        data = self._get(state, "routes", lambda v: _typed(v, RouteData))
        routes = p.routes if p is not None and p.routes is not None and p.routes.data is data else None
        if data is not None and (routes is None or p is None or p.kube.topology is not kube.topology):
            by_node: Mapping[str, Any] = EMPTY
            if not data.error and kube.topology.plugin is NetworkPlugin.KUBENET:
                by_node = MappingProxyType(dict(compare(data, kube.topology.nodes).by_node))
            routes = RouteView(data=data, by_node=by_node)
        agents = self._agents(state, at, p.agents if p else None)
        frow = state.get("findings")
        findings = self._get(state, "findings", lambda v: tuple(_finding(x) for x in v["list"]))
        error = state.get("error") or ""
        parts = (kube, dns, egress, snat, routes, agents, findings, https, ingress)
        if (
            p is not None
            and error == p.error
            and all(
                a is b
                for a, b in zip(
                    parts, (p.kube, p.dns, p.egress, p.snat, p.routes, p.agents, p.findings, p.https, p.ingress)
                )
            )
        ):
            return p  # nothing moved (by identity: comparing the parts would decode every row)
        self._seq += 1
        frame = Frame(
            seq=self._seq,
            kube=kube,
            dns=dns,
            egress=egress,
            snat=snat,
            routes=routes,
            agents=agents,
            ingress=ingress,
            https=https,
            findings=findings,
            findings_at=frow["at"] if frow else at,
            error=error,
        )
        self._prev = frame
        return frame

    def _kube(self, state: Mapping[str, Any], p: Frame | None, at: float) -> Snapshot:
        head = state.get("kube")
        pods = state.get("pods")
        nodes = self._groups.get(NODE, [])
        values = [state[n] for n in nodes]
        hit = self._cache.get("\tkube")  # ((head, pods, node values, node objects), snapshot)
        if hit is not None and p is not None and len(hit[0][2]) == len(values):
            if hit[0][0] is head and hit[0][1] is pods and all(a is b for a, b in zip(hit[0][2], values)):
                return p.kube
            # the same rows read again (a seek): a node's row is whole in any form, so the
            # lists compare their bytes (C), decoding none; a Pending compares its value
            if hit[0][0] == head and hit[0][1] == pods and values == hit[0][2]:
                self._cache["\tkube"] = ((head, pods, values, hit[0][3]), hit[1])
                same: Snapshot = hit[1]
                return same
        get, node = self._get, lambda v: _typed(v, NodeInfo)
        if hit is not None and len(hit[0][2]) == len(values):  # the rows whose bytes moved decoded
            eq = map(operator.eq, values, hit[0][2])
            objs = [o if e else get(state, n, node) for n, o, e in zip(nodes, hit[0][3], eq)]
        else:
            objs = [get(state, n, node) for n in nodes]
        if (
            hit is not None
            and len(hit[0][3]) == len(objs)
            and all(a is b for a, b in zip(hit[0][3], objs))
            and hit[0][0] == head
            and hit[0][1] == pods
        ):  # the same values read again (a seek): the same snapshot
            self._cache["\tkube"] = ((head, pods, values, objs), hit[1])
            kube: Snapshot = hit[1]
            return kube
        infos = sorted((i for i in objs if i is not None), key=lambda n: (n.pool, n.name))
        h = head or {}
        pd = pods or {}
        nodelocal = {k: x for k, v in (pd.get("nodelocal") or {}).items() if (x := _typed(v, PodState)) is not None}
        topo = Topology(
            cluster=h.get("cluster", ""),
            plugin=_typed(h.get("plugin", "unknown"), NetworkPlugin, NetworkPlugin.UNKNOWN),
            dataplane=h.get("dataplane", ""),
            pod_cidrs=tuple(h.get("pod_cidrs", ())),
            dns_service_ip=h.get("dns_service_ip", ""),
            nodes=tuple(infos),
            pools=build_pools(infos),
            coredns=tuple(x for v in pd.get("coredns", ()) if (x := _typed(v, PodState)) is not None),
            nodelocal=nodelocal,
            nodelocal_enabled=h.get("nodelocal_enabled", False),
            services=tuple(x for v in pd.get("services", ()) if (x := _typed(v, ServiceInfo)) is not None),
            server_version=h.get("server_version", ""),
            service_events={k: tuple(v) for k, v in (pd.get("events") or {}).items()},
        )
        now = self._now(at)
        statuses = tuple(
            x
            for s in h.get("statuses", ())
            if (
                x := _typed(
                    {
                        "source": s["source"],
                        "state": s["state"],
                        "message": s["message"],
                        "detail": s["detail"],
                        "retry_at": None if s.get("retry_in") is None else now + s["retry_in"],
                        # the wall-clock moment, as long before `at` on this process's clock
                        "stale_since": None if s.get("stale_at") is None else now - max(0.0, at - s["stale_at"]),
                        "fatal": bool(s.get("fatal", False)),
                    },
                    SourceStatus,
                )
            )
            is not None
        )
        snap = Snapshot(
            version=h.get("version", 0),
            topology=topo,
            statuses=statuses,
            synced=frozenset(h.get("synced", ())),
            target=h.get("target", ""),
            taken=now,
        )
        self._cache["\tkube"] = ((head, pods, values, objs), snap)
        return snap

    def _probe(
        self, state: Mapping[str, Any], name: str, prefix: str, plan_t: type, key_t: Any, old: ProbeView | None
    ) -> ProbeView | None:
        if state.get(name + ".plan") is None:
            return None
        # (plan, error): a recording's plan is its bytes until read (a seek compares them)
        try:
            plan, error = self._get(state, name + ".plan", lambda v: _plan_of(v, plan_t, name))
        except msgspec.DecodeError:  # bytes that are no msgpack at all
            plan, error = _unreadable_plan(plan_t, name), ""
        names = self._channel  # key -> its channel, kept across frames
        keys = self._keys
        group = self._groups.get(prefix, [])
        # C loops (map, zip, compress), not a line of Python per row: this runs over every
        # row (11,000 at 1,000 nodes) a frame
        values = list(map(state.__getitem__, group))  # the rows' values, undecoded
        memo = self._raw.get(name)  # the last view's (channels, keys, values, rows)
        if memo is not None and memo[0] == group:  # the same rows: compared in place
            ks = memo[1]
            changed = list(itertools.compress(ks, map(operator.is_not, memo[2], values)))
            gone = False
        else:
            self._learn(prefix, key_t, [ch for ch in group if ch not in keys])  # channels not seen before
            ks = list(map(keys.__getitem__, group))
            if memo is None:
                changed = ks
            else:
                was = memo[3].get
                changed = [k for k, v in zip(ks, values) if was(k) is not v]
            gone = old is not None and memo is not None and not set(ks) >= memo[3].keys()
        if old is not None and not changed and not gone and old.plan is plan and old.error == error:
            return old
        rows: dict[Hashable, Any] = dict(zip(ks, values))  # key -> its channel's value
        self._raw[name] = (list(group), ks, values, rows)
        version = self._probe_version[name] + 1
        self._probe_version[name] = version
        since = old.version if old is not None and not gone else -1
        return ProbeView(
            plan=plan,
            stats=RowStats(rows, names, self, self._stretch, self._plain),
            changed=frozenset(changed if since != -1 else rows),
            since=since,
            version=version,
            error=error,
        )

    def _learn(self, prefix: str, key_t: Any, channels: list[str]) -> None:
        """The probe keys of `channels` (all of kind `prefix`), parsed in one call."""
        if channels:
            keys, names = self._keys, self._channel
            for ch, k in zip(channels, json.loads("[" + ",".join([ch[len(prefix) :] for ch in channels]) + "]")):
                key = keys[ch] = key_t(*k)
                names[key] = ch

    def know(self, channels: Iterable[str]) -> None:
        """Parse the probe keys of a recording's channels ahead (a replay opening: its first
        seek to a full frame would parse 11,000 at 1,000 nodes)."""
        chans = [ch for ch in channels if ch not in self._keys]
        for prefix, key_t in ((DNS, ProbeKey), (EGRESS, EgressKey), (HTTPS, TlsKey)):
            self._learn(prefix, key_t, [ch for ch in chans if ch.startswith(prefix)])

    def stats(self, name: str, key: Any, value: Any, stretch: Stretch | None = None) -> Stats:
        """Channel `name`'s row `value` (of a state built on `stretch`) as Stats: the same
        object while the value is."""
        hit = self._cache.get(name)
        if hit is not None and hit[0] is value:
            st: Stats = hit[2]
            return st
        cid = _owned(name, value, stretch)
        raw = raw_of(name, value, cid)
        if hit is not None and raw is not None and raw == hit[3]:  # the same bytes read again (a seek)
            self._cache[name] = (value, hit[1], hit[2], raw)
            st = hit[2]
            return st
        r = resolve(value) if cid is None or stretch is None else stretch.fold(cid)
        if hit is not None and (hit[1] is r or hit[1] == r):
            self._cache[name] = (value, hit[1], hit[2], raw)
            st = hit[2]
            return st
        st = decode_stats(r, key, self.epoch)
        self._cache[name] = (value, r, st, raw)
        return st

    def healths(
        self,
        name_of: Callable[[Any], str | None],
        keys: Sequence[Any],
        values: list[Any],
        kind: type[Enum],
        stretch: Stretch | None = None,
        plain: Callable[[], bool] | None = None,
    ) -> list[Health]:
        """Each row's `judge(stats, kind)` (key `keys[i]`, its channel `name_of(key)`, value
        `values[i]` of a state built on `stretch`; None: no row) from its leading fields; a row whose last
        result names a second client's outcome, or whose patch says "the previous one's"
        when `plain` cannot say that names none (`PROFILE_MARK`), is decoded (`stats`)."""
        memo: dict[tuple[Any, Any, Any], Health] = {}  # (attempts, successes, outcome) -> health
        errors = (msgspec.DecodeError, msgspec.ValidationError)
        same_plain = plain is not None and plain()
        if values and list(map(type, values)).count(msgspec.Raw) == len(values):
            # a seek's rows are bytes: decoded in one call, as one array
            try:
                rows = _briefs_dec.decode(b"\xdd" + len(values).to_bytes(4, "big") + b"".join(values))
            except errors:  # a row that names a second client's outcome (or does not read): one by one
                rows = None
            if rows is not None and (same_plain or all(type(b.last) is not int for b in rows)):
                leads = [(b.attempts, b.successes, b.last_outcome) for b in rows]
                out = list(map(memo.get, leads))
                if None in out:
                    for i, first in enumerate(leads):
                        if out[i] is None:
                            h = memo.get(first)
                            if h is None:
                                h = memo[first] = judge(Brief(*first), kind)
                            out[i] = h
                return out  # type: ignore[return-value]
        out2: list[Health] = []
        add = out2.append
        dec = _brief_dec.decode
        for key, v in zip(keys, values):
            t = type(v)
            if t is Pending:
                v = v.raw if v.raw is not None else v._v
                t = type(v)
            lead: tuple[Any, Any, Any] | None = None
            if t is msgspec.Raw:
                try:
                    b = dec(v)
                except errors:
                    b = None
                # a patch's SAME ("the previous row's last result") names none when no
                # bytes the state stands on do
                if b is not None and (type(b.last) is not int or (same_plain and bytes(b.keep) != b"\x00")):
                    lead = (b.attempts, b.successes, b.last_outcome)
            elif t is list and len(v) > LAST:
                last = v[LAST]
                if last is None or (type(last) is dict and not last.get("no_edns")):
                    lead = (v[1], v[2], v[7])
            elif v is None:  # no row
                add(judge(None, kind))
                continue
            if lead is None:  # the row decoded
                name = name_of(key)
                add(judge(None if name is None else self.stats(name, key, values[len(out2)], stretch), kind))
                continue
            h = memo.get(lead)
            if h is None:
                h = memo[lead] = judge(Brief(*lead), kind)
            add(h)
        return out2

    def _snat(self, state: Mapping[str, Any]) -> SnatReport | None:
        head = state.get("snat")
        if head is None:
            return None
        names = self._groups.get(SNAT_NODE, [])
        sig = (head, tuple(map(state.__getitem__, names)))
        hit = self._cache.get("\tsnat")
        if hit is not None and hit[0][0] is head and len(hit[0][1]) == len(sig[1]):
            if all(a is b for a, b in zip(hit[0][1], sig[1])):
                old: SnatReport | None = hit[1]
                return old
        cut = len(SNAT_NODE)
        keyed = sorted(
            ((_snat_key(n[cut:], v), n, v) for n, v in zip(names, sig[1])), key=lambda r: r[0]
        )  # stable: ties in the state's order, as the report's own sort
        rep = decode_snat(head, SnatNodes([(n, v) for _, n, v in keyed], self, self._stretch), ordered=True)
        self._cache["\tsnat"] = (sig, rep)
        return rep

    def _agents(self, state: Mapping[str, Any], at: float, old: AgentsView | None) -> AgentsView | None:
        head = state.get("agents")
        if head is None:
            return None
        cut = len(AGENT)
        rows = {ch[cut:]: state[ch] for ch in self._groups.get(AGENT, ())}  # node -> its row, undecoded
        by_node = AgentRows(rows, self, self._now(at), at, self._stretch)
        if old is not None:
            before = old.by_node
            if isinstance(before, AgentRows):  # the rows whose values moved
                was = before.rows
                changed = frozenset(
                    [k for k, v in rows.items() if was.get(k) is not v] + [k for k in was if k not in rows]
                )
            else:
                changed = frozenset([k for k in rows if k not in before] + [k for k in before if k not in rows])
                changed |= frozenset(k for k in rows if k in before and by_node[k] is not before[k])
            if not changed and (head["discovered"], head["error"], head["stale"]) == (
                old.discovered,
                old.error,
                old.stale,
            ):
                return old
        else:
            changed = frozenset(by_node)
        self._agents_seq += 1
        return AgentsView(
            by_node=by_node,
            discovered=head["discovered"],
            error=head["error"],
            stale=head["stale"],
            version=0,
            seq=self._agents_seq,
            since=old.seq if old is not None else -1,
            changed=changed,
        )


_PLAN_WORDS = {"dns": "DNS", "egress": "egress", "https": "HTTPS"}
_UNREADABLE: dict[tuple[type, str], Any] = {}


def _unreadable_plan(plan_t: type, name: str) -> Any:
    """An empty plan of `plan_t` whose error says the recording's plan cannot be read: the
    pane shows that line and no rows (the same object every frame: nothing to re-lay)."""
    plan = _UNREADABLE.get((plan_t, name))
    if plan is None:
        what = _PLAN_WORDS.get(name, name)
        error = f"the recording's {what} probe plan cannot be read: its rows are not shown"
        plan = _UNREADABLE[(plan_t, name)] = msgspec.convert(
            {"version": 0, "vantages": [], "names": [], "targets": [], "error": error}, plan_t
        )
    return plan


def _plan_of(v: Any, plan_t: type, name: str) -> tuple[Any, str]:
    """A plan channel's value as (plan, error line); a plan recorded as none stays None,
    one that does not read as `plan_t` is `_unreadable_plan`."""
    if not isinstance(v, Mapping) or "plan" not in v:
        return _unreadable_plan(plan_t, name), ""
    error = v.get("error") or ""
    if not isinstance(error, str):
        error = ""
    raw = v.get("plan")
    if raw is None:
        return None, error
    plan = _typed(raw, plan_t)
    return (_unreadable_plan(plan_t, name) if plan is None else plan), error


class AgentRows(Mapping[str, AgentStatus]):
    """A replayed agents view's statuses by node, each decoded when first read (the tree and
    the probe panes read the agents of the lines on screen); a row that did not move is the
    previous frame's object. Its monotonic times are on the clock that read `now` at `at`."""

    __slots__ = ("rows", "_thawer", "_now", "_at", "_stretch")

    def __init__(
        self, rows: dict[str, Any], thawer: Thawer, now: float, at: float, stretch: Stretch | None = None
    ) -> None:
        self.rows = rows  # node -> its channel's value
        self._thawer = thawer
        self._now = now
        self._at = at
        self._stretch = stretch  # the one the state was built on (`Stretch`)

    def __getitem__(self, node: str) -> AgentStatus:
        v = self.rows[node]
        now, at, epoch = self._now, self._at, self._thawer.epoch
        a = self._thawer.decoded(AGENT + node, v, lambda r: _agent(r, now, at, epoch), self._stretch)
        if a is None:  # a row this version cannot read: say so on the node's line
            a = AgentStatus(node=node, pod="", error="unreadable in the recording")
        return a

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, node: object) -> bool:
        return node in self.rows


def _agent(v: Mapping[str, Any], now: float, at: float, epoch: float) -> AgentStatus | None:
    """An agent's row at frame time `at`, its read moment on the clock that reads `now` then."""
    v = dict(v)
    read_t = v.pop("read_t", None)
    age = v.get("read_at")  # a recording written before read_t: the row's age when it was written
    if read_t is not None:
        age = max(0.0, at - (epoch + read_t / 1000.0))
    v["read_at"] = None if age is None else now - age
    return _typed(v, AgentStatus)


def _finding(v: Mapping[str, Any]) -> Finding:
    try:
        sev = Severity(v.get("severity", 0))
    except ValueError:
        sev = Severity.INFO
    return Finding(
        rule=v.get("rule", ""),
        fault=v.get("fault"),
        severity=sev,
        subject=v.get("subject", ""),
        cause=v.get("cause", ""),
        evidence=v.get("evidence") or {},
        next_step=v.get("next_step", ""),
    )
