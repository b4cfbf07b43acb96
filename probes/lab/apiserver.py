"""A Kubernetes API server for the lab, over real HTTP/1.1 (stdlib, one thread per connection).

Serves the read side of core/v1 that aksnet-top and kubectl use: discovery, list with
paging and selectors, get, watch (chunked, bookmarks, 410 Expired), server-side Table
printing, Status errors, bearer-token and client-certificate auth, and fault injection.
Everything it serves comes from :class:`probes.lab.cluster.ClusterState`.

It also proxies to pods (``pods/{name}:{port}/proxy/{path}``) as kube-apiserver does, so
that the demo and the tests read the per-node agents down the production path, and hands
writes to an optional ``writable`` object (default: read-only, 405).
"""

from __future__ import annotations

import base64
import bisect
import errno
import http.client
import ipaddress
import os
import posixpath
import re
import select
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

import orjson

from . import table as T
from .cluster import KINDS, NAMESPACED, RESOURCES, LabAgentPod, ClusterState, Entry, EventTimeline
from .faults import Faults, FaultRule, RequestLog, RequestRecord
from .scenario import Scenario, load_scenario
from .selectors import SelectorError, parse_field_selector, parse_label_selector

__all__ = ["LabAgentPod", "LabApiServer", "LoggedRequest"]

DEFAULT_USER = "system:serviceaccount:demo:aksnet-top"
MAX_WATCH_SECONDS = 1800
_SHORT = {"nodes": ["no"], "pods": ["po"], "services": ["svc"], "events": ["ev"], "namespaces": ["ns"]}
_SINGULAR = {"nodes": "node", "pods": "pod", "services": "service", "events": "event", "namespaces": "namespace"}


class _HTTPError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details, self.headers = code, reason, message, details, headers


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> bytes:
    d: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "message": message, "reason": reason, "code": code}
    if details:
        d["details"] = details
    return orjson.dumps(d)


class LoggedRequest(NamedTuple):
    """One served request, for request-rate budgets: ``(t, verb, resource, path, status)``.

    ``t`` is ``time.monotonic()`` when the answer went out, ``arrived`` when the request
    line was read (what a rate limit on the server side counts); ``verb`` is get, list,
    watch, proxy, discovery, create, update, patch, delete or other; ``status`` 0 = dropped.
    """

    t: float
    verb: str
    resource: str | None
    path: str
    status: int
    arrived: float = 0.0


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            406: "NotAcceptable", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge", 422: "Invalid",
            429: "TooManyRequests",
            500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
_MESSAGES = {401: "Unauthorized", 429: "Too many requests, please try again later.",
             500: "Internal error occurred: etcdserver: request timed out",
             503: "The server is currently unable to handle the request", 504: "Timeout: request did not complete within the allotted timeout"}


