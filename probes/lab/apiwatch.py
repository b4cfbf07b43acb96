"""Watches of the lab API server: chunked events from the store's watch log, bookmarks,
410 Expired for a resourceVersion older than the log, and the injected watch faults
(cut mid-event, expire, malformed) that :mod:`.apifaults` arms."""

from __future__ import annotations

import select
import socket
import time
from typing import Any

from .apirequest import ApiError, ApiRequest, status_body, truthy
from .store import KINDS, Entry, api_version

__all__ = ["MAX_WATCH_SECONDS", "WatchStream"]

MAX_WATCH_SECONDS = 1800


class WatchStream(ApiRequest):
    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _client_gone(self) -> bool:
        if self.server.ssl_context is not None:
            return False
        try:
            r, _, _ = select.select([self.request], [], [], 0)
            if r:
                return self.request.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True
        return False

    def _watch(self, resource: str, ns: str | None, name: str | None) -> None:
        lab = self.lab
        store = lab.state.store
        lsel, fsel = self._matchers(resource)
        if name is not None:
            inner = fsel

            def by_name(o: dict[str, Any]) -> bool:
                return bool(o["metadata"]["name"] == name and (inner is None or inner(o)))

            fsel = by_name
        rv_s = self.q1("resourceVersion")
        try:
            timeout = float(self.q1("timeoutSeconds") or MAX_WATCH_SECONDS)
            start_rv = int(rv_s) if rv_s not in (None, "", "0") else None
        except ValueError:
            raise ApiError(400, "BadRequest", f"resourceVersion: Invalid value: {rv_s!r}") from None
        timeout = max(0.0, min(timeout, MAX_WATCH_SECONDS))
        bookmarks = truthy(self.q1("allowWatchBookmarks"))
        table = self._want_table()
        kind = KINDS[resource]
        gv = api_version(resource).encode()

        def wanted(e: Entry | None) -> bool:
            return e is not None and (ns is None or e.namespace == ns) and self._match(e, lsel, fsel)

        self.send_response(200)
        self.send_header(
            "Content-Type", "application/json" if not table else "application/json;as=Table;v=v1;g=meta.k8s.io"
        )
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self._audit)
        self.end_headers()
        self.record(200)
        self.close_connection = True  # watches end the connection, like most proxies in front of the server

        def obj_bytes(e: Entry) -> bytes:
            return self._table_bytes(resource, [e], e.rv) if table else e.raw

        def line(typ: str, e: Entry) -> bytes:
            return b'{"type":"' + typ.encode() + b'","object":' + obj_bytes(e) + b"}\n"

        def expired(rv: int) -> bytes:
            return (
                b'{"type":"ERROR","object":'
                + status_body(410, "Expired", f"too old resource version: {rv} ({store.floor})")
                + b"}\n"
            )

        sent = 0

        def stream() -> bool:
            """Send events; True = end the chunked body cleanly."""
            nonlocal sent
            if self._watch_fault == "expire_watch":
                self._chunk(expired(start_rv if start_rv is not None else store.floor - 1))
                return True
            if self._watch_fault == "malformed":
                self._chunk(b'{"type":"ADDED","object":{"kind":"' + kind.encode() + b'","metadata":{"na\n')
                return True
            with store.cond:
                if start_rv is None:
                    _, keys, items = store.snapshot(resource)
                    initial = [items[k] for k in keys if wanted(items[k])]
                    cursor = store.rv
                else:
                    initial = []
                    cursor = start_rv
                    if store.since(start_rv) is None:
                        self._chunk(expired(start_rv))
                        return True
            pending = [line("ADDED", e) for e in initial]
            deadline = time.monotonic() + timeout
            next_bm = time.monotonic() + lab.bookmark_interval
            while True:
                for ln in pending:
                    if self._watch_fault == "cut_watch" and sent >= self._cut_after:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(ln) // 2, ln[: len(ln) // 2]))
                        self.wfile.flush()
                        self.request.shutdown(socket.SHUT_RDWR)
                        return False
                    self._chunk(ln)
                    sent += 1
                pending = []
                now = time.monotonic()
                if now >= deadline or lab.stopping.is_set():
                    break
                if bookmarks and now >= next_bm:
                    self._chunk(
                        b'{"type":"BOOKMARK","object":{"kind":"' + kind.encode() + b'","apiVersion":"' + gv + b'",'
                        b'"metadata":{"resourceVersion":"' + str(cursor).encode() + b'"}}}\n'
                    )
                    next_bm = now + lab.bookmark_interval
                if self._client_gone():
                    return False
                with store.cond:
                    evs = store.since(cursor)
                    if evs == []:
                        wait = min(deadline - now, 0.5, (next_bm - now) if bookmarks else 0.5)
                        store.cond.wait(max(wait, 0.01))
                        evs = store.since(cursor)
                    head = store.rv
                if evs is None:  # fell behind the log
                    self._chunk(expired(cursor))
                    return True
                for ev in evs:
                    if ev.entry.resource != resource:
                        continue
                    new_ok = wanted(ev.entry)
                    old_ok = wanted(ev.prev) if ev.prev is not None and ev.type != "ADDED" else False
                    if ev.type == "DELETED":
                        if old_ok:
                            pending.append(line("DELETED", ev.entry))
                    elif new_ok and old_ok:
                        pending.append(line("MODIFIED", ev.entry))
                    elif new_ok:
                        pending.append(line("ADDED", ev.entry))
                    elif old_ok:
                        pending.append(line("DELETED", ev.entry))
                cursor = max(cursor, head)
            return True

        try:
            if stream():
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            pass
