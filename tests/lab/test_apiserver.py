"""The lab API server against the real kubernetes python client (37.x)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from kubernetes import watch
from kubernetes.client.rest import ApiException


def raw_list(v1, method, *args, **kw):
    """List without model deserialization (the way aksnet-top reads big lists)."""
    resp = getattr(v1, method)(*args, _preload_content=False, **kw)
    try:
        return json.loads(resp.data)
    finally:
        resp.release_conn()


def test_models_deserialize(make_lab, kube_client):
    srv, kc = make_lab("azure-cni")
    v1 = kube_client(kc)
    nodes = v1.list_node()
    assert len(nodes.items) == 6
    n = nodes.items[0]
    assert n.status.node_info.kubelet_version == "v1.30.6" and n.spec.pod_cidr is None
    pods = v1.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns")
    assert len(pods.items) == 2 and all(p.status.pod_ip for p in pods.items)
    svc = v1.read_namespaced_service("api-internal", "payments")
    assert svc.spec.type == "LoadBalancer" and not svc.status.load_balancer.ingress
    evs = v1.list_namespaced_event(
        "payments", field_selector="involvedObject.name=api-internal,involvedObject.kind=Service"
    )
    assert len(evs.items) == 1 and "Error syncing load balancer" in evs.items[0].message
    assert {ns.metadata.name for ns in v1.list_namespace().items} >= {"default", "kube-system", "payments"}
    assert len(v1.list_event_for_all_namespaces().items) == 1
    assert v1.read_node(n.metadata.name).metadata.uid == n.metadata.uid
    with pytest.raises(ApiException) as ei:
        v1.read_node("nope")
    assert ei.value.status == 404
    assert json.loads(ei.value.body)["reason"] == "NotFound"


def test_paging_1200_nodes_each_exactly_once(make_lab, kube_client):
    srv, kc = make_lab("overlay", nodes=1200)
    v1 = kube_client(kc)
    names, cont, pages = [], None, 0
    while True:
        page = raw_list(v1, "list_node", limit=250, _continue=cont)
        pages += 1
        names += [i["metadata"]["name"] for i in page["items"]]
        cont = page["metadata"].get("continue")
        if pages == 1:
            assert page["metadata"]["remainingItemCount"] == 950
            assert int(page["metadata"]["resourceVersion"]) == srv.state.store.rv
        if not cont:
            break
    assert pages == 5
    assert len(names) == 1200 and len(set(names)) == 1200
    assert names == sorted(names)
    assert srv.requests.count(path="^/api/v1/nodes$", verb="list") == 5


def test_stale_continue_token_is_410(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    page = raw_list(v1, "list_node", limit=2)
    srv.state.cordon(0)
    srv.expire()
    with pytest.raises(ApiException) as ei:
        raw_list(v1, "list_node", limit=2, _continue=page["metadata"]["continue"])
    assert ei.value.status == 410 and json.loads(ei.value.body)["reason"] == "Expired"
    with pytest.raises(ApiException) as ei:
        raw_list(v1, "list_node", limit=2, _continue="garbage!")
    assert ei.value.status == 400


def test_label_and_field_selectors(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    sysn = raw_list(v1, "list_node", label_selector="agentpool=nodepool1")["items"]
    assert len(sysn) == 3
    assert len(raw_list(v1, "list_node", label_selector="agentpool!=nodepool1")["items"]) == 2
    assert (
        len(
            raw_list(
                v1, "list_node", label_selector="agentpool in (nodepool1,userpool),kubernetes.azure.com/mode==user"
            )["items"]
        )
        == 2
    )
    assert len(raw_list(v1, "list_node", label_selector="agentpool notin (nodepool1)")["items"]) == 2
    assert len(raw_list(v1, "list_node", label_selector="kubernetes.azure.com/localdns-state")["items"]) == 0
    assert len(raw_list(v1, "list_node", label_selector="!kubernetes.azure.com/localdns-state")["items"]) == 5
    node = sysn[1]["metadata"]["name"]
    on_node = raw_list(v1, "list_pod_for_all_namespaces", field_selector=f"spec.nodeName={node}")["items"]
    assert on_node and all(p["spec"]["nodeName"] == node for p in on_node)
    nl = raw_list(
        v1,
        "list_namespaced_pod",
        "kube-system",
        label_selector="k8s-app=node-local-dns",
        field_selector=f"spec.nodeName={node},status.phase=Running",
    )["items"]
    assert len(nl) == 1
    assert len(raw_list(v1, "list_node", field_selector=f"metadata.name={node}")["items"]) == 1
    assert raw_list(v1, "list_namespaced_pod", "default")["items"] == []
    for bad in [dict(label_selector="a in (b"), dict(label_selector="!!x"), dict(field_selector="spec.foo=bar")]:
        with pytest.raises(ApiException) as ei:
            raw_list(v1, "list_node", **bad)
        assert ei.value.status == 400, bad
    assert "is not a known field selector" in json.loads(ei.value.body)["message"]


def collect(srv, v1, n_events, **kw):
    """Watch nodes in a thread; return (events, thread)."""
    events = []
    w = watch.Watch()

    def run():
        for ev in w.stream(v1.list_node, timeout_seconds=5, **kw):
            events.append(
                (ev["type"], ev["raw_object"]["metadata"].get("name"), ev["raw_object"]["metadata"]["resourceVersion"])
            )
            if len(events) >= n_events:
                w.stop()
                break

    t = threading.Thread(target=run)
    t.start()
    return events, t


def wait_watchers(srv, n):
    assert srv.requests.wait_for(lambda recs: sum(1 for r in recs if r.verb == "watch") >= n, timeout=5)


def test_watch_added_modified_deleted(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    rv = raw_list(v1, "list_node")["metadata"]["resourceVersion"]
    events, t = collect(srv, v1, 4, resource_version=rv)
    wait_watchers(srv, 1)
    new = srv.state.add_node("userpool")
    srv.state.cordon(new, True)
    srv.state.set_node_ready(new, False, reason="KubeletNotReady")
    srv.state.remove_node(new)
    t.join(10)
    assert [e[:2] for e in events] == [("ADDED", new), ("MODIFIED", new), ("MODIFIED", new), ("DELETED", new)]
    rvs = [int(e[2]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


def test_watch_without_rv_starts_with_current_objects(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    events, t = collect(srv, v1, 5)
    t.join(10)
    assert [e[0] for e in events] == ["ADDED"] * 5


def test_watch_label_selector_transitions(make_lab, kube_client):
    """An object that stops matching the selector is DELETED for that watcher."""
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    pods = raw_list(v1, "list_namespaced_pod", "kube-system")
    rv = pods["metadata"]["resourceVersion"]
    out = []
    w = watch.Watch()

    def run():
        for ev in w.stream(
            v1.list_namespaced_pod,
            "kube-system",
            resource_version=rv,
            timeout_seconds=5,
            field_selector="spec.nodeName=" + srv.state.resolve_node(0),
        ):
            out.append(ev["type"])
            if len(out) >= 2:
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    wait_watchers(srv, 1)
    srv.state.set_pod_ready("node-local-dns", False, node=4)  # other node: not seen
    srv.state.set_pod_ready("node-local-dns", False, node=0)  # MODIFIED
    srv.state.remove_node(0)  # DELETED (pods on node 0)
    t.join(10)
    assert out == ["MODIFIED", "DELETED"]


def test_bookmarks_arrive(make_lab, kube_client):
    srv, kc = make_lab("healthy", bookmark_interval=0.2)
    v1 = kube_client(kc)
    rv = raw_list(v1, "list_node")["metadata"]["resourceVersion"]
    resp = v1.list_node(
        watch=True, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=1, _preload_content=False
    )
    lines = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    resp.release_conn()
    bms = [e for e in lines if e["type"] == "BOOKMARK"]
    assert len(bms) >= 2
    assert bms[0]["object"]["kind"] == "Node" and bms[0]["object"]["metadata"]["resourceVersion"] == rv


def test_too_old_rv_gets_410_error_event(make_lab, kube_client):
    srv, kc = make_lab("healthy", log_size=5)
    v1 = kube_client(kc)
    rv = raw_list(v1, "list_node")["metadata"]["resourceVersion"]
    for _ in range(4):
        srv.state.cordon(0, True)
        srv.state.cordon(0, False)
    resp = v1.list_node(watch=True, resource_version=rv, timeout_seconds=2, _preload_content=False)
    assert resp.status == 200
    lines = [json.loads(x) for x in resp.read().splitlines() if x.strip()]
    resp.release_conn()
    assert len(lines) == 1 and lines[0]["type"] == "ERROR"
    st = lines[0]["object"]
    assert (st["kind"], st["code"], st["reason"]) == ("Status", 410, "Expired")
    assert st["message"].startswith(f"too old resource version: {rv} (")
    # the python client's Watch turns it into ApiException(410) when it must not retry
    with pytest.raises(ApiException) as ei:
        for _ in watch.Watch().stream(v1.list_node, resource_version=rv, timeout_seconds=2):
            pass
    assert ei.value.status == 410


def test_tls_token(make_lab, kube_client, tmp_path):
    srv, kc = make_lab("healthy", tls=True, token="s3cret")
    assert srv.url.startswith("https://127.0.0.1:")
    v1 = kube_client(kc)
    assert len(raw_list(v1, "list_node")["items"]) == 5
    # without the token: 401 with a Status body
    import ssl

    ctx = ssl.create_default_context(cafile=srv.pki.ca_path)
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(srv.url + "/api/v1/nodes", context=ctx, timeout=5)
    body = json.loads(ei.value.read())
    ei.value.close()
    assert ei.value.code == 401 and body["reason"] == "Unauthorized"
    req = urllib.request.Request(srv.url + "/api/v1/nodes", headers={"Authorization": "Bearer wrong"})
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, context=ctx, timeout=5)
    ei.value.close()
    assert ei.value.code == 401
    # an untrusting client refuses the lab's certificate
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(srv.url + "/version", context=ssl.create_default_context(), timeout=5)


def test_client_cert_auth(make_lab, kube_client):
    srv, kc = make_lab("healthy", client_cert_auth=True)
    v1 = kube_client(kc)
    assert len(raw_list(v1, "list_node")["items"]) == 5
    import ssl

    ctx = ssl.create_default_context(cafile=srv.pki.ca_path)  # trusts the server, presents no cert
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(srv.url + "/api/v1/nodes", context=ctx, timeout=5)
    ei.value.close()
    assert ei.value.code == 401
    srv.faults.forbid("list", "nodes")
    with pytest.raises(ApiException) as ei:
        raw_list(v1, "list_node")
    assert 'User "system:serviceaccount:demo:aksnet-top"' in json.loads(ei.value.body)["message"]


def test_injected_403_429_500(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    srv.faults.forbid("list", "nodes")
    with pytest.raises(ApiException) as ei:
        raw_list(v1, "list_node")
    st = json.loads(ei.value.body)
    assert ei.value.status == 403 and st["reason"] == "Forbidden"
    assert st["message"] == (
        'nodes is forbidden: User "system:serviceaccount:demo:aksnet-top" cannot list resource '
        '"nodes" in API group "" at the cluster scope'
    )
    assert v1.read_node(srv.state.resolve_node(0)).metadata.name  # get is still allowed
    srv.faults.clear()
    srv.faults.forbid(None, "pods")
    with pytest.raises(ApiException) as ei:
        raw_list(v1, "list_namespaced_pod", "kube-system")
    assert json.loads(ei.value.body)["message"].endswith(
        'cannot list resource "pods" in API group "" in the namespace "kube-system"'
    )
    srv.faults.clear()
    assert len(raw_list(v1, "list_node")["items"]) == 5
    # 429 with Retry-After: urllib3 under the client honours it and retries by itself
    srv.faults.add(r"^/api/v1/nodes$", status=429, retry_after=0, times=1)
    assert len(raw_list(v1, "list_node")["items"]) == 5
    recs = [r.status for r in srv.requests.records() if r.path == "/api/v1/nodes"]
    assert recs[-2:] == [429, 200]
    srv.faults.add(r"^/api/v1/nodes$", status=429, times=1)  # no Retry-After: surfaces
    with pytest.raises(ApiException) as ei:
        raw_list(v1, "list_node")
    assert ei.value.status == 429 and json.loads(ei.value.body)["reason"] == "TooManyRequests"
    assert len(raw_list(v1, "list_node")["items"]) == 5  # times=1: the next one passes
    srv.faults.add(r"/nodes", status=500, times=2, verb="list")
    for _ in range(2):
        with pytest.raises(ApiException) as ei:
            raw_list(v1, "list_node")
        assert ei.value.status == 500 and json.loads(ei.value.body)["reason"] == "InternalError"
    assert len(raw_list(v1, "list_node")["items"]) == 5
    assert srv.requests.count(path="/api/v1/nodes$", status=500) == 2
    assert srv.requests.count(path="/api/v1/nodes$", status=429) == 2


def test_malformed_json_and_dropped_connection(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    srv.faults.malformed_json(r"^/api/v1/nodes$")
    resp = v1.list_node(_preload_content=False)
    assert resp.status == 200
    with pytest.raises(ValueError):
        json.loads(resp.data)
    resp.release_conn()
    with pytest.raises(ValueError):  # the client's model path fails too
        srv.faults.malformed_json(r"^/api/v1/nodes$")
        v1.list_node()
    # a dropped connection once: urllib3 retries it transparently
    srv.faults.drop_connection(r"^/api/v1/nodes$", times=1)
    assert len(raw_list(v1, "list_node")["items"]) == 5
    # the drop and the retry are logged by two handler threads: their order in the log may differ
    assert sorted([r.status for r in srv.requests.records() if r.path == "/api/v1/nodes"][-2:]) == [0, 200]
    # dropped every time: the client gives up with a connection error, not a 200
    import urllib3

    srv.faults.drop_connection(r"^/api/v1/nodes$", times=None)
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        v1.list_node(_request_timeout=5, _preload_content=False)
    srv.faults.clear()
    assert len(raw_list(v1, "list_node")["items"]) == 5


def test_cut_watch_mid_event(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    srv.faults.cut_watch_mid_event(after_events=2)
    got = []
    with pytest.raises(Exception) as ei:
        for ev in watch.Watch().stream(v1.list_node, timeout_seconds=3):
            got.append(ev["type"])
    assert got == ["ADDED", "ADDED"]
    assert not isinstance(ei.value, AssertionError)
    # the next watch works again
    events, t = collect(srv, v1, 5)
    t.join(10)
    assert len(events) == 5


def test_expire_watch_fault(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    rv = raw_list(v1, "list_node")["metadata"]["resourceVersion"]
    srv.faults.expire_watch()
    with pytest.raises(ApiException) as ei:
        for _ in watch.Watch().stream(v1.list_node, resource_version=rv, timeout_seconds=2):
            pass
    assert ei.value.status == 410


def test_table_output(make_lab):
    srv, kc = make_lab("upgrade", run_timeline=False)
    node0 = srv.state.resolve_node(0)
    srv.state.cordon(node0, True)
    req = urllib.request.Request(
        srv.url + "/api/v1/nodes?includeObject=None",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        tab = json.loads(r.read())
    assert tab["kind"] == "Table" and tab["apiVersion"] == "meta.k8s.io/v1"
    cols = [(c["name"], c["priority"]) for c in tab["columnDefinitions"]]
    assert cols[:5] == [("Name", 0), ("Status", 0), ("Roles", 0), ("Age", 0), ("Version", 0)]
    assert ("Internal-IP", 1) in cols and ("Container-Runtime", 1) in cols
    rows = {r["cells"][0]: r for r in tab["rows"]}
    assert rows[node0]["cells"][1] == "Ready,SchedulingDisabled" and "object" not in rows[node0]
    assert rows[node0]["cells"][5] == "10.224.0.4"
    srv.state.set_node_ready(node0, False)
    req = urllib.request.Request(
        srv.url + f"/api/v1/nodes/{node0}?includeObject=Object",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        tab = json.loads(r.read())
    assert tab["rows"][0]["cells"][1] == "NotReady,SchedulingDisabled"
    assert tab["rows"][0]["object"]["kind"] == "Node"


def test_timeline_runs_in_server_time_scaled(make_lab, kube_client):
    srv, kc = make_lab("upgrade", time_scale=0.01)  # 35 s of scenario in 0.35 s
    deadline = time.monotonic() + 5
    while srv.timeline.applied < len(srv.scenario.timeline) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.timeline.applied == len(srv.scenario.timeline) and not srv.timeline.errors
    names = {i["metadata"]["name"] for i in raw_list(kube_client(kc), "list_node")["items"]}
    assert srv.scenario.node_name("nodepool1", 3) in names and srv.scenario.node_name("nodepool1", 0) not in names


def test_stop_closes_open_watch_streams(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    resp = v1.list_node(watch=True, timeout_seconds=60, _preload_content=False)
    first = resp.readline() if hasattr(resp, "readline") else resp.read(10)
    assert first
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 3
    resp.release_conn()
    with pytest.raises(OSError):  # URLError: connection refused
        urllib.request.urlopen(srv.url.replace("http://", "http://") + "/version", timeout=1)


def test_discovery_and_errors(make_lab):
    srv, _ = make_lab("healthy")

    def get(path, accept="application/json"):
        req = urllib.request.Request(srv.url + path, headers={"Accept": accept})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            with e:
                return e.code, json.loads(e.read())

    st, v = get("/version")
    assert st == 200 and v["gitVersion"] == "v1.30.6"
    st, res = get("/api/v1")
    assert {r["name"] for r in res["resources"]} >= {"nodes", "pods", "services", "events", "namespaces"}
    st, apis = get("/apis", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")
    assert st == 200 and apis["kind"] == "APIGroupList"
    st, body = get("/api/v1/namespaces/kube-system/pods/nope")
    assert (st, body["reason"], body["message"]) == (404, "NotFound", 'pods "nope" not found')
    st, body = get("/api/v1/secrets")
    assert st == 404 and body["kind"] == "Status"
    req = urllib.request.Request(srv.url + "/api/v1/nodes", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=5)
    ei.value.close()
    assert ei.value.code == 405


def test_concurrent_watches_and_lists(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    rv = raw_list(v1, "list_node")["metadata"]["resourceVersion"]
    results = [[] for _ in range(4)]

    def run(i):
        resp = v1.list_node(watch=True, resource_version=rv, timeout_seconds=3, _preload_content=False)
        try:
            for line in iter(resp.readline, b""):
                if line.strip():
                    results[i].append(json.loads(line)["type"])
                    if len(results[i]) == 2:
                        break
        finally:
            resp.release_conn()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    wait_watchers(srv, 4)
    for _ in range(10):  # lists keep being served while 4 streams are open
        assert len(raw_list(v1, "list_node")["items"]) == 5
    name = srv.state.add_node("userpool")
    srv.state.remove_node(name)
    for t in threads:
        t.join(10)
    assert results == [["ADDED", "DELETED"]] * 4


def test_big_lists_are_gzipped_when_asked(make_lab):
    """As a real API server does (answers over 128 KiB): the lab compresses when the client
    asks, so our client's gzip path is what the demo and the tests exercise."""
    import gzip

    from probes.kube import connect

    srv, kc = make_lab("overlay", nodes=300)
    api, _target = connect.load(kc)
    try:
        plain = api.request("GET", "/api/v1/nodes", None, headers={"Accept": "application/json"}, stream=True)
        raw_plain = plain.read(decode_content=False)
        plain.release_conn()
        assert "Content-Encoding" not in plain.headers
        zipped = api.request("GET", "/api/v1/nodes", None, headers=connect.GET_HEADERS, stream=True)
        raw_zip = zipped.read(decode_content=False)
        zipped.release_conn()
        assert zipped.headers.get("Content-Encoding") == "gzip"
        assert len(raw_zip) * 5 < len(raw_plain)  # node objects compress well
        doc = json.loads(gzip.decompress(raw_zip))
        assert len(doc["items"]) == 300 == len(json.loads(raw_plain)["items"])
        small = api.request("GET", "/api/v1/namespaces", None, headers=connect.GET_HEADERS, stream=True)
        small.read(decode_content=False)
        small.release_conn()
        assert "Content-Encoding" not in small.headers  # under 128 KiB: as it is
        listed = connect.get(api, "/api/v1/nodes")  # our client decodes it
        assert len(json.loads(listed.data)["items"]) == 300
    finally:
        api.close()
