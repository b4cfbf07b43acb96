"""HTTP CONNECT proxies on loopback, for the demo and the tests: the cluster's HTTP proxy
(``httpProxyConfig``) as the egress probes meet it.

One :class:`LabConnectProxy` per behaviour, each a real TCP server (one thread per
connection) that reads the request line and headers and then:

* **tunnel** — resolves the CONNECT authority through ``upstream(host, port)`` (the lab's
  name → loopback address and port), connects with a 2 s timeout and answers ``200
  Connection established`` and relays bytes both ways until either side closes; ``502 Bad
  Gateway`` when the destination refuses or has no address, ``504 Gateway Timeout`` when it
  does not answer (what squid and most proxies say);
* **forbidden** — ``403 Forbidden`` (an ACL), and closes;
* **auth** — ``407 Proxy Authentication Required`` with ``Proxy-Authenticate: Basic``;
* **hang** — reads the request and never answers (until the proxy stops).

A request that is not ``CONNECT`` gets ``405``. The proxy never dials beyond loopback: an
upstream that is not a loopback address gets 502. Stdlib only.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any

from .httpbase import ServerThread

BEHAVIOURS = ("tunnel", "forbidden", "auth", "hang")
UPSTREAM_TIMEOUT = 2.0
HANG_MAX = 300.0  # a hung connection is let go after this long even if the proxy runs on
Upstream = Callable[[str, int], "tuple[str, int] | None"]


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, addr: tuple[str, int], proxy: LabConnectProxy) -> None:
        self.proxy = proxy
        super().__init__(addr, _ProxyHandler)


class _ProxyHandler(socketserver.BaseRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        p = self.server.proxy
        s: socket.socket = self.request
        s.settimeout(5.0)
        with p._lock:
            p.connections += 1
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                chunk = s.recv(4096)
                if not chunk:
                    return
                head += chunk
        except OSError:
            return
        line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        parts = line.split()
        with p._lock:
            p.requests.append(line)
            del p.requests[:-100]
        if len(parts) != 3 or parts[0].upper() != "CONNECT":
            self._say(s, 405, "Method Not Allowed")
            return
        if p.behaviour == "hang":
            p._stop.wait(HANG_MAX)
            return
        if p.behaviour == "forbidden":
            self._say(s, 403, "Forbidden")
            return
        if p.behaviour == "auth":
            self._say(s, 407, "Proxy Authentication Required", 'Proxy-Authenticate: Basic realm="lab"\r\n')
            return
        host, _, port_s = parts[1].rpartition(":")
        host = host.strip("[]")
        if not port_s.isdigit():
            self._say(s, 400, "Bad Request")
            return
        dest = p.upstream(host, int(port_s)) if p.upstream is not None else None
        if dest is None or not _loopback(dest[0]):
            self._say(s, 502, "Bad Gateway")
            return
        try:
            up = socket.create_connection(dest, timeout=UPSTREAM_TIMEOUT)
        except TimeoutError:
            self._say(s, 504, "Gateway Timeout")
            return
        except OSError:
            self._say(s, 502, "Bad Gateway")
            return
        with up:
            try:
                s.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            except OSError:
                return
            self._relay(s, up, p._stop)

    @staticmethod
    def _say(s: socket.socket, code: int, reason: str, extra: str = "") -> None:
        try:
            s.sendall(f"HTTP/1.1 {code} {reason}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        except OSError:
            pass

    @staticmethod
    def _relay(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
        socks = [a, b]
        while not stop.is_set():
            try:
                ready, _, _ = select.select(socks, [], [], 0.5)
            except (OSError, ValueError):
                return
            for r in ready:
                try:
                    data = r.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                try:
                    (b if r is a else a).sendall(data)
                except OSError:
                    return


class LabConnectProxy:
    """``start()`` listens on host:port (0: ephemeral) in a thread; ``stop()`` closes it and
    lets hung connections go."""

    def __init__(
        self, behaviour: str = "tunnel", host: str = "127.0.0.1", port: int = 0, upstream: Upstream | None = None
    ) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"proxy behaviour {behaviour!r}: expected one of {', '.join(BEHAVIOURS)}")
        if not _loopback(host):
            raise ValueError(f"the lab's proxy listens on loopback only, not {host!r}")
        self.behaviour = behaviour
        self.host = host
        self._want = port
        self.upstream = upstream
        self.requests: list[str] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._serving = ServerThread()
        self._bound = 0

    @property
    def port(self) -> int:
        return self._bound or self._want

    def start(self) -> LabConnectProxy:
        if not self._serving.serving:
            self._stop.clear()
            srv = _ProxyServer((self.host, self._want), self)
            self._bound = int(srv.server_address[1])
            self._serving.serve(srv, f"lab-proxy-{self.behaviour}", poll_interval=0.2)
        return self

    def stop(self) -> None:
        self._stop.set()  # hung relays end: the server does not wait for them (block_on_close)
        self._serving.shutdown()

    def __enter__(self) -> LabConnectProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


__all__ = ["BEHAVIOURS", "LabConnectProxy"]
