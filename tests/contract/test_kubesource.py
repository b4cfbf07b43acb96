"""The kube source (real kubernetes client) against the lab API server over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.config import KubeConfig
from probes.engine.store import Store
from probes.kube.connect import KubeConnectError, load
from probes.kube.model import NetworkPlugin, SourceState
from probes.kube.source import KubeSource
from probes.lab.apiserver import LabApiServer
from tests.support.wait import wait_for


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabApiServer]:
    srv = LabApiServer("healthy", bookmark_interval=0.2, run_timeline=False)
    srv.start()
    srv.kubeconfig_path = srv.write_kubeconfig(str(tmp_path / "kubeconfig"))  # type: ignore[attr-defined]
    try:
        yield srv
    finally:
        srv.stop()


def run_source(kubeconfig: str, store: Store | None = None, **kw) -> tuple[KubeSource, Store]:  # type: ignore[no-untyped-def]
    store = store or Store()
    src = KubeSource(store, KubeConfig(kubeconfig=kubeconfig, **kw))
    src.start()
    return src, store


def status(store: Store, source: str):  # type: ignore[no-untyped-def]
    return store.snapshot().status(source)


def interrupt_nodes_watch(src: KubeSource) -> None:
    """End the open nodes watch stream (waiting until it is open, so the cut is certain)."""
    r = next(r for r in src.reflectors if r.kind.name == "nodes")
    assert wait_for(lambda: r.resp is not None, 10)
    r.interrupt()


def counts(srv: LabApiServer, verb: str, resource: str) -> int:
    return sum(1 for r in srv.requests.records() if r.verb == verb and r.resource == resource)


def test_topology_of_the_case_study(lab):
    src, store = run_source(lab.kubeconfig_path)
    try:
        assert src.wait_synced(10)
        topo = store.snapshot().topology
        assert topo.plugin is NetworkPlugin.KUBENET
        assert topo.pod_cidrs == ("10.244.0.0/16",)
        assert topo.dns_service_ip == "10.0.0.10"
        assert [p.name for p in topo.pools] == ["nodepool1", "userpool"]
        first = topo.nodes[0]
        assert (first.internal_ip, first.pod_cidrs) == ("10.224.0.4", ("10.244.0.0/24",))
        assert len(topo.nodelocal) == len(topo.nodes) == 5
        assert len(topo.coredns) == 2
        assert topo.server_version.startswith("v1.")
        assert topo.cluster.startswith("MC_")
        assert any(s.type == "LoadBalancer" for s in topo.services)
        assert counts(lab, "list", "pods") >= 1
        # never all pods: every pods request is label-selected, namespaced to kube-system for
        # the DNS pods, cluster-wide only for the ingress controllers' pods
        for r in lab.requests.records():
            if r.resource == "pods":
                sel = r.query.get("labelSelector", "")
                assert (r.path.startswith("/api/v1/namespaces/kube-system/pods") and "k8s-app" in sel) or (
                    r.path == "/api/v1/pods" and sel.startswith(("app.kubernetes.io/name in (", "app in ("))
                ), (r.path, sel)
    finally:
        src.stop()


def test_paging_over_1200_nodes_sees_each_once(tmp_path):
    with LabApiServer("overlay", nodes=1200, run_timeline=False) as srv:
        kc = srv.write_kubeconfig(str(tmp_path / "kc"))
        src, store = run_source(kc, page_size=100)
        try:
            assert src.wait_synced(30)
            topo = store.snapshot().topology
            assert len(topo.nodes) == 1200
            assert len({n.name for n in topo.nodes}) == 1200
            node_lists = [r for r in srv.requests.records() if r.verb == "list" and r.resource == "nodes"]
            assert len(node_lists) == 12 and all(r.query.get("limit") == "100" for r in node_lists)
        finally:
            src.stop()


def test_watch_brings_add_change_remove_live(lab):
    src, store = run_source(lab.kubeconfig_path)
    try:
        assert src.wait_synced(10)
        name = lab.state.add_node("userpool")
        assert wait_for(lambda: store.snapshot().topology.node(name) is not None, 2.0)
        lab.state.set_node_ready(name, False, "KubeletNotReady")
        assert wait_for(lambda: store.snapshot().topology.node(name).ready is False, 2.0)  # type: ignore[union-attr]
        lab.state.cordon(name, True)
        assert wait_for(lambda: store.snapshot().topology.node(name).cordoned, 2.0)  # type: ignore[union-attr]
        lab.state.remove_node(name)
        assert wait_for(lambda: store.snapshot().topology.node(name) is None, 2.0)
        assert counts(lab, "list", "nodes") == 1  # all of it came over the watch
    finally:
        src.stop()


def test_expired_watch_relists(lab):
    src, store = run_source(lab.kubeconfig_path, watch_timeout=10)
    try:
        assert src.wait_synced(10)
        lab.faults.expire_watch(r"^/api/v1/nodes$", times=1)
        lab.expire()
        name = lab.state.add_node("nodepool1")
        # the open watch may deliver the add; the next one is expired -> relist must also show it
        interrupt_nodes_watch(src)
        assert wait_for(lambda: counts(lab, "list", "nodes") >= 2, 10)
        assert wait_for(lambda: store.snapshot().topology.node(name) is not None, 5)
    finally:
        src.stop()


def test_watch_cut_mid_event_reconnects_and_catches_up(lab):
    src, store = run_source(lab.kubeconfig_path)
    try:
        assert src.wait_synced(10)
        assert wait_for(lambda: counts(lab, "watch", "nodes") >= 1, 10)  # armed after the first watch is open
        lab.faults.cut_watch_mid_event(r"^/api/v1/nodes$", times=1)
        interrupt_nodes_watch(src)  # the next watch is the one that is cut
        assert wait_for(lambda: counts(lab, "watch", "nodes") >= 2, 10)
        name = lab.state.add_node("userpool")  # this event is cut in half on the wire
        assert wait_for(lambda: store.snapshot().topology.node(name) is not None, 10)
        assert counts(lab, "watch", "nodes") >= 3  # it came over a new watch from the last good RV
        assert counts(lab, "list", "nodes") == 1
        assert status(store, "kubernetes/nodes").state is SourceState.LIVE  # type: ignore[union-attr]
    finally:
        src.stop()


def test_forbidden_nodes_is_reported_and_the_rest_keeps_working(lab):
    lab.faults.forbid("list", "nodes")
    src, store = run_source(lab.kubeconfig_path)
    try:
        assert wait_for(
            lambda: (s := status(store, "kubernetes/nodes")) is not None and s.state is SourceState.FORBIDDEN, 10
        )
        st = status(store, "kubernetes/nodes")
        # the refused verb is named; the next try waits the backoff's cap (no storm of refusals)
        assert "cannot list nodes" in st.message and 'cannot list resource "nodes"' in st.detail  # type: ignore[union-attr]
        assert st.retry_at is not None and st.retry_at - time.monotonic() > 15  # type: ignore[union-attr]
        assert st.fatal  # type: ignore[union-attr]
        assert wait_for(lambda: "coredns" in store.snapshot().synced, 10)  # pods still arrive
        assert len(store.snapshot().topology.coredns) == 2
    finally:
        src.stop()


def test_unauthorized_with_tls_and_token(tmp_path):
    with LabApiServer("healthy", tls=True, token="s3cret", run_timeline=False) as srv:
        good = srv.write_kubeconfig(str(tmp_path / "good"))
        src, store = run_source(good)
        try:
            assert src.wait_synced(10)
            assert len(store.snapshot().topology.nodes) == 5
        finally:
            src.stop()
        srv.token = "other"  # our kubeconfig's token is now wrong
        src, store = run_source(good)
        try:
            assert wait_for(
                lambda: (s := status(store, "kubernetes")) is not None and s.state is SourceState.UNAUTHORIZED, 10
            )
            assert "az aks get-credentials" in status(store, "kubernetes").detail  # type: ignore[union-attr]
        finally:
            src.stop()


def test_client_certificate_auth(tmp_path):
    with LabApiServer("healthy", client_cert_auth=True, run_timeline=False) as srv:
        kc = srv.write_kubeconfig(str(tmp_path / "kc"))
        src, store = run_source(kc)
        try:
            assert src.wait_synced(10)
            assert len(store.snapshot().topology.nodes) == 5
        finally:
            src.stop()


def test_malformed_json_then_recovery(lab):
    lab.faults.malformed_json(r"^/api/v1/nodes$", times=1, verb="list")
    src, store = run_source(lab.kubeconfig_path)
    try:
        assert wait_for(
            lambda: (s := status(store, "kubernetes/nodes")) is not None and s.state is SourceState.ERROR, 10
        )
        assert "malformed" in status(store, "kubernetes/nodes").message  # type: ignore[union-attr]
        assert wait_for(lambda: "nodes" in store.snapshot().synced, 10)  # retried after backoff
        assert len(store.snapshot().topology.nodes) == 5
    finally:
        src.stop()


def test_server_error_then_recovery(lab):
    lab.faults.add(r"^/api/v1/services$", status=503, times=1, verb="list")
    src, store = run_source(lab.kubeconfig_path)
    try:
        assert wait_for(lambda: "services" in store.snapshot().synced, 10)
        assert any(r.status == 503 for r in lab.requests.records())
    finally:
        src.stop()


def test_unreachable_server_says_so_with_retry(tmp_path, lab):
    kc = lab.kubeconfig_path
    lab.stop()  # nothing listens there now
    src, store = run_source(kc)
    try:
        assert wait_for(
            lambda: (s := status(store, "kubernetes")) is not None and s.state is SourceState.UNREACHABLE, 15
        )
        st = status(store, "kubernetes")
        assert "unreachable" in st.message and st.retry_at is not None  # type: ignore[union-attr]
    finally:
        src.stop()


def test_stop_is_prompt_with_open_watches(lab):
    src, _ = run_source(lab.kubeconfig_path, watch_timeout=300)
    assert src.wait_synced(10)
    t0 = time.monotonic()
    src.stop(5.0)
    assert time.monotonic() - t0 < 5.0
    assert all(not r.thread.is_alive() for r in src.reflectors)


# --- connecting like kubectl -------------------------------------------------------------
def test_no_kubeconfig_suggests_demo(tmp_path):
    with pytest.raises(KubeConnectError) as e:
        load(str(tmp_path / "missing"), "", env={})
    assert "no kubeconfig found" in e.value.message and "--demo" in e.value.hint


def test_unknown_context_lists_known(lab):
    with pytest.raises(KubeConnectError) as e:
        load(lab.kubeconfig_path, "prod", env={})
    assert "'prod' not found" in e.value.message and "lab" in e.value.message


def test_kubeconfig_env_var_is_used(lab):
    api, target = load("", "", env={"KUBECONFIG": lab.kubeconfig_path})
    assert target.server == lab.url and target.context == "lab"
    api.close()


def test_garbage_kubeconfig(tmp_path):
    p = tmp_path / "kc"
    p.write_text("{{{ not yaml")
    with pytest.raises(KubeConnectError, match="not valid|kubeconfig"):
        load(str(p), "", env={})


def test_exec_plugin_failure_is_explained(tmp_path, lab):
    import yaml

    doc = lab.kubeconfig()
    doc["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "kubelogin-missing-binary",
            "args": ["get-token"],
        }
    }
    p = tmp_path / "kc"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(KubeConnectError) as e:
        load(str(p), "", env={})
    assert "exec credential plugin failed" in e.value.message and "kubelogin-missing-binary" in e.value.message
    assert "kubelogin convert-kubeconfig" in e.value.hint
    src, store = run_source(str(p))  # the source says the same in its status line
    try:
        assert wait_for(lambda: (s := status(store, "kubernetes")) is not None and s.state is SourceState.ERROR, 10)
        assert "exec credential plugin failed" in status(store, "kubernetes").message  # type: ignore[union-attr]
    finally:
        src.stop()
