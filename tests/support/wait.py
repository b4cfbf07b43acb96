"""Waiting in tests: poll a condition every 20 ms, within a bound."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(cond: Callable[[], object], timeout: float = 10.0) -> bool:
    """True as soon as `cond()` is truthy; after `timeout` seconds, whether it is then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())
