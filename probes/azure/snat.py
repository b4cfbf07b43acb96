"""SNAT arithmetic and the metrics join: pure functions over plain data, no Azure, no I/O.

Azure Monitor answers per `BackendIPAddress`; operators think in nodes. This module
parses the metrics payload (raw JSON, api-version 2024-02-01 shape, dimension names
matched case-insensitively), joins backend IPs to nodes by InternalIP, and sets what
Azure reports against what the allocation rules imply: the default tier table by backend
pool size, or a fixed ``allocatedOutboundPorts`` that must fit ``64,000 × outbound IPs``
for every node an upgrade surge adds (FAULTS F10, F11).
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress
from typing import Any

import orjson

PORTS_PER_IP = 64_000
# (largest backend pool size of the tier, ports per node)
TIERS: tuple[tuple[int, int], ...] = ((50, 1024), (100, 512), (200, 256), (400, 128), (800, 64), (1000, 32))

ALLOCATED, USED, CONNECTIONS = "allocatedsnatports", "usedsnatports", "snatconnectioncount"
WARN_PCT, CRIT_PCT = 75.0, 95.0


# --------------------------------------------------------------------------- tiers


def default_ports(pool_size: int) -> int:
    """Ports per node Azure allocates by default for a backend pool of `pool_size` (0 above 1,000)."""
    for top, ports in TIERS:
        if pool_size <= top:
            return ports
    return 0


def tier_label(pool_size: int) -> str:
    lo = 1
    for top, ports in TIERS:
        if pool_size <= top:
            return f"{lo}–{top} nodes → {ports} ports"
        lo = top + 1
    return "over 1,000 nodes: no default allocation"


def next_tier(pool_size: int) -> tuple[int, int] | None:
    """(nodes that still fit the current tier, ports per node in the next tier), None past the table."""
    for i, (top, _ports) in enumerate(TIERS):
        if pool_size <= top:
            nxt = TIERS[i + 1][1] if i + 1 < len(TIERS) else 0
            return top, nxt
    return None


def parse_surge(value: Any, count: int) -> int:
    """AKS maxSurge ('33%', '3', 3, '' = default 10 %) -> extra nodes for a pool of `count`."""
    if count <= 0:
        return 0
    text = str(value).strip() if value not in (None, "") else "10%"
    try:
        if text.endswith("%"):
            return max(1, math.ceil(count * float(text[:-1]) / 100.0))
        return max(0, int(text))
    except ValueError:
        return 1


@dataclass(frozen=True, slots=True)
class SnatFinding:
    severity: str  # info | warning | critical
    text: str


@dataclass(frozen=True, slots=True)
class Allocation:
    """What the outbound configuration implies for every node, now and during an upgrade."""

    nodes: int
    surge: int  # nodes an upgrade adds at once (sum of pools' maxSurge)
    outbound_ips: int
    fixed_ports: int  # allocatedOutboundPorts; 0 = default tier table
    idle_timeout: int  # minutes
    expected: int  # ports per node expected now
    during_surge: int  # ports per node with the surge nodes in the pool
    capacity: int  # 64,000 × outbound IPs
    tier: str
    headroom_nodes: int | None  # nodes that can join before the tier drops (None: fixed ports)
    findings: tuple[SnatFinding, ...] = ()


def allocation(
    nodes: int, surge: int = 0, outbound_ips: int = 1, fixed_ports: int = 0, idle_timeout: int = 30
) -> Allocation:
    """The allocation rules (AKS-NETWORKING.md, SNAT) as numbers and findings (F11)."""
    ips = max(outbound_ips, 1)
    capacity = PORTS_PER_IP * ips
    found: list[SnatFinding] = []
    if fixed_ports > 0:
        expected = during = fixed_ports
        tier = f"fixed {fixed_ports} ports/node"
        headroom = None
        need_now, need_surge = nodes * fixed_ports, (nodes + surge) * fixed_ports
        fit = capacity // fixed_ports
        if need_now > capacity:
            found.append(
                SnatFinding(
                    "critical",
                    f"{nodes} nodes × {fixed_ports} ports = {need_now:,} exceeds "
                    f"{capacity:,} ({ips} outbound IP{'s' if ips > 1 else ''}): "
                    f"nodes beyond {fit} get no SNAT ports",
                )
            )
        elif need_surge > capacity:
            found.append(
                SnatFinding(
                    "warning",
                    f"an upgrade surge of {surge} node{'s' if surge != 1 else ''} needs "
                    f"{need_surge:,} ports, {capacity:,} available: the upgrade cannot add "
                    f"nodes — add outbound IPs or lower allocatedOutboundPorts",
                )
            )
    else:
        expected = default_ports(nodes)
        during = default_ports(nodes + surge)
        tier = tier_label(nodes)
        nt = next_tier(nodes)
        headroom = (nt[0] - nodes) if nt else 0
        if expected == 0:
            found.append(
                SnatFinding(
                    "critical",
                    f"{nodes} nodes exceed the default allocation table (1,000): "
                    "set allocatedOutboundPorts and outbound IPs explicitly",
                )
            )
        elif during < expected:
            found.append(
                SnatFinding(
                    "warning",
                    f"an upgrade surge of {surge} node{'s' if surge != 1 else ''} takes the "
                    f"backend pool to {nodes + surge}: every node drops from {expected} to "
                    f"{during} SNAT ports",
                )
            )
        elif headroom is not None and headroom <= max(2, nodes // 20):
            found.append(
                SnatFinding(
                    "info",
                    f"{headroom} more node{'s' if headroom != 1 else ''} and every node drops "
                    f"to {nt[1] if nt else 0} SNAT ports",
                )
            )
    return Allocation(
        nodes, surge, ips, fixed_ports, idle_timeout, expected, during, capacity, tier, headroom, tuple(found)
    )


# --------------------------------------------------------------------------- metrics payload


def _floats(values: Iterable[Any]) -> array[float]:
    """A column of doubles; a point without the value (or with one that is not a number:
    a malformed point is skipped, not fatal) reads as NaN."""
    vals = values if type(values) is list else list(values)  # a column built for this call is not copied
    try:
        return array("d", vals)  # every point carries a number
    except TypeError:
        pass
    try:  # the common case: the newest minute is still being aggregated (no value yet)
        return array("d", [_NAN if v is None else v for v in vals])
    except TypeError:
        return array("d", [float(v) if isinstance(v, (int, float)) else _NAN for v in vals])


_NAN = math.nan


def present(v: float) -> bool:
    """The point carries a value (columns hold NaN where it did not)."""
    return v == v


class Series:
    """One time series of one metric: its dimensions (lower-cased names) and points.

    Built from a decoded list of points (columns read on first use), or, from a raw
    answer, straight into columns (`columnar`, see `_decode_points`): then the point
    dicts live only while their columns are built. A column is an
    `array('d')` (NaN where a point lacks the value): one block per column instead of a
    float object per point, so a refresh at 5,000 nodes leaves ~60k blocks behind, not
    ~900k objects scattered over the heap the parse used (that scatter kept the app's
    memory growing with every refresh)."""

    __slots__ = ("metric", "dims", "_data", "_cols", "_key")

    def __init__(self, metric: str, dims: Mapping[str, str], data: Sequence[Mapping[str, Any]]) -> None:
        self.metric = metric
        self.dims = dims
        self._data = data
        self._cols: dict[str, array[float]] = {}
        self._key: tuple[str, tuple[tuple[str, str], ...]] | None = None

    @classmethod
    def columnar(cls, metric: str, dims: Mapping[str, str], count: int, cols: dict[str, array[float]]) -> Series:
        """A series whose points are already columns (`cols`: the times as "t", one array
        per aggregation, each `count` long)."""
        s = cls.__new__(cls)
        s.metric, s.dims, s._key = metric, dims, None
        s._data = _absent(count)
        s._cols = cols
        return s

    def _col(self, key: str) -> array[float]:
        col = self._cols.get(key)
        if col is None:
            col = self._cols[key] = _floats([p.get(key) for p in self._data])
        return col

    @property
    def times(self) -> array[float]:
        cached = self._cols.get("t")
        if cached is not None:
            return cached
        col = self._cols["t"] = _times_of(self._data)
        return col

    @property
    def average(self) -> array[float]:
        return self._col("average")

    @property
    def maximum(self) -> array[float]:
        return self._col("maximum")

    @property
    def total(self) -> array[float]:
        return self._col("total")

    def last(self, key: str) -> float | None:
        return _last(self._col(key))


def _columns(s: Series) -> dict[str, array[float]]:
    """Every column of a series (the times as "t"), decoding lazy ones. Read-only: a series
    built from a raw answer or by a merge has every column already, and hands its own."""
    if isinstance(s._data, _Absent) and "t" in s._cols:
        return s._cols
    keys = set(s._cols)
    if s._data and not isinstance(s._data, _Absent):
        keys = keys.union(*s._data)
    keys.discard("timeStamp")
    keys.discard("t")
    out = {"t": s.times}
    for k in keys:
        out[k] = s._col(k)
    return out


def _key(s: Series) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The series' identity (metric and dimensions), built once per series: a merge every
    minute asks it of every kept series (20,000 at 5,000 nodes) and of every new one."""
    k = s._key
    if k is None:
        k = s._key = (s.metric, tuple(sorted(s.dims.items())))
    return k


