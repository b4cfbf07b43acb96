"""A small scriptable, misbehaving Kubernetes API server on loopback, for fault tests and
the fault benchmark.

It serves /version, the node list, the kube-system DNS pods and the services (from
`tests.support.kubejson.small_cluster`), with list resourceVersions, watches from a
resourceVersion (events, bookmarks, timeoutSeconds, 410 below its log, 504 "Too large
resource version" above its head), and one `mode` at a time that changes how it answers:

    ok           as a healthy server
    freeze       a stopped process: accepts TCP, answers nothing, open watches go silent;
                 everything held is answered when the mode changes back
    blackhole    accepts TCP and never answers; what was held is closed unanswered
    gone         every watch: 200, then an ERROR event with a 410 Expired Status
    too_large    every watch: 504 "Too large resource version"
    bad_error    every watch: 200, then {"type":"ERROR","object":{"code":"x"}}
    cut          every watch: 200, then half an event line, then the connection closes
    throttle     every request: 429 with Retry-After: `retry_after`
    unauthorized every request: 401
    forbidden    every list/watch: 403 naming the verb and resource

`refuse()` closes the listening socket (connection refused) and `accept()` opens it again
on the same port; `replace_state(n)` is a restart with another etcd (n nodes, a lower
resourceVersion, open watches cut); `bad_items` are appended to the node list as they are.
Every request is recorded as (monotonic time, verb, kind) before it is answered.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.kubejson import small_cluster

MODES = ("ok", "freeze", "blackhole", "gone", "too_large", "bad_error", "cut", "throttle", "unauthorized", "forbidden")
PATHS = {
    "/api/v1/nodes": "nodes",
    "/api/v1/namespaces/kube-system/pods": "pods",
    "/api/v1/services": "services",
    # the NetworkPolicy evaluation's kinds (F21); Calico's CRDs are not installed here
    "/apis/networking.k8s.io/v1/networkpolicies": "networkpolicies",
    "/api/v1/namespaces": "namespaces",
}
LIST_KIND = {
    "nodes": "NodeList",
    "pods": "PodList",
    "services": "ServiceList",
    "networkpolicies": "NetworkPolicyList",
    "namespaces": "NamespaceList",
}
OBJ_KIND = {
    "nodes": "Node",
    "pods": "Pod",
    "services": "Service",
    "networkpolicies": "NetworkPolicy",
    "namespaces": "Namespace",
}
HOLD_MAX = 120.0  # no handler holds longer than this, whatever the test does


def _cluster(nodes: int) -> dict[str, list[dict[str, Any]]]:
    system = max(1, min(nodes, 3))
    objs = small_cluster(system, max(0, nodes - system))
    names = sorted({"default", "kube-system", *(o["metadata"].get("namespace", "") for o in objs["services"])} - {""})
    objs["namespaces"] = [{"kind": "Namespace", "metadata": {"name": n}} for n in names]
    objs["networkpolicies"] = []
    return objs


def _key(obj: dict[str, Any]) -> str:
    m = obj["metadata"]
    return f"{m.get('namespace', '')}/{m['name']}"


class FaultApi:
    def __init__(self, nodes: int = 5, bookmark_interval: float = 0.5, rv: int = 1000) -> None:
        self.cond = threading.Condition()
        self.bookmark_interval = bookmark_interval
        self.mode = "ok"
        self.retry_after = 2
        self.bad_items: list[Any] = []
        self.list_delay: dict[str, float] = {}  # kind -> seconds a list answer is held (a big first list)
        self.requests: list[tuple[float, str, str]] = []
        self.paths: list[tuple[float, str]] = []  # (when, path) of every GET, for what "other" hides
        self.stopping = threading.Event()
        self._epoch = 0  # bumped by a restart: open watches end
        self._load(nodes, rv)
        self._srv: ThreadingHTTPServer | None = None
        self.port = 0
        self.accept()

    # --- state ------------------------------------------------------------------------
    def _load(self, nodes: int, rv: int) -> None:
        self.rv = rv
        self.floor = rv  # watches from below this get 410
        self.log: list[tuple[int, str, str, dict[str, Any]]] = []  # (rv, type, kind, obj)
        self.state: dict[str, dict[str, dict[str, Any]]] = {}
        for kind, objs in _cluster(nodes).items():
            self.state[kind] = {}
            for obj in objs:
                obj = copy.deepcopy(obj)
                obj["metadata"]["resourceVersion"] = str(rv)
                self.state[kind][_key(obj)] = obj

    def node_names(self) -> list[str]:
        with self.cond:
            return sorted(o["metadata"]["name"] for o in self.state["nodes"].values())

    def set_mode(self, mode: str) -> None:
        assert mode in MODES, mode
        with self.cond:
            self.mode = mode
            self.cond.notify_all()

    def modify_node(self, name: str, ready: bool) -> None:
        """A MODIFIED event: the node's Ready condition."""
        with self.cond:
            obj = copy.deepcopy(self.state["nodes"][f"/{name}"])
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            for c in obj["status"]["conditions"]:
                if c["type"] == "Ready":
                    c["status"] = "True" if ready else "False"
            self.state["nodes"][f"/{name}"] = obj
            self.log.append((self.rv, "MODIFIED", "nodes", obj))
            self.cond.notify_all()

    def replace_state(self, nodes: int, rv: int = 10) -> None:
        """A restart on another etcd: `nodes` nodes, resourceVersions from `rv`, watches cut."""
        with self.cond:
            self._load(nodes, rv)
            self._epoch += 1
            self.cond.notify_all()

    def expire_all(self) -> None:
        """Compact the watch log: every resourceVersion handed out so far is too old."""
        with self.cond:
            self.rv += 1
            self.floor = self.rv
            self.log.clear()
            self._epoch += 1
            self.cond.notify_all()

    # --- the listener --------------------------------------------------------------------
    def accept(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        api = self

        class Handler(_Handler):
            fault = api

        ThreadingHTTPServer.allow_reuse_address = True
        srv = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        srv.daemon_threads = True
        self.port = srv.server_address[1]
        self._srv = srv
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def refuse(self) -> None:
        """Close the listening socket: new connections are refused; open watches end."""
        srv, self._srv = self._srv, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
        with self.cond:
            self._epoch += 1
            self.cond.notify_all()

    def stop(self) -> None:
        self.stopping.set()
        with self.cond:
            self.mode = "ok"
            self.cond.notify_all()
        self.refuse()

    def __enter__(self) -> FaultApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path: str | Path) -> str:
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "faults", "cluster": {"server": self.url}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "faults", "context": {"cluster": "faults", "user": "u"}}],
            "current-context": "faults",
        }
        Path(path).write_text(json.dumps(doc))
        return str(path)

    # --- what the tests measure ------------------------------------------------------------
    def count(self, verb: str | None = None, kind: str | None = None, since: float = 0.0, until: float = 1e18) -> int:
        with self.cond:
            return sum(
                1
                for t, v, k in self.requests
                if since <= t < until and (verb is None or v == verb) and (kind is None or k == kind)
            )


