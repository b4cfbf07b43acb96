"""What the lab's two HTTP servers (the Kubernetes API server and the ARM endpoint) share.

Both are stdlib ``ThreadingHTTPServer``s, one thread per connection, that must stop
cleanly under a test: every open connection is tracked and shut down on ``stop()``
(watches and pod-proxy upstreams included), handler threads are joined, and nothing is
logged to stderr. Both answer in JSON, including the errors the stdlib raises before a
handler runs (a malformed request line, an unsupported method): the stdlib would send an
HTML page, without a status line for a request line it could not parse.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["LabHTTPServer", "LabHandler", "ServerThread"]


class LabHTTPServer(ThreadingHTTPServer):
    """Tracks every connection so that ``close_all_connections()`` can end them at stop."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], handler: type, lab: Any, ssl_context: Any = None):
        self.lab = lab  # the LabApiServer / LabArmServer the handler serves
        self.ssl_context = ssl_context
        self._conns: set[socket.socket] = set()
        self._extra: set[socket.socket] = set()  # e.g. pod proxy upstreams in flight
        self._conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        # headers and body go out in separate writes: without this a keep-alive client
        # waits ~40 ms for the delayed ACK on every request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def track(self, sock: socket.socket) -> None:
        """Also shut ``sock`` down at stop (a connection the handler opened itself)."""
        with self._conns_lock:
            self._extra.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._conns_lock:
            self._extra.discard(sock)

    def close_all_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns) + list(self._extra)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # client went away, TLS handshake failed...: not the lab's problem


class LabHandler(BaseHTTPRequestHandler):
    """HTTP/1.1, quiet, TLS handshake in the handler thread, request parsing, JSON replies.

    Subclasses say how an error body looks (``error_body``), which headers every answer
    carries (``common_headers``) and what to record once an answer went out (``record``).
    """

    protocol_version = "HTTP/1.1"
    sys_version = ""
    server: LabHTTPServer

    # set by begin()
    _arrived = 0.0
    _raw_path = ""
    _raw_query = ""
    _path = "/"
    _query: dict[str, list[str]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        if self.server.ssl_context is not None:
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(self.timeout)

    @property
    def lab(self) -> Any:
        return self.server.lab

    # ------------------------------------------------------------------ request
    def begin(self, unquote_path: bool = False) -> None:
        """Note the arrival time and split the target into path and query."""
        self._arrived = time.monotonic()
        url = urlsplit(self.path)
        self._raw_path, self._raw_query = url.path, url.query
        path = unquote(url.path) if unquote_path else url.path
        self._path = path.rstrip("/") or "/"
        self._query = parse_qs(url.query, keep_blank_values=True)

    def q1(self, key: str) -> str | None:
        """The last value of query parameter ``key``."""
        v = self._query.get(key)
        return v[-1] if v else None

    # ------------------------------------------------------------------ replies
    def common_headers(self) -> dict[str, str]:
        return {}

    def record(self, status: int) -> None:
        """Called once per answer that went out (status 0: the connection was dropped)."""

    def error_body(self, code: int, message: str) -> bytes:
        """A JSON error document in this server's dialect."""
        raise NotImplementedError

    def send_body(self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        """One complete answer with Content-Length; no body for HEAD. Records it first."""
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in self.common_headers().items():
            self.send_header(k, v)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        # counted before the body goes out: a client never holds an answer the log has not seen
        self.record(code)
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors the stdlib finds before a ``do_*`` runs, in JSON, always with a status line."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # an unparsable request line: answer in HTTP/1.1 anyway
            self.request_version = "HTTP/1.1"
        try:
            short = self.responses[code][0]
        except KeyError:
            short = "Error"
        body = self.error_body(code, message or short)
        self.send_response(code, short)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)


class ServerThread:
    """Start/stop of one of the lab's servers (a :class:`LabHTTPServer`, or any
    socketserver: the echo endpoint, the CONNECT proxy) in a background thread, joined at
    stop."""

    def __init__(self) -> None:
        self._httpd: socketserver.TCPServer | None = None
        self._thread: threading.Thread | None = None

    def serve(self, httpd: socketserver.TCPServer, name: str, poll_interval: float = 0.1) -> None:
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": poll_interval},
            name=f"{name}:{httpd.server_address[1]}",
            daemon=True,
        )
        self._thread.start()

    @property
    def serving(self) -> bool:
        return self._httpd is not None

    @property
    def bound_port(self) -> int | None:
        return int(self._httpd.server_address[1]) if self._httpd is not None else None

    def shutdown(self) -> None:
        """Close the listener and every open connection, join the handler threads."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        if isinstance(httpd, LabHTTPServer):
            httpd.close_all_connections()
        httpd.server_close()  # joins handler threads (unless the server says not to: block_on_close)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