def merge_series(old: Sequence[Series], new: Sequence[Series], since: float) -> list[Series]:
    """The kept window (`old`) brought up to date by an answer for its last minutes (`new`).

    A series in both keeps its points before the new answer's first minute, then the new
    points (Azure Monitor revises its newest minutes, so they are replaced, not kept);
    a series only in the old answer keeps its points (the backend had no traffic lately
    or left: it ages out of the window); points before `since` are dropped. Pure."""
    fresh = {_key(s): s for s in new}
    out: list[Series] = []
    # the series of one answer share their times column: so do the merged ones (one
    # array for thousands of series, not one each), cut and joined once per pair of
    # times columns (both alive for the whole merge: their ids stay theirs)
    plans: dict[tuple[int, int], tuple[int, int, array[float]]] = {}
    no_new: dict[str, array[float]] = {"t": array("d")}
    columnar = Series.columnar
    for s in old:
        n = fresh.pop(_key(s), None)
        oc = _columns(s)
        nc = _columns(n) if n is not None else no_new
        t_old, t_new = oc["t"], nc["t"]
        pk = (id(t_old), id(t_new))
        plan = plans.get(pk)
        if plan is None:
            cut = bisect_left(t_old, t_new[0]) if t_new else len(t_old)
            lo = bisect_left(t_old, since, 0, cut)
            plan = plans[pk] = (lo, cut, t_old[lo:cut] + t_new)
        lo, cut, t = plan
        if oc.keys() == nc.keys():  # the common case: the same aggregations in both
            cols = {k: oc[k][lo:cut] + nc[k] for k in oc}
        else:
            cols = {}
            for k in oc.keys() | nc.keys():
                a = oc.get(k)
                b = nc.get(k)
                head = a[lo:cut] if a is not None else array("d", [math.nan]) * (cut - lo)
                tail = b if b is not None else array("d", [math.nan]) * len(t_new)
                cols[k] = head + tail
        cols["t"] = t
        merged = columnar(s.metric, s.dims, len(t), cols)
        merged._key = s._key
        out.append(merged)
    out.extend(fresh.values())
    return out


