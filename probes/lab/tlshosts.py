"""Loopback HTTPS endpoints for ingress hosts, with certificates made at start.

A TLS listener stands for one ingress controller: it serves many hosts on one address,
picking each host's certificate by SNI (issued on the first handshake for that name, then
kept), and a self-signed "Kubernetes Ingress Controller Fake Certificate" for any other
name, as ingress-nginx does. Per host, the certificate is one of:

* ``valid`` — issued by the lab's intermediate CA under the lab root, SAN = the host, 90 days;
* ``expiring`` — the same, 5 days left;
* ``expired`` — the same, ended 2 days ago;
* ``wrong-host`` — from the lab CA, but for another name only;
* ``self-signed`` — SAN = the host, signed by its own key.

The server sends the leaf and the intermediate; clients trust the root (:attr:`TlsHosts.ca_path`).
Whole endpoints (one listener each) that never get as far as a certificate:

* ``refused`` — a bound socket that does not listen: the kernel answers the SYN with RST;
* ``hang`` — accepts the TCP connection and never says a word (the handshake times out);
* ``plaintext`` — plain HTTP on the port: answers the ClientHello with ``400 Bad Request``;
* ``garbage`` — writes bytes that are no protocol at all, then closes.

A TLS listener answers ``HEAD``/``GET`` with the host's status (200 unless the spec says;
0: it reads the request and never answers, like a stuck backend).
Everything runs on one asyncio loop in a daemon thread; :meth:`TlsHosts.stop` closes it all
within a bound. Run alone (for benchmarks): ``python -m probes.lab.tlshosts SPECS.json``
prints one JSON line (the CA path and every host's address) and serves until stdin closes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from probes.lab.tls import LabCA, self_signed

CERT_KINDS = ("valid", "expiring", "expired", "wrong-host", "self-signed")  # per host, by SNI
ENDPOINT_KINDS = ("refused", "hang", "plaintext", "garbage")  # a listener of their own
KINDS = CERT_KINDS + ENDPOINT_KINDS
FAKE_CN = "Kubernetes Ingress Controller Fake Certificate"
GARBAGE = b"\x00\x01\x02 this is not TLS \xff\xfe\xfd" * 4  # never starts like a TLS record (0x14-0x17)


@dataclass(frozen=True, slots=True)
class TlsHostSpec:
    host: str
    kind: str = "valid"
    ip: str = "127.0.0.1"
    # hosts of certificate kinds with the same (ip, endpoint) share one listener (one
    # ingress controller); an endpoint kind gets a listener per (ip, kind, endpoint)
    endpoint: str = ""
    status: int = 200  # what HEAD / answers; 0: never answers (a stuck backend)
    days: float = 0.0  # days from now to notAfter (negative: past); 0 = the kind's own (90, 5, -2)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"TLS host {self.host!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")


def _specs(specs: Iterable[TlsHostSpec | tuple[str, str] | tuple[str, str, str]]) -> list[TlsHostSpec]:
    out = []
    for s in specs:
        out.append(s if isinstance(s, TlsHostSpec) else TlsHostSpec(*s))
    return out


@dataclass(slots=True)
class _Certs:
    """Certificates of one listener, made on demand: SNI name -> server context."""

    issuing: LabCA
    dir: str
    key: ec.EllipticCurvePrivateKey
    now: dt.datetime
    kinds: dict[str, TlsHostSpec]  # lower-cased host -> spec
    contexts: dict[str, ssl.SSLContext] = field(default_factory=dict)
    served: dict[int, str] = field(default_factory=dict)  # id(context) -> host (what HEAD answers for)
    made: int = 0

    def _write(self, cert: bytes, key: bytes, chain: bytes = b"") -> ssl.SSLContext:
        self.made += 1
        base = os.path.join(self.dir, f"c{id(self)}-{self.made}")
        with open(base + ".crt", "wb") as f:
            f.write(cert + chain)
        with open(base + ".key", "wb") as f:
            f.write(key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(base + ".crt", base + ".key")
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def default(self) -> ssl.SSLContext:
        day = dt.timedelta(days=1)
        cert, key = self_signed(
            FAKE_CN, org="Acme Co", sans=["ingress.local"], not_before=self.now - day, not_after=self.now + 365 * day
        )
        ctx = self._write(cert, key)
        ctx.sni_callback = self.pick
        return ctx

    def for_host(self, spec: TlsHostSpec) -> ssl.SSLContext:
        day = dt.timedelta(days=1)
        now, h = self.now, spec.host
        if spec.kind == "self-signed":
            cert, key = self_signed(h, sans=[h], not_before=now - day, not_after=now + 90 * day, key=self.key)
            return self._write(cert, key)
        start, end, sans = now - dt.timedelta(hours=1), now + 90 * day, [h]
        if spec.kind == "expiring":
            start, end = now - 85 * day, now + 5 * day
        elif spec.kind == "expired":
            start, end = now - 92 * day, now - 2 * day
        elif spec.kind == "wrong-host":
            sans = [f"other-{h}"]
        if spec.days:  # as a Certificate's notAfter says (its 90 days of life end then)
            end = now + dt.timedelta(days=spec.days)
            start = min(end - 90 * day, now - dt.timedelta(hours=1))
        cert, key = self.issuing.issue(sans[0], sans=sans, not_before=start, not_after=end, key=self.key)
        return self._write(cert, key, self.issuing.pem)

    def pick(self, sslobj: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        """sni_callback: switch to the host's certificate (made the first time)."""
        spec = self.kinds.get((name or "").lower())
        if spec is None:
            return  # the controller's default (fake) certificate
        ctx = self.contexts.get(spec.host)
        if ctx is None:
            ctx = self.contexts[spec.host] = self.for_host(spec)
            self.served[id(ctx)] = spec.host.lower()
        sslobj.context = ctx


