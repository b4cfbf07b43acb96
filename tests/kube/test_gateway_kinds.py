"""The static egress gateway's kinds through the real source against the lab: the
StaticGatewayConfigurations only where discovery shows the CRD (absent is a live state),
the annotated pods only there too (and only the annotated ones kept), a 403 said but never
fatal."""

from __future__ import annotations

import copy

from probes.kube.gatewaymodel import GatewayConfig, GatewayPod
from probes.kube.model import SourceState
from tests.kube.test_ingress_kinds import run, wait_for  # noqa: F401 - `run` is a fixture

SGC = "staticgatewayconfigurations"


def test_configurations_and_annotated_pods_are_read(run):  # noqa: F811
    srv, store = run("egress-gateway")
    assert wait_for(lambda: store.snapshot().gateways.state == "present" and store.snapshot().gateways.pods_read, 15)
    g = store.snapshot().gateways
    assert [c.key for c in g.configs] == ["payments/sgc-payments", "shop/sgc-shop"]
    shop = g.config("shop", "sgc-shop")
    assert shop == GatewayConfig(
        "shop",
        "sgc-shop",
        "gwpool",
        provision_public_ips=True,
        exclude_cidrs=("10.224.0.0/12", "192.168.0.0/16", "10.0.0.0/16"),
        egress_prefix="20.65.41.84/30",
        server_ip="10.224.0.20",
        created=shop.created,
    )
    assert shop.created.endswith("Z")
    # only the annotated pods, out of every pod the cluster runs (CoreDNS, kube-proxy, ...)
    assert (
        sorted((p.namespace, p.gateway) for p in g.pods) == [("payments", "sgc-payments")] + [("shop", "sgc-shop")] * 3
    )
    assert all(isinstance(p, GatewayPod) and p.node and p.phase == "Running" for p in g.pods)
    gw_nodes = {n.name for n in store.snapshot().topology.nodes if n.pool == "gwpool"}
    assert len(gw_nodes) == 2 and all(
        n.mode == "gateway" for n in store.snapshot().topology.nodes if n.pool == "gwpool"
    )
    assert not {p.node for p in g.pods} & gw_nodes
    # a watch event: the operator provisions a prefix; a pod goes away
    entry = srv.state.store.get(SGC, "payments/sgc-payments")
    obj = copy.deepcopy(entry.obj)
    obj["status"] = {"egressIpPrefix": "20.65.41.90/31"}
    srv.state.store.put(SGC, obj)
    gone = next(p for p in g.pods if p.namespace == "shop")
    srv.state.store.delete("pods", f"{gone.namespace}/{gone.name}")
    assert wait_for(
        lambda: (
            (c := store.snapshot().gateways.config("payments", "sgc-payments")) is not None
            and c.egress_prefix == "20.65.41.90/31"
            and len(store.snapshot().gateways.pods) == 3
        ),
        10,
    )


def test_without_the_crd_the_gateway_is_absent_and_pods_are_not_watched(run):  # noqa: F811
    srv, store = run("healthy")
    assert wait_for(lambda: store.snapshot().gateways.state == "absent", 15)
    for name in (SGC, "gateway-pods"):
        assert wait_for(lambda n=name: store.snapshot().status(f"kubernetes/{n}") is not None, 10)
        st = store.snapshot().status(f"kubernetes/{name}")
        assert st.state is SourceState.LIVE and "CRDs not installed" in st.message and not st.fatal
    g = store.snapshot().gateways
    assert g.configs == () and g.pods == () and not g.pods_read
    # never a list of pods cluster-wide, nor of the CRD's resource
    everything = [r for r in srv.requests.records() if r.path == "/api/v1/pods" and not r.query.get("labelSelector")]
    assert everything == []  # the ingress kinds' pod lists carry their label selectors
    assert not srv.requests.count(path=f"^/apis/egressgateway.kubernetes.azure.com/v1alpha1/{SGC}", verb="list")


def test_forbidden_configurations_are_said_not_fatal(run):  # noqa: F811
    srv, store = run(
        "egress-gateway",
        lambda s: s.faults.add(r"^/apis/egressgateway\.kubernetes\.azure\.com/v1alpha1/staticgateway", status=403),
    )
    assert wait_for(lambda: store.snapshot().gateways.state == "forbidden", 15)
    st = store.snapshot().status(f"kubernetes/{SGC}")
    assert st.state is SourceState.FORBIDDEN and not st.fatal
    assert "the static egress gateway is not judged" in st.detail and "NetworkPolicies" not in st.detail
    assert wait_for(lambda: store.snapshot().status("kubernetes/nodes").state is SourceState.LIVE, 10)
