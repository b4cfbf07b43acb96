"""A recording, read: the state (every channel) and the frame at any moment, the findings'
start and end, and the marks the timeline shows. Opening reads only the index of times;
a seek reads the keyframe at or before the moment and the batches after it (at most
the writer's `keyframe_rows` channels); a step forward applies only the frames in between.

A seek decodes only what a frame needs: the rows and the probe plans (most of a
keyframe's bytes) stay msgpack bytes (`msgspec.Raw`) until a pane reads them. A seek
applies the batches after its keyframe at once (`probes.record.codec.Stretch`: the last
bytes of each channel, a patch folded from the stretch when read); a step forward applies
a frame at a time, a batch's row as `Pending` (a patch resolved when read)."""

from __future__ import annotations

import bisect
import contextlib
import gc
import itertools
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from isal import isal_zlib

from probes.engine.frame import Frame
from probes.record.codec import NIL, PROFILE_MARK, Pending, Stretch, Thawer, left_undecoded, thaw
from probes.record.schema import FORMAT, OLD_FORMATS, unpack

_kf_dec = msgspec.msgpack.Decoder(dict[int, msgspec.Raw])  # a keyframe: channel id -> its bytes
_dl_dec = msgspec.msgpack.Decoder(list[tuple[float, dict[int, msgspec.Raw]]])  # a batch's frames
_dec = msgspec.msgpack.Decoder()
_inflate = isal_zlib.decompress  # zlib's format, inflated by ISA-L (a keyframe: 2 MB, 10 ms -> 6)
_GONE = object()
SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}
KEYFRAMES_KEPT = 3  # decoded keyframes kept (about 2 MB each at 1,000 nodes)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic GC held off while a seek builds a state: it allocates some 100,000
    objects, none of them garbage in a cycle, and each burst of allocations otherwise sets
    off collections that walk the whole heap (a third of a seek's time). Allocations since
    are counted as usual: the next collection after the seek sees them once."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _never() -> bool:
    return False


class RecordingError(Exception):
    """Not a recording, or one that cannot be read; the message is for the user."""


@dataclass(frozen=True, slots=True)
class FindingSpan:
    rule: str
    fault: str | None
    severity: str
    subject: str
    cause: str
    start: float
    end: float | None  # None: still open when the recording ended
    body: str  # the finding as JSON (evidence, next step)
    id: int = 0  # its row: the key of its raw bodies (`Recording.evidence`)


@dataclass(frozen=True, slots=True)
class Mark:
    t: float
    kind: str  # node | finding | source | snat
    text: str


class Recording:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise RecordingError(f"{self.path}: no such recording")
        try:
            # read-only: replaying never writes to the file
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self.meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            fmt = self.meta.get("format")
            if fmt in OLD_FORMATS:
                raise RecordingError(f"{self.path}: {OLD_FORMATS[fmt]}")
            if fmt != FORMAT:
                raise RecordingError(f"{self.path}: not an aksnet-top recording ({fmt!r})")
            self._kf = self._db.execute("SELECT t, upto, rowid FROM keyframes ORDER BY t, rowid").fetchall()
            self._dl = self._db.execute("SELECT t0, t1, rowid FROM deltas ORDER BY rowid").fetchall()
            self._names: dict[int, str] = dict(self._db.execute("SELECT id, name FROM channels").fetchall())
            self._ids = {n: i for i, n in self._names.items()}
            # channel id -> (name, kind ("n\t", "d\t", …; "" for a named channel), left undecoded?)
            self._info = {i: (n, n[:2] if n[1:2] == "\t" else "", left_undecoded(n)) for i, n in self._names.items()}
            self._kinds = {i: kind for i, (_, kind, _) in self._info.items()}
            self._kind_of = self._kinds.__getitem__
            self._eager = frozenset(i for i, (_, _, lazy) in self._info.items() if not lazy)  # decoded at once
            self.findings = [
                FindingSpan(*r)
                for r in self._db.execute(
                    'SELECT rule, fault, severity, subject, cause, start, "end", body, id FROM findings ORDER BY start, id'
                )
            ]
            self.marks = [Mark(*r) for r in self._db.execute("SELECT t, kind, text FROM marks ORDER BY t, rowid")]
        except sqlite3.Error as e:
            raise RecordingError(f"{self.path}: not a readable recording ({e})") from e
        self._kf_t = [t for t, _, _ in self._kf]
        self._dl_t0 = [t for t, _, _ in self._dl]
        self._dl_row = [r for _, _, r in self._dl]
        if not self._kf and not self._dl:
            raise RecordingError(f"{self.path}: the recording is empty")
        times = self._kf_t + self._dl_t0 + [t for _, t, _ in self._dl]
        self.start = float(self.meta.get("started") or min(times))
        self.start = min(self.start, min(times))
        self.end = max(times + [float(self.meta.get("ended") or 0.0)])
        self._state: dict[str, Any] = {}
        self._at_kf = -1  # index of the keyframe the state is built on
        self._pos = (0, 0)  # the next frame to apply: (batch index, frame index)
        self._at_t = float("-inf")  # the time the state stands at
        self._loaded = False
        self._frames: dict[int, list[Any]] = {}  # batch index -> its frames (the last few decoded)
        # the last keyframes read (index -> state, groups, its bytes): a step back, or a seek
        # near one read lately, starts from it again without decoding it
        self._kf_cache: OrderedDict[int, tuple[dict[str, Any], dict[str, list[str]], bytes]] = OrderedDict()
        # whether a keyframe's / a batch's bytes name a second client's outcome (PROFILE_MARK):
        # a pane judging rows from their bytes asks (`Thawer.healths`)
        self._kf_marked: dict[int, bool] = {}
        # keyframes' layouts: their channel ids in order -> (their names, the groups by kind)
        self._layouts: OrderedDict[tuple[int, ...], tuple[list[Any], dict[str, list[str]]]] = OrderedDict()
        self._batch_marked: dict[int, bool] = {}
        self._kf_bytes: bytes | None = None  # the bytes of the keyframe the state is built on
        self._marked = False  # a batch the state applied names one
        self._groups: dict[str, list[str]] = {}  # the state's channels by kind, as the Thawer groups them
        self._stretch: Stretch | None = None  # the frames the state applied at once, if any
        # the frames' monotonic times are on the recording's clock: a replay's ages are the
        # cursor's (`probes.record.replay.ReplayPublisher.clock`)
        self.thawer = Thawer(epoch=float(self.meta.get("epoch") or 0.0), replay_clock=True)
        with contextlib.suppress(ValueError, TypeError):  # a name that is no key: read when shown, as before
            self.thawer.know(self._names.values())

    def close(self) -> None:
        self._db.close()

    # --- state at a moment ---------------------------------------------------------------
    def state_at(self, t: float) -> dict[str, Any]:
        """Every channel's value at `t`, decoded (a dict of the caller's own)."""
        state = self._state_at(t)
        return {name: thaw(name, v, self._stretch) for name, v in state.items()}

    def _state_at(self, t: float) -> dict[str, Any]:
        """Every channel's value at `t`, rows left as `Raw` (a keyframe's, or the last bytes
        of a stretch's: `self._stretch`) or `Pending` (the reader's own dict)."""
        k = bisect.bisect_right(self._kf_t, t) - 1
        kf_next = self._after(self._kf[k][1]) if k >= 0 else 0  # the first batch after keyframe k
        # step forward from the state held unless the keyframe is less work
        fresh = not self._loaded or t < self._at_t or (k > self._at_kf and kf_next > self._pos[0])
        if fresh:
            self._loaded = True
            kf_state, kf_groups, self._kf_bytes = self._keyframe(k)
            self._state = dict(kf_state)
            self._groups = {kind: list(g) for kind, g in kf_groups.items()}
            self._at_kf = k
            self._pos = (kf_next, 0)
            self._at_t = self._kf_t[k] if k >= 0 else float("-inf")
            self._stretch = None
            self._marked = False
        last = bisect.bisect_right(self._dl_t0, t) - 1  # the last batch that starts by `t`
        bi, fi = self._pos
        if bi <= last:
            self._load(bi, last)
        todo: list[dict[int, msgspec.Raw]] = []  # the frames' channels up to `t`, in order
        marked = self._marked
        while bi <= last:
            frames = self._frames[bi]
            start = fi
            while fi < len(frames) and frames[fi][0] <= t:
                fi += 1
            todo += [ch for _, ch in frames[start:fi]]
            marked = marked or (fi > start and self._batch_marked[bi])
            if fi < len(frames):
                break
            bi, fi = bi + 1, 0
        state = self._state
        if fresh and len(todo) > 1:
            # on a keyframe's values (bytes): the frames at once, each row left to fold
            # from them when read (a row of a stretch never patches another stretch's)
            self._stretch = self._apply_all(state, todo)
        else:
            for ch in todo:
                self._apply(state, ch)
        self._pos = (bi, fi)
        self._at_t = t
        self._marked = marked
        return state

    def _plain(self) -> Callable[[], bool]:
        """For the frame of the state now: says, when asked, that none of the bytes the state
        stands on (its keyframe's, its batches') name a second client's outcome."""
        if self._marked:
            return _never
        k, data, memo = self._at_kf, self._kf_bytes, self._kf_marked

        def plain() -> bool:
            hit = memo.get(k)
            if hit is None:
                hit = memo[k] = data is not None and PROFILE_MARK in data
            return not hit

        return plain

    def _keyframe(self, k: int) -> tuple[dict[str, Any], dict[str, list[str]], bytes | None]:
        """Keyframe k's state by channel name, and its bytes; the last `KEYFRAMES_KEPT` read
        are kept (a step back, or a seek near one read lately, starts from it again without
        decoding it). Its values are never changed in place: a delta puts new values in a copy."""
        if k < 0:
            return {}, {}, None
        hit = self._kf_cache.get(k)
        if hit is not None:
            self._kf_cache.move_to_end(k)
            return hit
        data = _inflate(self._blob("keyframes", self._kf[k][2]))
        kf = _kf_dec.decode(data)  # its values (Raw) are views of `data`
        names = self._names
        # its channels' names and their groups by kind: most keyframes have the channels of
        # the one before, in its order (the same layout, 3 ms less)
        ids = tuple(kf)
        layout = self._layouts.get(ids)
        if layout is None:
            # the channels by kind, each in the keyframe's order (a stable sort by kind)
            of_kind = self._kind_of
            groups = {
                kind: list(map(names.__getitem__, cids))
                for kind, cids in itertools.groupby(sorted(kf, key=of_kind), key=of_kind)
                if kind
            }
            layout = self._layouts[ids] = (list(map(names.get, kf)), groups)
            while len(self._layouts) > KEYFRAMES_KEPT:
                self._layouts.popitem(last=False)
        else:
            self._layouts.move_to_end(ids)
        chans, groups = layout  # never changed in place (`_state_at` copies the groups)
        # by name, in the keyframe's order, without a line of Python per channel (14,000)
        state: dict[Any, Any] = dict(zip(chans, kf.values()))
        state.pop(None, None)  # a channel the file does not name: skipped
        for cid in self._eager & kf.keys():  # the few named channels: decoded now
            state[names[cid]] = _dec.decode(kf[cid])
        self._kf_cache[k] = (state, groups, data)
        while len(self._kf_cache) > KEYFRAMES_KEPT:
            self._kf_cache.popitem(last=False)
        return state, groups, data

    def _apply(self, state: dict[str, Any], channels: dict[int, msgspec.Raw]) -> None:
        """One frame's changes, as `probes.record.codec.apply` puts them, rows left `Pending`
        (only rows are ever patches); the groups follow the channels that come and go."""
        info, groups, stretch = self._info, self._groups, self._stretch
        for cid, raw in channels.items():
            inf = info.get(cid)
            if inf is None:
                continue
            name, kind, lazy = inf
            if raw == NIL:
                if state.pop(name, _GONE) is not _GONE and kind:
                    groups[kind].remove(name)
                continue
            prev = state.get(name, _GONE)
            if prev is _GONE:
                prev = None
                if kind:
                    g = groups.get(kind)
                    if g is None:
                        g = groups[kind] = []
                    g.append(name)
            elif stretch is not None and type(prev) is msgspec.Raw and stretch.last.get(cid) is prev:
                prev = (stretch, cid)  # the stretch's last bytes: folded from the stretch
            state[name] = Pending(raw, prev, kind) if lazy else _dec.decode(raw)

    def _apply_all(self, state: dict[str, Any], frames: list[dict[int, msgspec.Raw]]) -> Stretch:
        """Frames' changes at once, the state then as `_apply` leaves it frame by frame:
        the last value of each channel (C loops: dict.update, zip), a row as its last
        bytes, folded from the stretch when read (`probes.record.codec.Stretch`, returned);
        the channels that come or go are put in order, as one at a time would."""
        last: dict[int, msgspec.Raw] = {}
        for ch in frames:
            last.update(ch)
        names = self._names
        chans: list[Any] = list(map(names.get, last))
        if None in chans:  # channels the file does not name: skipped
            last = {c: v for c, v in last.items() if c in names}
            frames = [{c: v for c, v in ch.items() if c in names} for ch in frames]
            chans = list(map(names.get, last))
        before = dict(zip(last, map(state.get, chans)))  # the values the stretch's first patches patch
        # channels gone or new in the stretch: their places, frame by frame, in order
        moving = {cid for ch in frames if NIL in ch.values() for cid, raw in ch.items() if raw == NIL}
        new = set(chans) - state.keys()
        if new:
            ids = self._ids
            moving |= {ids[n] for n in new}
        if moving:
            info, groups = self._info, self._groups
            for ch in frames:
                if moving.isdisjoint(ch):
                    continue
                for cid in [c for c in ch if c in moving]:
                    name, kind, _ = info[cid]
                    if ch[cid] == NIL:
                        if state.pop(name, _GONE) is not _GONE and kind:
                            groups[kind].remove(name)
                    elif name not in state:
                        state[name] = None  # its value follows
                        if kind:
                            groups.setdefault(kind, []).append(name)
        state.update(zip(chans, last.values()))
        for cid in moving:
            if last[cid] == NIL:  # gone at the end: not put back
                state.pop(names[cid], None)
        for cid in self._eager & last.keys():  # the few named channels: decoded now
            if last[cid] != NIL:
                state[names[cid]] = _dec.decode(last[cid])
        return Stretch(frames, self._kinds, self._ids, last, before)

    def _after(self, upto: int) -> int:
        """The index of the first batch written after delta row `upto`."""
        return bisect.bisect_right(self._dl_row, upto)

    def _load(self, first: int, last: int) -> None:
        """Decode batches first..last (keeping only those and the last ones decoded)."""
        want = [i for i in range(first, last + 1) if i not in self._frames]
        if want:
            rows = self._db.execute(
                "SELECT rowid, blob FROM deltas WHERE rowid BETWEEN ? AND ?",
                (self._dl_row[want[0]], self._dl_row[want[-1]]),
            ).fetchall()
            index = {r: i for i, r in zip(want, (self._dl_row[i] for i in want))}
            marked = self._batch_marked
            for rowid, blob in rows:
                i = index.get(rowid)
                if i is not None:
                    data = _inflate(blob)
                    self._frames[i] = _dl_dec.decode(data)
                    if i not in marked:
                        marked[i] = PROFILE_MARK in data  # 15 KB: 10 µs
        for i in [i for i in self._frames if i < first - 2 or i > last]:
            del self._frames[i]

    def evidence(self, finding: FindingSpan) -> list[tuple[str, str, Any]]:
        """The raw bodies behind `finding` as (kind, name, body), read when it started."""
        try:
            rows = self._db.execute(
                "SELECT kind, name, body FROM evidence WHERE finding = ? ORDER BY rowid", (finding.id,)
            ).fetchall()
        except sqlite3.Error:
            return []
        return [(k, n, unpack(b)) for k, n, b in rows]

    def frame_at(self, t: float) -> Frame:
        """The frame the app showed at `t` (as the panes render it)."""
        with _collector_paused():
            state = self._state_at(t)
            return self.thawer.frame(state, t, self._groups, self._stretch, self._plain())

    def _blob(self, table: str, rowid: int) -> bytes:
        row = self._db.execute(f"SELECT blob FROM {table} WHERE rowid = ?", (rowid,)).fetchone()  # noqa: S608
        return bytes(row[0])

    # --- the timeline ----------------------------------------------------------------------
    def change_times(self) -> list[float]:
        """When something a person calls a change happened (marks), in order."""
        return sorted({m.t for m in self.marks})

    def next_change(self, t: float) -> float | None:
        times = self.change_times()
        i = bisect.bisect_right(times, t + 1e-6)
        return times[i] if i < len(times) else None

    def prev_change(self, t: float) -> float | None:
        times = self.change_times()
        i = bisect.bisect_left(times, t - 1e-6) - 1
        return times[i] if i >= 0 else None

    def first_critical(self) -> FindingSpan | None:
        crit = [f for f in self.findings if f.severity == "critical"]
        return min(crit, key=lambda f: f.start) if crit else None

    def findings_in(self, t0: float, t1: float) -> list[FindingSpan]:
        """Findings open at some moment of [t0, t1]."""
        return [f for f in self.findings if f.start <= t1 and (f.end is None or f.end >= t0)]