class _Handler(BaseHTTPRequestHandler):
    fault: FaultApi
    protocol_version = "HTTP/1.1"  # watches are chunked, as the API server's; every answer closes its connection

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _send(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str, message: str, **extra: Any) -> None:
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason}
        body["code"] = code
        body.update(extra.pop("body", {}))
        self._send(code, body, extra.pop("headers", None))

    def _hold(self) -> bool:
        """Hold the request while frozen or blackholed; False when it must end unanswered."""
        f = self.fault
        deadline = time.monotonic() + HOLD_MAX
        with f.cond:
            held_as = f.mode
            while f.mode in ("freeze", "blackhole") and not f.stopping.is_set() and time.monotonic() < deadline:
                held_as = f.mode
                f.cond.wait(0.1)
        return held_as != "blackhole" and not f.stopping.is_set()

    def _end_unanswered(self) -> None:
        self.close_connection = True
        try:
            self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        f = self.fault
        parts = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        kind = PATHS.get(parts.path, "version" if parts.path == "/version" else "other")
        verb = "watch" if q.get("watch") in ("1", "true") else ("list" if kind in PATHS.values() else "get")
        with f.cond:
            f.requests.append((time.monotonic(), verb, kind))
            f.paths.append((time.monotonic(), parts.path))
            mode = f.mode
        if mode in ("freeze", "blackhole"):
            if not self._hold():
                self._end_unanswered()
                return
            mode = f.mode
        try:
            self._answer(mode, kind, verb, q)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass

    def _answer(self, mode: str, kind: str, verb: str, q: dict[str, str]) -> None:
        f = self.fault
        if mode == "throttle":
            self._status(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
                headers={"Retry-After": str(f.retry_after)},
                body={"details": {"retryAfterSeconds": f.retry_after}},
            )
            return
        if mode == "unauthorized":
            self._status(401, "Unauthorized", "Unauthorized")
            return
        if kind == "version":
            self._send(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.6"})
            return
        if kind == "other":  # events of pending services and the like: nothing
            self._send(
                200, {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": str(f.rv)}, "items": []}
            )
            return
        if mode == "forbidden":
            self._status(
                403,
                "Forbidden",
                f'{kind} is forbidden: User "u" cannot {verb} resource "{kind}" in API group "" at the cluster scope',
            )
            return
        if verb == "list":
            if f.list_delay.get(kind):
                f.stopping.wait(f.list_delay[kind])
            with f.cond:
                items = list(f.state[kind].values()) + (list(f.bad_items) if kind == "nodes" else [])
                rv = f.rv
            self._send(
                200,
                {"kind": LIST_KIND[kind], "apiVersion": "v1", "metadata": {"resourceVersion": str(rv)}, "items": items},
            )
            return
        self._watch(mode, kind, q)

    def _open_stream(self) -> None:
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _line(self, obj: dict[str, Any]) -> None:
        self._chunk(json.dumps(obj).encode() + b"\n")

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _watch(self, mode: str, kind: str, q: dict[str, str]) -> None:
        f = self.fault
        try:
            start = int(q.get("resourceVersion") or 0)
        except ValueError:
            self._status(400, "BadRequest", "bad resourceVersion")
            return
        with f.cond:
            head, floor, epoch = f.rv, f.floor, f._epoch
        if mode == "too_large" or start > head:
            self._status(
                504,
                "Timeout",
                f"Too large resource version: {start}, current: {head}",
                body={
                    "details": {
                        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]
                    }
                },
            )
            return
        self._open_stream()
        if mode == "gone" or start < floor:
            self._line(
                {
                    "type": "ERROR",
                    "object": {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "message": f"too old resource version: {start} ({floor})",
                        "reason": "Expired",
                        "code": 410,
                    },
                }
            )
            self._end_stream()
            return
        if mode == "bad_error":
            self._line({"type": "ERROR", "object": {"code": "x"}})
            self._end_stream()
            return
        if mode == "cut":
            self._chunk(b'{"type":"MODIFIED","object":{"kind":"Node","metadata":{"na')
            self._end_unanswered()
            return
        timeout = min(float(q.get("timeoutSeconds") or 60), 600.0)
        end = time.monotonic() + timeout
        cursor = start
        next_bm = time.monotonic() + f.bookmark_interval
        while not f.stopping.is_set():
            with f.cond:
                while f.mode in ("freeze", "blackhole") and not f.stopping.is_set() and f._epoch == epoch:
                    f.cond.wait(0.1)  # frozen: write nothing (the deadline below still runs)
                if f._epoch != epoch:
                    self._end_unanswered()  # a restart: the stream just ends, mid-air
                    return
                evs = [(rv, t, o) for rv, t, k, o in f.log if rv > cursor and k == kind]
                if not evs:
                    f.cond.wait(max(0.01, min(next_bm, end) - time.monotonic()))
                    evs = [(rv, t, o) for rv, t, k, o in f.log if rv > cursor and k == kind]
                head = f.rv
            now = time.monotonic()
            for rv, typ, obj in evs:
                self._line({"type": typ, "object": obj})
                cursor = max(cursor, rv)
            if now >= end:
                self._end_stream()
                return
            if now >= next_bm:
                cursor = max(cursor, head)
                self._line(
                    {
                        "type": "BOOKMARK",
                        "object": {"kind": OBJ_KIND[kind], "metadata": {"resourceVersion": str(cursor)}},
                    }
                )
                next_bm = now + f.bookmark_interval