class LabApiServer:
    """The lab's API server. ``start()`` listens in a background thread; ``stop()`` joins all.

    ``scenario`` is a :class:`Scenario`, or a built-in name / file path (``nodes`` rescales).
    ``time_scale`` stretches the scenario timeline (0.01 = 100x faster); ``run_timeline=False``
    leaves it to the caller (``srv.timeline.apply_until(seconds)``).
    """

    def __init__(self, scenario: Scenario | str, host: str = "127.0.0.1", port: int = 0, tls: bool = False,
                 token: str | None = None, client_cert_auth: bool = False, bookmark_interval: float = 1.0,
                 nodes: int | None = None, time_scale: float = 1.0, run_timeline: bool = True,
                 user: str = DEFAULT_USER, clock: Callable[[], float] = time.time, log_size: int = 10_000,
                 request_log_size: int = 100_000):
        if isinstance(scenario, str):
            scenario = load_scenario(scenario, nodes=nodes)
        self.scenario = scenario
        self.host, self._port = host, port
        self.tls = tls or client_cert_auth
        self.token = token
        self.client_cert_auth = client_cert_auth
        self.bookmark_interval = bookmark_interval
        self.user = user
        self.state = ClusterState(scenario, clock=clock, log_size=log_size)
        self.timeline = EventTimeline(self.state, scenario.timeline, time_scale=time_scale)
        self.run_timeline = run_timeline
        self.faults = Faults()
        self.requests = RequestLog()
        # pod proxy bounds (kube-apiserver has none of its own; the lab must not hang a test)
        self.proxy_dial_timeout = 3.0          # seconds to connect to the pod
        self.proxy_timeout = 10.0              # seconds for the whole upstream answer
        self.proxy_max_bytes = 16 << 20        # bigger answers are refused with 502
        # writes (POST/PUT/PATCH/DELETE) go to ``writable.handle(...)`` when set; None = read-only
        self.writable: Any = None
        self._request_log: deque[LoggedRequest] = deque(maxlen=request_log_size)
        self._request_log_lock = threading.Lock()
        self.pki = None
        self._httpd: _ApiServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self._on_stop: list[Callable[[], None]] = []
        self.started_at = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "LabApiServer":
        if self._httpd is not None:
            return self
        ctx = None
        if self.tls:
            from .tls import make_pki
            self.pki = make_pki([self.host], client_cn=self.user)
            ctx = self.pki.server_context(self.client_cert_auth)
        self._httpd = _ApiServer((self.host, self._port), _ApiHandler, self, ctx)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"lab-apiserver:{self.port}", daemon=True)
        self._thread.start()
        self.started_at = time.monotonic()
        if self.run_timeline:
            self.timeline.start()
        return self

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else self._port

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def add_stop_callback(self, fn: Callable[[], None]) -> None:
        self._on_stop.append(fn)

    def stop(self) -> None:
        """Close the listener and every open connection (watches included), join all threads."""
        if self._httpd is None:
            return
        self.stopping.set()
        self.timeline.stop()
        with self.state.lock:
            self.state.lock.notify_all()
        httpd, self._httpd = self._httpd, None
        httpd.shutdown()
        httpd.close_all_connections()
        httpd.server_close()          # joins handler threads (block_on_close)
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None
        if self.pki:
            self.pki.cleanup()
        for fn in self._on_stop:
            try:
                fn()
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
        self._on_stop.clear()

    def __enter__(self) -> "LabApiServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ agent pods
    def set_agent_pods(self, pods: Mapping[str, LabAgentPod]) -> dict[str, str]:
        """Make the aksnet-top agent pods exactly ``pods`` (node name -> :class:`LabAgentPod`).

        Returns node name -> pod name. See :meth:`ClusterState.set_agent_pods`.
        """
        return self.state.set_agent_pods(pods)

    def set_agent_pod(self, node: int | str, pod: LabAgentPod | None) -> str | None:
        """Add, change or (``None``) remove one node's agent pod; returns its pod name."""
        return self.state.set_agent_pod(node, pod)

    def agent_pods(self) -> dict[str, str]:
        """Node name -> agent pod name."""
        return self.state.agent_pod_names()

    # ------------------------------------------------------------------ request log
    def request_log(self, since: float | None = None) -> list[LoggedRequest]:
        """Served requests, oldest first (bounded); ``since`` is a ``time.monotonic()`` value."""
        with self._request_log_lock:
            log = list(self._request_log)
        if since is None:
            return log
        return [r for r in log if r.t >= since]

    def _log_request(self, verb: str, resource: str | None, path: str, status: int,
                     arrived: float | None = None) -> None:
        rec = LoggedRequest(time.monotonic(), verb, resource, path, status,
                            time.monotonic() if arrived is None else arrived)
        with self._request_log_lock:
            self._request_log.append(rec)

    def expire(self) -> None:
        """Forget the watch log: older watch RVs and continue tokens now get 410 Expired."""
        self.state.store.expire_log()

    # ------------------------------------------------------------------ kubeconfig
    def kubeconfig(self, context: str = "lab", namespace: str = "default") -> dict[str, Any]:
        cluster: dict[str, Any] = {"server": self.url}
        if self.pki:
            cluster["certificate-authority-data"] = base64.b64encode(self.pki.ca_pem).decode()
        user: dict[str, Any] = {}
        if self.token:
            user["token"] = self.token
        if self.client_cert_auth and self.pki:
            user["client-certificate-data"] = base64.b64encode(self.pki.client_cert_pem).decode()
            user["client-key-data"] = base64.b64encode(self.pki.client_key_pem).decode()
        name = f"{context}"
        return {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": f"{name}-user", "user": user}],
            "contexts": [{"name": context, "context": {"cluster": name, "user": f"{name}-user",
                                                       "namespace": namespace}}],
            "current-context": context,
        }

    def write_kubeconfig(self, path: str, context: str = "lab") -> str:
        """Write a kubeconfig (mode 0600) that kubectl and the python client accept."""
        import yaml
        data = yaml.safe_dump(self.kubeconfig(context), sort_keys=False)
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(data)
        return path