class _Absent(tuple[dict[str, Any], ...]):
    """Stands for the points once their columns are built: `n` points that
    carry nothing else (a column the answer did not have reads as all None)."""

    def __new__(cls, n: int) -> _Absent:  # noqa: PYI034 - a fixed shape, not a generic tuple subclass
        return super().__new__(cls, ({},) * n)


_ABSENT: dict[int, _Absent] = {}


def _absent(n: int) -> _Absent:
    """One `_Absent` per length, shared (immutable; a window holds a few lengths)."""
    a = _ABSENT.get(n)
    if a is None:
        a = _ABSENT[n] = _Absent(n)
    return a


class MetricsError(ValueError):
    """The metrics payload is not what api-version 2024-02-01 returns."""


_TS_CACHE: dict[str, float] = {}
_TIMES: dict[tuple[Any, ...], array[float]] = {}


def _times_of(points: Sequence[Mapping[str, Any]]) -> array[float]:
    """The points' times as a column. The series of one answer have the same minutes: they
    share one array (kept by first and last timestamp and count)."""
    key = (points[0]["timeStamp"], points[-1]["timeStamp"], len(points)) if points else ("", "", 0)
    col = _TIMES.get(key)
    if col is None:
        col = array("d", [_ts(p["timeStamp"]) for p in points])
        if len(_TIMES) > 256:
            _TIMES.clear()
        _TIMES[key] = col
    return col


