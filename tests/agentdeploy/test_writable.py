"""WritableObjects answers like a real API server: status codes and Status bodies, byte for byte in shape."""

from __future__ import annotations

import threading

import orjson
import pytest

from probes.agent.manifest import render
from probes.lab.cluster import LabStore
from probes.lab.writable import WritableObjects

DS = "/apis/apps/v1/namespaces/aksnet-top/daemonsets"
NS = "/api/v1/namespaces"
USER = "alice"


def call(w: WritableObjects, method: str, path: str, body=None, query=None, ct="application/merge-patch+json"):
    raw = body if isinstance(body, bytes) else (orjson.dumps(body) if body is not None else b"")
    out = w.handle(method, path, query or {}, raw, USER, content_type=ct)
    assert out is not None, f"{method} {path} not handled"
    code, data = out
    return code, orjson.loads(data)


def objects(**kw):
    return {o["kind"]: o for o in render("r.azurecr.io/a:1", reader_groups=["g"], **kw)}


@pytest.fixture
def w():
    w = WritableObjects(clock=lambda: 1_700_000_000.0)
    assert call(w, "POST", NS, objects()["Namespace"])[0] == 201
    return w


def test_create_then_already_exists(w):
    ds = objects()["DaemonSet"]
    code, got = call(w, "POST", DS, ds)
    assert code == 201
    md = got["metadata"]
    assert md["name"] == "aksnet-top-agent" and md["namespace"] == "aksnet-top" and md["generation"] == 1
    assert md["uid"] and md["resourceVersion"].isdigit() and md["creationTimestamp"] == "2023-11-14T22:13:20Z"
    assert got["kind"] == "DaemonSet" and got["apiVersion"] == "apps/v1" and got["status"]["numberReady"] == 0
    assert got["spec"]["template"] == ds["spec"]["template"]
    code, st = call(w, "POST", DS, ds)
    assert code == 409
    assert st == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'daemonsets.apps "aksnet-top-agent" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "aksnet-top-agent", "group": "apps", "kind": "daemonsets"},
        "code": 409,
    }


def test_core_already_exists_has_no_group(w):
    code, st = call(w, "POST", NS, objects()["Namespace"])
    assert code == 409 and st["details"] == {"name": "aksnet-top", "kind": "namespaces"}
    assert st["message"] == 'namespaces "aksnet-top" already exists'


def test_missing_name_is_invalid(w):
    sa = objects()["ServiceAccount"]
    del sa["metadata"]["name"]
    code, st = call(w, "POST", "/api/v1/namespaces/aksnet-top/serviceaccounts", sa)
    assert code == 422
    assert st == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'ServiceAccount "" is invalid: metadata.name: Required value: name or generateName is required',
        "reason": "Invalid",
        "details": {
            "name": "",
            "kind": "ServiceAccount",
            "causes": [
                {
                    "reason": "FieldValueRequired",
                    "message": "Required value: name or generateName is required",
                    "field": "metadata.name",
                }
            ],
        },
        "code": 422,
    }


def test_bad_name_and_bad_selector_are_invalid(w):
    ds = objects()["DaemonSet"]
    ds["metadata"]["name"] = "Bad_Name"
    code, st = call(w, "POST", DS, ds)
    assert code == 422 and st["details"]["kind"] == "DaemonSet" and st["details"]["group"] == "apps"
    assert st["message"].startswith('DaemonSet.apps "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"')
    ds = objects()["DaemonSet"]
    ds["spec"]["selector"] = {"matchLabels": {"other": "x"}}
    code, st = call(w, "POST", DS, ds)
    assert code == 422 and st["details"]["causes"][0]["field"] == "spec.template.metadata.labels"


def test_body_not_json_is_bad_request(w):
    code, st = call(w, "POST", DS, b"{not json")
    assert code == 400 and st["reason"] == "BadRequest" and st["status"] == "Failure"
    assert st["message"].startswith("the object provided is unrecognized (must be of type DaemonSet)")
    code, st = call(w, "POST", DS, [1, 2])
    assert code == 400


