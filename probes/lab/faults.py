"""Fault injection for the lab API server, and its request log.

Rules match a request by path regex (searched in the URL path, query excluded) and verb
(get, list, watch or None for any) and fire ``times`` times (None = until cleared).
The first matching live rule wins. All methods are thread-safe.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("status", "forbid", "malformed_json", "cut_watch", "expire_watch", "drop", "delay")


@dataclass(slots=True)
class FaultRule:
    action: str
    pattern: re.Pattern[str]
    verb: str | None = None
    times: int | None = None  # remaining firings; None = unlimited
    status: int = 500
    retry_after: int | None = None
    message: str | None = None
    resource: str | None = None  # forbid: resource name (e.g. "nodes")
    seconds: float = 0.0  # delay
    after_events: int = 0  # cut_watch: full events sent before the cut
    hits: int = 0


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def _add(self, rule: FaultRule) -> FaultRule:
        if rule.verb not in (None, "get", "list", "watch"):
            raise ValueError(f"verb must be get, list, watch or None, not {rule.verb!r}")
        with self._lock:
            self._rules.append(rule)
        return rule

    def add(
        self,
        path_regex: str,
        status: int = 500,
        retry_after: int | None = None,
        times: int | None = None,
        verb: str | None = None,
        message: str | None = None,
    ) -> FaultRule:
        """Answer matching requests with an error Status (401, 403, 404, 429, 500, 503, ...)."""
        return self._add(
            FaultRule(
                "status", re.compile(path_regex), verb, times, status=status, retry_after=retry_after, message=message
            )
        )

    def forbid(self, verb: str | None, resource: str, times: int | None = None) -> FaultRule:
        """RBAC says no: a 403 with the real message for the requesting user."""
        pat = (
            rf"^/api/v1/(namespaces/[^/]+/)?{re.escape(resource)}(/|$)"
            if resource != "namespaces"
            else r"^/api/v1/namespaces(/[^/]+)?$"
        )
        return self._add(FaultRule("forbid", re.compile(pat), verb, times, status=403, resource=resource))

    def malformed_json(self, path_regex: str = ".*", times: int | None = 1, verb: str | None = None) -> FaultRule:
        """A 200 whose body is truncated JSON (for watches: one broken event line)."""
        return self._add(FaultRule("malformed_json", re.compile(path_regex), verb, times))

    def cut_watch_mid_event(self, path_regex: str = ".*", times: int | None = 1, after_events: int = 0) -> FaultRule:
        """In the next watch stream, send ``after_events`` events, then half a line, then close."""
        return self._add(FaultRule("cut_watch", re.compile(path_regex), "watch", times, after_events=after_events))

    def expire_watch(self, path_regex: str = ".*", times: int | None = 1) -> FaultRule:
        """The next watch gets HTTP 200 then an ERROR event with a 410 Expired Status."""
        return self._add(FaultRule("expire_watch", re.compile(path_regex), "watch", times))

    def drop_connection(self, path_regex: str = ".*", times: int | None = 1, verb: str | None = None) -> FaultRule:
        """Close the TCP connection without answering."""
        return self._add(FaultRule("drop", re.compile(path_regex), verb, times))

    def delay(self, path_regex: str, seconds: float, times: int | None = None, verb: str | None = None) -> FaultRule:
        """Answer after ``seconds`` (bounded by server stop)."""
        return self._add(FaultRule("delay", re.compile(path_regex), verb, times, seconds=seconds))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(self, path: str, verb: str, actions: Iterable[str] | None = None) -> FaultRule | None:
        """The first live rule matching this request (and consume one firing)."""
        acts = set(actions) if actions is not None else None
        with self._lock:
            for r in self._rules:
                if acts is not None and r.action not in acts:
                    continue
                if r.times is not None and r.times <= 0:
                    continue
                if r.verb is not None and r.verb != verb:
                    continue
                if not r.pattern.search(path):
                    continue
                if r.times is not None:
                    r.times -= 1
                r.hits += 1
                return r
        return None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    verb: str  # get | list | watch | discovery | other
    resource: str | None
    status: int
    user: str
    t: float = field(default_factory=time.time)


class RequestLog:
    """Bounded, thread-safe log of served requests (tests count them)."""

    def __init__(self, maxlen: int = 100_000):
        self._lock = threading.Lock()
        self._log: deque[RequestRecord] = deque(maxlen=maxlen)
        self._cv = threading.Condition(self._lock)

    def add(self, rec: RequestRecord) -> None:
        with self._cv:
            self._log.append(rec)
            self._cv.notify_all()

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def __len__(self) -> int:
        with self._lock:
            return len(self._log)

    def clear(self) -> None:
        with self._lock:
            self._log.clear()

    def count(
        self,
        path: str | None = None,
        verb: str | None = None,
        status: int | None = None,
        method: str | None = None,
        resource: str | None = None,
    ) -> int:
        """Requests matching all given filters (``path`` is a regex searched in the path)."""
        pat = re.compile(path) if path else None
        n = 0
        for r in self.records():
            if (
                (pat is None or pat.search(r.path))
                and (verb is None or r.verb == verb)
                and (status is None or r.status == status)
                and (method is None or r.method == method)
                and (resource is None or r.resource == resource)
            ):
                n += 1
        return n

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> bool:
        """Block until ``predicate(records)`` is true (bounded)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while not predicate(list(self._log)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
            return True
