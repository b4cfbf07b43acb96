"""The recorder: the publisher hands it every frame (`offer`, never blocks); a thread of
its own diffs the frames (`probes.record.codec.Differ`) and writes the changes of each
second as one compressed row (a batch), committed about once a second. When the disk is
slower than the frames, frames are dropped and counted — the next frame is diffed against
the last one written, so nothing but the moments between is lost. When a finding starts,
the raw bodies behind it are fetched on a second thread (`evidence`) and written too."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from probes.engine.frame import Frame
from probes.record import redact
from probes.record.codec import Differ, finding_key
from probes.record.schema import DDL, FORMAT, pack

log = logging.getLogger(__name__)


MAX_EVIDENCE = 200  # findings per run whose raw bodies are fetched (then only the findings)


class RecordError(Exception):
    """The recording cannot be opened or written; the message is for the user."""


class _Sync:
    """A marker through a queue: set once everything queued before it was handled."""

    def __init__(self) -> None:
        self.done = threading.Event()


class _Found:
    """The raw bodies behind finding `rowid`, for the writer's thread to write."""

    def __init__(self, rowid: int, t: float, objects: list[tuple[str, str, Any]]) -> None:
        self.rowid, self.t, self.objects = rowid, t, objects


class Recorder:
    def __init__(
        self,
        path: Path,
        *,
        command: str = "app",
        meta: Mapping[str, str] | None = None,
        queue_size: int = 64,
        keyframe_every: float = 300.0,
        keyframe_rows: int | None = None,
        stats_every: float = 60.0,
        commit_every: float = 1.0,
        batch_every: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.keyframe_every = keyframe_every
        # a keyframe also after this many changed channels (None: one and a half times the
        # channels of the state, at least 2,000): a seek then applies at most that many rows
        # after one (a probe row is written every `stats_every` s: at 60 s, a keyframe about
        # every 90 s at 1,000 nodes)
        self.keyframe_rows = keyframe_rows
        self.commit_every = commit_every
        self.batch_every = batch_every
        started = clock()
        self.differ = Differ(stats_every=stats_every, epoch=float(int(started)))
        self._batch: list[list[Any]] = []  # [t, channels] of the frames not yet written
        self._rows = 0  # channels written since the last keyframe
        self._upto = 0  # the last delta row written
        self._ids: dict[str, int] = {}  # channel -> its id in the file
        self._q: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        # the raw bodies behind each finding that starts (probes.record.evidence.EvidenceFetcher):
        # fetched on a thread of their own, so a slow API server never holds the frames up
        self.evidence: Any = None
        self._ev_q: queue.Queue[Any] = queue.Queue(maxsize=64)
        self._ev_thread: threading.Thread | None = None
        self._ev_asked = 0
        self.dropped = 0  # frames the queue had no room for
        self.written = 0  # delta rows (batches) written
        self.error = ""  # the writer's failure, once it stopped writing
        self._failed = False
        self._last_offered: Frame | None = None
        self._last_keyframe = float("-inf")
        self._open_ids: dict[str, int] = {}
        self._t_last = 0.0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)  # owner-only before SQLite opens it
            os.close(fd)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(DDL)
            rows = {
                "format": FORMAT,
                "command": command,
                "started": repr(started),
                "epoch": repr(self.differ.epoch),
                **(meta or {}),
            }
            self._db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, redact.text(str(v))) for k, v in rows.items()]
            )
        except (OSError, sqlite3.Error) as e:
            raise RecordError(f"cannot record to {self.path}: {e}") from e
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    # --- the publisher's side ----------------------------------------------------------
    def offer(self, frame: Frame) -> None:
        """Called with every frame; O(1), never blocks."""
        if self._failed or frame is self._last_offered:  # the publisher repeats an unchanged frame
            return
        self._last_offered = frame
        try:
            self._q.put_nowait((self.clock(), frame))
        except queue.Full:
            self.dropped += 1

    def tee(self, on_frame: Callable[[Frame], None]) -> Callable[[Frame], None]:
        """`on_frame`, with every frame offered to the recorder first."""

        def both(frame: Frame) -> None:
            self.offer(frame)
            on_frame(frame)

        return both

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until the frames offered so far are written and the evidence of the findings
        they started is fetched and written (`check` asks before it stops its sources)."""
        deadline = time.monotonic() + timeout
        if not self._sync(self._q, deadline):
            return False
        if self._ev_thread is None:  # no finding asked for evidence
            return True
        return self._sync(self._ev_q, deadline) and self._sync(self._q, deadline)

    @staticmethod
    def _sync(q: queue.Queue[Any], deadline: float) -> bool:
        """Everything queued on `q` so far was handled (False: not by `deadline`)."""
        sync = _Sync()
        try:
            q.put(sync, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            return False
        return sync.done.wait(max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (the evidence being fetched too), then close the file (a
        single file again: no WAL left)."""
        if not self._thread.is_alive():
            return
        deadline = time.monotonic() + timeout
        if self._ev_thread is not None:
            # the frames first (their findings ask for evidence), then the evidence's end
            self._sync(self._q, deadline)
            try:
                self._ev_q.put(None, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                pass
            self._ev_thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self._q.put(None, timeout=max(0.1, deadline - time.monotonic()))
        except queue.Full:
            pass
        self._thread.join(max(0.1, deadline - time.monotonic()))

    # --- the recorder's thread -------------------------------------------------------------
    def _run(self) -> None:
        db = self._db
        pending = 0
        t_commit = time.monotonic()
        try:
            db.execute("BEGIN")
            while True:
                try:
                    item = self._q.get(timeout=self.commit_every)
                except queue.Empty:  # a quiet moment: commit what is pending
                    pending += self._flush(db)
                    if pending:
                        db.execute("COMMIT")
                        db.execute("BEGIN")
                        pending, t_commit = 0, time.monotonic()
                    continue
                if item is None:
                    break
                if isinstance(item, _Sync):
                    item.done.set()
                    continue
                if isinstance(item, _Found):
                    pending += self._write_evidence(db, item)
                    continue
                t, frame = item
                pending += self._write(db, t, frame)
                if self._batch and (
                    t - self._batch[0][0] >= self.batch_every or time.monotonic() - t_commit >= self.commit_every
                ):
                    pending += self._flush(db)
                if pending and time.monotonic() - t_commit >= self.commit_every:
                    db.execute("COMMIT")
                    db.execute("BEGIN")
                    pending, t_commit = 0, time.monotonic()
            self._finish(db)
        except sqlite3.Error as e:  # disk full, file removed: stop recording, say why
            self.error = f"the recording stopped: {e}"
            log.warning("%s", self.error)
            self._failed = True  # `offer` stops queueing: nothing piles up
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _write(self, db: sqlite3.Connection, t: float, frame: Frame) -> int:
        ch = self.differ.step(t, frame)
        self._t_last = t
        n = 0
        if ch.channels:
            self._batch.append([t, ch.channels])
            self._rows += len(ch.channels)
        if ch.marks:
            db.executemany("INSERT INTO marks VALUES (?, ?, ?)", [(t, k, redact.text(s)) for k, s in ch.marks])
            n += 1
        for f in ch.opened:
            body = redact.text(json.dumps(f.to_json(), default=str))
            cur = db.execute(
                'INSERT INTO findings (key, rule, fault, severity, subject, cause, start, "end", body) '
                "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (finding_key(f), f.rule, f.fault, str(f.severity), f.subject, redact.text(f.cause), t, body),
            )
            self._open_ids[finding_key(f)] = int(cur.lastrowid or 0)
            n += 1
            self._ask_evidence(int(cur.lastrowid or 0), t, f, frame)
        for k in ch.closed:
            rid = self._open_ids.pop(k, None)
            if rid is not None:
                db.execute('UPDATE findings SET "end" = ? WHERE id = ?', (t, rid))
                n += 1
        return n

    def _ask_evidence(self, rowid: int, t: float, finding: Any, frame: Frame) -> None:
        if self.evidence is None or self._ev_asked >= MAX_EVIDENCE:
            return
        if self._ev_thread is None:
            self._ev_thread = threading.Thread(target=self._fetch, name="recorder-evidence", daemon=True)
            self._ev_thread.start()
        try:
            self._ev_q.put_nowait((rowid, t, finding, frame.topology))
            self._ev_asked += 1
        except queue.Full:
            pass  # a storm of findings: the first ones' evidence is what a person reads

    def _fetch(self) -> None:
        """The evidence thread: each finding's raw bodies, handed to the writer's thread."""
        while True:
            item = self._ev_q.get()
            if item is None:
                return
            if isinstance(item, _Sync):
                item.done.set()
                continue
            rowid, t, finding, topology = item
            try:
                objects = self.evidence.fetch(finding, topology)
            except Exception as e:  # noqa: BLE001 - evidence is a bonus: the recording goes on
                log.debug("evidence for %s: %s", finding_key(finding), e)
                continue
            if objects and not self._failed:
                try:
                    self._q.put(_Found(rowid, t, objects), timeout=5.0)
                except queue.Full:
                    pass

    def _write_evidence(self, db: sqlite3.Connection, found: _Found) -> int:
        db.executemany(
            "INSERT INTO evidence VALUES (?, ?, ?, ?, ?)",
            [(found.rowid, found.t, kind, name, pack(body)) for kind, name, body in found.objects],
        )
        return 1

    def _flush(self, db: sqlite3.Connection) -> int:
        """Write the batch as one delta row, then a keyframe when one is due."""
        n = 0
        if self._batch:
            frames = [[t, self._named(db, chans)] for t, chans in self._batch]
            cur = db.execute(
                "INSERT INTO deltas VALUES (?, ?, ?)", (self._batch[0][0], self._batch[-1][0], pack(frames))
            )
            self._upto = int(cur.lastrowid or 0)
            self._batch = []
            self.written += 1
            n += 1
        state = self.differ.state
        rows = self.keyframe_rows if self.keyframe_rows is not None else max(2000, 3 * len(state) // 2)
        if self._t_last - self._last_keyframe >= self.keyframe_every or self._rows >= rows:
            self._keyframe(db)
            n += 1
        return n

    def _named(self, db: sqlite3.Connection, channels: Mapping[str, Any]) -> dict[int, Any]:
        """`channels` keyed by their ids (new channels' names written to the file)."""
        ids = self._ids
        new = [name for name in channels if name not in ids]
        for name in new:
            ids[name] = len(ids) + 1
        if new:
            db.executemany("INSERT INTO channels VALUES (?, ?)", [(ids[n], redact.text(n)) for n in new])
        return {ids[name]: v for name, v in channels.items()}

    def _keyframe(self, db: sqlite3.Connection) -> None:
        state = self._named(db, self.differ.state)
        db.execute("INSERT INTO keyframes VALUES (?, ?, ?)", (self._t_last, self._upto, pack(state)))
        self._last_keyframe = self._t_last
        self._rows = 0

    def _finish(self, db: sqlite3.Connection) -> None:
        self._flush(db)
        # a last keyframe: the end of the run opens without replaying its last deltas
        if self._t_last > self._last_keyframe:
            self._keyframe(db)
        db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [("ended", repr(self.clock())), ("dropped", str(self.dropped))],
        )
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
        db.close()


def start(
    command: str,
    settings: Any,
    *,
    meta: Mapping[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Recorder | None:
    """The run's recorder in the state directory (old recordings pruned first), or None
    when recording is off (`settings`: probes.config.RecordConfig) or cannot start (said
    once through `warn`; the run goes on without it)."""
    if not settings.enabled:
        return None
    # lazy: the store module only when a run records
    from probes.record import store

    root = Path(settings.dir).expanduser() if settings.dir else None
    try:
        path = store.new_path(command, root)
        store.prune(path.parent, settings.max_mb, settings.max_age_days, keep=path)
        return Recorder(path, command=command, meta=meta)
    except (OSError, RecordError) as e:
        if warn is not None:
            warn(f"not recording this run: {e}")
        return None
