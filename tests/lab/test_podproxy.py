"""The lab's pod proxy against loopback stand-ins for the agents, the real client and kubectl.

Every agent here is a thread in this test (joined at teardown); every wait is bounded.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes.client.rest import ApiException

from probes.lab.cluster import LabAgentPod
from tests.support.leaks import guard_threads

NS = "aksnet-top"


@pytest.fixture(autouse=True)
def _no_threads_left():
    yield from guard_threads()


class _AgentHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _AgentServer

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def _answer(self, code: int, ctype: str, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        srv = self.server
        srv.seen.append((self.command, self.path, dict(self.headers)))
        path = self.path.split("?", 1)[0]
        if path == "/v1/results":
            body = json.dumps({"agent": srv.ident, "path": self.path}).encode()
            self._answer(200, "application/json", body, {"X-Agent": srv.ident})
        elif path == "/metrics":
            self._answer(
                200, "text/plain; version=0.0.4; charset=utf-8", f'aksnet_agent_up{{node="{srv.ident}"}} 1\n'.encode()
            )
        elif path == "/healthz":
            self._answer(200, "text/plain; charset=utf-8", b"ok")
        elif path == "/teapot":
            self._answer(418, "application/problem+json", b'{"title":"short and stout"}')
        elif path == "/big":
            self._answer(200, "application/octet-stream", b"x" * srv.big)
        elif path == "/stall":  # headers and half the body, then nothing
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"half":')
            self.wfile.flush()
            srv.release.wait(10)
        else:
            self._answer(404, "text/plain; charset=utf-8", b"404 page not found\n")

    do_HEAD = do_GET


class _AgentServer(ThreadingHTTPServer):
    daemon_threads = False  # joined by server_close()
    block_on_close = True

    def __init__(self, ident: str, release: threading.Event):
        self.ident, self.release, self.big = ident, release, 0
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        super().__init__(("127.0.0.1", 0), _AgentHandler)


class _GarbageHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(2)
        try:
            self.request.recv(4096)
            self.request.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
        except OSError:
            pass


class _GarbageServer(socketserver.ThreadingTCPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True


@pytest.fixture
def agents():
    """agents(ident) -> a started loopback agent; agents.garbage() -> a non-HTTP listener."""
    release = threading.Event()
    servers: list[socketserver.BaseServer] = []
    threads: list[threading.Thread] = []

    def start(srv):
        t = threading.Thread(
            target=srv.serve_forever, kwargs={"poll_interval": 0.05}, name=f"test-agent-{len(servers)}"
        )
        t.start()
        servers.append(srv)
        threads.append(t)
        return srv

    def make(ident: str) -> _AgentServer:
        return start(_AgentServer(ident, release))

    make.garbage = lambda: start(_GarbageServer(("127.0.0.1", 0), _GarbageHandler))
    yield make
    release.set()
    for s in servers:
        s.shutdown()
        s.server_close()
    for t in threads:
        t.join(5)


def _endpoint(srv) -> tuple[str, int]:
    return srv.server_address[0], srv.server_address[1]


def _nodes(srv, n: int) -> list[str]:
    return list(srv.state.nodes)[:n]


def _get(url: str, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 10):
    """-> (status, headers, body) without raising on HTTP errors."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def _proxy_url(srv, pod: str, rest: str = "") -> str:
    return f"{srv.url}/api/v1/namespaces/{NS}/pods/{pod}/proxy{rest}"


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------------------------- happy paths


