"""HTTPS probe of one ingress host: TCP connect, TLS handshake with SNI = the host, the
certificate chain judged the way a browser would, and optionally the status of HEAD /.

The handshake runs *without* verification (the standard library's ``ssl``, through
asyncio), so that a bad certificate still comes back to be looked at; the chain and the
name are then checked here with ``cryptography``'s verifier (the same WebPKI rules a
browser applies), against the system's CA store or a CA bundle given by path. Checking
ourselves lets the outcome say *which* thing is wrong, in this order: the chain is not
trusted (self-signed, unknown CA, missing intermediate) → ``untrusted``; trusted but for
other names → ``wrong-host``; outside its dates → ``expired`` / ``not-yet-valid``; fewer
than 14 days left → ``expiring``; else ``valid``. Before any certificate: ``refused``,
``timeout`` (TCP, or a listener that never speaks TLS), ``unreachable``, ``tls-error``
(not TLS, an alert, a reset) and ``local-error`` (this host).

Every probe is bounded: TCP + TLS within ``timeout`` seconds, HEAD within
``http_timeout`` more. A connection is aborted when done (RST, no TIME_WAIT left on the
jumpbox, like the egress probe's connect mode).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from probes.egress.result import EgressOutcome, classify_errno
from probes.ingress.certcheck import classify, trusted_cas
from probes.ingress.tlsresult import EXPIRING_DAYS, TlsOutcome, TlsResult
from probes.kube.model import LOCAL_VANTAGE

DEFAULT_TIMEOUT = 3.0  # TCP + TLS handshakes
DEFAULT_HTTP_TIMEOUT = 2.0  # HEAD / after the handshake, when asked for
DEFAULT_CONCURRENCY = 32  # handshakes in flight: each costs ~3 ms of CPU here, so more only adds queueing to the times (bench/tls_bench.py)

_NOT_TLS = {
    "WRONG_VERSION_NUMBER",
    "HTTP_REQUEST",
    "HTTPS_PROXY_REQUEST",
    "UNKNOWN_PROTOCOL",
    "PACKET_LENGTH_TOO_LONG",
    "RECORD_LAYER_FAILURE",
    "UNEXPECTED_RECORD",
    "UNEXPECTED_MESSAGE",
    "WRONG_SSL_VERSION",
    "RECORD_LENGTH_MISMATCH",
    "LENGTH_MISMATCH",
    "BAD_PACKET_LENGTH",
}


def tls_error_words(e: BaseException) -> str:
    """What a failed TLS handshake means, in one line."""
    if isinstance(e, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return "the server closed the connection during the TLS handshake (no certificate for this SNI?)"
    if isinstance(e, ssl.SSLError):
        reason = e.reason or ""
        if reason in _NOT_TLS:
            return f"the server does not speak TLS on this port (plain HTTP or another protocol?): {reason}"
        if reason in ("UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE"):
            return f"no TLS version in common (this probe offers TLS 1.2 and 1.3): {reason}"
        if "ALERT" in reason:
            return f"the server refused the handshake: {reason.lower().replace('_', ' ')}"
        return f"TLS handshake failed: {reason or e}"[:200]
    if isinstance(e, (ConnectionResetError, BrokenPipeError)):
        return "the connection was reset during the TLS handshake"
    return f"TLS handshake failed: {type(e).__name__}: {e}"[:200]


def _chain_ders(sslobj: ssl.SSLObject | ssl.SSLSocket) -> list[bytes]:
    """The certificates the server sent, leaf first. Python 3.13 has the public
    ``get_unverified_chain()``; 3.10-3.12 have it on the C object only."""
    get = getattr(sslobj, "get_unverified_chain", None)
    inner = getattr(sslobj, "_sslobj", None)
    if get is None and inner is not None:
        get = getattr(inner, "get_unverified_chain", None)
    ders: list[bytes] = []
    if get is not None:
        try:
            for c in get() or ():
                ders.append(c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - a private API that moved: fall back to the leaf
            ders = []
    if not ders:
        leaf = sslobj.getpeercert(binary_form=True)
        if leaf:
            ders = [leaf]
    return ders


_LINGER0 = b"\x01\x00\x00\x00\x00\x00\x00\x00"
_STATUS = re.compile(rb"^HTTP/\d(?:\.\d)? (\d{3})(?:[ \r]|$)")


def _errno_outcome(e: OSError) -> tuple[TlsOutcome, str]:
    o, why = classify_errno(e.errno or 0)
    return _FROM_EGRESS.get(o, TlsOutcome.LOCAL_ERROR), why


_FROM_EGRESS = {
    EgressOutcome.REFUSED: TlsOutcome.REFUSED,
    EgressOutcome.TIMEOUT: TlsOutcome.TIMEOUT,
    EgressOutcome.UNREACHABLE: TlsOutcome.UNREACHABLE,
    EgressOutcome.LOCAL_ERROR: TlsOutcome.LOCAL_ERROR,
}


_MAX_STATUS_LINE = 8192
_T = TypeVar("_T")


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, write: bool) -> None:
    """Until `fd` is readable (or writable); the callback is removed however it ends."""
    fut: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fd, wake)
    try:
        await fut
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)


async def _step(loop: asyncio.AbstractEventLoop, conn: ssl.SSLSocket, op: Callable[[], _T]) -> _T:
    """Run a non-blocking TLS operation to completion, waiting for the socket as OpenSSL asks."""
    while True:
        try:
            return op()
        except ssl.SSLWantReadError:
            await _ready(loop, conn.fileno(), False)
        except ssl.SSLWantWriteError:
            await _ready(loop, conn.fileno(), True)


def _client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # judged by classify(), after the handshake
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])  # HEAD / speaks HTTP/1.1
    return ctx


class TlsProbe:
    """Probes HTTPS hosts from one vantage (this host). Share one per vantage: it bounds
    the handshakes in flight. Use from one event loop at a time.

    `ca_bundle`: a PEM file of the CAs to trust instead of the system's (ValueError when it
    cannot be read). `http`: also send HEAD / and record the status. `now`: the wall
    clock (certificate dates are judged against it)."""

    def __init__(
        self,
        vantage: str = LOCAL_VANTAGE,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        ca_bundle: str | None = None,
        expiring_days: float = EXPIRING_DAYS,
        http: bool = False,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
        now: Callable[[], float] = time.time,
    ) -> None:
        if timeout <= 0 or http_timeout <= 0:
            raise ValueError("TLS probe timeouts must be > 0 s")
        self.vantage = vantage
        self.timeout = timeout
        self.http = http
        self.http_timeout = http_timeout
        self.expiring_days = expiring_days
        self.concurrency = max(1, concurrency)
        self.cas = trusted_cas(ca_bundle)
        self._ctx = _client_context()
        self._now = now
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        self.inflight = 0
        self.peak_inflight = 0

    @property
    def deadline(self) -> float:
        """The longest one probe can take (what a scheduler's deadline should allow)."""
        return self.timeout + (self.http_timeout if self.http else 0.0)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:
            self._sem = asyncio.Semaphore(self.concurrency)
            self._sem_loop = loop
        return self._sem

    async def probe(self, host: str, address: str, port: int = 443, dial: tuple[str, int] | None = None) -> TlsResult:
        """Probe `host` at `address`:`port` (SNI = host). `dial`: the (address, port)
        actually connected to, when something stands in between (the lab's DNAT). Whatever
        the network or the server does becomes a TlsResult; never raises but for
        cancellation."""
        stamp = self._now()
        async with self._semaphore():
            self.inflight += 1
            self.peak_inflight = max(self.peak_inflight, self.inflight)
            try:
                return await self._probe(host, address, port, dial, stamp)
            finally:
                self.inflight -= 1

    async def _probe(self, host: str, address: str, port: int, dial: tuple[str, int] | None, stamp: float) -> TlsResult:
        to_addr, to_port = dial if dial is not None else (address, port)
        via = f"{to_addr}:{to_port}" if (to_addr, to_port) != (address, port) else ""

        def result(outcome: TlsOutcome, ms: float, error: str, **kw: Any) -> TlsResult:
            return TlsResult(
                self.vantage, host, address, port, outcome, ms, error=error, timestamp=stamp, via=via, **kw
            )

        loop = asyncio.get_running_loop()
        try:
            fam = socket.AF_INET6 if ":" in to_addr else socket.AF_INET
            sock = socket.socket(fam, socket.SOCK_STREAM)
        except OSError as e:
            o, why = _errno_outcome(e)
            return result(o, 0.0, why)
        # the socket stays ours from start to end (no asyncio transport): a cancelled or
        # timed-out probe unregisters and closes it in `finally`, whatever step it was at
        conn: socket.socket | ssl.SSLSocket = sock
        t0 = time.monotonic()
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER0)  # RST at close: no TIME_WAIT here
            # 1. TCP
            try:
                async with asyncio.timeout(self.timeout):
                    await loop.sock_connect(sock, (to_addr, to_port))
            except TimeoutError:
                return result(
                    TlsOutcome.TIMEOUT,
                    (time.monotonic() - t0) * 1000.0,
                    f"no answer to the TCP SYN within {self.timeout:g}s (dropped: NSG/firewall or a blackhole)",
                )
            except OSError as e:
                ms = (time.monotonic() - t0) * 1000.0
                if e.errno in (errno.ECONNRESET, errno.EPIPE):  # established, then reset before we looked
                    return result(TlsOutcome.TLS_ERROR, ms, "the server accepted the connection and reset it at once")
                o, why = _errno_outcome(e)
                return result(o, ms, why)
            t1 = time.monotonic()
            connect_ms = (t1 - t0) * 1000.0
            left = max(0.05, self.timeout - (t1 - t0))
            # 2. TLS, unverified (judged below)
            try:
                conn = self._ctx.wrap_socket(sock, server_hostname=_sni(host), do_handshake_on_connect=False)
                async with asyncio.timeout(left):
                    await _step(loop, conn, conn.do_handshake)
            except TimeoutError:
                return result(
                    TlsOutcome.TIMEOUT,
                    (time.monotonic() - t1) * 1000.0,
                    f"the TCP connection opened but no TLS answer came within {left:.3g}s "
                    "(a listener that does not speak TLS, or a proxy holding the connection)",
                    connect_ms=connect_ms,
                )
            except (OSError, EOFError, ValueError) as e:  # whatever the server sends is an outcome
                return result(
                    TlsOutcome.TLS_ERROR, (time.monotonic() - t1) * 1000.0, tls_error_words(e), connect_ms=connect_ms
                )
            hs_ms = (time.monotonic() - t1) * 1000.0
            assert isinstance(conn, ssl.SSLSocket)
            ders = _chain_ders(conn)
            version = conn.version() or ""
            cipher = (conn.cipher() or ("",))[0]
            outcome, why, chain = classify(ders, host, self.cas, self._now(), self.expiring_days)
            status, http_error = (await self._head(loop, conn, host)) if self.http else (None, "")
            return result(
                outcome,
                hs_ms,
                why,
                connect_ms=connect_ms,
                chain=chain,
                tls_version=version,
                cipher=cipher,
                http_status=status,
                http_error=http_error,
            )
        finally:
            conn.close()  # an SSLSocket closes the descriptor it took over from `sock`
            sock.close()  # harmless when already detached or closed

    async def _head(self, loop: asyncio.AbstractEventLoop, conn: ssl.SSLSocket, host: str) -> tuple[int | None, str]:
        req = f"HEAD / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: aksnet-top\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        data = req.encode("ascii", "replace")
        line = b""
        try:
            async with asyncio.timeout(self.http_timeout):
                while data:
                    n = await _step(loop, conn, lambda d=data: conn.send(d))  # type: ignore[misc]
                    data = data[n:]
                while b"\n" not in line and len(line) < _MAX_STATUS_LINE:
                    try:
                        chunk = await _step(loop, conn, lambda: conn.recv(4096))
                    except ssl.SSLZeroReturnError:
                        chunk = b""
                    if not chunk:
                        break
                    line += chunk
        except TimeoutError:
            return None, f"HEAD /: no status line within {self.http_timeout:g}s"
        except (OSError, EOFError, ValueError) as e:  # a reset, an alert: said, never raised
            return None, f"HEAD /: {type(e).__name__}: {e}"[:200]
        line = line.split(b"\n", 1)[0]
        m = _STATUS.match(line)
        if m is None:
            shown = line[:60].decode("ascii", "replace").strip()
            return None, f"HEAD /: not an HTTP answer: {shown!r}" if shown else "HEAD /: closed without an answer"
        return int(m.group(1)), ""

    async def probe_all(self, targets: Iterable[tuple[str, str, int]]) -> list[TlsResult]:
        """One round over (host, address, port) targets under the in-flight bound; results
        in input order."""
        return list(await asyncio.gather(*(self.probe(h, a, p) for h, a, p in targets)))


def _sni(host: str) -> str | None:
    """The SNI to send: none for an IP address (TLS forbids it there)."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        return host.rstrip(".")


def overrun_result(vantage: str, host: str, address: str, port: int, waited_s: float) -> TlsResult:
    """What the scheduler records when a probe overran its deadline (this host: too many
    hosts for the concurrency, or an overloaded event loop)."""
    return TlsResult(
        vantage,
        host,
        address,
        port,
        TlsOutcome.LOCAL_ERROR,
        waited_s * 1000.0,
        error="probe did not finish within its deadline (too many hosts for the concurrency limit, "
        "or this host is overloaded)",
        timestamp=time.time(),
    )


__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_HTTP_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "TlsProbe",
    "overrun_result",
    "tls_error_words",
]
