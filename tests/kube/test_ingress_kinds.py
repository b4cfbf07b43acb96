"""The ingress path's kinds through the real source against the lab: listed and watched
like the topology's, CRD kinds only when discovery lists them (absent is a live state),
and a 403 on one of them is said but never fatal."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from probes.config import KubeConfig
from probes.engine.store import Store
from probes.ingress.kinds import INGRESS_KINDS
from probes.kube.model import SourceState
from probes.kube.source import KubeSource
from probes.lab.apiserver import LabApiServer
from tests.support.wait import wait_for


@pytest.fixture
def run(tmp_path):
    made: list[tuple[LabApiServer, KubeSource]] = []

    def go(scenario: str, before: Callable[[LabApiServer], None] | None = None) -> tuple[LabApiServer, Store]:
        srv = LabApiServer(scenario, bookmark_interval=0.5).start()
        if before is not None:
            before(srv)
        store = Store()
        src = KubeSource(store, KubeConfig(kubeconfig=srv.write_kubeconfig(str(tmp_path / f"kc{len(made)}"))))
        src.start()
        made.append((srv, src))
        return srv, store

    yield go
    for srv, src in made:
        src.stop()
        srv.stop()


def settled(store: Store) -> bool:
    snap = store.snapshot()
    got = [snap.status(f"ingress/{k.name}") for k in INGRESS_KINDS]
    return all(s is not None and s.state not in (SourceState.CONNECTING, SourceState.SYNCING) for s in got)


def test_listed_then_watched(run):
    srv, store = run("f23")
    assert wait_for(
        lambda: (
            settled(store)
            and len(store.snapshot().ingress.ingresses) == 5
            and len(store.snapshot().ingress.services) == 3
        ),
        15,
    )
    data = store.snapshot().ingress
    assert {i.key for i in data.ingresses} == {"api/api", "checkout/checkout", "portal/portal", "shop/shop", "www/www"}
    assert len(data.certificates) == 5 and len(data.challenges) == 1 and len(data.pods) == 4
    assert {s.key for s in data.services} == {
        "default/web",
        "ingress-nginx/ingress-nginx-controller",
        "app-routing-system/nginx",
    }
    assert {k for k, _ in data.absent} == {"gateways", "httproutes"}
    # a deletion arrives by the watch
    srv.state.store.delete("ingresses", "www/www")
    assert wait_for(lambda: len(store.snapshot().ingress.ingresses) == 4, 10)
    # the topology did not move for it
    assert store.snapshot().topology is store.snapshot().topology


def test_without_the_crds_the_kinds_are_a_live_absent_state(run):
    srv, store = run("healthy")
    assert wait_for(lambda: settled(store), 15)
    snap = store.snapshot()
    absent = dict(snap.ingress.absent)
    assert set(absent) == {"certificates", "certificaterequests", "orders", "challenges", "gateways", "httproutes"}
    assert absent["certificates"] == "/apis/cert-manager.io/v1 is not served: the CRDs are not installed"
    st = snap.status("ingress/certificates")
    assert st is not None and st.state is SourceState.LIVE and "not served" in st.message and not st.fatal
    # never asked for a list of what discovery does not show
    assert not srv.requests.count(path="^/apis/cert-manager.io/v1/certificates", verb="list")


def test_forbidden_ingress_kind_is_said_not_fatal(run):
    srv, store = run("ingress", lambda s: s.faults.add(r"^/apis/networking\.k8s\.io/v1/ingresses", status=403))
    assert wait_for(
        lambda: (s := store.snapshot().status("ingress/ingresses")) is not None and s.state is SourceState.FORBIDDEN, 15
    )
    st = store.snapshot().status("ingress/ingresses")
    assert not st.fatal and "grant get/list/watch on ingresses" in st.detail
    # the rest goes on
    assert wait_for(lambda: store.snapshot().status("kubernetes/nodes").state is SourceState.LIVE, 10)
    assert wait_for(lambda: len(store.snapshot().ingress.classes) == 2, 10)
