"""Fixtures for the HTTPS probe tests: the loopback TLS endpoints of every kind (always
stopped), and a guard that no test leaves a thread or a descriptor behind."""

from __future__ import annotations

import pytest

from probes.lab.tlshosts import TlsHostSpec, start_tls_hosts
from tests.support.leaks import guard_threads_and_fds

SPECS = [
    TlsHostSpec("shop.lab.test", "valid"),
    TlsHostSpec("api.lab.test", "valid", status=503),
    TlsHostSpec("stuck.lab.test", "valid", status=0),
    TlsHostSpec("soon.lab.test", "expiring"),
    TlsHostSpec("old.lab.test", "expired"),
    TlsHostSpec("wrong.lab.test", "wrong-host"),
    TlsHostSpec("self.lab.test", "self-signed"),
    TlsHostSpec("refused.lab.test", "refused", "127.0.0.21"),
    TlsHostSpec("hang.lab.test", "hang", "127.0.0.22"),
    TlsHostSpec("plain.lab.test", "plaintext", "127.0.0.23"),
    TlsHostSpec("junk.lab.test", "garbage", "127.0.0.24"),
]


@pytest.fixture(autouse=True)
def no_leftovers():
    yield from guard_threads_and_fds()


@pytest.fixture(scope="module")
def lab():
    hosts = start_tls_hosts(SPECS)
    try:
        yield hosts
    finally:
        hosts.stop()


@pytest.fixture
def target(lab):
    """target('shop.lab.test') -> (host, ip, port) of that lab host."""

    def get(host: str) -> tuple[str, str, int]:
        ip, port, _ = lab.hosts[host]
        return host, ip, port

    return get
