"""What a screen may ask the engine to do now (a key in a pane), from the owner's screen
or from a viewer's (`probes.share.host` hands a viewer's asks here): one gate per action,
so the engine does it at most once every `gap` seconds whoever asks, and every screen
that asks is told the same words.

Actions: ``snat.refresh`` (the SNAT pane's ``r``: Azure Monitor now, instead of at the
next refresh interval).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

SNAT_REFRESH = "snat.refresh"
ACTIONS = (SNAT_REFRESH,)
GAP = 15.0  # seconds between two asked SNAT refreshes (two ARM calls each), whoever asks


def _age(seconds: float) -> str:
    return f"{max(0, round(seconds))} s"


class Asks:
    """The engine's side: `ask(action, reply)` does the action or says why not, and hands
    `reply` one line (at once, on the caller's thread)."""

    def __init__(self, publisher: Any, *, gap: float = GAP, clock: Callable[[], float] = time.monotonic) -> None:
        self.publisher = publisher
        self.gap = gap
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self.done: dict[str, int] = {}  # action -> times it was done (tests, benchmarks)

    def _target(self, action: str) -> Callable[[], Any] | None:
        if action == SNAT_REFRESH:
            fn = getattr(getattr(self.publisher, "snat", None), "refresh_now", None)
            return fn if callable(fn) else None
        return None

    def answer(self, action: str) -> str:
        """Do `action` if its gap has passed; the line every asking screen shows."""
        if action not in ACTIONS:
            return f"the engine does not know {action!r}"
        fn = self._target(action)
        if fn is None:
            return "SNAT: nothing to refresh: no Azure source here (a replay, or [azure] enabled = false)"
        now = self.clock()
        with self._lock:
            last = self._last.get(action)
            if last is not None and now - last < self.gap:
                return (
                    f"SNAT: a refresh was asked {_age(now - last)} ago (one every {self.gap:g} s); "
                    f"again in {_age(self.gap - (now - last))}"
                )
            self._last[action] = now
            self.done[action] = self.done.get(action, 0) + 1
        fn()
        return "SNAT: asking Azure Monitor now"

    def ask(self, action: str, reply: Callable[[str], None]) -> None:
        reply(self.answer(action))
