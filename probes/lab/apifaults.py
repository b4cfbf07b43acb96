"""Injected behaviour of the lab API server: the rules of :class:`probes.lab.faults.Faults`
(delay, drop, RBAC 403, a status with Retry-After, malformed JSON, cut or expired watches)
applied to one request."""

from __future__ import annotations

import socket
from collections.abc import Callable

from .apirequest import REASONS, ApiError, ApiRequest
from .faults import FaultRule
from .store import KINDS

__all__ = ["FaultInjection"]

MESSAGES = {
    401: "Unauthorized",
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: etcdserver: request timed out",
    503: "The server is currently unable to handle the request",
    504: "Timeout: request did not complete within the allotted timeout",
}


class FaultInjection(ApiRequest):
    def _apply_fault(self, r: FaultRule, route: Callable[[], None]) -> bool:
        a = r.action
        if a == "delay":
            self.lab.stopping.wait(min(r.seconds, 60))
            return False
        if a == "drop":
            self.record(0)
            self.close_connection = True
            try:
                self.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        if a == "forbid":
            ns = self._ns
            scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            if self._verb == "proxy":  # RBAC sees verb get on the subresource pods/proxy
                raise ApiError(
                    403,
                    "Forbidden",
                    f'pods "{self._proxy_id}" is forbidden: User "{self._user}" cannot '
                    f'get resource "pods/proxy" in API group "" {scope}',
                    {"name": self._proxy_id, "kind": "pods"},
                )
            verb = (
                self._verb if self._verb in ("get", "list", "watch", "create", "update", "patch", "delete") else "get"
            )
            raise ApiError(
                403,
                "Forbidden",
                f'{r.resource} is forbidden: User "{self._user}" cannot {verb} resource '
                f'"{r.resource}" in API group "" {scope}',
                {"kind": r.resource},
            )
        if a == "status":
            code = r.status
            headers = {"Retry-After": str(r.retry_after)} if r.retry_after is not None else None
            details = {"retryAfterSeconds": r.retry_after} if r.retry_after is not None else None
            raise ApiError(
                code,
                REASONS.get(code, "Unknown"),
                r.message or MESSAGES.get(code, f"lab fault {code}"),
                details,
                headers,
            )
        if a == "malformed_json":
            if self._verb == "watch":
                self._watch_fault = "malformed"
                return False
            self._send(
                200,
                b'{"kind":"'
                + (KINDS.get(self._resource or "", "Status")).encode()
                + b'List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"tru',
            )
            return True
        if a in ("cut_watch", "expire_watch"):
            self._watch_fault = a
            self._cut_after = r.after_events
            return False
        return False