def test_wrong_kind_and_namespace_mismatch(w):
    code, st = call(w, "POST", DS, objects()["Role"])
    assert code == 400 and "must be of type DaemonSet" in st["message"]
    ds = objects()["DaemonSet"]
    ds["metadata"]["namespace"] = "other"
    code, st = call(w, "POST", DS, ds)
    assert code == 400 and st["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )


def test_create_in_missing_namespace(w):
    code, st = call(w, "POST", "/apis/apps/v1/namespaces/nope/daemonsets", objects(namespace="nope")["DaemonSet"])
    assert code == 404 and st["message"] == 'namespaces "nope" not found'
    assert st["details"] == {"name": "nope", "kind": "namespaces"}


def test_get_list_and_selectors(w):
    o = objects()
    call(w, "POST", DS, o["DaemonSet"])
    call(w, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/aksnet-top/roles", o["Role"])
    code, got = call(w, "GET", DS + "/aksnet-top-agent")
    assert code == 200 and got["kind"] == "DaemonSet"
    code, lst = call(w, "GET", DS)
    assert code == 200 and lst["kind"] == "DaemonSetList" and lst["apiVersion"] == "apps/v1"
    assert [i["metadata"]["name"] for i in lst["items"]] == ["aksnet-top-agent"]
    assert "kind" not in lst["items"][0] and lst["metadata"]["resourceVersion"].isdigit()
    _, lst = call(w, "GET", "/apis/apps/v1/daemonsets", query={"labelSelector": ["app.kubernetes.io/component=reader"]})
    assert lst["items"] == []
    _, lst = call(
        w,
        "GET",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/aksnet-top/roles",
        query={"labelSelector": ["app.kubernetes.io/component=reader"]},
    )
    assert len(lst["items"]) == 1
    code, st = call(w, "GET", DS, query={"labelSelector": ["a in (b"]})
    assert code == 400
    code, st = call(w, "GET", DS + "/nope")
    assert code == 404 and st["message"] == 'daemonsets.apps "nope" not found'
    code, st = call(w, "GET", DS, query={"watch": ["true"]})
    assert code == 405


def test_replace_with_resource_versions(w):
    _, created = call(w, "POST", DS, objects()["DaemonSet"])
    rv = created["metadata"]["resourceVersion"]
    stale = dict(created, metadata=dict(created["metadata"], resourceVersion="1"))
    code, st = call(w, "PUT", DS + "/aksnet-top-agent", stale)
    assert code == 409
    assert st == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Operation cannot be fulfilled on daemonsets.apps "aksnet-top-agent": the object has '
        "been modified; please apply your changes to the latest version and try again",
        "reason": "Conflict",
        "details": {"name": "aksnet-top-agent", "group": "apps", "kind": "daemonsets"},
        "code": 409,
    }
    code, same = call(w, "PUT", DS + "/aksnet-top-agent", created)
    assert code == 200 and same["metadata"]["resourceVersion"] == rv, "a no-op update keeps the resourceVersion"
    newer = objects(mode="connect")["DaemonSet"]
    newer["metadata"]["resourceVersion"] = rv
    code, got = call(w, "PUT", DS + "/aksnet-top-agent", newer)
    assert code == 200 and int(got["metadata"]["resourceVersion"]) > int(rv)
    assert got["metadata"]["generation"] == 2 and got["metadata"]["uid"] == created["metadata"]["uid"]
    code, st = call(w, "PUT", DS + "/aksnet-top-agent", newer)  # the old rv again
    assert code == 409 and st["reason"] == "Conflict"
    del newer["metadata"]["resourceVersion"]
    assert call(w, "PUT", DS + "/aksnet-top-agent", newer)[0] == 200, "no resourceVersion: unconditional"


def test_replace_errors(w):
    _, created = call(w, "POST", DS, objects()["DaemonSet"])
    code, st = call(w, "PUT", DS + "/other", created)
    assert code == 400 and "does not match the name on the URL" in st["message"]
    gone = dict(created, metadata=dict(created["metadata"], name="gone"))
    code, st = call(w, "PUT", DS + "/gone", gone)
    assert code == 404
    moved = dict(created, spec=dict(created["spec"], selector={"matchLabels": {"x": "y"}}))
    moved["spec"]["template"] = dict(moved["spec"]["template"], metadata={"labels": {"x": "y"}})
    code, st = call(w, "PUT", DS + "/aksnet-top-agent", moved)
    assert code == 422 and "field is immutable" in st["message"]


def test_merge_patch(w):
    call(w, "POST", DS, objects()["DaemonSet"])
    code, got = call(w, "PATCH", DS + "/aksnet-top-agent", {"metadata": {"labels": {"team": "sre"}}})
    assert code == 200 and got["metadata"]["labels"]["team"] == "sre"
    assert got["metadata"]["labels"]["app.kubernetes.io/name"] == "aksnet-top-agent"
    code, got = call(w, "PATCH", DS + "/aksnet-top-agent", {"metadata": {"labels": {"team": None}}})
    assert "team" not in got["metadata"]["labels"]
    code, st = call(w, "PATCH", DS + "/aksnet-top-agent", {"spec": {}}, ct="application/strategic-merge-patch+json")
    assert code == 415 and st["reason"] == "UnsupportedMediaType"


def test_delete(w):
    call(w, "POST", DS, objects()["DaemonSet"])
    code, st = call(w, "DELETE", DS + "/aksnet-top-agent")
    assert code == 200 and st["status"] == "Success" and st["kind"] == "Status"
    assert st["details"]["name"] == "aksnet-top-agent" and st["details"]["kind"] == "daemonsets"
    code, st = call(w, "DELETE", DS + "/aksnet-top-agent")
    assert code == 404
    assert st == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'daemonsets.apps "aksnet-top-agent" not found',
        "reason": "NotFound",
        "details": {"name": "aksnet-top-agent", "group": "apps", "kind": "daemonsets"},
        "code": 404,
    }