def _ts(text: str) -> float:
    t = _TS_CACHE.get(text)
    if t is None:
        t = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        if len(_TS_CACHE) > 10_000:
            _TS_CACHE.clear()
        _TS_CACHE[text] = t
    return t


def parse_metrics(payload: bytes | str | Mapping[str, Any]) -> list[Series]:
    """The `Response` body of Metrics - List as Series. Raises MetricsError on a malformed body.

    Leaves the garbage collector alone (it used to switch it off for the whole process
    while parsing): see `_split_points` for how the parse keeps it idle instead."""
    return _parse(payload)


_DATA = b'"data":['


def _split_points(body: bytes) -> tuple[bytes, list[memoryview]] | None:
    """(the body with every `"data":[…]` emptied, those arrays' bytes in order), or None.

    Points are flat objects of numbers and a timestamp, so an array ends at its first
    `]`. Decoding the skeleton, then each series' points on their own, keeps the number
    of live objects small: the garbage collector then has little to do while we parse
    (it used to be switched off around the parse, for the whole process)."""
    parts: list[bytes] = []
    arrays: list[memoryview] = []  # views into the body, not copies (orjson reads them as they are)
    view = memoryview(body)
    pos = 0
    while True:
        i = body.find(_DATA, pos)
        if i < 0:
            break
        start = i + len(_DATA) - 1
        end = body.find(b"]", start)
        if end < 0:
            return None
        parts.append(body[pos:start])
        parts.append(b"[]")
        arrays.append(view[start : end + 1])
        pos = end + 1
    if not arrays:
        return None
    parts.append(body[pos:])
    return b"".join(parts), arrays


def _parse(payload: bytes | str | Mapping[str, Any]) -> list[Series]:
    if isinstance(payload, (bytes, str)):
        body = payload.encode() if isinstance(payload, str) else payload
        split = _split_points(body)
        if split is not None:
            try:
                return _parse_split(*split)
            except (orjson.JSONDecodeError, _Shape):
                pass  # an unexpected layout: decode the answer whole (same result, more objects)
    try:
        doc = orjson.loads(payload) if isinstance(payload, (bytes, str)) else payload
    except orjson.JSONDecodeError as e:
        raise MetricsError(f"metrics response is not JSON: {e}") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("value"), list):
        raise MetricsError("metrics response has no 'value' list")
    out: list[Series] = []
    try:
        for metric in doc["value"]:
            name = metric["name"]
            mname = str(name["value"] if isinstance(name, Mapping) else name).lower()
            for ts in metric.get("timeseries") or ():
                dims = {
                    sys.intern(str(m["name"]["value"]).lower()): sys.intern(str(m.get("value", "")))
                    for m in ts.get("metadatavalues") or ()
                }
                data = ts.get("data") or []
                if not isinstance(data, list) or (data and not isinstance(data[0], Mapping)):
                    raise TypeError("data is not a list of points")
                if data:  # validate the shape once per series: both ends carry a timestamp
                    _ts(data[0]["timeStamp"]), _ts(data[-1]["timeStamp"])
                out.append(Series(mname, dims, data))
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise MetricsError(f"metrics response is malformed: {type(e).__name__}: {e}") from None
    return out


class _Shape(Exception):
    """The split decode does not line up with the answer; decode it whole instead."""


