"""Servers that do not speak TLS, or stop half way: the probe always returns an outcome
with a clear reason, never raises, and never waits past its bound."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
import time

import pytest

from probes.ingress.tlsprobe import TlsProbe
from probes.ingress.tlsresult import TlsOutcome


class OneShot:
    """Accepts one connection, reads the ClientHello, sends `payload`, then closes,
    resets (RST) or holds the connection until stopped."""

    def __init__(self, payload: bytes, then: str = "close", read_first: bool = True) -> None:
        self.payload, self.then, self.read_first = payload, then, read_first
        self.ls = socket.create_server(("127.0.0.1", 0))
        self.ls.settimeout(5.0)
        self.port = self.ls.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            c, _ = self.ls.accept()
        except OSError:
            return
        try:
            c.settimeout(5.0)
            if self.read_first:
                c.recv(65536)
            if self.payload:
                c.sendall(self.payload)
            if self.then == "reset":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif self.then == "hold":
                self.done.wait(5.0)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self) -> None:
        self.done.set()
        self.ls.close()
        self.thread.join(5.0)


def _record(ctype: int, body: bytes) -> bytes:
    return bytes([ctype, 3, 3]) + len(body).to_bytes(2, "big") + body


CASES = [
    ("http-400", b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "close", "does not speak TLS"),
    ("ssh-banner", b"SSH-2.0-OpenSSH_9.6\r\n", "close", "does not speak TLS"),
    ("close-at-once", b"", "close", "closed the connection during the TLS handshake"),
    ("reset", b"", "reset", "reset"),
    # a TLS alert (fatal, handshake_failure): a server with no certificate for this SNI
    ("alert", _record(21, b"\x02\x28"), "close", "refused the handshake"),
    # a ServerHello record header announcing 16 KB, then silence: only the bound ends it
    ("truncated-record", _record(22, b"\x02\x00\x00\x46")[:5] + b"\x02\x00", "hold", "no TLS answer"),
    ("oversized-record", bytes([22, 3, 3, 0xFF, 0xFF]) + b"\x00" * 64, "close", ""),
    ("zeros", b"\x00" * 512, "close", ""),
]


@pytest.mark.parametrize(("name", "payload", "then", "words"), CASES, ids=[c[0] for c in CASES])
async def test_garbage_is_an_outcome(name, payload, then, words):
    srv = OneShot(payload, then)
    try:
        t0 = time.monotonic()
        r = await asyncio.wait_for(TlsProbe(timeout=0.6).probe("garbage.lab.test", "127.0.0.1", srv.port), 10)
        took = time.monotonic() - t0
    finally:
        srv.stop()
    assert r.outcome in (TlsOutcome.TLS_ERROR, TlsOutcome.TIMEOUT), (r.outcome, r.error)
    assert r.error and "\n" not in r.error and len(r.error) <= 300
    assert words in r.error
    assert r.chain == () and took < 2.5


@pytest.mark.parametrize("seed", range(12))
async def test_random_bytes_never_raise(seed):
    rng = random.Random(seed)
    payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000)))
    srv = OneShot(payload, rng.choice(["close", "reset", "hold"]), read_first=rng.random() < 0.8)
    try:
        r = await asyncio.wait_for(TlsProbe(timeout=0.5).probe("random.lab.test", "127.0.0.1", srv.port), 10)
    finally:
        srv.stop()
    assert r.outcome in (TlsOutcome.TLS_ERROR, TlsOutcome.TIMEOUT), (r.outcome, r.error)
    assert r.error and len(r.error) <= 300
