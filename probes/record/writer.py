"""The recorder: the publisher hands it every frame (`offer`, never blocks); a thread of
its own diffs the frames (`probes.record.codec.Differ`) and writes the changes in batched
transactions. When the disk is slower than the frames, frames are dropped and counted —
the next frame is diffed against the last one written, so nothing but the moments between
is lost."""

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


class RecordError(Exception):
    """The recording cannot be opened or written; the message is for the user."""


class Recorder:
    def __init__(
        self,
        path: Path,
        *,
        command: str = "app",
        meta: Mapping[str, str] | None = None,
        queue_size: int = 64,
        keyframe_every: float = 300.0,
        stats_every: float = 30.0,
        commit_every: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.keyframe_every = keyframe_every
        self.commit_every = commit_every
        self.differ = Differ(stats_every=stats_every)
        self._q: queue.Queue[tuple[float, Frame] | None] = queue.Queue(maxsize=queue_size)
        self.dropped = 0  # frames the queue had no room for
        self.written = 0  # delta rows written
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
            started = clock()
            rows = {"format": FORMAT, "command": command, "started": repr(started), **(meta or {})}
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

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then close the file (a single file again: no WAL left)."""
        if not self._thread.is_alive():
            return
        try:
            self._q.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)

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
                    if pending:
                        db.execute("COMMIT")
                        db.execute("BEGIN")
                        pending, t_commit = 0, time.monotonic()
                    continue
                if item is None:
                    break
                t, frame = item
                pending += self._write(db, t, frame)
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
            db.execute("INSERT INTO deltas VALUES (?, ?)", (t, pack(ch.channels)))
            self.written += 1
            n += 1
        if t - self._last_keyframe >= self.keyframe_every:
            db.execute("INSERT INTO keyframes VALUES (?, ?)", (t, pack(self.differ.state)))
            self._last_keyframe = t
            n += 1
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
        for k in ch.closed:
            rid = self._open_ids.pop(k, None)
            if rid is not None:
                db.execute('UPDATE findings SET "end" = ? WHERE id = ?', (t, rid))
                n += 1
        return n

    def _finish(self, db: sqlite3.Connection) -> None:
        # a last keyframe: the end of the run opens without replaying its last deltas
        if self._t_last > self._last_keyframe:
            db.execute("INSERT INTO keyframes VALUES (?, ?)", (self._t_last, pack(self.differ.state)))
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