_CHUNK = 1000  # series whose points are decoded together: at 30 points, ~30k dicts live at once


def _decode_points(heads: Sequence[tuple[str, dict[str, str]]], arrays: Sequence[memoryview]) -> list[Series]:
    """Series from their heads (metric, dimensions) and their `data` arrays' bytes.

    The arrays are decoded a chunk at a time (one orjson call for up to _CHUNK series),
    and each aggregation's column is built once for the whole chunk, then cut per series:
    a refresh at 5,000 nodes reads ~15,000 series of 5 points, and doing all of it per
    series was most of its cost. The point dicts live only while their chunk is cut.
    Raises TypeError/KeyError/ValueError/AttributeError on a bad shape."""
    out: list[Series] = []
    columnar = Series.columnar
    for c in range(0, len(arrays), _CHUNK):
        lists = orjson.loads(b"[" + b",".join(arrays[c : c + _CHUNK]) + b"]")
        keysets: list[frozenset[str]] = []
        wanted: set[str] = set()
        for pts in lists:
            if type(pts) is not list or (pts and type(pts[0]) is not dict):
                raise TypeError("data is not a list of points")
            ks = _NONE.union(*pts) - _STAMP  # a point in the middle may carry one the ends lack
            keysets.append(ks)
            wanted |= ks
        flat = [p for pts in lists for p in pts]
        whole = {k: _floats([p.get(k) for p in flat]) for k in wanted}
        off = 0
        for (metric, dims), pts, ks in zip(heads[c : c + _CHUNK], lists, keysets, strict=True):
            n = len(pts)
            if not n:
                out.append(columnar(metric, dims, 0, {}))
                continue
            cols = {k: whole[k][off : off + n] for k in ks}
            cols["t"] = _times_of(pts)
            out.append(columnar(metric, dims, n, cols))
            off += n
    return out


_STAMP = frozenset({"timeStamp"})
_NONE: frozenset[str] = frozenset()


def _parse_split(skeleton: bytes, arrays: list[memoryview]) -> list[Series]:
    doc = orjson.loads(skeleton)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("value"), list):
        raise _Shape
    heads: list[tuple[str, dict[str, str]]] = []
    n = 0
    try:
        for metric in doc["value"]:
            name = metric["name"]
            mname = str(name["value"] if isinstance(name, Mapping) else name).lower()
            for ts in metric.get("timeseries") or ():
                if ts.get("data") != [] or n >= len(arrays):
                    raise _Shape
                dims = {
                    sys.intern(str(m["name"]["value"]).lower()): sys.intern(str(m.get("value", "")))
                    for m in ts.get("metadatavalues") or ()
                }
                heads.append((mname, dims))
                n += 1
        if n != len(arrays):
            raise _Shape
        return _decode_points(heads, arrays)
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        if isinstance(e, orjson.JSONDecodeError):
            raise _Shape from None
        raise MetricsError(f"metrics response is malformed: {type(e).__name__}: {e}") from None


def _trim(values: Sequence[float]) -> int:
    """The length without the trailing minutes that have no value (NaN): the newest minute
    is still being aggregated."""
    k = len(values)
    while k and values[k - 1] != values[k - 1]:
        k -= 1
    return k


def _gaps(values: Sequence[float], other: Sequence[float]) -> bool:
    """Some minute lacks a value (NaN) that `other` has. Most columns have no NaN but
    their newest minutes', where `other` has none either: told from the sums of the parts
    (a sum is NaN when a part is), without a step per minute in Python."""
    k = _trim(values)
    head = sum(values[:k])
    if head == head:  # no gap before k
        return _trim(other) > k
    return any(a != a and b == b for a, b in zip(values, other))


def _sum_present(values: Sequence[float]) -> float:
    """The sum of the values that are there (NaN: no point), iterated in C (x == x is
    False only for NaN)."""
    return sum(compress(values, map(float.__eq__, values, values)))


def _last(values: Sequence[float]) -> float | None:
    for v in reversed(values):
        if v == v:  # not NaN: the point has the value
            return v
    return None


# --------------------------------------------------------------------------- the join


