"""Fixtures for the DNS probe tests: loopback responders that are always stopped, and a
guard that every test leaves no thread behind."""

from __future__ import annotations

import pytest

from probes.dns.resolvers import Resolver, ResolverKind
from probes.lab.dnsserver import DnsResponder
from tests.support.leaks import guard_threads


@pytest.fixture(autouse=True)
def no_leftover_threads():
    yield from guard_threads()


@pytest.fixture
def responder():
    """responder(behaviour, **kw) -> a started DnsResponder, stopped at teardown."""
    started: list[DnsResponder] = []

    def make(timeline=None, **kw) -> DnsResponder:
        r = DnsResponder(timeline, **kw) if timeline is not None else DnsResponder(**kw)
        started.append(r.start())
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def via():
    """via(responder) -> a Resolver with a production-looking address, dialled at it."""
    return _via


def _via(r: DnsResponder, key: str = "custom/test", address: str = "10.99.0.53") -> Resolver:
    return Resolver(key, ResolverKind.CUSTOM, address, 53, r.address)
