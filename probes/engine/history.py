"""Bounded per-key history of probe results, written by the probe loop, read by views.

Appends are O(log window) under a lock (the asyncio thread): each keeps its key's
window summary current — the successful latencies in order, the losses, the last
`spark` latencies — so a read of a changed key's statistics costs the same whatever the
window holds (it used to walk and sort the whole window, up to 300 results, for every
new result of every row: at 5,000 nodes the publisher's largest cost at idle). Stats are
cached per key until its next append. `version` (global) and `version_of(key)` let a
view skip rows that did not change.

Results are duck-typed (:class:`Observation`): DnsResult, the scheduler's JobFailure,
and later the TCP egress result all fit.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple, Protocol

from probes.engine.health import Health


class Observation(Protocol):
    latency_ms: float
    timestamp: float
    error: str
    raw: str

    @property
    def success(self) -> bool: ...  # an answer whose latency counts in percentiles

    @property
    def lost(self) -> bool: ...  # no answer at all: counts as loss


@dataclass(frozen=True, slots=True)
class Stats:
    count: int  # results ever recorded for this key
    attempts: int  # results in the window
    successes: int
    p50: float | None  # latency percentiles of successful answers in the window, ms
    p95: float | None
    p99: float | None
    loss_pct: float  # lost (timeout, network error) over attempts in the window, 0..100
    last_outcome: str
    last_error: str  # the most recent non-empty error
    last_raw: str  # the most recent non-empty raw answer
    last_ts: float
    last: Any  # the most recent result itself
    recent: tuple[float | None, ...]  # latency per attempt, oldest first; None = lost
    version: int


def outcome_of(st: Stats, kind: type[Enum]) -> Any:
    """The row's last outcome as a member of `kind` (DnsOutcome, EgressOutcome), or None
    for a value the enum does not know (a scheduler's "error")."""
    return kind._value2member_map_.get(st.last_outcome)


class Brief(NamedTuple):
    """What `judge` reads of a row (a replay judges rows from their bytes:
    `probes.record.codec.RowStats.healths`)."""

    attempts: int
    successes: int
    last_outcome: str
    profile: Any = None  # the last result's `profile_outcome` (a second client's), or None


def judge(st: Stats | Brief | None, kind: type[Enum], *, reachable: bool = True) -> Health:
    """A row's health, the one judgement every view and the rules share: the last
    outcome decides failing (or degraded); an earlier miss in the window degrades a good
    row. `reachable` False: the plan says this vantage cannot reach the far end. `st` may
    be a row's `Brief` (the same verdict)."""
    if not reachable:
        return Health.UNREACHABLE
    if st is None or not st.attempts:
        return Health.PENDING
    out: Any = kind._value2member_map_.get(st.last_outcome)
    h = out.health if out is not None else Health.FAILING
    # a second client profile's outcome, where the result carries one (DNS: what a
    # no-EDNS 512-byte client got when it was truncated): the row is the worse of both
    other = st.profile if isinstance(st, Brief) else getattr(st.last, "profile_outcome", None)
    if other is not None and other.health.rank < h.rank:
        h = other.health
    if h is Health.GOOD and st.successes < st.attempts:
        return Health.DEGRADED
    return h


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty sequence."""
    n = len(sorted_values)
    rank = max(1, math.ceil(pct / 100.0 * n))
    return sorted_values[min(rank, n) - 1]


def _facts(result: Any) -> tuple[float | None, float | None, bool]:
    """(latency in the sparkline, latency counted in percentiles, lost) of one result: a
    success's latency (a NaN one is drawn but not counted), a loss when no answer came."""
    if getattr(result, "success", False):
        v = result.latency_ms
        return v, (v if v == v else None), False
    return None, None, bool(getattr(result, "lost", False))


class _Series:
    """One key's window and its running summary, kept by `push`: an evicted result's facts
    are read from it again (results are immutable), so nothing per result is stored twice."""

    __slots__ = ("items", "ok", "lost", "recent", "count", "version", "last_error", "last_raw", "cached")

    def __init__(self, maxlen: int, spark: int) -> None:
        self.items: deque[Any] = deque()
        self.ok: list[float] = []  # the window's successful latencies, ascending (no NaN)
        self.lost = 0  # lost results in the window
        self.recent: deque[float | None] = deque(maxlen=min(spark, maxlen) if spark > 0 else maxlen)
        self.count = 0
        self.version = 0
        self.last_error = ""
        self.last_raw = ""
        self.cached: Stats | None = None

    def push(self, result: Any, maxlen: int) -> None:
        """Append `result`, dropping the oldest beyond `maxlen`, and keep the summary."""
        if self.items and len(self.items) >= maxlen:
            _, gone, lost = _facts(self.items.popleft())
            if gone is not None:
                del self.ok[bisect_left(self.ok, gone)]
            self.lost -= lost
        v, counted, lost = _facts(result)
        self.items.append(result)
        if counted is not None:
            insort(self.ok, counted)
        self.lost += lost
        self.recent.append(v)

    def stats(self) -> Stats:
        ok, n = self.ok, len(self.items)
        last = self.items[-1]
        outcome = getattr(last, "outcome", "")
        return Stats(
            count=self.count,
            attempts=n,
            successes=len(ok),
            p50=percentile(ok, 50) if ok else None,
            p95=percentile(ok, 95) if ok else None,
            p99=percentile(ok, 99) if ok else None,
            loss_pct=100.0 * self.lost / n if n else 0.0,
            last_outcome=getattr(outcome, "value", str(outcome)),
            last_error=self.last_error,
            last_raw=self.last_raw,
            last_ts=getattr(last, "timestamp", 0.0),
            last=last,
            recent=tuple(self.recent),
            version=self.version,
        )


_TEXT_FIELDS: dict[type, tuple[str, ...]] = {}


def _text_fields(cls: type) -> tuple[str, ...]:
    names = _TEXT_FIELDS.get(cls)
    if names is None:
        names = _TEXT_FIELDS[cls] = tuple(
            f.name for f in dataclasses.fields(cls) if f.type in ("str", str) and f.name != "raw"
        )
    return names


def _lean(result: Any, prev: Any, owned: bool = False) -> Any:
    """`result` as a key's history keeps it: without its raw answer text (kept once per
    key, see `add`), and with each text field that equals the previous result's pointing
    at that result's string. An agent's results are decoded afresh from every read, so
    without this each of the 300 results a key holds carries its own copies of the same
    resolver, address, name and rcode strings (about 400 bytes a result).

    `owned`: nobody else holds `result` (an agent's read, decoded for the history alone):
    it is trimmed in place instead of copied (a copy of a result is ~5 µs; an agent
    read replays ~40 of them)."""
    changes: dict[str, Any] = {"raw": ""} if getattr(result, "raw", "") else {}
    if prev is not None and type(prev) is type(result):
        for name in _text_fields(type(result)):
            value = getattr(result, name)
            if value:
                was = getattr(prev, name)
                if value is not was and value == was:
                    changes[name] = was
    if not changes:
        return result
    if owned:
        for name, value in changes.items():
            object.__setattr__(result, name, value)  # frozen for everyone else; ours to trim here
        return result
    return dataclasses.replace(result, **changes)


class History:
    def __init__(self, maxlen: int = 300, spark: int = 60) -> None:
        self._maxlen = maxlen
        self._spark = spark
        self._lock = threading.Lock()
        self._series: dict[Hashable, _Series] = {}
        self._order: dict[Hashable, None] = {}  # keys, least recently changed first
        self._version = 0
        self.epoch = 0  # bumps when keys are forgotten: a reader of changes starts over

    # --- writer side -------------------------------------------------------------------
    def add(self, key: Hashable, result: Any, owned: bool = False) -> None:
        """Record `result` under `key` (the Scheduler's sink signature); `owned`: the
        caller holds no other reference to it (see `_lean`).

        A result's raw answer text is kept once per key, as `last_raw` (what the detail
        screens show): the 300 results a key holds are stored without it. A DNS answer's
        text is a few hundred bytes; with it, full histories of 50 agent nodes cost about
        30 MB more."""
        raw = getattr(result, "raw", "")
        with self._lock:
            s = self._series.get(key)
            if s is None:
                s = self._series[key] = _Series(self._maxlen, self._spark)
            if dataclasses.is_dataclass(result) and not isinstance(result, type):
                result = _lean(result, s.items[-1] if s.items else None, owned)
            s.push(result, self._maxlen)
            s.count += 1
            self._version += 1
            s.version = self._version
            self._order.pop(key, None)
            self._order[key] = None
            err = getattr(result, "error", "")
            if err:
                s.last_error = err
            if raw:
                s.last_raw = raw
            s.cached = None

    def add_many(self, items: Iterable[tuple[Hashable, Any]], owned: bool = False) -> None:
        """Record many (key, result) pairs (an agent's results, replayed); `owned`: as in `add`."""
        for key, result in items:
            self.add(key, result, owned)

    def retain(self, keys: Iterable[Hashable], also: Callable[[Hashable], bool] | None = None) -> None:
        """Forget keys not in `keys` (a resolver left the topology), unless `also` keeps them."""
        keep = set(keys)
        with self._lock:
            gone = [k for k in self._series if k not in keep and not (also is not None and also(k))]
            for k in gone:
                del self._series[k]
                self._order.pop(k, None)
            if gone:
                self._version += 1
                self.epoch += 1

    def clear(self) -> None:
        with self._lock:
            self._series.clear()
            self._order.clear()
            self._version += 1
            self.epoch += 1

    # --- reader side -------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._version

    def version_of(self, key: Hashable) -> int:
        s = self._series.get(key)
        return s.version if s is not None else 0

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._series)

    def results(self, key: Hashable) -> list[Any]:
        with self._lock:
            s = self._series.get(key)
            return list(s.items) if s is not None else []

    def stats(self, key: Hashable) -> Stats | None:
        with self._lock:
            s = self._series.get(key)
            if s is None:
                return None
            if s.cached is None:  # O(spark): the summary is kept by add()
                s.cached = s.stats()
            return s.cached

    def snapshot(self, since: int = 0) -> dict[Hashable, Stats]:
        """Stats of every key changed after version `since` (0: all keys). Reads only the
        keys that moved: the change log is walked from its newest end."""
        with self._lock:
            if since <= 0:
                keys = list(self._series)
            else:
                keys = []
                series = self._series
                for k in reversed(self._order):
                    if series[k].version <= since:
                        break
                    keys.append(k)
                keys.reverse()
        out = {}
        for k in keys:
            st = self.stats(k)
            if st is not None:
                out[k] = st
        return out
