"""What the reader hands the agents: the CoreDNS pods of the store's watch, once listed."""

from __future__ import annotations

from probes.agent.hint import CorednsPod
from probes.engine.services import coredns_pods
from probes.engine.store import COREDNS, Store
from probes.kube.model import PodState


def test_none_until_listed_then_every_pod_with_an_address_ready_or_not():
    store = Store()
    assert coredns_pods(store) is None  # not listed yet: the reader holds its early read
    store.replace(COREDNS, {})
    assert coredns_pods(store) == ()
    store.replace(
        COREDNS,
        {
            "kube-system/coredns-a": PodState("kube-system", "coredns-a", "n1", "10.244.1.5", "Running", True),
            "kube-system/coredns-b": PodState("kube-system", "coredns-b", "n2", "10.244.2.9", "Running", False),
            "kube-system/coredns-c": PodState("kube-system", "coredns-c", "", "", "Pending", False),
        },
    )
    # the not-ready pod is kept (F16: does it still answer?); the unscheduled one has no address
    assert coredns_pods(store) == (
        CorednsPod("coredns-a", "10.244.1.5", "n1"),
        CorednsPod("coredns-b", "10.244.2.9", "n2"),
    )