class TlsHosts:
    """The running endpoints: :attr:`hosts` maps each host to (ip, port, kind)."""

    def __init__(self, specs: list[TlsHostSpec], now: dt.datetime | None = None) -> None:
        self.specs = specs
        self.now = now or dt.datetime.now(dt.UTC)
        self.hosts: dict[str, tuple[str, int, str]] = {}
        self.dir = ""
        self.root: LabCA | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.Server] = []
        self._held: list[socket.socket] = []  # the refused endpoints' bound sockets
        self._conns: set[asyncio.StreamWriter] = set()
        self.certs: list[_Certs] = []

    @property
    def ca_pem(self) -> bytes:
        assert self.root is not None
        return self.root.pem

    @property
    def ca_path(self) -> str:
        return os.path.join(self.dir, "ca.crt")

    def start(self, timeout: float = 10.0) -> TlsHosts:
        day = dt.timedelta(days=1)
        # a CA is older and outlives its leaves (an expired leaf still chains to it)
        self.root = LabCA("aksnet-top lab root CA", not_before=self.now - 400 * day, not_after=self.now + 3650 * day)
        issuing = LabCA(
            "aksnet-top lab issuing CA",
            not_before=self.now - 300 * day,
            not_after=self.now + 1000 * day,
            parent=self.root,
        )
        self.dir = tempfile.mkdtemp(prefix="aksnet-lab-tlshosts-")
        with open(self.ca_path, "wb") as f:
            f.write(self.root.pem)
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(lambda _loop, _ctx: None)  # clients that hang up are the point
        self._thread = threading.Thread(target=self._loop.run_forever, name="lab-tlshosts", daemon=True)
        self._thread.start()
        try:
            fut = asyncio.run_coroutine_threadsafe(self._open(issuing), self._loop)
            fut.result(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    async def _open(self, issuing: LabCA) -> None:
        assert self.root is not None
        groups: dict[tuple[str, str, str], list[TlsHostSpec]] = {}
        for s in self.specs:
            g = (s.ip, "tls" if s.kind in CERT_KINDS else s.kind, s.endpoint)
            groups.setdefault(g, []).append(s)
        for (ip, what, _), specs in groups.items():
            if what == "refused":
                port = self._refused(ip)
            else:
                port = await self._listen(ip, what, specs, issuing)
            for s in specs:
                self.hosts[s.host] = (ip, port, s.kind)

    def _refused(self, ip: str) -> int:
        s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM)
        s.bind((ip, 0))  # bound, never listening: the kernel answers every SYN with RST
        self._held.append(s)
        port: int = s.getsockname()[1]
        return port

    async def _listen(self, ip: str, what: str, specs: list[TlsHostSpec], issuing: LabCA) -> int:
        assert self.root is not None
        ctx = None
        statuses = {s.host.lower(): s.status for s in specs}
        certs: _Certs | None = None
        if what == "tls":
            certs = _Certs(
                issuing, self.dir, ec.generate_private_key(ec.SECP256R1()), self.now,
                {s.host.lower(): s for s in specs},
            )  # fmt: skip
            self.certs.append(certs)
            ctx = certs.default()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._conns.add(writer)
            try:
                await self._answer(what, reader, writer, statuses, certs)
            except Exception:  # noqa: BLE001 - a client that hangs up is not the lab's problem
                pass
            finally:
                self._conns.discard(writer)
                writer.transport.abort()

        tls_opts = {"ssl": ctx, "ssl_handshake_timeout": 30.0} if ctx is not None else {}
        server = await asyncio.start_server(serve, ip, 0, backlog=4096, **tls_opts)  # type: ignore[arg-type]
        self._servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    @staticmethod
    async def _answer(
        what: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        statuses: dict[str, int],
        certs: _Certs | None,
    ) -> None:
        if what == "hang":
            await reader.read()  # until the client gives up
            return
        if what == "garbage":
            writer.write(GARBAGE)
            await writer.drain()
            return
        async with asyncio.timeout(10.0):
            # the request's head (HEAD or GET, answered alike); plain HTTP: the ClientHello
            await (reader.readuntil(b"\r\n\r\n") if what == "tls" else reader.read(4096))
        if what == "plaintext":  # nginx's answer to a ClientHello on a plain-HTTP port
            body = b"400 The plain HTTP request was sent to HTTPS port\n"
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" % len(body))
            writer.write(b"Connection: close\r\n\r\n" + body)
            await writer.drain()
            return
        sslobj = writer.get_extra_info("ssl_object")
        name = certs.served.get(id(sslobj.context), "") if certs is not None and sslobj is not None else ""
        status = statuses.get(name, 404)  # the default certificate's hosts: the default backend
        if status == 0:
            await reader.read()  # until the client gives up
            return
        reason = {200: "OK", 404: "Not Found", 503: "Service Temporarily Unavailable"}.get(status, "Status")
        writer.write(b"HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % (status, reason.encode()))
        await writer.drain()

    def stop(self, timeout: float = 5.0) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None and thread.is_alive():

            async def close() -> None:
                for s in self._servers:
                    s.close()
                for w in list(self._conns):
                    w.transport.abort()
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in tasks:
                    t.cancel()
                if tasks:
                    await asyncio.wait(tasks, timeout=timeout / 2)
                for s in self._servers:
                    await s.wait_closed()

            try:
                asyncio.run_coroutine_threadsafe(close(), loop).result(timeout)
            except Exception:  # noqa: BLE001 - stopping must never raise
                pass
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if not thread.is_alive():
                loop.close()
        elif loop is not None:
            loop.close()
        self._servers.clear()
        for s in self._held:
            s.close()
        self._held.clear()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> TlsHosts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_tls_hosts(
    specs: Iterable[TlsHostSpec | tuple[str, str] | tuple[str, str, str]], *, now: dt.datetime | None = None
) -> TlsHosts:
    """Start the endpoints for `specs` ((host, kind[, ip]) tuples or TlsHostSpec): the
    result's ``hosts`` is {host: (ip, port, kind)}; ``stop()`` ends them all."""
    return TlsHosts(_specs(specs), now).start()


def main(argv: list[str]) -> int:
    """``python -m probes.lab.tlshosts SPECS.json``: SPECS is a JSON list of
    [host, kind, ip?, endpoint?]; prints {"ca": path, "hosts": {host: [ip, port, kind]}}."""
    if len(argv) != 1:
        print("usage: python -m probes.lab.tlshosts SPECS.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        specs = [TlsHostSpec(*row) for row in json.load(f)]
    lab = start_tls_hosts(specs)
    try:
        print(json.dumps({"ca": lab.ca_path, "hosts": lab.hosts, "pid": os.getpid()}), flush=True)
        sys.stdin.read()  # serve until the parent closes the pipe
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
