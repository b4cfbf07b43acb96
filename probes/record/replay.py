"""The replay source: stands where the app's publisher stands (`publish`, `start`, `stop`,
`follow`) and hands the app the recording's frame at a cursor that the user moves (seek,
step, next change, first critical) or that plays at N×. Nothing here reaches a cluster."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

from probes.engine.frame import Frame
from probes.record.reader import Recording

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


class ReplayPublisher:
    snat = None  # no SNAT service to refresh: the recording holds what it answered

    def __init__(self, rec: Recording, *, at: float | None = None, speed: float = 1.0, interval: float = 0.25) -> None:
        self.rec = rec
        self.interval = interval
        self.cursor = rec.start if at is None else min(rec.end, rec.start + max(0.0, at))
        self.speed = speed
        self.playing = False
        self.latest: Frame | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_frame: Callable[[Frame], None] | None = None

    # --- what the app calls on a publisher ------------------------------------------------
    def publish(self) -> Frame:
        with self._lock:
            self.latest = self.rec.frame_at(self.cursor)
            return self.latest

    def start(self, on_frame: Callable[[Frame], None]) -> None:
        self._on_frame = on_frame
        if self._thread is not None:
            return

        def run() -> None:
            last = time.monotonic()
            while not self._stop.wait(self.interval):
                now = time.monotonic()
                dt, last = now - last, now
                if self.playing:
                    self.seek(self.cursor + dt * self.speed)
                    if self.cursor >= self.rec.end:
                        self.playing = False

        self._thread = threading.Thread(target=run, name="replay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def follow(self, kind: str, key: Hashable) -> None:  # detail screens show the recorded rows
        pass

    def unfollow(self, kind: str, key: Hashable) -> None:
        pass

    # --- the cursor ----------------------------------------------------------------------
    def clock(self) -> float:
        """The replay's clock, for every age the panes show: the cursor, on the recording's
        clock (the frames' monotonic times are on it too: `Recording.thawer`). It stands
        still while the replay is paused, so a "read 12s ago" does too."""
        return self.cursor

    def seek(self, t: float) -> Frame:
        with self._lock:
            self.cursor = min(max(t, self.rec.start), self.rec.end)
            self.latest = self.rec.frame_at(self.cursor)
            frame = self.latest
        cb = self._on_frame
        if cb is not None:
            cb(frame)
        return frame

    def step(self, seconds: float) -> Frame:
        return self.seek(self.cursor + seconds)

    def next_change(self) -> Frame | None:
        t = self.rec.next_change(self.cursor)
        return None if t is None else self.seek(t)

    def prev_change(self) -> Frame | None:
        t = self.rec.prev_change(self.cursor)
        return None if t is None else self.seek(t)

    def first_critical(self) -> Frame | None:
        f = self.rec.first_critical()
        return None if f is None else self.seek(f.start)

    def toggle(self) -> None:
        if not self.playing and self.cursor >= self.rec.end:
            self.seek(self.rec.start)
        self.playing = not self.playing

    def faster(self, up: bool) -> float:
        i = min(range(len(SPEEDS)), key=lambda j: abs(SPEEDS[j] - self.speed))
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, i + (1 if up else -1)))]
        return self.speed
