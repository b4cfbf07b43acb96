"""One API server request: what every job of the lab's API server handler shares.

Status errors (:class:`ApiError`, :func:`status_body`), the answer plumbing (Audit-Id,
Cache-Control, the request log), authentication, and the read helpers that both lists
and watches use (selectors, server-side Table printing). The jobs themselves are
subclasses, one module each: :mod:`.apilist`, :mod:`.apiwatch`, :mod:`.podproxy`,
:mod:`.apifaults`, :mod:`.apiwrites`; :mod:`.apiroutes` puts them together.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from typing import Any

import orjson

from . import table as T
from .faults import RequestRecord
from .httpbase import LabHandler
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import Entry

__all__ = ["ApiError", "ApiRequest", "REASONS", "api_parts", "status_body", "truthy"]

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    422: "Invalid",
    429: "TooManyRequests",
    431: "RequestHeaderFieldsTooLarge",
    500: "InternalError",
    501: "NotImplemented",
    503: "ServiceUnavailable",
    504: "Timeout",
    505: "HTTPVersionNotSupported",
}


GZIP_ABOVE = 128 * 1024  # the API server compresses answers larger than this when asked


def _wants_gzip(accept: str | None) -> bool:
    """Accept-Encoding names gzip with a non-zero q."""
    for part in (accept or "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() == "gzip":
            q = params.strip().lower()
            return not (q.startswith("q=") and q[2:].strip() in ("0", "0.0", "0.00", "0.000"))
    return False


class ApiError(Exception):
    """An answer with a v1 Status body."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.code, self.reason, self.message, self.details, self.headers = code, reason, message, details, headers


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> bytes:
    d: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        d["details"] = details
    return orjson.dumps(d)


def truthy(v: str | None) -> bool:
    return v is not None and v.lower() in ("true", "1")


def api_parts(path: str) -> tuple[str | None, str | None]:
    """(resource, name) of an /api or /apis path; (None, None) for discovery paths."""
    segs = [s for s in path.split("/") if s]
    if segs[:1] == ["api"]:
        rest = segs[2:]
    elif segs[:1] == ["apis"]:
        rest = segs[3:]
    else:
        return None, None
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    if not rest:
        return None, None
    return rest[0], (rest[1] if len(rest) > 1 else None)


class ApiRequest(LabHandler):
    server_version = "lab-apiserver"
    timeout = 120  # idle keep-alive connections close after this

    # set per request by _begin() and the router
    _audit = ""
    _verb = "other"
    _resource: str | None = None
    _user = "system:anonymous"
    _ns: str | None = None
    _proxy_id = ""
    _watch_fault: str | None = None
    _cut_after = 0

    # ------------------------------------------------------------------ plumbing
    def _begin(self) -> None:
        self.begin()
        self._audit = os.urandom(8).hex()
        self._verb, self._resource, self._user = "other", None, "system:anonymous"

    def common_headers(self) -> dict[str, str]:
        return {"Cache-Control": "no-cache, private", "Audit-Id": self._audit}

    def error_body(self, code: int, message: str) -> bytes:
        return status_body(code, REASONS.get(code, "Unknown"), message)

    def record(self, status: int) -> None:
        self.lab.requests.add(
            RequestRecord(
                self.command,
                self._path,
                {k: v[-1] for k, v in self._query.items()},
                self._verb,
                self._resource,
                status,
                self._user,
            )
        )
        self.lab._log_request(self._verb, self._resource, self._path, status, self._arrived or None)

    def _send(
        self, code: int, body: bytes, ctype: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        if len(body) > GZIP_ABOVE and code == 200 and _wants_gzip(self.headers.get("Accept-Encoding")):
            # as a real API server does (its compression filter, responses over 128 KiB),
            # so the clients' gzip path is what the lab exercises
            body = gzip.compress(body, compresslevel=1)
            headers = {**(headers or {}), "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        self.send_body(code, body, ctype, headers)

    def _send_error(self, e: ApiError) -> None:
        self._send(e.code, status_body(e.code, e.reason, e.message, e.details), headers=e.headers)

    # ------------------------------------------------------------------ auth
    def _authenticate(self) -> str:
        lab = self.lab
        auth = self.headers.get("Authorization", "")
        if self.server.ssl_context is not None and lab.client_cert_auth:
            # lazy: tls imports cryptography (~100 ms), only servers with TLS need it
            from .tls import peer_identity

            cn = peer_identity(self.request.getpeercert())
            if cn:
                return cn
        if lab.token is not None:
            if auth == f"Bearer {lab.token}":
                return lab.user
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if lab.client_cert_auth:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return lab.user  # no auth configured: everyone is the lab's user

    # ------------------------------------------------------------------ read helpers (lists and watches)
    def _want_table(self) -> bool:
        acc = self.headers.get("Accept", "")
        return "as=Table" in acc and "g=meta.k8s.io" in acc

    def _matchers(self, resource: str) -> tuple[Callable | None, Callable | None]:
        try:
            lsel = parse_label_selector(self.q1("labelSelector"))
            fsel = parse_field_selector(self.q1("fieldSelector"), resource)
        except SelectorError as e:
            raise ApiError(400, "BadRequest", str(e)) from None
        return lsel, fsel

    @staticmethod
    def _match(e: Entry, lsel: Callable | None, fsel: Callable | None) -> bool:
        return (lsel is None or lsel(e.labels)) and (fsel is None or fsel(e.obj))

    def _not_found(self, resource: str, name: str) -> ApiError:
        return ApiError(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource})

    def _table_bytes(
        self, resource: str, entries: list[Entry], rv: int, cont: str | None = None, remaining: int | None = None
    ) -> bytes:
        inc = self.q1("includeObject") or "Metadata"
        now = self.lab.state.now()
        rows = []
        for e in entries:
            cells = orjson.dumps(T.row_cells(resource, e.obj, now))
            if inc == "None":
                rows.append(b'{"cells":' + cells + b"}")
            elif inc == "Object":
                rows.append(b'{"cells":' + cells + b',"object":' + e.raw + b"}")
            else:
                pm = orjson.dumps(
                    {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": e.obj["metadata"]}
                )
                rows.append(b'{"cells":' + cells + b',"object":' + pm + b"}")
        md: dict[str, Any] = {"resourceVersion": str(rv)}
        if cont:
            md["continue"] = cont
        if remaining is not None:
            md["remainingItemCount"] = remaining
        return (
            b'{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":'
            + orjson.dumps(md)
            + b',"columnDefinitions":'
            + orjson.dumps(T.COLUMNS[resource])
            + b',"rows":['
            + b",".join(rows)
            + b"]}"
        )
