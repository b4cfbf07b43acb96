"""A Kubernetes API server for the lab, over real HTTP/1.1 (stdlib, one thread per connection).

Serves the read side of core/v1 that aksnet-top and kubectl use: discovery, list with
paging and selectors, get, watch (chunked, bookmarks, 410 Expired), server-side Table
printing, Status errors, bearer-token and client-certificate auth, and fault injection.
Everything it serves comes from :class:`probes.lab.cluster.ClusterState`.

It also proxies to pods (``pods/{name}:{port}/proxy/{path}``) as kube-apiserver does, so
that the demo and the tests read the per-node agents down the production path, and hands
writes to an optional ``writable`` object (default: read-only, 405).

This module is the server's lifecycle, kubeconfig and request log; the handler is
:mod:`.apiroutes`, one module per job behind it.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml

from .apirequest import status_body
from .apiroutes import ApiHandler
from .cluster import ClusterState, EventTimeline
from .faults import Faults, RequestLog
from .httpbase import LabHTTPServer, ServerThread
from .records import LabAgentPod
from .scenario import Scenario, load_scenario

if TYPE_CHECKING:
    from .tls import LabPKI  # imported lazily at run time: tls loads cryptography

__all__ = ["LabAgentPod", "LabApiServer", "LoggedRequest", "status_body"]

DEFAULT_USER = "system:serviceaccount:demo:aksnet-top"


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


class LabApiServer:
    """The lab's API server. ``start()`` listens in a background thread; ``stop()`` joins all.

    ``scenario`` is a :class:`Scenario`, or a built-in name / file path (``nodes`` rescales).
    ``time_scale`` stretches the scenario timeline (0.01 = 100x faster); ``run_timeline=False``
    leaves it to the caller (``srv.timeline.apply_until(seconds)``).
    """

    # set by serve.start_embedded only, not here (the demo's agent farm reads them with getattr)
    scenario_arg: str
    nodes_arg: int | None

    def __init__(
        self,
        scenario: Scenario | str,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        token: str | None = None,
        client_cert_auth: bool = False,
        bookmark_interval: float = 1.0,
        nodes: int | None = None,
        time_scale: float = 1.0,
        run_timeline: bool = True,
        user: str = DEFAULT_USER,
        clock: Callable[[], float] = time.time,
        log_size: int = 10_000,
        request_log_size: int = 100_000,
    ):
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
        self.proxy_dial_timeout = 3.0  # seconds to connect to the pod
        self.proxy_timeout = 10.0  # seconds for the whole upstream answer
        self.proxy_max_bytes = 16 << 20  # bigger answers are refused with 502
        # writes (POST/PUT/PATCH/DELETE) go to ``writable.handle(...)`` when set; None = read-only
        self.writable: Any = None
        self._request_log: deque[LoggedRequest] = deque(maxlen=request_log_size)
        self._request_log_lock = threading.Lock()
        self.pki: LabPKI | None = None
        self._serving = ServerThread()
        self.stopping = threading.Event()
        self._on_stop: list[Callable[[], None]] = []
        self.started_at = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LabApiServer:
        if self._serving.serving:
            return self
        ctx = None
        if self.tls:
            # lazy: tls imports cryptography (~100 ms), only servers with TLS need it
            from .tls import make_pki

            self.pki = make_pki([self.host], client_cn=self.user)
            ctx = self.pki.server_context(self.client_cert_auth)
        self._serving.serve(LabHTTPServer((self.host, self._port), ApiHandler, self, ctx), "lab-apiserver")
        self.started_at = time.monotonic()
        if self.run_timeline:
            self.timeline.start()
        return self

    @property
    def port(self) -> int:
        return self._serving.bound_port or self._port

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def add_stop_callback(self, fn: Callable[[], None]) -> None:
        self._on_stop.append(fn)

    def stop(self) -> None:
        """Close the listener and every open connection (watches included), join all threads."""
        if not self._serving.serving:
            return
        self.stopping.set()
        self.timeline.stop()
        with self.state.lock:
            self.state.lock.notify_all()
        self._serving.shutdown()
        if self.pki:
            self.pki.cleanup()
        for fn in self._on_stop:
            try:
                fn()
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
        self._on_stop.clear()

    def __enter__(self) -> LabApiServer:
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

    def _log_request(
        self, verb: str, resource: str | None, path: str, status: int, arrived: float | None = None
    ) -> None:
        rec = LoggedRequest(
            time.monotonic(), verb, resource, path, status, time.monotonic() if arrived is None else arrived
        )
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
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": f"{name}-user", "user": user}],
            "contexts": [
                {"name": context, "context": {"cluster": name, "user": f"{name}-user", "namespace": namespace}}
            ],
            "current-context": context,
        }

    def write_kubeconfig(self, path: str, context: str = "lab") -> str:
        """Write a kubeconfig (mode 0600) that kubectl and the python client accept."""
        data = yaml.safe_dump(self.kubeconfig(context), sort_keys=False)
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(data)
        return path
