"""Writes to the lab API server (POST/PUT/PATCH/DELETE, and GETs the read side does not
serve): bodies read within kube-apiserver's limit, authenticated, faults applied, then
handed to the optional ``lab.writable`` hook (:mod:`.writable`); read-only (405) without."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from .apifaults import FaultInjection
from .apirequest import ApiError, api_parts

__all__ = ["MAX_REQUEST_BODY", "Writes"]

MAX_REQUEST_BODY = 3 << 20  # kube-apiserver's MaxRequestBodyBytes
_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class Writes(FaultInjection):
    def _write(self) -> None:
        """POST/PUT/PATCH/DELETE: authenticated, faults apply, then ``lab.writable`` or 405."""
        self._begin()
        self._verb = _WRITE_VERBS[self.command]
        self._resource = api_parts(self._path)[0]
        try:
            body = self._read_body()
            self._user = self._authenticate()
            rule = self.lab.faults.take(self._path, self._verb)
            if rule is not None and self._apply_fault(rule, lambda: None):
                return
            out = self._writable_call(self.command, body)
            if out is None:
                raise ApiError(
                    405,
                    "MethodNotAllowed",
                    "the lab API server is read-only: the server does not allow this method on the requested resource",
                )
            self._send(out[0], out[1])
        except ApiError as e:
            self._send_error(e)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            self.close_connection = True

    do_POST = do_PUT = do_PATCH = do_DELETE = _write

    def _read_body(self) -> bytes:
        too_big = ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_REQUEST_BODY}")
        try:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                parts: list[bytes] = []
                total = 0
                while True:
                    size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(parts)
                    total += size
                    if total > MAX_REQUEST_BODY:
                        self.close_connection = True
                        raise too_big
                    parts.append(self.rfile.read(size))
                    self.rfile.readline(1024)
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "BadRequest", "the request body is not valid HTTP framing") from None
        if n > MAX_REQUEST_BODY:
            self.close_connection = True
            if n <= 4 * MAX_REQUEST_BODY:  # drain it, so the client gets to read the 413
                while n > 0 and (got := len(self.rfile.read(min(n, 1 << 16)))):
                    n -= got
            raise too_big
        return self.rfile.read(n) if n > 0 else b""

    def _writable_call(self, method: str, body: bytes) -> tuple[int, bytes] | None:
        w = self.lab.writable
        if w is None:
            return None
        kw = {}
        ctype = self.headers.get("Content-Type")
        if method == "PATCH" and ctype:
            kw["content_type"] = ctype.split(";")[0].strip()
        try:
            return w.handle(method, self._path, self._query, body, self._user, **kw)
        except Exception as e:  # noqa: BLE001 - a bug in the hook is a 500 for the client, not a dead connection
            raise ApiError(500, "InternalError", f"Internal error occurred: {type(e).__name__}: {e}") from None

    def _writable_get(self, not_found: ApiError) -> Callable[[], None]:
        """GETs the read side does not serve (/apis/..., serviceaccounts...) go to ``lab.writable``."""
        resource, name = api_parts(self._path)
        self._resource = resource
        self._verb = "discovery" if resource is None else "get" if name else "list"

        def run() -> None:
            out = self._writable_call("GET", b"")
            if out is None:
                d = self._writable_discovery()
                doc = d.get(self._path) if isinstance(d, Mapping) else None
                if doc is None:
                    raise not_found
                out = (200, doc if isinstance(doc, bytes) else orjson.dumps(doc))
            self._send(out[0], out[1])

        return run

    def _writable_discovery(self) -> Any:
        fn = getattr(self.lab.writable, "discovery", None)
        return fn() if callable(fn) else None