def test_delete_namespace_takes_its_objects(w):
    call(w, "POST", DS, objects()["DaemonSet"])
    code, got = call(w, "DELETE", NS + "/aksnet-top")
    assert code == 200 and got["kind"] == "Namespace" and got["status"]["phase"] == "Terminating"
    assert w.objects() == []
    call(w, "POST", NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    code, st = call(w, "DELETE", NS + "/default")
    assert code == 403 and st["message"] == 'namespaces "default" is forbidden: this namespace may not be deleted'


def test_dry_run_stores_nothing(w):
    code, got = call(w, "POST", DS, objects()["DaemonSet"], query={"dryRun": ["All"]})
    assert code == 201 and got["metadata"]["name"] == "aksnet-top-agent"
    assert w.get("daemonsets", "aksnet-top", "aksnet-top-agent") is None
    call(w, "POST", DS, objects()["DaemonSet"])
    assert call(w, "DELETE", DS + "/aksnet-top-agent", query={"dryRun": ["All"]})[0] == 200
    assert w.get("daemonsets", "aksnet-top", "aksnet-top-agent") is not None


def test_forbidden_like_rbac():
    w = WritableObjects(authorize=lambda user, verb, group, res, ns: not (verb == "create" and res == "daemonsets"))
    call(w, "POST", NS, objects()["Namespace"])
    code, st = call(w, "POST", DS, objects()["DaemonSet"])
    assert code == 403
    assert st == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'daemonsets.apps is forbidden: User "alice" cannot create resource "daemonsets" in API '
        'group "apps" in the namespace "aksnet-top"',
        "reason": "Forbidden",
        "details": {"group": "apps", "kind": "daemonsets"},
        "code": 403,
    }


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/pods"),
        ("GET", "/api/v1/nodes/n1"),
        ("POST", "/api/v1/namespaces/x/pods"),
        ("PUT", DS + "/aksnet-top-agent/status"),
        ("GET", "/apis/batch/v1/namespaces/x/jobs"),
        ("GET", "/apis/apps/v2/daemonsets"),
        ("POST", DS + "/named"),
        ("GET", "/healthz"),
        ("GET", "/api"),
    ],
)
def test_other_paths_are_not_mine(method, path):
    assert WritableObjects().handle(method, path, {}, b"", USER) is None


