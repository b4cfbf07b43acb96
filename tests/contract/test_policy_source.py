"""The NetworkPolicy inputs (F21) read by the kube source from the lab API server over real
HTTP: Kubernetes NetworkPolicies, namespaces' labels, Calico's CRDs only where they are
served (absent is a state), the pods the egress policies select read on demand (never all
pods), a 403 on the policy kinds never fatal, and watch events reaching the store."""

from __future__ import annotations

import copy
import time
from pathlib import Path

from probes.diagnose import diagnose, observe
from probes.kube.model import SourceState
from probes.kube.policymodel import PolicyInputs
from probes.lab.apiserver import LabApiServer
from tests.contract.test_kubesource import run_source, status, wait_for


def inputs_when_synced(store, timeout: float = 15.0) -> PolicyInputs:  # type: ignore[no-untyped-def]
    assert wait_for(lambda: store.snapshot().policies.kube_synced, timeout), store.snapshot().statuses
    return store.snapshot().policies


def test_f21_policies_namespaces_and_selected_pods(tmp_path: Path) -> None:
    with LabApiServer("f21", run_timeline=False) as srv:
        src, store = run_source(srv.write_kubeconfig(str(tmp_path / "kc")))
        try:
            pol = inputs_when_synced(store)
            assert [(p.namespace, p.name) for p in pol.kube_policies] == [
                ("payments", "default-deny"),
                ("shop", "default-deny"),
            ]
            assert pol.calico == "absent"
            st = status(store, "kubernetes/calico-networkpolicies")
            assert st.state is SourceState.LIVE and "not served" in st.message
            ns = dict(pol.namespaces)
            assert ("team", "shop") in ns["shop"] and ("kubernetes.io/metadata.name", "shop") in ns["shop"]
            sets = dict(pol.label_sets)
            assert {dict(s)["app"] for s in sets["shop"]} == {"web", "worker"}
            assert {dict(s)["app"] for s in sets["payments"]} == {"api"}
            assert "default" not in sets  # no egress policy there: its pods are never read
            assert len(pol.kube_dns) == 2 and all(p.ip for p in pol.kube_dns)
            assert ("dns", "UDP", 53) in pol.kube_dns[0].ports
            # never all pods: every pod list is namespaced, one small page, running non-hostNetwork pods
            lists = [r for r in srv.requests.records() if r.resource == "pods" and r.verb == "list"]
            assert any(r.path == "/api/v1/namespaces/shop/pods" for r in lists)
            for r in lists:
                if r.path == "/api/v1/pods":  # the ingress controllers' pods, label-selected
                    assert r.query["labelSelector"].startswith(("app.kubernetes.io/name in (", "app in ("))
                    continue
                assert r.path.startswith("/api/v1/namespaces/")
                if not r.path.startswith("/api/v1/namespaces/kube-system/"):
                    assert int(r.query["limit"]) <= 20 and "status.phase=Running" in r.query["fieldSelector"]
            found = diagnose(observe(store.snapshot().topology, policies=pol))
            f21 = [f for f in found if f.fault == "F21"]
            assert [f.subject for f in f21] == ["networkpolicy/shop/default-deny"]
        finally:
            src.stop()


def test_f21_calico_crds_are_discovered_and_read(tmp_path: Path) -> None:
    with LabApiServer("f21-calico", run_timeline=False) as srv:
        src, store = run_source(srv.write_kubeconfig(str(tmp_path / "kc")))
        try:
            assert wait_for(lambda: store.snapshot().policies.calico == "present", 15)
            pol = inputs_when_synced(store)
            assert sorted((p.kind, p.name, p.order) for p in pol.calico_policies) == [
                ("GlobalNetworkPolicy", "deny-link-local-udp", 100.0),
                ("NetworkPolicy", "allow-dns", 500.0),
            ]
            assert dict(pol.label_sets)["shop"]
            f21 = [f for f in diagnose(observe(store.snapshot().topology, policies=pol)) if f.fault == "F21"]
            assert [f.subject for f in f21] == ["globalnetworkpolicy/deny-link-local-udp@shop"]
            assert "UDP 53" in f21[0].cause and "TCP" not in f21[0].cause
        finally:
            src.stop()


def test_forbidden_networkpolicies_are_said_and_not_fatal(tmp_path: Path) -> None:
    with LabApiServer("f21", run_timeline=False) as srv:
        srv.faults.add(r"^/apis/networking\.k8s\.io/v1/networkpolicies", status=403)
        src, store = run_source(srv.write_kubeconfig(str(tmp_path / "kc")))
        try:
            live, fatal = src.wait_live(15)
            assert live and fatal is None  # the topology's kinds are live; the run goes on
            st = status(store, "kubernetes/networkpolicies")
            assert st.state is SourceState.FORBIDDEN and not st.fatal
            assert "networkpolicies.networking.k8s.io" in st.detail and "F21" in st.detail
            assert len(store.snapshot().topology.nodes) == 5
            assert not store.snapshot().policies.kube_synced  # nothing judged on half the data
        finally:
            src.stop()


def test_a_new_policy_arrives_by_watch_and_its_pods_are_read(tmp_path: Path) -> None:
    with LabApiServer("f21", run_timeline=False) as srv:
        src, store = run_source(srv.write_kubeconfig(str(tmp_path / "kc")))
        try:
            inputs_when_synced(store)
            e = srv.state.store.get("networkpolicies", "shop/default-deny")
            assert e is not None
            obj = copy.deepcopy(e.obj)
            obj["metadata"] = {"name": "deny-all", "namespace": "default"}
            obj["spec"] = {"podSelector": {}, "policyTypes": ["Egress"]}
            srv.state.store.put("networkpolicies", obj)
            t0 = time.monotonic()
            assert wait_for(lambda: any(p.name == "deny-all" for p in store.snapshot().policies.kube_policies), 10)
            assert time.monotonic() - t0 < 5  # a watch event, not a relist
            # default has no app pods in f21: a policy alone is no finding
            pol = store.snapshot().policies
            found = diagnose(observe(store.snapshot().topology, policies=pol))
            assert all(f.subject != "networkpolicy/default/deny-all" for f in found)
        finally:
            src.stop()
