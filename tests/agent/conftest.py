"""Fixtures for the agent tests: loopback DNS responders and TCP targets that are always
stopped, and a guard that no test leaves a thread or a descriptor behind."""

from __future__ import annotations

from typing import Any

import pytest

from probes.lab.dnsserver import DnsResponder
from probes.lab.dnsspec import ANSWER
from probes.lab.tcptargets import LoopbackTargets
from tests.support.leaks import guard_threads_and_fds


@pytest.fixture(autouse=True)
def no_leftovers():
    yield from guard_threads_and_fds()


@pytest.fixture
def responder():
    """responder(behaviour=ANSWER, **kw) -> a started DnsResponder, stopped at teardown."""
    started: list[DnsResponder] = []

    def make(behaviour: Any = ANSWER, **kw: Any) -> DnsResponder:
        r = DnsResponder(behaviour, **kw)
        started.append(r.start())
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def targets():
    t = LoopbackTargets().start()
    try:
        yield t
    finally:
        t.stop()
