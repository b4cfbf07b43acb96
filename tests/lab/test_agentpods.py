"""The aksnet-top agent DaemonSet's pods as lab API objects: shape, selectors, watch, kubectl."""

from __future__ import annotations

import ipaddress
import json
import re
import threading

import pytest

from probes.lab.cluster import LabAgentPod
from tests.support.leaks import guard_threads

NS = "aksnet-top"
SELECTOR = "app.kubernetes.io/name=aksnet-top-agent"


@pytest.fixture(autouse=True)
def _no_threads_left():
    yield from guard_threads()


def _raw(v1, method, *args, **kw):
    resp = getattr(v1, method)(*args, _preload_content=False, _request_timeout=10, **kw)
    try:
        return json.loads(resp.data)
    finally:
        resp.release_conn()


def test_agent_pods_look_like_daemonset_pods(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    assert NS not in {n["metadata"]["name"] for n in _raw(v1, "list_namespace")["items"]}
    nodes = list(srv.state.nodes)
    names = srv.set_agent_pods({n: LabAgentPod(endpoint=("127.0.0.1", 1)) for n in nodes})
    assert set(names) == set(nodes) and len(set(names.values())) == len(nodes)
    assert all(re.fullmatch(r"aksnet-top-agent-[a-z0-9]{5}", p) for p in names.values())
    assert NS in {n["metadata"]["name"] for n in _raw(v1, "list_namespace")["items"]}
    items = _raw(v1, "list_namespaced_pod", NS, label_selector=SELECTOR)["items"]
    assert len(items) == len(nodes)
    for p in items:
        md, spec, st = p["metadata"], p["spec"], p["status"]
        node = srv.state.nodes[spec["nodeName"]]
        assert names[spec["nodeName"]] == md["name"] and md["namespace"] == NS
        assert {
            k: md["labels"][k]
            for k in ("app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/component")
        } == {
            "app.kubernetes.io/name": "aksnet-top-agent",
            "app.kubernetes.io/part-of": "aksnet-top",
            "app.kubernetes.io/component": "agent",
        }
        (owner,) = md["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("DaemonSet", "aksnet-top-agent", True)
        assert spec["containers"][0]["ports"] == [{"containerPort": 9102, "name": "http", "protocol": "TCP"}]
        assert st["phase"] == "Running" and st["podIP"] == st["podIPs"][0]["ip"] and st["hostIP"] == node.ip
        assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network(node.pod_cidr)
        ready = {c["type"]: c["status"] for c in st["conditions"]}
        assert ready["Ready"] == "True" and ready["ContainersReady"] == "True"
    # the python client's models take them too
    pods = v1.list_namespaced_pod(
        NS, label_selector=SELECTOR, field_selector=f"spec.nodeName={nodes[2]}", _request_timeout=10
    )
    assert [p.metadata.name for p in pods.items] == [names[nodes[2]]]
    assert pods.items[0].metadata.owner_references[0].kind == "DaemonSet"
    # cluster-wide, by label, and not mixed up with kube-system
    every = _raw(v1, "list_pod_for_all_namespaces", label_selector="app.kubernetes.io/part-of=aksnet-top")["items"]
    assert {p["metadata"]["name"] for p in every} == set(names.values())
    assert not _raw(v1, "list_namespaced_pod", "kube-system", label_selector=SELECTOR)["items"]


def test_kubectl_lists_agent_pods_wide(make_lab, kubectl):
    srv, kc = make_lab("healthy")
    n0, n1, n2 = list(srv.state.nodes)[:3]
    names = srv.set_agent_pods(
        {n0: LabAgentPod(), n1: LabAgentPod(ready=False, restarts=2), n2: LabAgentPod(phase="Pending")}
    )
    out = kubectl(kc, "get", "pods", "-n", NS, "-l", SELECTOR, "-o", "wide").stdout.splitlines()
    header = out[0].split()
    assert header[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = {r.split()[0]: r.split() for r in out[1:]}
    assert set(rows) == set(names.values())
    ip_col, node_col = header.index("IP"), header.index("NODE")
    r0, r1, r2 = rows[names[n0]], rows[names[n1]], rows[names[n2]]
    assert r0[1:4] == ["1/1", "Running", "0"] and r0[node_col] == n0 and r0[ip_col].startswith("10.244.")
    assert r1[1:4] == ["0/1", "Running", "2"] and r1[node_col] == n1
    assert r2[1:3] == ["0/1", "ContainerCreating"] and r2[ip_col] == "<none>" and r2[node_col] == n2
    out = kubectl(kc, "get", "pods", "-n", NS, "--field-selector", f"spec.nodeName={n1}", "-o", "name").stdout
    assert out.split() == [f"pod/{names[n1]}"]
    assert NS in kubectl(kc, "get", "ns", "-o", "name").stdout


def test_watch_sees_agent_pods_come_change_and_go(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    n0, n1 = list(srv.state.nodes)[:2]
    rv = _raw(v1, "list_namespaced_pod", NS, label_selector=SELECTOR)["metadata"]["resourceVersion"]
    events: list[tuple[str, str, str]] = []
    done = threading.Event()

    def watch():
        resp = v1.list_namespaced_pod(
            NS,
            label_selector=SELECTOR,
            watch=True,
            resource_version=rv,
            timeout_seconds=10,
            _preload_content=False,
            _request_timeout=15,
        )
        try:
            for line in iter(resp.readline, b""):
                if not line.strip():
                    continue
                ev = json.loads(line)
                o = ev["object"]
                ready = next(c["status"] for c in o["status"]["conditions"] if c["type"] == "Ready")
                events.append((ev["type"], o["metadata"]["name"], ready))
                if len(events) >= 6:
                    break
        finally:
            resp.release_conn()
            done.set()

    t = threading.Thread(target=watch, name="test-watch")
    t.start()
    try:
        first = srv.set_agent_pods({n0: LabAgentPod(), n1: LabAgentPod()})
        srv.set_agent_pods({n0: LabAgentPod(ready=False), n1: LabAgentPod()})  # MODIFIED in place
        srv.set_agent_pods({n0: LabAgentPod(ready=False)})  # n1's pod DELETED
        srv.set_agent_pods({n0: LabAgentPod(ip="10.244.0.200")})  # new IP: the pod is replaced
        done.wait(15)
    finally:
        t.join(15)
    second = srv.agent_pods()[n0]
    assert second != first[n0]
    assert events == [
        ("ADDED", first[n0], "True"),
        ("ADDED", first[n1], "True"),
        ("MODIFIED", first[n0], "False"),
        ("DELETED", first[n1], "True"),
        ("DELETED", first[n0], "False"),
        ("ADDED", second, "True"),
    ]


def test_agent_pods_follow_their_node(make_lab, kube_client):
    srv, kc = make_lab("healthy")
    v1 = kube_client(kc)
    n0, n1 = list(srv.state.nodes)[:2]
    names = srv.set_agent_pods({n0: LabAgentPod(), n1: LabAgentPod()})

    def ready(name):
        o = v1.read_namespaced_pod(name, NS, _request_timeout=10)
        return next(c.status for c in o.status.conditions if c.type == "Ready")

    srv.state.set_node_ready(n0, False)
    assert ready(names[n0]) == "False" and ready(names[n1]) == "True"
    srv.state.set_node_ready(n0, True)
    assert ready(names[n0]) == "True"
    srv.state.remove_node(n1)
    assert srv.agent_pods() == {n0: names[n0]}
    left = _raw(v1, "list_namespaced_pod", NS)["items"]
    assert [p["metadata"]["name"] for p in left] == [names[n0]]
    # Pending gets its IP in place when it starts running
    srv.set_agent_pod(n0, LabAgentPod(phase="Pending"))
    pending = srv.agent_pods()[n0]
    assert pending != names[n0]
    assert "podIP" not in _raw(v1, "read_namespaced_pod", pending, NS)["status"]
    srv.set_agent_pod(n0, LabAgentPod())
    assert srv.agent_pods()[n0] == pending
    assert _raw(v1, "read_namespaced_pod", pending, NS)["status"]["phase"] == "Running"
    srv.set_agent_pod(n0, None)
    assert srv.agent_pods() == {} and not _raw(v1, "list_namespaced_pod", NS)["items"]
    with pytest.raises(KeyError):
        srv.set_agent_pods({"no-such-node": LabAgentPod()})
    with pytest.raises(ValueError):
        LabAgentPod(phase="Succeeded")