def test_client_reaches_the_right_agent_by_pod_name(make_lab, kube_client, agents):
    srv, kc = make_lab("healthy")
    a, b = agents("node-a"), agents("node-b")
    n0, n1 = _nodes(srv, 2)
    pods = srv.set_agent_pods({n0: LabAgentPod(endpoint=_endpoint(a)), n1: LabAgentPod(endpoint=_endpoint(b))})
    v1 = kube_client(kc)
    for node, ident in ((n0, "node-a"), (n1, "node-b")):
        for name in (f"{pods[node]}:9102", pods[node], f"http:{pods[node]}:9102"):
            resp = v1.connect_get_namespaced_pod_proxy_with_path(
                name, NS, "v1/results", _preload_content=False, _request_timeout=10
            )
            try:
                got = json.loads(resp.data)
            finally:
                resp.release_conn()
            assert got == {"agent": ident, "path": "/v1/results"}
    text = v1.connect_get_namespaced_pod_proxy_with_path(f"{pods[n1]}:9102", NS, "metrics", _request_timeout=10)
    assert 'aksnet_agent_up{node="node-b"} 1' in text
    # the query string through the client's own serializer
    params = v1.api_client.param_serialize(
        "GET",
        "/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}",
        path_params={"namespace": NS, "name": f"{pods[n0]}:9102", "path": "v1/results"},
        query_params=[("since", 42)],
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    resp = v1.api_client.call_api(*params, _request_timeout=10)
    resp.read()
    assert resp.status == 200 and json.loads(resp.data)["path"] == "/v1/results?since=42"
    # the bearer token is the API server's, never the pod's
    assert all("Authorization" not in h for _, _, h in a.seen + b.seen)


def test_query_status_type_and_body_pass_through(make_lab, agents):
    srv, _ = make_lab("healthy")
    a = agents("node-a")
    (n0,) = _nodes(srv, 1)
    pod = srv.set_agent_pods({n0: LabAgentPod(endpoint=_endpoint(a))})[n0]
    q = "since=12&tag=a%2Fb%20c&x=%E2%9C%93&empty="
    st, h, body = _get(_proxy_url(srv, f"{pod}:9102", f"/v1/results?{q}"))
    assert st == 200 and h["Content-Type"] == "application/json" and h["X-Agent"] == "node-a"
    assert json.loads(body)["path"] == f"/v1/results?{q}"  # byte for byte
    assert a.seen[-1][2]["Host"].endswith(":9102") and a.seen[-1][2]["X-Forwarded-Uri"].endswith("/proxy/v1/results")
    assert "no-cache" in h["Cache-Control"] and h["Audit-Id"]
    st, h, body = _get(_proxy_url(srv, f"{pod}:9102", "/teapot"))
    assert (st, h["Content-Type"], body) == (418, "application/problem+json", b'{"title":"short and stout"}')
    st, h, body = _get(_proxy_url(srv, f"{pod}:9102", "/nothing-here"))
    assert (st, body) == (404, b"404 page not found\n")
    st, h, body = _get(_proxy_url(srv, f"{pod}:9102", "/metrics"))
    assert st == 200 and h["Content-Type"].startswith("text/plain; version=0.0.4")
    st, h, body = _get(_proxy_url(srv, f"{pod}:9102", "/healthz"), method="HEAD")
    assert (st, body, h["Content-Length"]) == (200, b"", "2")
    # percent-encoded path segments are decoded like the real server (the python client sends v1%2Fresults)
    st, _, body = _get(_proxy_url(srv, f"{pod}%3A9102", "/v1%2Fresults"))
    assert st == 200 and json.loads(body)["path"] == "/v1/results"


def test_concurrent_proxy_requests(make_lab, agents):
    srv, _ = make_lab("healthy")
    n = 4
    servers = [agents(f"node-{i}") for i in range(n)]
    nodes = _nodes(srv, n)
    pods = srv.set_agent_pods({node: LabAgentPod(endpoint=_endpoint(s)) for node, s in zip(nodes, servers)})
    jobs = [(i % n, k) for k, i in enumerate(range(20))]
    barrier = threading.Barrier(len(jobs), timeout=10)

    def one(job):
        i, k = job
        barrier.wait()
        st, _, body = _get(_proxy_url(srv, f"{pods[nodes[i]]}:9102", f"/v1/results?since={k}"))
        return st, json.loads(body)

    with ThreadPoolExecutor(len(jobs)) as ex:
        results = list(ex.map(one, jobs, timeout=30))
    for (i, k), (st, got) in zip(jobs, results):
        assert st == 200 and got == {"agent": f"node-{i}", "path": f"/v1/results?since={k}"}


# ---------------------------------------------------------------------------------------------- failures


def test_unknown_pod_is_404(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    st, _, body = _get(_proxy_url(srv, "aksnet-top-agent-zzzzz:9102", "/v1/results"))
    s = json.loads(body)
    assert (st, s["reason"], s["message"]) == (404, "NotFound", 'pods "aksnet-top-agent-zzzzz" not found')
    with pytest.raises(ApiException) as ei:
        kube_client(kc).connect_get_namespaced_pod_proxy_with_path("nope:9102", NS, "metrics", _request_timeout=10)
    assert ei.value.status == 404
    st, _, body = _get(_proxy_url(srv, "a:b:c:d", "/"))
    assert st == 400 and json.loads(body)["message"] == 'invalid pod request "a:b:c:d"'


def test_refused_port_is_503(make_lab, agents):
    srv, _ = make_lab("healthy")
    a = agents("node-a")
    n0, n1 = _nodes(srv, 2)
    pods = srv.set_agent_pods(
        {n0: LabAgentPod(endpoint=("127.0.0.1", _free_port())), n1: LabAgentPod(endpoint=_endpoint(a))}
    )
    ip = srv.state.store.get("pods", f"{NS}/{pods[n0]}").obj["status"]["podIP"]
    st, _, body = _get(_proxy_url(srv, f"{pods[n0]}:9102", "/v1/results"))
    s = json.loads(body)
    assert (st, s["reason"]) == (503, "ServiceUnavailable")
    assert s["message"] == f"error trying to reach service: dial tcp {ip}:9102: connect: connection refused"
    # another port of a live agent pod: nothing listens there either
    st, _, body = _get(_proxy_url(srv, f"{pods[n1]}:9999", "/"))
    assert st == 503 and json.loads(body)["message"].endswith(":9999: connect: connection refused")
    # simulated system pods have nothing behind them
    coredns = next(p for p in srv.state.pods.values() if p.app == "coredns")
    st, _, body = _get(f"{srv.url}/api/v1/namespaces/kube-system/pods/{coredns.name}:53/proxy/")
    assert st == 503 and "connection refused" in json.loads(body)["message"]


def test_hung_agent_is_503_within_the_labs_bound(make_lab):
    srv, _ = make_lab("healthy")
    srv.proxy_timeout = 0.5
    mute = socket.socket()  # accepts connections (kernel backlog) and never answers
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)
    try:
        (n0,) = _nodes(srv, 1)
        pod = srv.set_agent_pods({n0: LabAgentPod(endpoint=mute.getsockname())})[n0]
        t0 = time.monotonic()
        st, _, body = _get(_proxy_url(srv, f"{pod}:9102", "/v1/results"))
        took = time.monotonic() - t0
    finally:
        mute.close()
    s = json.loads(body)
    assert (st, s["reason"]) == (503, "ServiceUnavailable") and took < 3
    assert s["message"] == "error trying to reach service: net/http: timeout awaiting response headers"


def test_dial_timeout_is_503_io_timeout(make_lab):
    srv, _ = make_lab("healthy")
    srv.proxy_dial_timeout = 0.3
    full = socket.socket()  # backlog 0 with one queued connection: further SYNs are dropped
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = []
    try:
        for _ in range(2):
            c = socket.socket()
            c.settimeout(0.3)
            try:
                c.connect(full.getsockname())
            except OSError:
                pass
            fillers.append(c)
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            probe.connect(full.getsockname())
            pytest.skip("this kernel accepts SYNs past a full backlog; no way to stage a dial timeout on loopback")
        except TimeoutError:
            pass
        finally:
            probe.close()
        (n0,) = _nodes(srv, 1)
        pod = srv.set_agent_pods({n0: LabAgentPod(endpoint=full.getsockname())})[n0]
        ip = srv.state.store.get("pods", f"{NS}/{pod}").obj["status"]["podIP"]
        st, _, body = _get(_proxy_url(srv, f"{pod}:9102", "/v1/results"))
    finally:
        for c in fillers:
            c.close()
        full.close()
    assert (
        st == 503 and json.loads(body)["message"] == f"error trying to reach service: dial tcp {ip}:9102: i/o timeout"
    )


def test_garbage_and_oversized_answers(make_lab, agents):
    srv, _ = make_lab("healthy")
    g, a = agents.garbage(), agents("node-b")
    a.big = 2048
    srv.proxy_max_bytes = 1024
    n0, n1 = _nodes(srv, 2)
    pods = srv.set_agent_pods({n0: LabAgentPod(endpoint=_endpoint(g)), n1: LabAgentPod(endpoint=_endpoint(a))})
    st, _, body = _get(_proxy_url(srv, f"{pods[n0]}:9102", "/v1/results"))
    assert st == 503 and json.loads(body)["message"] == (
        "error trying to reach service: net/http: HTTP/1.x transport connection broken: "
        'malformed HTTP response "SSH-2.0-OpenSSH_9.6"'
    )
    st, _, body = _get(_proxy_url(srv, f"{pods[n1]}:9102", "/big"))
    assert st == 502 and "1024 bytes" in json.loads(body)["message"]


def test_stalled_body_is_cut_like_the_real_proxy(make_lab, agents):
    srv, _ = make_lab("healthy")
    srv.proxy_timeout = 0.5
    a = agents("node-a")
    (n0,) = _nodes(srv, 1)
    pod = srv.set_agent_pods({n0: LabAgentPod(endpoint=_endpoint(a))})[n0]
    req = urllib.request.Request(_proxy_url(srv, f"{pod}:9102", "/stall"))
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
        with pytest.raises(Exception) as ei:  # http.client.IncompleteRead: 8 of 100 bytes
            r.read()
    assert "IncompleteRead" in type(ei.value).__name__


def test_pod_without_ip_is_400_address_not_allowed(make_lab, agents):
    """kube-apiserver (pod ResourceLocation) refuses pods whose first podIP is not global unicast."""
    srv, _ = make_lab("healthy")
    a = agents("node-a")
    n0, n1 = _nodes(srv, 2)
    pods = srv.set_agent_pods(
        {n0: LabAgentPod(phase="Pending"), n1: LabAgentPod(ip="127.0.0.1", endpoint=_endpoint(a))}
    )
    for node in (n0, n1):
        st, _, body = _get(_proxy_url(srv, f"{pods[node]}:9102", "/v1/results"))
        s = json.loads(body)
        assert (st, s["reason"], s["message"]) == (400, "BadRequest", "address not allowed")
    # not ready is no obstacle: the proxy does not look at readiness
    srv.set_agent_pods({n0: LabAgentPod(phase="Pending"), n1: LabAgentPod(endpoint=_endpoint(a), ready=False)})
    pod = srv.agent_pods()[n1]
    st, _, _ = _get(_proxy_url(srv, f"{pod}:9102", "/v1/results"))
    assert st == 200


def test_staged_403_and_faults_apply_to_the_proxy(make_lab, kube_client, agents):
    srv, kc = make_lab("healthy")
    a = agents("node-a")
    (n0,) = _nodes(srv, 1)
    pod = srv.set_agent_pods({n0: LabAgentPod(endpoint=_endpoint(a))})[n0]
    v1 = kube_client(kc)
    rule = srv.faults.forbid(None, "pods")
    with pytest.raises(ApiException) as ei:
        v1.connect_get_namespaced_pod_proxy_with_path(f"{pod}:9102", NS, "v1/results", _request_timeout=10)
    s = json.loads(ei.value.body)
    assert ei.value.status == 403 and s["reason"] == "Forbidden"
    assert s["message"] == (
        f'pods "{pod}:9102" is forbidden: User "{srv.user}" cannot get resource "pods/proxy" '
        f'in API group "" in the namespace "{NS}"'
    )
    assert rule.hits == 1 and not a.seen
    srv.faults.clear()
    srv.faults.add(r"/pods/[^/]+/proxy/", status=503, times=1)
    st, _, _ = _get(_proxy_url(srv, f"{pod}:9102", "/v1/results"))
    assert st == 503 and not a.seen
    srv.faults.drop_connection(r"/proxy/", times=1)
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        _get(_proxy_url(srv, f"{pod}:9102", "/v1/results"))
    st, _, _ = _get(_proxy_url(srv, f"{pod}:9102", "/v1/results"))
    assert st == 200 and len(a.seen) == 1
    assert srv.requests.count(path="/proxy/", verb="proxy", status=403) == 1


def test_authentication_applies(make_lab, kube_client, agents):
    srv, kc = make_lab("healthy", token="s3cret")
    a = agents("node-a")
    (n0,) = _nodes(srv, 1)
    pod = srv.set_agent_pods({n0: LabAgentPod(endpoint=_endpoint(a))})[n0]
    st, _, body = _get(_proxy_url(srv, f"{pod}:9102", "/v1/results"))
    assert st == 401 and not a.seen
    st, _, body = _get(_proxy_url(srv, f"{pod}:9102", "/v1/results"), headers={"Authorization": "Bearer s3cret"})
    assert st == 200 and "Authorization" not in a.seen[-1][2]
    assert (
        kube_client(kc).connect_get_namespaced_pod_proxy_with_path(f"{pod}:9102", NS, "healthz", _request_timeout=10)
        == "ok"
    )


def test_request_log_counts_proxy_and_list_calls(make_lab, kube_client, agents):
    srv, kc = make_lab("healthy")
    a = agents("node-a")
    (n0,) = _nodes(srv, 1)
    pod = srv.set_agent_pods({n0: LabAgentPod(endpoint=_endpoint(a))})[n0]
    v1 = kube_client(kc)
    t0 = time.monotonic()
    for k in range(5):
        _get(_proxy_url(srv, f"{pod}:9102", f"/v1/results?since={k}"))
    v1.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=aksnet-top-agent", _request_timeout=10)
    _get(_proxy_url(srv, "gone:9102", "/v1/results"))
    log = srv.request_log(since=t0)
    proxied = [r for r in log if r.verb == "proxy"]
    assert [r.status for r in proxied] == [200] * 5 + [404]
    assert all(r.resource == "pods" and "/proxy/" in r.path for r in proxied)
    assert [(r.verb, r.resource) for r in log if r.verb == "list"] == [("list", "pods")]
    ts = [r.t for r in log]
    assert ts == sorted(ts) and t0 <= ts[0] and ts[-1] <= time.monotonic()
    window = ts[-1] - ts[0]
    rate = len([r for r in log if r.verb in ("proxy", "list")]) / max(window, 1e-3)
    assert rate > 0
    t, verb, resource, path, status, arrived = log[-1]  # a plain tuple too
    assert arrived <= t
    assert (verb, resource, status) == ("proxy", "pods", 404)
