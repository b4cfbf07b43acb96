"""A loopback API server made of WritableObjects, for the agent's install tests.

The lab's apiserver.py will route writes to WritableObjects itself; until then (and to
keep these tests about the write side only) a minimal ThreadingHTTPServer wraps it, with
bearer-token auth, a request log and injectable failures. Loopback only; every server is
stopped and its threads joined at teardown.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import yaml

from probes.lab.writable import WritableObjects, status_failure
from tests.support.leaks import guard_threads

TOKEN = "agentdeploy-test-token"
USER = "alice@example.com"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int


@dataclass
class WriteServer:
    objects: WritableObjects
    token: str | None = TOKEN
    requests: list[Recorded] = field(default_factory=list)
    # (method, path prefix) -> (code, reason, message): answered instead of the store
    faults: dict[tuple[str, str], tuple[int, str, str]] = field(default_factory=dict)
    httpd: Any = None
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def writes(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method not in ("GET", "HEAD")]

    def kubeconfig(self, path: Path, token: str | None = None) -> str:
        user: dict[str, Any] = {"token": token if token is not None else (self.token or "none")}
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "agentdeploy",
            "clusters": [{"name": "agentdeploy", "cluster": {"server": self.url}}],
            "users": [{"name": "agentdeploy-user", "user": user}],
            "contexts": [{"name": "agentdeploy", "context": {"cluster": "agentdeploy", "user": "agentdeploy-user"}}],
        }
        path.write_text(yaml.safe_dump(doc))
        return str(path)


class _Httpd(ThreadingHTTPServer):
    """Joins its handler threads on close, after shutting every open connection."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.conns: set[socket.socket] = set()
        self.conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def stop(self) -> None:
        self.shutdown()
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()


def _handler(srv: WriteServer) -> type[BaseHTTPRequestHandler]:
    core_extra = srv.objects.discovery()["/api/v1#resources"]["resources"]

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body are two writes

        def _send(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _any(self) -> None:
            url = urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            query = parse_qs(url.query, keep_blank_values=True)
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            code, out = self._answer(path, query, body)
            with srv.lock:
                srv.requests.append(Recorded(self.command, path, query, code))
            self._send(code, out)

        def _answer(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, bytes]:
            if srv.token is not None and self.headers.get("Authorization") != f"Bearer {srv.token}":
                return 401, status_failure(401, "Unauthorized", "Unauthorized")
            for (method, prefix), (code, reason, message) in srv.faults.items():
                if method == self.command and path.startswith(prefix):
                    return code, status_failure(code, reason, message)
            if path == "/version":
                return 200, orjson.dumps({"major": "1", "minor": "31", "gitVersion": "v1.31.2"})
            if path == "/api":
                return 200, orjson.dumps({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
            if path == "/api/v1":
                return 200, orjson.dumps({"kind": "APIResourceList", "groupVersion": "v1", "resources": core_extra})
            out = srv.objects.handle(
                self.command, path, query, body, USER, content_type=self.headers.get("Content-Type", "")
            )
            if out is None:
                return 404, status_failure(404, "NotFound", "the server could not find the requested resource")
            return out

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    return H


@pytest.fixture
def write_server() -> Iterator[Callable[..., WriteServer]]:
    """write_server(**WritableObjects kwargs, token=...) -> a started WriteServer."""
    made: list[WriteServer] = []

    def make(token: str | None = TOKEN, **kwargs: Any) -> WriteServer:
        srv = WriteServer(WritableObjects(**kwargs), token=token)
        srv.httpd = _Httpd(_handler(srv))
        srv.thread = threading.Thread(
            target=srv.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="agentdeploy-apiserver", daemon=True
        )
        srv.thread.start()
        made.append(srv)
        return srv

    yield make
    for srv in made:
        assert srv.httpd is not None and srv.thread is not None
        srv.httpd.stop()
        srv.thread.join(timeout=5)


@pytest.fixture
def api_for() -> Iterator[Callable[[WriteServer], Any]]:
    """api_for(server, token=...) -> a kubernetes ApiClient for it (closed at teardown)."""
    from kubernetes import client

    made: list[Any] = []

    def make(srv: WriteServer, token: str | None = None) -> Any:
        cfg = client.Configuration()
        cfg.host = srv.url
        cfg.api_key = {"authorization": f"Bearer {token if token is not None else srv.token}"}
        api = client.ApiClient(cfg)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    yield from guard_threads()