class _ApiServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], handler: type, lab: LabApiServer, ctx: Any):
        self.lab = lab
        self.ssl_context = ctx
        self._conns: set[socket.socket] = set()
        self._upstreams: set[socket.socket] = set()      # pod proxy connections in flight
        self._conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        # headers and body go out in separate writes: without this a keep-alive client
        # waits ~40 ms for the delayed ACK on every request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def add_upstream(self, sock: socket.socket) -> None:
        with self._conns_lock:
            self._upstreams.add(sock)

    def discard_upstream(self, sock: socket.socket) -> None:
        with self._conns_lock:
            self._upstreams.discard(sock)

    def close_all_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns) + list(self._upstreams)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # client went away, TLS handshake failed...: not the lab's problem


# ---------------------------------------------------------------------------- pod proxy helpers

_PROXY = re.compile(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/proxy(/.*)?", re.S)
# hop-by-hop and per-connection headers: never forwarded either way (net/http/httputil)
_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
                  "trailer", "transfer-encoding", "upgrade"})
_NOT_UPSTREAM = _HOP | {"authorization", "host", "content-length", "expect"}
_NOT_DOWNSTREAM = _HOP | {"content-length", "date", "server"}
_ERRNO_TEXT = {errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to host",
               errno.ENETUNREACH: "network is unreachable", errno.ECONNRESET: "connection reset by peer",
               errno.ETIMEDOUT: "connection timed out", errno.EPIPE: "broken pipe"}
MAX_REQUEST_BODY = 3 << 20      # kube-apiserver's MaxRequestBodyBytes
_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _goq(s: str) -> str:
    """Go's %q, near enough for error messages."""
    return orjson.dumps(s).decode()


def _errno_text(e: OSError) -> str:
    """The syscall error as Go prints it (``connection refused``)."""
    if e.errno in _ERRNO_TEXT:
        return _ERRNO_TEXT[e.errno]
    t = e.strerror or str(e)
    return t[:1].lower() + t[1:]


def _global_unicast(ip: str) -> bool:
    """Go's net.IP.IsGlobalUnicast: what kube-apiserver lets the pod proxy dial."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (a.is_unspecified or a.is_loopback or a.is_link_local or a.is_multicast
                or a == ipaddress.IPv4Address("255.255.255.255"))


def _upstream_path(rest: str) -> str:
    """The path the pod sees: cleaned like Go's path.Join, trailing slash kept, re-escaped like url.EscapedPath."""
    rest = rest.lstrip("/")
    if not rest:
        return "/"
    p = posixpath.normpath("/" + rest)
    if rest.endswith("/") and not p.endswith("/"):
        p += "/"
    return quote(p, safe="/$&+,:;=@")


def _api_parts(path: str) -> tuple[str | None, str | None]:
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


def _q1(q: dict[str, list[str]], key: str) -> str | None:
    v = q.get(key)
    return v[-1] if v else None


def _truthy(v: str | None) -> bool:
    return v is not None and v.lower() in ("true", "1")


