"""A loopback HTTP server answering ARM GETs with fixture files (tests/fixtures/real/arm),
for the real azure-mgmt clients: path (case-insensitive) -> body; metrics by metricnames.
Anything else is ARM's 404; a path may be made to answer 403 AuthorizationFailed."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class FixtureArm:
    def __init__(self) -> None:
        self.bodies: dict[str, Any] = {}  # lower-cased path -> body
        self.metrics: dict[str, dict[str, Any]] = {}  # lower-cased resource -> metricnames -> body
        self.forbidden: dict[str, str] = {}  # lower-cased path -> the action named in the 403
        self.requests: list[str] = []
        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._srv.daemon_threads = True
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._srv.server_address[1]}"

    def __enter__(self) -> FixtureArm:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        arm = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                u = urlsplit(self.path)
                path = unquote(u.path).rstrip("/").lower()
                q = {k: v[-1] for k, v in parse_qs(u.query).items()}
                arm.requests.append(path)
                if path in arm.forbidden:
                    msg = (
                        "The client 'ops@example.com' with object id '00000000-0000-0000-0000-0000000000aa' does not "
                        f"have authorization to perform action '{arm.forbidden[path]}' over scope '{path}' or the "
                        "scope is invalid."
                    )
                    return self._send(403, {"error": {"code": "AuthorizationFailed", "message": msg}})
                m = re.match(r"^(.*)/providers/microsoft\.insights/metrics$", path)
                if m and m.group(1) in arm.metrics:
                    names = q.get("metricnames", "").lower()
                    body = arm.metrics[m.group(1)].get(names)
                    if body is not None:
                        return self._send(200, body)
                if path in arm.bodies:
                    return self._send(200, arm.bodies[path])
                return self._send(404, {"error": {"code": "ResourceNotFound", "message": f"'{path}' was not found."}})

        return Handler
