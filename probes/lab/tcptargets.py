"""Loopback TCP targets with real kernel behaviour, for the demo and the tests (no root).

Three behaviours, each on its own loopback address so that a DNS answer alone can pick
one (the demo's per-node DNS points a name at the address of the behaviour it wants):

* **open** — a listener drained by a thread: the handshake completes (SYN-ACK).
* **refused** — a socket bound to the port but not listening: the kernel answers every
  SYN with RST (the port stays reserved, so nothing else can take it meanwhile).
* **dropped** — a listener with ``listen(0)`` whose accept queue is filled by one
  connection we hold and never accept. Linux then drops further SYNs silently
  (``tcp_conn_request``: ``sk_acceptq_is_full`` → drop, counted as ListenOverflows). That
  check runs whatever ``net.ipv4.tcp_syncookies`` says: syncookies only help when the
  *SYN* queue is full, not the accept queue, so the client sees a real timeout (its SYNs
  and their retransmissions get no answer). :meth:`LoopbackTargets.start` verifies it
  with a probe connect and raises if the kernel answered anyway.

Production targets listen on 443; the lab's listen on ephemeral ports. :meth:`dial_map`
gives the translation the egress probe applies after resolving (like a DNAT in front of
the lab): any port on a behaviour's address goes to that behaviour's real port.

Run alone (for benchmarks): ``python -m probes.lab.tcptargets`` prints one JSON line with
the addresses and ports, and serves until stdin closes.
"""

from __future__ import annotations

import errno
import json
import selectors
import socket
import sys
import threading
import time
from dataclasses import dataclass

OPEN_HOST = "127.0.0.2"
REFUSED_HOST = "127.0.0.3"
DROP_HOST = "127.0.0.4"


@dataclass(frozen=True, slots=True)
class TcpEndpoint:
    host: str
    port: int

    @property
    def text(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class DropListener:
    """A listener whose accept queue is full and never drained: further SYNs are dropped
    by the kernel. Holds two sockets (the listener and the one queued connection)."""

    def __init__(self, host: str = DROP_HOST, port: int = 0) -> None:
        self._host, self._want = host, port
        self._lsock: socket.socket | None = None
        self._held: list[socket.socket] = []
        self.port = 0

    def start(self, verify: bool = True) -> DropListener:
        fam = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        ls = socket.socket(fam, socket.SOCK_STREAM)
        try:
            ls.bind((self._host, self._want))
            ls.listen(0)  # accept queue holds one connection (full when > backlog)
            self.port = ls.getsockname()[1]
            self._lsock = ls
            # fill the accept queue: with a backlog of 0 one completed handshake that we
            # never accept makes it full (the kernel tests ack_backlog > max_ack_backlog)
            c = socket.socket(fam, socket.SOCK_STREAM)
            c.settimeout(1.0)
            try:
                c.connect((self._host, self.port))
            except OSError:
                c.close()
                raise
            self._held.append(c)
            if verify and not self.drops():
                raise RuntimeError(
                    f"kernel answered a SYN to the full listener {self._host}:{self.port}; "
                    "timeout targets would not time out on this system"
                )
        except BaseException:
            self.stop()
            raise
        return self

    def drops(self, wait: float = 0.15) -> bool:
        """True when a fresh connect to the listener gets no answer within `wait` s."""
        fam = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            err = c.connect_ex((self._host, self.port))
            if err not in (0, errno.EINPROGRESS):
                return False
            sel = selectors.DefaultSelector()
            try:
                sel.register(c, selectors.EVENT_WRITE)
                return not sel.select(wait)
            finally:
                sel.close()
        finally:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.close()

    def stop(self) -> None:
        for c in self._held:
            c.close()
        self._held.clear()
        if self._lsock is not None:
            self._lsock.close()
            self._lsock = None

    @property
    def endpoint(self) -> TcpEndpoint:
        return TcpEndpoint(self._host, self.port)


class OpenListener:
    """A listener that accepts and closes at once (FIN, like a real server that has nothing
    to say; the egress probe aborts its side with RST so no TIME_WAIT piles up on the
    client), on a thread of its own that stops within a bound."""

    def __init__(self, host: str = OPEN_HOST, port: int = 0, backlog: int = 4096) -> None:
        self._host, self._want, self._backlog = host, port, backlog
        self._lsock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.port = 0
        self.accepted = 0

    def start(self) -> OpenListener:
        fam = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        ls = socket.socket(fam, socket.SOCK_STREAM)
        try:
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((self._host, self._want))
            ls.listen(self._backlog)
            ls.setblocking(False)
        except BaseException:
            ls.close()
            raise
        self.port = ls.getsockname()[1]
        self._lsock = ls
        self._thread = threading.Thread(target=self._run, name=f"tcp-open:{self.port}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self._lsock is not None
        sel = selectors.DefaultSelector()
        sel.register(self._lsock, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                if not sel.select(0.1):
                    continue
                while True:
                    try:
                        c, _ = self._lsock.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        time.sleep(0.01)  # EMFILE and friends: back off, keep serving
                        break
                    self.accepted += 1
                    c.close()  # graceful (FIN), as a server would; a RST would make nc fail
        finally:
            sel.close()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._lsock is not None:
            self._lsock.close()
            self._lsock = None

    @property
    def endpoint(self) -> TcpEndpoint:
        return TcpEndpoint(self._host, self.port)


class ClosedPort:
    """A port bound but not listening: every SYN gets a RST, and the port stays ours."""

    def __init__(self, host: str = REFUSED_HOST, port: int = 0) -> None:
        self._host, self._want = host, port
        self._sock: socket.socket | None = None
        self.port = 0

    def start(self) -> ClosedPort:
        fam = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            s.bind((self._host, self._want))
        except BaseException:
            s.close()
            raise
        self.port = s.getsockname()[1]
        self._sock = s
        return self

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def endpoint(self) -> TcpEndpoint:
        return TcpEndpoint(self._host, self.port)


class LoopbackTargets:
    """The three behaviours together. Use as a context manager, or start()/stop()."""

    def __init__(
        self, open_host: str = OPEN_HOST, refused_host: str = REFUSED_HOST, drop_host: str = DROP_HOST
    ) -> None:
        self._open = OpenListener(open_host)
        self._closed = ClosedPort(refused_host)
        self._drop = DropListener(drop_host)
        self._started = False

    def start(self, verify: bool = True) -> LoopbackTargets:
        """`verify=False` skips the 0.15 s check that the kernel really drops (the demo's
        start-up; the tests keep it)."""
        try:
            self._open.start()
            self._closed.start()
            self._drop.start(verify=verify)
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        self._open.stop()
        self._closed.stop()
        self._drop.stop()
        self._started = False

    def __enter__(self) -> LoopbackTargets:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def open(self) -> TcpEndpoint:
        return self._open.endpoint

    @property
    def refused(self) -> TcpEndpoint:
        return self._closed.endpoint

    @property
    def dropped(self) -> TcpEndpoint:
        return self._drop.endpoint

    @property
    def accepted(self) -> int:
        return self._open.accepted

    def dial_map(self) -> dict[str, int]:
        """Address -> real port: the egress probe dials (address, port) for any target
        port once a name resolved to one of these addresses."""
        return {e.host: e.port for e in (self.open, self.refused, self.dropped)}

    def describe(self) -> dict[str, str]:
        return {"open": self.open.text, "refused": self.refused.text, "dropped": self.dropped.text}


def main(argv: list[str] | None = None) -> int:
    with LoopbackTargets() as t:
        print(json.dumps(t.describe()), flush=True)
        try:
            sys.stdin.read()  # serve until stdin closes
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