class _ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lab-apiserver"
    sys_version = ""
    timeout = 120          # idle keep-alive connections close after this
    server: _ApiServer

    # quiet
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        if self.server.ssl_context is not None:
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(self.timeout)

    @property
    def lab(self) -> LabApiServer:
        return self.server.lab

    # ------------------------------------------------------------------ plumbing
    def _record(self, status: int) -> None:
        self.lab.requests.add(RequestRecord(self.command, self._path, {k: v[-1] for k, v in self._query.items()},
                                            self._verb, self._resource, status, self._user))
        self.lab._log_request(self._verb, self._resource, self._path, status, getattr(self, "_arrived", None))

    def _send(self, code: int, body: bytes, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self._audit)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._record(code)

    def _send_error(self, e: _HTTPError) -> None:
        self._send(e.code, status_body(e.code, e.reason, e.message, e.details), headers=e.headers)

    def _begin(self) -> None:
        self._arrived = time.monotonic()
        self._audit = os.urandom(8).hex()
        url = urlsplit(self.path)
        self._raw_path, self._raw_query = url.path, url.query
        self._path = url.path.rstrip("/") or "/"
        self._query = parse_qs(url.query, keep_blank_values=True)
        self._verb, self._resource, self._user = "other", None, "system:anonymous"

    def do_GET(self) -> None:
        self._begin()
        try:
            try:
                route = self._route()
            except _HTTPError as e:
                if e.code != 404 or self.lab.writable is None:
                    raise
                route = self._writable_get(e)
            self._user = self._authenticate()
            rule = self.lab.faults.take(self._path, self._verb)
            if rule is not None and self._apply_fault(rule, route):
                return
            route()
        except _HTTPError as e:
            self._send_error(e)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            self.close_connection = True

    do_HEAD = do_GET

    # ------------------------------------------------------------------ writes
    def _write(self) -> None:
        """POST/PUT/PATCH/DELETE: authenticated, faults apply, then ``lab.writable`` or 405."""
        self._begin()
        self._verb = _WRITE_VERBS[self.command]
        self._resource = _api_parts(self._path)[0]
        try:
            body = self._read_body()
            self._user = self._authenticate()
            rule = self.lab.faults.take(self._path, self._verb)
            if rule is not None and self._apply_fault(rule, lambda: None):
                return
            out = self._writable_call(self.command, body)
            if out is None:
                raise _HTTPError(405, "MethodNotAllowed", "the lab API server is read-only: the server does not "
                                 "allow this method on the requested resource")
            self._send(out[0], out[1])
        except _HTTPError as e:
            self._send_error(e)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            self.close_connection = True

    do_POST = do_PUT = do_PATCH = do_DELETE = _write

    def _read_body(self) -> bytes:
        too_big = _HTTPError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_REQUEST_BODY}")
        try:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                parts, total = [], 0
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
            raise _HTTPError(400, "BadRequest", "the request body is not valid HTTP framing") from None
        if n > MAX_REQUEST_BODY:
            self.close_connection = True
            if n <= 4 * MAX_REQUEST_BODY:       # drain it, so the client gets to read the 413
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
            raise _HTTPError(500, "InternalError", f"Internal error occurred: {type(e).__name__}: {e}") from None

    def _writable_get(self, not_found: _HTTPError) -> Callable[[], None]:
        """GETs the read side does not serve (/apis/..., serviceaccounts...) go to ``lab.writable``."""
        resource, name = _api_parts(self._path)
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

    # ------------------------------------------------------------------ auth
    def _authenticate(self) -> str:
        lab = self.lab
        auth = self.headers.get("Authorization", "")
        if self.server.ssl_context is not None and lab.client_cert_auth:
            from .tls import peer_identity
            cn = peer_identity(self.request.getpeercert())
            if cn:
                return cn
        if lab.token is not None:
            if auth == f"Bearer {lab.token}":
                return lab.user
            raise _HTTPError(401, "Unauthorized", "Unauthorized")
        if lab.client_cert_auth:
            raise _HTTPError(401, "Unauthorized", "Unauthorized")
        return lab.user          # no auth configured: everyone is the lab's user

    # ------------------------------------------------------------------ faults
    def _apply_fault(self, r: FaultRule, route: Callable[[], None]) -> bool:
        a = r.action
        if a == "delay":
            self.lab.stopping.wait(min(r.seconds, 60))
            return False
        if a == "drop":
            self._record(0)
            self.close_connection = True
            try:
                self.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        if a == "forbid":
            ns = self._ns
            scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            if self._verb == "proxy":     # RBAC sees verb get on the subresource pods/proxy
                raise _HTTPError(403, "Forbidden", f'pods "{self._proxy_id}" is forbidden: User "{self._user}" cannot '
                                 f'get resource "pods/proxy" in API group "" {scope}',
                                 {"name": self._proxy_id, "kind": "pods"})
            verb = self._verb if self._verb in ("get", "list", "watch", "create", "update", "patch", "delete") \
                else "get"
            raise _HTTPError(403, "Forbidden", f'{r.resource} is forbidden: User "{self._user}" cannot {verb} resource '
                             f'"{r.resource}" in API group "" {scope}',
                             {"kind": r.resource})
        if a == "status":
            code = r.status
            headers = {"Retry-After": str(r.retry_after)} if r.retry_after is not None else None
            details = {"retryAfterSeconds": r.retry_after} if r.retry_after is not None else None
            raise _HTTPError(code, _REASONS.get(code, "Unknown"), r.message or _MESSAGES.get(code, f"lab fault {code}"),
                             details, headers)
        if a == "malformed_json":
            if self._verb == "watch":
                self._watch_fault = "malformed"
                return False
            self._send(200, b'{"kind":"' + (KINDS.get(self._resource or "", "Status")).encode()
                       + b'List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"tru')
            return True
        if a in ("cut_watch", "expire_watch"):
            self._watch_fault = a
            self._cut_after = r.after_events
            return False
        return False

    # ------------------------------------------------------------------ routing
    _ns: str | None = None
    _proxy_id = ""
    _watch_fault: str | None = None
    _cut_after = 0

    def _route(self) -> Callable[[], None]:
        p = self._path
        q = self._query
        if p in ("/healthz", "/livez", "/readyz"):
            return lambda: self._send(200, b"ok", "text/plain; charset=utf-8")
        if p == "/version":
            self._verb = "discovery"
            return self._version
        if p == "/api":
            self._verb = "discovery"
            return self._api
        if p == "/apis":
            self._verb = "discovery"
            return self._apis
        if p == "/api/v1":
            self._verb = "discovery"
            return self._resources
        if p.startswith("/api/v1/namespaces/") and "/proxy" in p:
            m = _PROXY.fullmatch(unquote(self._raw_path))
            if m:
                ns, ident, rest = m.groups()
                self._verb, self._resource, self._ns, self._proxy_id = "proxy", "pods", ns, ident
                return lambda: self._proxy(ns, ident, rest or "")
        parts = p.split("/")[3:] if p.startswith("/api/v1/") else None
        if not parts:
            raise _HTTPError(404, "NotFound", "the server could not find the requested resource")
        watch = _truthy(_q1(q, "watch"))
        if parts[0] == "watch":         # legacy /api/v1/watch/... paths
            watch, parts = True, parts[1:]
        ns = None
        if len(parts) >= 3 and parts[0] == "namespaces":
            ns, parts = parts[1], parts[2:]
        elif len(parts) == 2 and parts[0] == "namespaces":
            parts = ["namespaces", parts[1]]
        if not parts or parts[0] not in RESOURCES or len(parts) > 2 or (ns is not None and parts[0] not in NAMESPACED):
            raise _HTTPError(404, "NotFound", "the server could not find the requested resource")
        resource = parts[0]
        name = parts[1] if len(parts) == 2 else None
        self._resource, self._ns = resource, ns
        if name is not None and resource in NAMESPACED and ns is None:
            raise _HTTPError(404, "NotFound", "the server could not find the requested resource")
        if watch:
            self._verb = "watch"
            return lambda: self._watch(resource, ns, name)
        if name is not None:
            self._verb = "get"
            return lambda: self._get(resource, ns, name)
        self._verb = "list"
        return lambda: self._list(resource, ns)

    # ------------------------------------------------------------------ discovery
    def _version(self) -> None:
        v = self.lab.scenario.cluster.kubernetes_version
        major, minor, _ = v.split(".")
        self._send(200, orjson.dumps({
            "major": major, "minor": minor, "gitVersion": f"v{v}", "gitCommit": "5a5b5c5d5e5f6061626364656667686970717273",
            "gitTreeState": "clean", "buildDate": "2024-11-12T09:34:17Z", "goVersion": "go1.22.8", "compiler": "gc",
            "platform": "linux/amd64"}))

    def _api(self) -> None:
        self._send(200, orjson.dumps({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.lab.host}:{self.lab.port}"}]}))

    def _apis(self) -> None:
        if self.lab.writable is not None:
            out = self._writable_call("GET", b"")
            if out is not None:
                self._send(out[0], out[1])
                return
            d = self._writable_discovery()
            if isinstance(d, Mapping):
                doc = d.get("/apis") or (d if d.get("kind") == "APIGroupList" else None)
                if doc is not None:
                    self._send(200, doc if isinstance(doc, bytes) else orjson.dumps(doc))
                    return
        self._send(200, b'{"kind":"APIGroupList","apiVersion":"v1","groups":[]}')

    def _resources(self) -> None:
        res = []
        for r in RESOURCES:
            res.append({"name": r, "singularName": _SINGULAR[r], "namespaced": r in NAMESPACED, "kind": KINDS[r],
                        "verbs": ["get", "list", "watch"], "shortNames": _SHORT[r],
                        **({"categories": ["all"]} if r in ("pods", "services") else {}),
                        "storageVersionHash": base64.b64encode(r.encode()).decode()[:11] + "="})
        pods = next(x for x in res if x["name"] == "pods")
        res.insert(res.index(pods) + 1, {"name": "pods/proxy", "singularName": "", "namespaced": True,
                                         "kind": "PodProxyOptions", "verbs": ["create", "delete", "get", "patch",
                                                                              "update"]})
        if self.lab.writable is not None:
            # extra core resources (serviceaccounts...): discovery()["/api/v1#resources"] (or "/api/v1"),
            # an APIResourceList-like {"resources": [...]} or a plain list
            d = self._writable_discovery()
            extra = (d.get("/api/v1#resources") or d.get("/api/v1")) if isinstance(d, Mapping) else None
            if isinstance(extra, Mapping):
                extra = extra.get("resources")
            if isinstance(extra, list):
                have = {x["name"] for x in res}
                res += [x for x in extra if isinstance(x, Mapping) and x.get("name") not in have]
        self._send(200, orjson.dumps({"kind": "APIResourceList", "groupVersion": "v1", "resources": res}))

    # ------------------------------------------------------------------ read helpers
    def _want_table(self) -> bool:
        acc = self.headers.get("Accept", "")
        return "as=Table" in acc and "g=meta.k8s.io" in acc

    def _matchers(self, resource: str) -> tuple[Callable | None, Callable | None]:
        try:
            lsel = parse_label_selector(_q1(self._query, "labelSelector"))
            fsel = parse_field_selector(_q1(self._query, "fieldSelector"), resource)
        except SelectorError as e:
            raise _HTTPError(400, "BadRequest", str(e)) from None
        return lsel, fsel

    @staticmethod
    def _match(e: Entry, lsel: Callable | None, fsel: Callable | None) -> bool:
        return (lsel is None or lsel(e.labels)) and (fsel is None or fsel(e.obj))

    def _not_found(self, resource: str, name: str) -> _HTTPError:
        return _HTTPError(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource})

    def _table_bytes(self, resource: str, entries: list[Entry], rv: int, cont: str | None = None,
                     remaining: int | None = None) -> bytes:
        inc = _q1(self._query, "includeObject") or "Metadata"
        now = self.lab.state.now()
        rows = []
        for e in entries:
            cells = orjson.dumps(T.row_cells(resource, e.obj, now))
            if inc == "None":
                rows.append(b'{"cells":' + cells + b"}")
            elif inc == "Object":
                rows.append(b'{"cells":' + cells + b',"object":' + e.raw + b"}")
            else:
                pm = orjson.dumps({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                   "metadata": e.obj["metadata"]})
                rows.append(b'{"cells":' + cells + b',"object":' + pm + b"}")
        md: dict[str, Any] = {"resourceVersion": str(rv)}
        if cont:
            md["continue"] = cont
        if remaining is not None:
            md["remainingItemCount"] = remaining
        return (b'{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":' + orjson.dumps(md)
                + b',"columnDefinitions":' + orjson.dumps(T.COLUMNS[resource]) + b',"rows":[' + b",".join(rows) + b"]}")

    def _get(self, resource: str, ns: str | None, name: str) -> None:
        key = f"{ns}/{name}" if ns else name
        e = self.lab.state.store.get(resource, key)
        if e is None:
            raise self._not_found(resource, name)
        if self._want_table():
            self._send(200, self._table_bytes(resource, [e], e.rv),
                       "application/json;as=Table;v=v1;g=meta.k8s.io")
        else:
            self._send(200, e.raw)

    def _list(self, resource: str, ns: str | None) -> None:
        store = self.lab.state.store
        lsel, fsel = self._matchers(resource)
        limit_s = _q1(self._query, "limit")
        try:
            limit = int(limit_s) if limit_s not in (None, "") else 0
        except ValueError:
            raise _HTTPError(400, "BadRequest", f"limit: Invalid value: {limit_s!r}") from None
        cont = _q1(self._query, "continue") or None
        start_key = None
        rv, keys, items = store.snapshot(resource)
        if cont:
            try:
                tok = orjson.loads(base64.urlsafe_b64decode(cont.encode() + b"=="))
                tok_rv, start_key = int(tok["rv"]), str(tok["start"])
            except Exception:  # noqa: BLE001 - any garbage is a bad token
                raise _HTTPError(400, "BadRequest", "continue key is not valid: incorrect encoded start "
                                 "resourceVersion (version meta.k8s.io/v1)") from None
            if tok_rv < store.floor:
                raise _HTTPError(410, "Expired", "The provided continue parameter is too old to display a consistent "
                                 "list result. You can start a new list without the continue parameter, or use "
                                 "the continue token in this response to retrieve the remainder of the results. "
                                 "Continuing with the provided token results in an inconsistent list - objects "
                                 "that were created, modified, or deleted between the time the first chunk was "
                                 "returned and now may show up in the list.")
            rv = tok_rv if tok_rv <= rv else rv
        lo, hi = 0, len(keys)
        if ns is not None:
            lo = bisect.bisect_left(keys, ns + "/")
            hi = bisect.bisect_left(keys, ns + "0")   # '0' sorts right after '/'
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
            self._send(200, self._table_bytes(resource, out, rv, next_tok, remaining),
                       "application/json;as=Table;v=v1;g=meta.k8s.io")
            return
        md: dict[str, Any] = {"resourceVersion": str(rv)}
        if next_tok:
            md["continue"] = next_tok
        if remaining is not None:
            md["remainingItemCount"] = remaining
        body = b"".join((b'{"kind":"', KINDS[resource].encode(), b'List","apiVersion":"v1","metadata":',
                         orjson.dumps(md), b',"items":[', b",".join(e.raw for e in out), b"]}"))
        self._send(200, body)

    # ------------------------------------------------------------------ pod proxy
    def _proxy(self, ns: str, ident: str, rest: str) -> None:
        """``pods/{[scheme:]name[:port]}/proxy/{path}`` as kube-apiserver's ProxyREST does it.

        Port: the given one, else the pod's first container port. The pod's first podIPs
        entry must be a global unicast address (400 "address not allowed" otherwise, e.g.
        while Pending); any failure to get an HTTP answer is 503 "error trying to reach
        service: ...". Phase and readiness are not checked: kube-apiserver does not either.
        """
        lab = self.lab
        parts = ident.split(":")
        if len(parts) > 3:
            raise _HTTPError(400, "BadRequest", f"invalid pod request {_goq(ident)}")
        scheme, name, port_s = parts if len(parts) == 3 else ("", parts[0], parts[1] if len(parts) == 2 else "")
        if not name or scheme not in ("", "http", "https"):
            raise _HTTPError(400, "BadRequest", f"invalid pod request {_goq(ident)}")
        e = lab.state.store.get("pods", f"{ns}/{name}")
        if e is None:
            raise self._not_found("pods", name)
        pod = e.obj
        if not port_s:
            for c in pod.get("spec", {}).get("containers", []):
                if c.get("ports"):
                    port_s = str(c["ports"][0]["containerPort"])
                    break
        ips = pod.get("status", {}).get("podIPs") or []
        ip = (ips[0].get("ip") or "") if ips else ""
        if not _global_unicast(ip):
            raise _HTTPError(400, "BadRequest", "address not allowed")

        def unreachable(msg: str) -> _HTTPError:
            return _HTTPError(503, "ServiceUnavailable", f"error trying to reach service: {msg}")

        if scheme == "https":
            raise unreachable("https to pods is not supported by the lab's pod proxy (use http:NAME:PORT)")
        if not port_s:
            port = 80
        elif port_s.isdigit():
            port = int(port_s)
            if not 0 < port < 65536:
                raise unreachable(f"dial tcp: address {port_s}: invalid port")
        else:
            try:
                port = socket.getservbyname(port_s, "tcp")    # Go's dialer resolves service names too
            except OSError:
                raise unreachable(f"dial tcp: lookup tcp/{port_s}: unknown port") from None
        host = f"[{ip}]" if ":" in ip else ip
        display = f"{host}:{port}"
        path = _upstream_path(rest)
        fwd_uri = f"/api/v1/namespaces/{ns}/pods/{ident}/proxy{path}"
        target = lab.state.dial_target(ns, name, port)
        if target is None:       # a lab pod nothing runs behind: its ports refuse
            raise unreachable(f"dial tcp {display}: connect: connection refused")
        deadline = time.monotonic() + lab.proxy_timeout
        try:
            sock = socket.create_connection(target, timeout=max(0.001, min(lab.proxy_dial_timeout,
                                                                            deadline - time.monotonic())))
        except TimeoutError:
            raise unreachable(f"dial tcp {display}: i/o timeout") from None
        except OSError as ex:
            raise unreachable(f"dial tcp {display}: connect: {_errno_text(ex)}") from None
        self.server.add_upstream(sock)
        try:
            if lab.stopping.is_set():
                self.close_connection = True
                return
            self._proxy_exchange(sock, target, display, path + ("?" + self._raw_query if self._raw_query else ""),
                                 fwd_uri, deadline, unreachable)
        finally:
            self.server.discard_upstream(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _upstream_headers(self, fwd_uri: str) -> list[tuple[str, str]]:
        out = [(k, v) for k, v in self.headers.items()
               if k.lower() not in _NOT_UPSTREAM and k.lower() != "x-forwarded-for"
               and not k.lower().startswith("impersonate-")]
        prior = self.headers.get("X-Forwarded-For")
        client = self.client_address[0] if self.client_address else ""
        out.append(("X-Forwarded-For", f"{prior}, {client}" if prior else client))
        out.append(("X-Forwarded-Uri", fwd_uri))
        return out

    def _proxy_exchange(self, sock: socket.socket, target: tuple[str, int], display: str, path_qs: str,
                        fwd_uri: str, deadline: float, unreachable: Callable[[str], _HTTPError]) -> None:
        lab = self.lab

        def left() -> float:
            r = deadline - time.monotonic()
            if r <= 0:
                raise TimeoutError
            return r

        conn = http.client.HTTPConnection(target[0], target[1])
        conn.sock = sock
        try:
            try:
                sock.settimeout(left())
                conn.putrequest(self.command, path_qs, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", display)
                for k, v in self._upstream_headers(fwd_uri):
                    conn.putheader(k, v)
                conn.endheaders()
                sock.settimeout(left())
                resp = conn.getresponse()
            except TimeoutError:
                raise unreachable("net/http: timeout awaiting response headers") from None
            except http.client.RemoteDisconnected:
                raise unreachable("EOF") from None
            except http.client.BadStatusLine as ex:
                line = str(ex.line).rstrip("\r\n")
                raise unreachable(f"net/http: HTTP/1.x transport connection broken: malformed HTTP response "
                                  f"{_goq(line)}") from None
            except http.client.HTTPException as ex:
                raise unreachable(f"net/http: HTTP/1.x transport connection broken: {ex}") from None
            except OSError as ex:
                raise unreachable(f"read tcp {display}: {_errno_text(ex)}") from None
            declared = resp.getheader("Content-Length")
            declared = declared.strip() if declared and declared.strip().isdigit() else None
            cap = lab.proxy_max_bytes
            too_big = _HTTPError(502, "InternalError", f"the lab's pod proxy refuses answers over {cap} bytes, and "
                                 f"{display} sent more")
            if declared is not None and int(declared) > cap:
                raise too_big
            chunks: list[bytes] = []
            total, cut = 0, False
            if self.command != "HEAD":
                try:
                    while True:
                        sock.settimeout(left())
                        b = resp.read1(65536)
                        if not b:
                            break
                        total += len(b)
                        if total > cap:
                            raise too_big
                        chunks.append(b)
                except (TimeoutError, OSError, http.client.HTTPException):
                    cut = True      # the real proxy passes the status on, then breaks the body off
            if lab.stopping.is_set():
                self.close_connection = True
                return
            self._relay(resp.status, resp.getheaders(), b"".join(chunks), declared, cut)
        finally:
            conn.close()

    def _relay(self, code: int, headers: list[tuple[str, str]], body: bytes, declared: str | None,
               cut: bool) -> None:
        """Answer with the pod's status, headers and body (apiserver headers first, like its filters)."""
        self.send_response(code)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self._audit)
        for k, v in headers:
            lk = k.lower()
            if lk in _NOT_DOWNSTREAM or lk.startswith("access-control-"):
                continue
            self.send_header(k, v)
        if cut:
            self.close_connection = True
            if declared is not None:
                self.send_header("Content-Length", declared)
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if body:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
        else:
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(body)))
            elif declared is not None:
                self.send_header("Content-Length", declared)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        self.wfile.flush()
        self._record(code)

    # ------------------------------------------------------------------ watch
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
            fsel = (lambda o: o["metadata"]["name"] == name and (inner is None or inner(o)))
        rv_s = _q1(self._query, "resourceVersion")
        try:
            timeout = float(_q1(self._query, "timeoutSeconds") or MAX_WATCH_SECONDS)
            start_rv = int(rv_s) if rv_s not in (None, "", "0") else None
        except ValueError:
            raise _HTTPError(400, "BadRequest", f"resourceVersion: Invalid value: {rv_s!r}") from None
        timeout = max(0.0, min(timeout, MAX_WATCH_SECONDS))
        bookmarks = _truthy(_q1(self._query, "allowWatchBookmarks"))
        table = self._want_table()
        kind = KINDS[resource]

        def wanted(e: Entry | None) -> bool:
            return e is not None and (ns is None or e.namespace == ns) and self._match(e, lsel, fsel)

        self.send_response(200)
        self.send_header("Content-Type", "application/json" if not table else "application/json;as=Table;v=v1;g=meta.k8s.io")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self._audit)
        self.end_headers()
        self._record(200)
        self.close_connection = True   # watches end the connection, like most proxies in front of the server

        def obj_bytes(e: Entry) -> bytes:
            return self._table_bytes(resource, [e], e.rv) if table else e.raw

        def line(typ: str, e: Entry) -> bytes:
            return b'{"type":"' + typ.encode() + b'","object":' + obj_bytes(e) + b"}\n"

        def expired(rv: int) -> bytes:
            return (b'{"type":"ERROR","object":' + status_body(
                410, "Expired", f"too old resource version: {rv} ({store.floor})") + b"}\n")

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
                    self._chunk(b'{"type":"BOOKMARK","object":{"kind":"' + kind.encode() + b'","apiVersion":"v1",'
                                b'"metadata":{"resourceVersion":"' + str(cursor).encode() + b'"}}}\n')
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
                if evs is None:   # fell behind the log
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
