"""Gets and lists of the lab API server: paging with ``limit``/``continue`` (410 once the
token's resourceVersion left the watch log), selectors, namespaces, Table printing."""

from __future__ import annotations

import base64
import bisect
from typing import Any

import orjson

from .apirequest import ApiError, ApiRequest
from .store import KINDS, Entry, api_version

__all__ = ["ListReads"]


class ListReads(ApiRequest):
    def _get(self, resource: str, ns: str | None, name: str) -> None:
        key = f"{ns}/{name}" if ns else name
        e = self.lab.state.store.get(resource, key)
        if e is None:
            raise self._not_found(resource, name)
        if self._want_table():
            self._send(200, self._table_bytes(resource, [e], e.rv), "application/json;as=Table;v=v1;g=meta.k8s.io")
        else:
            self._send(200, e.raw)

    def _list(self, resource: str, ns: str | None) -> None:
        store = self.lab.state.store
        lsel, fsel = self._matchers(resource)
        limit_s = self.q1("limit")
        try:
            limit = int(limit_s) if limit_s not in (None, "") else 0
        except ValueError:
            raise ApiError(400, "BadRequest", f"limit: Invalid value: {limit_s!r}") from None
        cont = self.q1("continue") or None
        start_key = None
        rv, keys, items = store.snapshot(resource)
        if cont:
            try:
                tok = orjson.loads(base64.urlsafe_b64decode(cont.encode() + b"=="))
                tok_rv, start_key = int(tok["rv"]), str(tok["start"])
            except Exception:  # noqa: BLE001 - any garbage is a bad token
                raise ApiError(
                    400,
                    "BadRequest",
                    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
                ) from None
            if tok_rv < store.floor:
                raise ApiError(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent "
                    "list result. You can start a new list without the continue parameter, or use "
                    "the continue token in this response to retrieve the remainder of the results. "
                    "Continuing with the provided token results in an inconsistent list - objects "
                    "that were created, modified, or deleted between the time the first chunk was "
                    "returned and now may show up in the list.",
                )
            rv = tok_rv if tok_rv <= rv else rv
        lo, hi = 0, len(keys)
        if ns is not None:
            lo = bisect.bisect_left(keys, ns + "/")
            hi = bisect.bisect_left(keys, ns + "0")  # '0' sorts right after '/'
        if start_key is not None:
            lo = max(lo, bisect.bisect_right(keys, start_key))
        out: list[Entry] = []
        i = lo
        filtered = lsel is not None or fsel is not None
        while i < hi:
            e = items[keys[i]]
            i += 1
            if not filtered or self._match(e, lsel, fsel):
                out.append(e)
                if limit and len(out) >= limit:
                    break
        next_tok = None
        remaining = None
        if limit and len(out) >= limit and i < hi:
            # is anything left that matches? (the real server may return an empty last page; we look ahead)
            more = (hi - i) if not filtered else sum(1 for k in keys[i:hi] if self._match(items[k], lsel, fsel))
            if more:
                next_tok = base64.urlsafe_b64encode(orjson.dumps({"rv": rv, "start": out[-1].key})).decode().rstrip("=")
                if not filtered:
                    remaining = more
        if self._want_table():
            self._send(
                200,
                self._table_bytes(resource, out, rv, next_tok, remaining),
                "application/json;as=Table;v=v1;g=meta.k8s.io",
            )
            return
        md: dict[str, Any] = {"resourceVersion": str(rv)}
        if next_tok:
            md["continue"] = next_tok
        if remaining is not None:
            md["remainingItemCount"] = remaining
        body = b"".join(
            (
                b'{"kind":"',
                KINDS[resource].encode(),
                b'List","apiVersion":"',
                api_version(resource).encode(),
                b'","metadata":',
                orjson.dumps(md),
                b',"items":[',
                b",".join(e.raw for e in out),
                b"]}",
            )
        )
        self._send(200, body)
