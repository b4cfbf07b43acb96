"""The moments of one `check` run, for the --debug log: where its seconds go.

Each :meth:`Phases.mark` is logged once, in seconds since the process started (Linux:
read from /proc, so the interpreter's start and the imports before `check.run` show as
the first mark's offset; elsewhere since the first mark), e.g.
``check phase +0.412 s lab ready``. bench/check_bench.py --phases prints them per run.
"""

from __future__ import annotations

import logging
import os
import time

_log = logging.getLogger("aksnet-top.check")

PREFIX = "check phase "


def _process_start() -> float | None:
    """The process's start on CLOCK_BOOTTIME (seconds), or None where /proc says nothing."""
    try:
        with open(f"/proc/{os.getpid()}/stat", "rb") as f:
            stat = f.read()
        # the command name may hold spaces and parentheses: the fields follow the last ')'
        fields = stat[stat.rindex(b")") + 2 :].split()
        return int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime, in ticks since boot
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _now() -> float:
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(clock) if clock is not None else time.monotonic()


class Phases:
    """Marks, each logged once at DEBUG; `enabled` is False (marks cost nothing) unless
    the check logger would write them."""

    def __init__(self) -> None:
        self.enabled = _log.isEnabledFor(logging.DEBUG)
        self.marks: dict[str, float] = {}
        start = _process_start() if self.enabled and hasattr(time, "CLOCK_BOOTTIME") else None
        self.origin = start if start is not None else _now()

    def mark(self, name: str) -> None:
        if not self.enabled or name in self.marks:
            return
        at = _now() - self.origin
        self.marks[name] = at
        _log.debug("%s+%.3f s %s", PREFIX, at, name)
