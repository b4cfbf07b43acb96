"""Rules over hand-made observations (unit) and random healthy ones (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from probes.diagnose import Observations, Severity, diagnose
from probes.dns.probe import ProbeKey
from probes.engine.history import Stats
from probes.engine.store import Store
from tests.support.kubejson import fill_store, pod, small_cluster

CLUSTER = "kubernetes.default.svc.cluster.local"
EXTERNAL = "mcr.microsoft.com"
NOW = 1795172400.0  # the fixtures' nodes are 60 minutes old


def stats(outcome: str = "ok", loss: float = 0.0, attempts: int = 4, p50: float | None = 0.5) -> Stats:
    ok = outcome in ("ok", "nxdomain", "truncated-tcp-ok")
    return Stats(
        count=attempts,
        attempts=attempts,
        successes=attempts if ok else 0,
        p50=p50 if ok else None,
        p95=p50 if ok else None,
        p99=p50 if ok else None,
        loss_pct=loss,
        last_outcome=outcome,
        last_error="" if ok else "no answer",
        last_raw="",
        last_ts=NOW,
        last=None,
        recent=(p50,) * attempts,
        version=attempts,
    )


def topology(objs=None):  # type: ignore[no-untyped-def]
    store = Store()
    fill_store(store, objs or small_cluster())
    return store.snapshot().topology


def healthy_dns(topo, names=(CLUSTER, EXTERNAL)) -> dict[ProbeKey, Stats]:  # type: ignore[no-untyped-def]
    out = {}
    for n in topo.nodes:
        for res in ("nodelocal", "kube-dns", *(f"coredns/{p.name}" for p in topo.coredns)):
            for name in names:
                out[ProbeKey(f"node/{n.name}", res, name)] = stats()
    return out


def faults(findings) -> set[tuple[str | None, str]]:  # type: ignore[no-untyped-def]
    return {(f.fault, f.subject) for f in findings if f.severity >= Severity.WARNING}


def test_healthy_has_nothing_above_info():
    topo = topology()
    assert [f for f in diagnose(Observations(topo, healthy_dns(topo), NOW)) if f.severity > Severity.INFO] == []


def test_f4_nodelocal_down_on_one_node_with_kube_dns_fine():
    objs = small_cluster()
    bad = objs["nodes"][1]["metadata"]["name"]
    objs["pods"] = [
        p
        if p["spec"]["nodeName"] != bad or p["metadata"]["labels"]["k8s-app"] != "node-local-dns"
        else pod(p["metadata"]["name"], bad, "node-local-dns", ready=False)
        for p in objs["pods"]
    ]
    topo = topology(objs)
    dns = healthy_dns(topo)
    for name in (CLUSTER, EXTERNAL):
        dns[ProbeKey(f"node/{bad}", "nodelocal", name)] = stats("timeout", 100.0)
    found = diagnose(Observations(topo, dns, NOW))
    assert faults(found) == {("F4", f"node/{bad}")}
    f4 = next(f for f in found if f.fault == "F4")
    assert f4.severity is Severity.CRITICAL and "not ready" in f4.evidence["pod"] and "kubectl" in f4.next_step


def test_nodelocal_timeouts_without_kube_dns_are_not_blamed_on_nodelocal():
    topo = topology()
    dns = healthy_dns(topo)
    node = topo.nodes[0].name
    for res in ("nodelocal", "kube-dns"):
        for name in (CLUSTER, EXTERNAL):
            dns[ProbeKey(f"node/{node}", res, name)] = stats("timeout", 100.0)
    assert ("F4", f"node/{node}") not in faults(diagnose(Observations(topo, dns, NOW)))


def test_f5_kube_dns_down_from_every_node():
    topo = topology()
    dns = {
        k: (stats("timeout", 100.0) if k.resolver == "kube-dns" or k.resolver.startswith("coredns") else v)
        for k, v in healthy_dns(topo).items()
    }
    assert ("F5", "resolver/kube-dns") in faults(diagnose(Observations(topo, dns, NOW)))


def test_f5_all_coredns_pods_unready_even_without_node_vantages():
    objs = small_cluster()
    objs["pods"] = [
        pod(p["metadata"]["name"], p["spec"]["nodeName"], "kube-dns", ready=False)
        if p["metadata"]["labels"]["k8s-app"] == "kube-dns"
        else p
        for p in objs["pods"]
    ]
    assert ("F5", "resolver/kube-dns") in faults(diagnose(Observations(topology(objs), {}, NOW)))


def test_f6_external_names_fail_everywhere_cluster_names_fine():
    topo = topology()
    dns = {
        k: (stats("servfail", 0.0) if k.name == EXTERNAL and k.resolver != "nodelocal" else v)
        for k, v in healthy_dns(topo).items()
    }
    found = faults(diagnose(Observations(topo, dns, NOW)))
    assert ("F6", "resolver/upstream") in found and not any(f == "F5" for f, _ in found)


def test_f6_needs_every_vantage():
    topo = topology()
    first = f"node/{topo.nodes[0].name}"
    dns = {
        k: (stats("servfail") if k.name == EXTERNAL and k.vantage == first else v) for k, v in healthy_dns(topo).items()
    }
    assert not any(f == "F6" for f, _ in faults(diagnose(Observations(topo, dns, NOW))))


def test_f7_truncation_severity_follows_tcp_retry():
    topo = topology()
    dns = healthy_dns(topo)
    k = next(iter(dns))
    dns[k] = stats("truncated-tcp-ok")
    found = [f for f in diagnose(Observations(topo, dns, NOW)) if f.fault == "F7"]
    assert [f.severity for f in found] == [Severity.INFO]
    dns[k] = stats("truncated-tcp-failed", loss=0.0)
    found = [f for f in diagnose(Observations(topo, dns, NOW)) if f.fault == "F7"]
    assert [f.severity for f in found] == [Severity.WARNING]


def test_f1_no_route_condition_is_critical():
    objs = small_cluster()
    node = objs["nodes"][2]
    node["status"]["conditions"][1] = {"type": "NetworkUnavailable", "status": "True", "reason": "NoRouteCreated"}
    found = [f for f in diagnose(Observations(topology(objs), {}, NOW)) if f.fault == "F1"]
    assert len(found) == 1 and found[0].severity is Severity.CRITICAL
    assert found[0].evidence["expected_next_hop"] == "10.224.0.6" and "10.244.2.0/24" in found[0].evidence["pod_cidrs"]


def test_f12_pending_load_balancer():
    from tests.support.kubejson import service

    objs = small_cluster()
    objs["services"].append(service("api", "web", "LoadBalancer", "10.0.40.9"))
    found = [f for f in diagnose(Observations(topology(objs), {}, NOW)) if f.fault == "F12"]
    assert [f.subject for f in found] == ["service/web/api"] and found[0].severity is Severity.WARNING


def test_upgrade_aware_cordoned_not_ready_node_is_info():
    objs = small_cluster()
    objs["nodes"][0]["spec"]["unschedulable"] = True
    objs["nodes"][0]["status"]["conditions"][0] = {"type": "Ready", "status": "False", "reason": "KubeletNotReady"}
    found = [
        f
        for f in diagnose(Observations(topology(objs), {}, NOW))
        if f.subject.endswith(objs["nodes"][0]["metadata"]["name"])
    ]
    assert found and all(f.severity is Severity.INFO for f in found)


def test_local_vantage_failures_alone_are_info():
    topo = topology()
    dns = {
        ProbeKey("local", res, n): stats("timeout", 100.0)
        for res in ("kube-dns", "nodelocal")
        for n in (CLUSTER, EXTERNAL)
    }
    found = diagnose(Observations(topo, dns, NOW))
    assert found and all(f.severity is Severity.INFO for f in found)


outcomes_ok = st.sampled_from(["ok", "ok", "ok", "nxdomain", "truncated-tcp-ok"])


@settings(max_examples=80, deadline=None)
@given(
    n_user=st.integers(0, 6),
    lat=st.floats(0.05, 50.0),
    loss=st.floats(0.0, 30.0),
    outcome=outcomes_ok,
    cordon=st.booleans(),
)
def test_random_healthy_snapshots_raise_no_critical(n_user, lat, loss, outcome, cordon):
    objs = small_cluster(n_user=n_user)
    if cordon and objs["nodes"]:
        objs["nodes"][-1]["spec"]["unschedulable"] = True
    topo = topology(objs)
    dns = {k: stats(outcome, loss, p50=lat) for k in healthy_dns(topo)}
    assert not [f for f in diagnose(Observations(topo, dns, NOW)) if f.severity is Severity.CRITICAL]


# --- egress ------------------------------------------------------------------------------
def egress_views(topo, targets=("mcr.microsoft.com:443", "mcr.microsoft.com:80", "management.azure.com:443")):  # type: ignore[no-untyped-def]
    from probes.egress.probe import EgressKey

    return {EgressKey(f"node/{n.name}", t): stats("open") for n in topo.nodes for t in targets}


def test_f8_one_port_dropped_everywhere():
    topo = topology()
    eg = egress_views(topo)
    for k in eg:
        if k.target == "mcr.microsoft.com:443":
            eg[k] = stats("timeout", 100.0)
    found = [f for f in diagnose(Observations(topo, {}, NOW, eg)) if f.severity > Severity.INFO]
    assert [(f.fault, f.subject) for f in found] == [("F8", "target/mcr.microsoft.com:443")]
    assert "not SNAT" in found[0].cause and found[0].evidence["open_elsewhere"] == "mcr.microsoft.com:80"


def test_f9_unreachable_everywhere():
    topo = topology()
    eg = egress_views(topo)
    for k in eg:
        if k.target == "management.azure.com:443":
            eg[k] = stats("unreachable", 100.0)
    assert [(f.fault, f.subject) for f in diagnose(Observations(topo, {}, NOW, eg)) if f.severity > Severity.INFO] == [
        ("F9", "target/management.azure.com:443")
    ]


def test_f10_one_node_with_and_without_snat_evidence():
    from probes.azure.snat import NodeSnat, SnatTable

    topo = topology()
    eg = egress_views(topo)
    bad = topo.nodes[3]
    for k in eg:
        if k.vantage == f"node/{bad.name}":
            eg[k] = stats("timeout", 100.0)
    plain = [f for f in diagnose(Observations(topo, {}, NOW, eg)) if f.severity > Severity.INFO]
    assert {(f.severity, f.subject) for f in plain} == {(Severity.WARNING, f"node/{bad.name}")}
    table = SnatTable(
        nodes=(NodeSnat(bad.internal_ip, bad.name, bad.pool, 1024, 1024.0, 1000.0, 37.0, 5.0),), unmatched=(), silent=()
    )
    found = [f for f in diagnose(Observations(topo, {}, NOW, eg, table)) if f.severity > Severity.INFO]
    assert {(f.fault, f.severity, f.subject) for f in found} == {("F10", Severity.CRITICAL, f"node/{bad.name}")}
    assert found[0].evidence["pct"] == "100%" and found[0].evidence["failed_connections"] == 37.0


def test_f11_surge_crosses_a_tier():
    from probes.azure.snat import allocation

    topo = topology()
    alloc = allocation(50, surge=1)
    found = [f for f in diagnose(Observations(topo, {}, NOW, snat_allocation=alloc)) if f.fault == "F11"]
    assert [(f.severity, f.subject) for f in found] == [(Severity.WARNING, "cluster")]
    assert found[0].evidence["ports_now"] == 1024 and found[0].evidence["ports_during_surge"] == 512
    calm = allocation(10, surge=1)
    assert not [f for f in diagnose(Observations(topo, {}, NOW, snat_allocation=calm)) if f.severity > Severity.INFO]


def test_f7_one_finding_per_resolver_listing_its_names():
    topo = topology()
    dns = healthy_dns(topo)
    for k in list(dns):
        if k.resolver == "kube-dns":
            dns[k] = stats("truncated-tcp-ok")
    found = [f for f in diagnose(Observations(topo, dns, NOW)) if f.fault == "F7"]
    assert [f.subject for f in found] == ["resolver/kube-dns"]
    assert found[0].evidence["names"] == f"{CLUSTER}, {EXTERNAL}"