@dataclass(frozen=True, slots=True)
class NodeSnat:
    """SNAT of one backend (node): latest allocation and use, failed connections in the window."""

    ip: str
    node: str  # "" when no node has this InternalIP (a scaled-in node, another pool's VM)
    pool: str
    allocated: int | None
    used: float | None  # Maximum of the latest minute (Average when Maximum is absent)
    used_avg: float | None
    failed: float  # failed SNAT connections over the window
    failed_last: float  # … in the latest minute that had data
    times: Sequence[float] = ()
    used_series: Sequence[float] = ()  # Maximum per minute (NaN: no point), for the chart
    expected: int = 0

    @property
    def pct(self) -> float | None:
        if self.used is None or not self.allocated:
            return None
        return 100.0 * self.used / self.allocated

    @property
    def state(self) -> str:
        """ok | warn | critical | unknown. Any failed connection means exhaustion."""
        pct = self.pct
        if self.failed > 0 or (pct is not None and pct >= CRIT_PCT):
            return "critical"
        if pct is None:
            return "unknown"
        return "warn" if pct >= WARN_PCT else "ok"

    @property
    def pressure(self) -> tuple[Any, ...]:
        """Sort key, most pressed first: exhausted, then by %, then failures, then name."""
        return pressure_key(self.ip, self.node, self.allocated, self.used, self.failed)


def pressure_key(ip: str, node: str, allocated: int | None, used: float | None, failed: float) -> tuple[Any, ...]:
    """`NodeSnat.pressure` from the fields it reads (a replay sorts rows it has not decoded)."""
    pct = None if used is None or not allocated else 100.0 * used / allocated
    return (
        -(1 if failed > 0 else 0),
        -(pct if pct is not None else -1.0),
        -failed,
        node or "~" + ip,
    )


@dataclass(frozen=True, slots=True)
class SnatTable:
    nodes: Sequence[NodeSnat]  # sorted by pressure (a tuple; in a replay, rows decoded when read)
    unmatched: tuple[str, ...]  # backend IPs without a node
    silent: tuple[str, ...]  # node names without a series (no outbound traffic yet, or top too small)
    start: float = 0.0
    end: float = 0.0

    @property
    def exhausted(self) -> tuple[NodeSnat, ...]:
        return tuple(n for n in self.nodes if n.state == "critical")


def join(series: Iterable[Series], nodes: Iterable[tuple[str, str, str]], expected: int = 0) -> SnatTable:
    """Join metric series to nodes. `nodes`: (name, InternalIP, pool). Pure and O(series + nodes)."""
    return _join(series, nodes, expected)


def _join(series: Iterable[Series], nodes: Iterable[tuple[str, str, str]], expected: int) -> SnatTable:
    by_ip = {ip: (name, pool) for name, ip, pool in nodes if ip}
    alloc: dict[str, Series] = {}
    used: dict[str, Series] = {}
    failed: dict[str, float] = {}
    failed_last: dict[str, tuple[float, float]] = {}
    t0, t1 = math.inf, 0.0
    seen_times: set[int] = set()  # the series of an answer share their times column
    for s in series:
        ip = s.dims.get("backendipaddress", "")
        if not ip:
            continue
        times = s.times
        if times and id(times) not in seen_times:
            seen_times.add(id(times))
            t0, t1 = min(t0, times[0]), max(t1, times[-1])
        if s.metric == ALLOCATED:
            alloc[ip] = s
        elif s.metric == USED:
            used[ip] = s
        elif s.metric == CONNECTIONS and s.dims.get("connectionstate", "").lower() == "failed":
            total = s.total
            k = _trim(total)  # up to the latest minute with data
            acc = sum(total[:k])
            failed[ip] = failed.get(ip, 0.0) + (acc if acc == acc else _sum_present(total))
            last_t, last_v = (times[k - 1], total[k - 1]) if k else (0.0, 0.0)
            prev = failed_last.get(ip)
            if prev is None or last_t > prev[0]:
                failed_last[ip] = (last_t, last_v)
            elif last_t == prev[0]:
                failed_last[ip] = (last_t, prev[1] + last_v)
    out: list[NodeSnat] = []
    for ip in alloc.keys() | used.keys() | failed.keys():
        name, pool = by_ip.get(ip, ("", ""))
        a, u = alloc.get(ip), used.get(ip)
        a_last = None
        if a is not None:
            a_last = a.last("average")
            if a_last is None:
                a_last = a.last("maximum")
        u_max = u.last("maximum") if u is not None else None
        u_avg = u.last("average") if u is not None else None
        series_max: Sequence[float] = u.maximum if u is not None else ()
        if u is not None and _gaps(series_max, u.average):  # a minute without Maximum charts its Average
            series_max = array("d", [m if m == m else av for m, av in zip(u.maximum, u.average)])
        out.append(
            NodeSnat(
                ip,
                name,
                pool,
                int(a_last) if a_last is not None else None,
                u_max if u_max is not None else u_avg,
                u_avg,
                failed.get(ip, 0.0),
                failed_last.get(ip, (0.0, 0.0))[1],
                u.times if u is not None else (),
                series_max,
                expected,
            )
        )
    out.sort(key=lambda n: n.pressure)
    seen = {n.ip for n in out}
    unmatched = tuple(sorted(n.ip for n in out if not n.node))
    silent = tuple(sorted(name for ip, (name, _p) in by_ip.items() if ip not in seen))
    return SnatTable(tuple(out), unmatched, silent, 0.0 if t0 is math.inf else t0, t1)