def test_discovery():
    w = WritableObjects()
    d = w.discovery()
    assert {g["name"] for g in d["/apis"]["groups"]} == {
        "apps",
        "rbac.authorization.k8s.io",
        "networking.k8s.io",
        "azmonitoring.coreos.com",
    }
    assert [r["name"] for r in d["/apis/networking.k8s.io/v1"]["resources"]] == ["networkpolicies"]
    assert [r["name"] for r in d["/apis/apps/v1"]["resources"]] == ["daemonsets"]
    assert {r["name"] for r in d["/apis/rbac.authorization.k8s.io/v1"]["resources"]} == {"roles", "rolebindings"}
    assert {r["name"] for r in d["/api/v1#resources"]["resources"]} == {"namespaces", "serviceaccounts", "configmaps"}
    assert [r["name"] for r in d["/apis/azmonitoring.coreos.com/v1"]["resources"]] == ["podmonitors"]
    code, body = w.handle("GET", "/apis/apps/v1", {}, b"", USER)
    assert code == 200 and orjson.loads(body)["kind"] == "APIResourceList"


def _lab_store() -> LabStore:
    s = LabStore()
    for name in ("default", "kube-system", "demo"):
        s.put(
            "namespaces",
            {
                "kind": "Namespace",
                "apiVersion": "v1",
                "metadata": {"name": name},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
        )
    return s


def test_namespaces_live_in_the_lab_store():
    store = _lab_store()
    w = WritableObjects(lab_store=store)
    code, st = call(w, "POST", NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}})
    assert code == 409 and st["reason"] == "AlreadyExists"
    rv_before = store.rv
    code, got = call(w, "POST", NS, objects()["Namespace"])
    assert code == 201 and store.rv == rv_before + 1
    assert (
        store.get("namespaces", "aksnet-top").obj["metadata"]["resourceVersion"] == got["metadata"]["resourceVersion"]
    )
    assert w.handle("GET", NS, {}, b"", USER) is None, "the lab keeps serving namespace reads"
    assert w.handle("GET", NS + "/aksnet-top", {}, b"", USER) is None
    assert call(w, "POST", DS, objects()["DaemonSet"])[0] == 201
    assert call(w, "POST", "/apis/apps/v1/namespaces/demo/daemonsets", objects(namespace="demo")["DaemonSet"])[0] == 201
    code, st = call(w, "DELETE", NS + "/demo")
    assert code == 403, "scenario namespaces stay"
    assert call(w, "DELETE", NS + "/aksnet-top")[0] == 200
    assert store.get("namespaces", "aksnet-top") is None and store.get("namespaces", "demo") is not None
    assert [o["metadata"]["namespace"] for o in w.objects()] == ["demo"]


def test_concurrent_creates_and_updates():
    w = WritableObjects()
    call(w, "POST", NS, objects()["Namespace"])
    ds = objects()["DaemonSet"]
    codes: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def create() -> None:
        barrier.wait(5)
        c, _ = call(w, "POST", DS, ds)
        with lock:
            codes.append(c)

    threads = [threading.Thread(target=create) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(codes) == [201] + [409] * 15
    current = w.get("daemonsets", "aksnet-top", "aksnet-top-agent")
    codes.clear()
    barrier = threading.Barrier(16)

    def update(i: int) -> None:
        body = dict(current, metadata=dict(current["metadata"], labels={**current["metadata"]["labels"], "n": str(i)}))
        barrier.wait(5)
        c, _ = call(w, "PUT", DS + "/aksnet-top-agent", body)
        with lock:
            codes.append(c)

    threads = [threading.Thread(target=update, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(codes) == [200] + [409] * 15, "optimistic concurrency: one writer wins"
