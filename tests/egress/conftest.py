"""Fixtures for the egress tests: loopback TCP targets that are always stopped, a guard
that no test leaves a thread or a socket behind, and the root/CI rules for SYN mode and
network namespaces (skip without root, except when CI is set: then fail loudly)."""

from __future__ import annotations

import os

import pytest

from probes.lab.tcptargets import LoopbackTargets
from tests.support.leaks import guard_threads_and_fds


def require_root(what: str) -> None:
    """Skip (or, under CI, fail) when not root."""
    if os.geteuid() == 0:
        return
    msg = f"{what} needs root (raw sockets / network namespaces)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {msg}; run the suite as root in CI")
    pytest.skip(msg)


def require_netns() -> None:
    from tests.support.netns import available

    require_root("network namespace tests")
    ok, why = available()
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but network namespaces are unavailable: {why}")
        pytest.skip(why)


@pytest.fixture(autouse=True)
def no_leftovers():
    yield from guard_threads_and_fds()


@pytest.fixture(scope="module")
def lab():
    """Loopback open / refused / dropped targets (no root)."""
    t = LoopbackTargets().start()
    try:
        yield t
    finally:
        t.stop()


@pytest.fixture
def root():
    require_root("SYN mode")


@pytest.fixture(params=["connect", "syn"])
def mode(request):
    """Each probe mode; SYN mode needs root (skipped without it, failed under CI)."""
    if request.param == "syn":
        require_root("SYN mode")
    return request.param


@pytest.fixture
def requires():
    """requires('root' | 'netns', what) from inside a test."""

    def check(kind: str, what: str = "this test") -> None:
        if kind == "netns":
            require_netns()
        else:
            require_root(what)

    return check