def node_findings(table: SnatTable, alloc: Allocation | None = None) -> tuple[SnatFinding, ...]:
    """F10 per node, and a mismatch between the allocation Azure reports and the rules."""
    out: list[SnatFinding] = []
    for n in table.nodes:
        who = n.node or f"backend {n.ip} (no node)"
        if n.failed > 0 or (n.pct is not None and n.pct >= 100):
            used = f"{n.used:.0f}" if n.used is not None else "?"
            out.append(
                SnatFinding(
                    "critical",
                    f"SNAT exhausted on {who}: {used}/{n.allocated or '?'} ports used, "
                    f"{n.failed:.0f} failed connections in the window",
                )
            )
        elif n.state == "warn":
            out.append(SnatFinding("warning", f"{who}: {n.pct:.0f}% of its {n.allocated} SNAT ports in use"))
    if alloc is not None and 0 < alloc.during_surge < alloc.expected:
        over = [n for n in table.nodes if n.used is not None and n.used > alloc.during_surge]
        if over:
            out.append(
                SnatFinding(
                    "warning",
                    f"{len(over)} node{'s' if len(over) != 1 else ''} already use more than the "
                    f"{alloc.during_surge} ports each node keeps during an upgrade surge "
                    f"(busiest: {over[0].node or over[0].ip}, {over[0].used:.0f})",
                )
            )
    if alloc is not None and alloc.expected:
        odd = [n for n in table.nodes if n.allocated is not None and n.allocated != alloc.expected]
        if odd:
            sample = ", ".join(sorted({str(n.allocated) for n in odd})[:3])
            out.append(
                SnatFinding(
                    "info",
                    f"{len(odd)} node{'s' if len(odd) != 1 else ''} report {sample} allocated ports, "
                    f"the rules say {alloc.expected} ({alloc.tier})",
                )
            )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ClusterMetric:
    """A cluster-level value (NAT Gateway, Azure Firewall): latest point and the window's series."""

    name: str
    unit: str
    latest: float | None
    series: Sequence[float] = field(default_factory=tuple)  # NaN: no point


def cluster_metrics(
    series: Iterable[Series], aggregation: Mapping[str, str], units: Mapping[str, str] | None = None
) -> tuple[ClusterMetric, ...]:
    """One value per metric for NAT Gateway / Firewall answers (no per-node dimension exists)."""
    units = units or {}
    out = []
    for s in series:
        agg = aggregation.get(s.metric, "total")
        vals = {"average": s.average, "maximum": s.maximum}.get(agg, s.total)
        out.append(ClusterMetric(s.metric, units.get(s.metric, ""), _last(vals), vals))
    return tuple(out)
