"""Nudges: a source that keeps a `version` tells whoever follows it that the version moved.

The services follow the store (and the agents, and the demo's vantage maps) to re-plan
when the cluster changes. Comparing versions ten times a second costs four services forty
thread wake-ups a second with nothing to do — each ~80 µs of CPU, a third of a percent of
a core at idle. With nudges a follower sleeps until a source moves; it still looks every
`poll` seconds, for sources that cannot nudge.

A listener runs on the thread that changed the source, sometimes under that source's
lock: it must only set a flag or an event (or hand off to a loop), never call back into
the source.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

Unlisten = Callable[[], None]

LOOK_GAP = 0.1  # seconds: the most often a burst of nudges makes a follower look again


class Nudges:
    """The listeners of one source; `fire()` calls each (cheap, never raises)."""

    def __init__(self) -> None:
        self._fns: tuple[Callable[[], None], ...] = ()
        self._lock = threading.Lock()

    def listen(self, fn: Callable[[], None]) -> Unlisten:
        with self._lock:
            self._fns += (fn,)

        def unlisten() -> None:
            with self._lock:
                self._fns = tuple(f for f in self._fns if f is not fn)

        return unlisten

    def fire(self) -> None:
        for fn in self._fns:
            try:
                fn()
            except Exception:  # noqa: BLE001 - a follower's trouble is not the source's
                log.debug("a nudge listener failed", exc_info=True)


def listen_all(sources: Iterable[object], fn: Callable[[], None]) -> list[Unlisten]:
    """Listen to every source that can nudge (has a `nudges`); the others are polled."""
    out = []
    for src in sources:
        nudges = getattr(src, "nudges", None)
        if isinstance(nudges, Nudges):
            out.append(nudges.listen(fn))
    return out


@contextmanager
def moves(source: object) -> Iterator[threading.Event]:
    """An Event set whenever `source` moves, for a thread that waits on it a while
    (`moved.wait(t)`, then `moved.clear()`); it stops listening at the block's end."""
    moved = threading.Event()
    unlisten = listen_all((source,), moved.set)
    try:
        yield moved
    finally:
        for u in unlisten:
            u()
