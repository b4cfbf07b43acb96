"""The write hook the agent's installer needs: POST/PUT/PATCH/DELETE go to ``lab.writable``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.support.leaks import guard_threads


@pytest.fixture(autouse=True)
def _no_threads_left():
    yield from guard_threads()


class FakeWritable:
    """Stands in for probes.lab.writable.WritableObjects: records calls, owns two kinds."""

    def __init__(self):
        self.calls: list[tuple[str, str, dict, bytes, str]] = []

    def handle(self, method, path, query, body, user, content_type=None):
        self.calls.append((method, path, query, body, user))
        if "/serviceaccounts" not in path and "/daemonsets" not in path:
            return None
        if method == "POST":
            return 201, body
        if method == "DELETE":
            return 200, b'{"kind":"Status","apiVersion":"v1","status":"Success"}'
        return 200, json.dumps({"kind": "DaemonSet", "metadata": {"name": path.rsplit("/", 1)[1]}}).encode()

    def discovery(self):
        return {
            "/apis": {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": "apps",
                        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
                    }
                ],
            },
            "/apis/apps/v1": {
                "kind": "APIResourceList",
                "groupVersion": "apps/v1",
                "resources": [
                    {"name": "daemonsets", "namespaced": True, "kind": "DaemonSet", "verbs": ["create", "get"]}
                ],
            },
            "/api/v1": [
                {
                    "name": "serviceaccounts",
                    "singularName": "serviceaccount",
                    "namespaced": True,
                    "kind": "ServiceAccount",
                    "verbs": ["create", "delete", "get", "list"],
                }
            ],
        }


def _call(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


def test_read_only_by_default(make_lab):
    srv, _ = make_lab("healthy")
    assert srv.writable is None
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        st, body = _call(srv.url + "/api/v1/namespaces/aksnet-top/serviceaccounts", method, b"{}")
        assert st == 405 and json.loads(body)["reason"] == "MethodNotAllowed"
    st, _ = _call(srv.url + "/apis/apps/v1")
    assert st == 404


def test_writes_go_to_writable_after_authentication(make_lab):
    srv, _ = make_lab("healthy", token="s3cret")
    w = srv.writable = FakeWritable()
    auth = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}
    url = srv.url + "/api/v1/namespaces/aksnet-top/serviceaccounts"
    st, _ = _call(url, "POST", b'{"kind":"ServiceAccount"}')
    assert st == 401 and not w.calls
    st, body = _call(
        url + "?fieldManager=kubectl-client-side-apply&dryRun=All", "POST", b'{"kind":"ServiceAccount"}', auth
    )
    assert (st, body) == (201, b'{"kind":"ServiceAccount"}')
    method, path, query, sent, user = w.calls[-1]
    assert (method, path, sent, user) == (
        "POST",
        "/api/v1/namespaces/aksnet-top/serviceaccounts",
        b'{"kind":"ServiceAccount"}',
        srv.user,
    )
    assert query == {"fieldManager": ["kubectl-client-side-apply"], "dryRun": ["All"]}
    st, _ = _call(srv.url + "/apis/apps/v1/namespaces/aksnet-top/daemonsets/aksnet-top-agent", "DELETE", None, auth)
    assert st == 200 and w.calls[-1][0] == "DELETE"
    st, body = _call(srv.url + "/api/v1/nodes/x", "PATCH", b"{}", auth)  # not the writable's: still 405
    assert st == 405
    # GETs the read side does not serve are offered to the writable too
    st, body = _call(srv.url + "/apis/apps/v1/namespaces/aksnet-top/daemonsets/aksnet-top-agent", headers=auth)
    assert st == 200 and json.loads(body)["kind"] == "DaemonSet" and w.calls[-1][0] == "GET"
    st, body = _call(srv.url + "/apis", headers=auth)
    # the writable's groups, merged after the lab's own (the ingress path's)
    names = [g["name"] for g in json.loads(body)["groups"]]
    assert "apps" in names and {"discovery.k8s.io", "networking.k8s.io"} <= set(names)
    assert len(names) == len(set(names))  # each group once
    st, body = _call(srv.url + "/apis/apps/v1", headers=auth)
    assert json.loads(body)["resources"][0]["name"] == "daemonsets"
    st, body = _call(srv.url + "/api/v1", headers=auth)
    names = [r["name"] for r in json.loads(body)["resources"]]
    assert "serviceaccounts" in names and "pods" in names and "pods/proxy" in names
    verbs = [(r.verb, r.resource, r.status) for r in srv.request_log() if r.verb in ("create", "delete")]
    assert verbs == [
        ("create", "serviceaccounts", 401),
        ("create", "serviceaccounts", 201),
        ("delete", "daemonsets", 200),
    ]


def test_faults_and_limits_apply_to_writes(make_lab):
    srv, _ = make_lab("healthy")
    w = srv.writable = FakeWritable()
    url = srv.url + "/api/v1/namespaces/aksnet-top/serviceaccounts"
    srv.faults.forbid(None, "serviceaccounts", times=1)
    st, body = _call(url, "POST", b"{}")
    s = json.loads(body)
    assert st == 403 and 'cannot create resource "serviceaccounts"' in s["message"] and not w.calls
    st, body = _call(url, "POST", b"x" * ((3 << 20) + 1))
    assert st == 413 and json.loads(body)["reason"] == "RequestEntityTooLarge" and not w.calls
    st, _ = _call(url, "POST", b"{}")
    assert st == 201 and len(w.calls) == 1


def test_real_writable_objects_behind_the_hook(make_lab, kube_client, kubectl):
    """The wiring the lead will do, with the python client and kubectl (no openapi: no `apply`)."""
    writable = pytest.importorskip("probes.lab.writable")
    from kubernetes import client

    srv, kc = make_lab("healthy")
    srv.writable = writable.WritableObjects(lab_store=srv.state.store)
    v1 = kube_client(kc)
    apps = client.AppsV1Api(v1.api_client)
    v1.create_namespace(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "aksnet-top"}}, _request_timeout=10
    )
    v1.create_namespaced_service_account("aksnet-top", {"metadata": {"name": "aksnet-top-agent"}}, _request_timeout=10)
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "aksnet-top-agent", "labels": {"app.kubernetes.io/name": "aksnet-top-agent"}},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "aksnet-top-agent"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "aksnet-top-agent"}},
                "spec": {"containers": [{"name": "agent", "image": "x"}]},
            },
        },
    }
    apps.create_namespaced_daemon_set("aksnet-top", ds, _request_timeout=10)
    apps.patch_namespaced_daemon_set(
        "aksnet-top-agent",
        "aksnet-top",
        {"metadata": {"labels": {"x": "y"}}},
        _content_type="application/merge-patch+json",
        _request_timeout=10,
    )
    got = apps.read_namespaced_daemon_set("aksnet-top-agent", "aksnet-top", _request_timeout=10)
    assert got.metadata.labels["x"] == "y"
    out = kubectl(kc, "get", "sa,ds", "-n", "aksnet-top", "-o", "name").stdout.split()
    assert "serviceaccount/aksnet-top-agent" in out and "daemonset.apps/aksnet-top-agent" in out
    assert "namespace/aksnet-top" in kubectl(kc, "get", "ns", "-o", "name").stdout.split()
    kubectl(kc, "delete", "ds", "aksnet-top-agent", "-n", "aksnet-top")
    assert not apps.list_namespaced_daemon_set("aksnet-top", _request_timeout=10).items
