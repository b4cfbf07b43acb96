"""Leak guards shared by the suites that start servers, probes and namespaces."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest


def lingering_threads(before: set[threading.Thread], grace: float = 3.0) -> list[threading.Thread]:
    """Threads started since `before` that are still alive after `grace` seconds."""
    end = time.monotonic() + grace
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() >= end:
            return extra
        time.sleep(0.02)


def guard_threads(extra_check: Callable[[], str | None] | None = None) -> Iterator[None]:
    """Body of an autouse fixture: fail the test that leaves threads (or `extra_check`'s finding)."""
    before = set(threading.enumerate())
    yield
    extra = lingering_threads(before)
    if extra:
        pytest.fail(f"test left threads running: {[t.name for t in extra]}")
    if extra_check is not None:
        problem = extra_check()
        if problem:
            pytest.fail(problem)


def guard_threads_and_fds() -> Iterator[None]:
    """Body of an autouse fixture: no thread and no file descriptor may outlive the test."""
    from probes.egress.probe import open_fds

    fds = open_fds()

    def descriptors() -> str | None:
        end = time.monotonic() + 3.0
        while open_fds() > fds and time.monotonic() < end:
            time.sleep(0.02)
        return f"test left descriptors open: {fds} before, {open_fds()} after" if open_fds() > fds else None

    yield from guard_threads(descriptors)
