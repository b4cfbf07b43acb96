"""An echo endpoint on loopback for the demo and the tests: what ``agents.echo_url`` points
at in the lab. It answers ``GET /`` with one IP address as text (like api.ipify.org);
since every lab client comes from 127.0.0.1, the address it answers is what the lab's
Internet would have seen after SNAT: the first public IP of the lab ARM endpoint's answer
(the load balancer's outbound frontend, or the NAT gateway's), given by ``answer()``.
JSON (``{"ip": …}``) with ``?format=json``. Stdlib only.
"""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from .httpbase import ServerThread


class _EchoHandler(BaseHTTPRequestHandler):
    server: _EchoServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def do_GET(self) -> None:
        self.server.echo.requests += 1
        ip = self.server.echo.answer()
        body = orjson.dumps({"ip": ip}) if "format=json" in self.path else ip.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if "format=json" in self.path else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


class _EchoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], echo: LabEcho) -> None:
        self.echo = echo
        super().__init__(addr, _EchoHandler)


class LabEcho:
    """``start()`` serves on 127.0.0.1 (ephemeral port); ``url``; ``stop()``."""

    def __init__(self, answer: Callable[[], str], host: str = "127.0.0.1") -> None:
        self.answer = answer
        self.host = host
        self.requests = 0
        self._serving = ServerThread()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> LabEcho:
        if not self._serving.serving:
            srv = _EchoServer((self.host, 0), self)
            self.port = int(srv.server_address[1])
            self._serving.serve(srv, "lab-echo", poll_interval=0.2)
        return self

    def stop(self) -> None:
        self._serving.shutdown()

    def __enter__(self) -> LabEcho:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def lab_egress_ip(scenario: Any) -> str:
    """The first public IP the lab's ARM endpoint serves for `scenario` (no server started)."""
    # lazy: the ARM endpoint's module only to compute its answer
    from probes.lab.arm import LabArmServer

    ips = LabArmServer(scenario).public_ips()
    return str(ips[0]["properties"]["ipAddress"]) if ips else "203.0.113.1"


__all__ = ["LabEcho", "lab_egress_ip"]
