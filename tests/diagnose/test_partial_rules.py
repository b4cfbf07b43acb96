"""F14–F20 over hand-made observations: each threshold on both sides, each finding names
its place; and random healthy observations (sizes, plugins, upgrade marks, jitter) never
raise anything above info."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.azure.snat import NodeSnat, SnatTable
from probes.diagnose import Observations, Severity, diagnose
from probes.diagnose.stats import beyond_noise, binom_sf
from probes.dns.probe import ProbeKey
from probes.egress.result import EgressKey
from probes.engine.history import Stats
from tests.diagnose.test_rules import CLUSTER, EXTERNAL, NOW, healthy_dns, topology
from tests.support.kubejson import pod, small_cluster


def rows(lat: list[float | None], outcome: str | None = None) -> Stats:
    """A row from per-attempt latencies (None = lost)."""
    ok = [v for v in lat if v is not None]
    srt = sorted(ok)
    last = outcome or ("ok" if lat[-1] is not None else "timeout")
    return Stats(
        count=len(lat),
        attempts=len(lat),
        successes=len(ok),
        p50=srt[len(srt) // 2] if srt else None,
        p95=srt[-1] if srt else None,
        p99=srt[-1] if srt else None,
        loss_pct=100.0 * (len(lat) - len(ok)) / len(lat),
        last_outcome=last,
        last_error="",
        last_raw="",
        last_ts=NOW,
        last=None,
        recent=tuple(lat),
        version=len(lat),
    )


def failed(n: int, outcome: str = "servfail") -> Stats:
    return dataclasses.replace(rows([None] * n), last_outcome=outcome, loss_pct=0.0 if outcome == "servfail" else 100.0)


def found(obs: Observations, fault: str) -> list:  # type: ignore[type-arg]
    return [f for f in diagnose(obs) if f.fault == fault]


def above_info(obs: Observations) -> list:  # type: ignore[type-arg]
    return [(f.fault, f.rule, f.subject) for f in diagnose(obs) if f.severity > Severity.INFO]


# --- statistics ------------------------------------------------------------------------
def test_binomial_tail_and_noise():
    assert abs(binom_sf(1, 1, 0.3) - 0.3) < 1e-12 and binom_sf(0, 5, 0.1) == 1.0 and binom_sf(6, 5, 0.1) == 0.0
    assert abs(binom_sf(2, 3, 0.5) - 0.5) < 1e-12
    assert not beyond_noise(2, 2, 0.005)  # too few samples, however bad
    assert beyond_noise(3, 3, 0.005)
    assert beyond_noise(3, 20, 0.005) and not beyond_noise(2, 20, 0.005)  # one side, then the other


# --- F14 -------------------------------------------------------------------------------
def slow_on(topo, node_name: str, ms: float, n: int = 4):  # type: ignore[no-untyped-def]
    dns = {k: rows([0.5] * n) for k in healthy_dns(topo)}
    dns[ProbeKey(f"node/{node_name}", "nodelocal", CLUSTER)] = rows([ms] * n)
    return dns


def test_f14_slow_nodelocal_on_one_node_both_sides():
    topo = topology()
    bad = topo.nodes[1].name
    f = found(Observations(topo, slow_on(topo, bad, 200.0), NOW), "F14")
    assert [(x.subject, x.severity) for x in f] == [(f"node/{bad}", Severity.WARNING)]
    assert f[0].evidence["p95"] == "200.0 ms" and f[0].evidence["others_p50"] == "0.5 ms" and f[0].next_step
    # relative: 30 ms where the others take 0.5 ms (over 10x and over the 25 ms floor)
    assert found(Observations(topo, slow_on(topo, bad, 30.0), NOW), "F14")
    # under the floor: 20 ms is 40x the median but within jitter
    assert not found(Observations(topo, slow_on(topo, bad, 20.0), NOW), "F14")
    # two samples are not enough
    assert not found(Observations(topo, slow_on(topo, bad, 500.0, n=2), NOW), "F14")
    # one slow answer in 20 is within a healthy p95
    dns = slow_on(topo, bad, 0.5, n=20)
    dns[ProbeKey(f"node/{bad}", "nodelocal", CLUSTER)] = rows([0.5] * 19 + [300.0])
    assert not found(Observations(topo, dns, NOW), "F14")


def test_f14_absolute_threshold_when_the_whole_cluster_is_slowish():
    topo = topology()
    bad = topo.nodes[1].name
    dns = {k: rows([40.0] * 4) for k in healthy_dns(topo)}
    dns[ProbeKey(f"node/{bad}", "nodelocal", CLUSTER)] = rows([99.0] * 4)  # under 100 ms and under 10x 40
    assert not found(Observations(topo, dns, NOW), "F14")
    dns[ProbeKey(f"node/{bad}", "nodelocal", CLUSTER)] = rows([101.0] * 4)  # 100 ms is the cap
    assert [x.subject for x in found(Observations(topo, dns, NOW), "F14")] == [f"node/{bad}"]


def test_f14_slow_everywhere_is_the_resolver():
    topo = topology()
    dns = {k: rows([0.5] * 4) for k in healthy_dns(topo)}
    for n in topo.nodes:
        dns[ProbeKey(f"node/{n.name}", "kube-dns", CLUSTER)] = rows([250.0] * 4)
    f = found(Observations(topo, dns, NOW), "F14")
    assert [x.subject for x in f] == ["resolver/kube-dns"]


def test_f14_slow_everywhere_with_the_caches_as_slow_is_the_nodes_not_coredns():
    """Every answer from every node slow — the node-local caches' too — is the nodes (or the
    host probing for them) being slow: not a CoreDNS finding. 10x the caches' median is."""
    topo = topology()
    dns = {k: rows([300.0, 320.0, 280.0, 310.0]) for k in healthy_dns(topo)}  # caches as slow
    for n in topo.nodes:
        dns[ProbeKey(f"node/{n.name}", "kube-dns", CLUSTER)] = rows([250.0, 400.0, 330.0, 500.0])
    assert not found(Observations(topo, dns, NOW), "F14")
    for n in topo.nodes:
        dns[ProbeKey(f"node/{n.name}", "nodelocal", CLUSTER)] = rows([30.0] * 4)
        dns[ProbeKey(f"node/{n.name}", "nodelocal", EXTERNAL)] = rows([30.0] * 4)
        for p in topo.coredns:
            dns[ProbeKey(f"node/{n.name}", f"coredns/{p.name}", CLUSTER)] = rows([3.0] * 4)
    assert [x.subject for x in found(Observations(topo, dns, NOW), "F14")] == ["resolver/kube-dns"]


def test_f14_on_a_cordoned_node_is_info():
    objs = small_cluster()
    objs["nodes"][1]["spec"] = {"unschedulable": True}
    topo = topology(objs)
    f = found(Observations(topo, slow_on(topo, topo.nodes[1].name, 200.0), NOW), "F14")
    assert [x.severity for x in f] == [Severity.INFO]


# --- F15 / F16 -------------------------------------------------------------------------
def one_replica(topo, outcome: str = "timeout", n: int = 4):  # type: ignore[no-untyped-def]
    dns = {k: rows([0.5] * 4) for k in healthy_dns(topo)}
    bad = topo.coredns[0].name
    for nd in topo.nodes:
        for name in (CLUSTER, EXTERNAL):
            dns[ProbeKey(f"node/{nd.name}", f"coredns/{bad}", name)] = failed(n, outcome)
            dns[ProbeKey(f"node/{nd.name}", "kube-dns", name)] = rows([0.5, None, 0.5, None])
    return dns, bad


def test_f15_one_replica_failing_named_not_f5():
    topo = topology()
    for outcome in ("timeout", "servfail"):
        dns, bad = one_replica(topo, outcome)
        obs = Observations(topo, dns, NOW)
        f = found(obs, "F15")
        assert [(x.subject, x.severity) for x in f] == [(f"pod/kube-system/{bad}", Severity.WARNING)], outcome
        assert bad in f[0].cause and "50%" in f[0].evidence["kube_dns"]
        assert not found(obs, "F5") and not found(obs, "F19")


def test_f15_names_the_nodes_it_fails_from_and_one_nodes_path_is_not_the_replica():
    topo = topology()
    dns, bad = one_replica(topo)
    f = found(Observations(topo, dns, NOW), "F15")
    assert (
        f
        and f"{bad}: all {len(topo.nodes)} vantages that probe it ({len(topo.nodes)} nodes)"
        in f[0].evidence["seen_from"]
    )
    # the same pod failing from one node only (its route to the pod), answering from the others
    dns = {k: rows([0.5] * 4) for k in healthy_dns(topo)}
    for i, nd in enumerate(topo.nodes):
        for name in (CLUSTER, EXTERNAL):
            dns[ProbeKey(f"node/{nd.name}", f"coredns/{bad}", name)] = (
                failed(4, "timeout") if i == 0 else rows([0.5] * 4)
            )
    assert len(topo.nodes) >= 3 and not found(Observations(topo, dns, NOW), "F15")
    # from half of them: the replica (it may be unreachable from the others' zone too, but it fails)
    for nd in topo.nodes[: (len(topo.nodes) + 1) // 2]:
        for name in (CLUSTER, EXTERNAL):
            dns[ProbeKey(f"node/{nd.name}", f"coredns/{bad}", name)] = failed(4, "timeout")
    assert found(Observations(topo, dns, NOW), "F15")


def test_f15_critical_when_most_replicas_fail_and_silent_below_threshold():
    objs = small_cluster()
    objs["pods"].append(
        pod("coredns-789789675-klmno", objs["nodes"][2]["metadata"]["name"], "kube-dns", ip="10.244.2.10")
    )
    topo = topology(objs)
    dns = {k: rows([0.5] * 4) for k in healthy_dns(topo)}
    for p in topo.coredns[:2]:
        for nd in topo.nodes:
            dns[ProbeKey(f"node/{nd.name}", f"coredns/{p.name}", CLUSTER)] = failed(4)
    f = found(Observations(topo, dns, NOW), "F15")
    assert [x.severity for x in f] == [Severity.CRITICAL]
    # a replica that loses 1 query in 4 is not failing (under half)
    dns = {k: rows([0.5] * 4) for k in healthy_dns(topo)}
    for nd in topo.nodes:
        dns[ProbeKey(f"node/{nd.name}", f"coredns/{topo.coredns[0].name}", CLUSTER)] = rows([0.5, None, 0.5, 0.5])
    assert not found(Observations(topo, dns, NOW), "F15")


def test_f16_not_ready_but_answering_named():
    objs = small_cluster()
    objs["pods"][-1] = pod(
        "coredns-789789675-fghij", objs["nodes"][1]["metadata"]["name"], "kube-dns", False, "10.244.1.10"
    )
    topo = topology(objs)
    obs = Observations(topo, {k: rows([0.5] * 4) for k in healthy_dns(topo)}, NOW)
    f = found(obs, "F16")
    assert [(x.subject, x.severity) for x in f] == [("pod/kube-system/coredns-789789675-fghij", Severity.WARNING)]
    assert "still answers" in f[0].cause and "readiness" in f[0].next_step
    assert not [x for x in diagnose(obs) if x.rule == "coredns-degraded"]  # said once, by F16
    # not answering: no F16, the degraded warning names the pod
    dns = {k: rows([0.5] * 4) for k in healthy_dns(topo)}
    for nd in topo.nodes:
        dns[ProbeKey(f"node/{nd.name}", "coredns/coredns-789789675-fghij", CLUSTER)] = failed(4, "timeout")
        dns[ProbeKey(f"node/{nd.name}", "coredns/coredns-789789675-fghij", EXTERNAL)] = failed(4, "timeout")
    obs = Observations(topo, dns, NOW)
    assert not found(obs, "F16")
    assert any("coredns-789789675-fghij" in x.cause for x in diagnose(obs) if x.rule == "coredns-degraded")


# --- F17 -------------------------------------------------------------------------------
def egress_rows(topo, bad: str | None, n: int = 2):  # type: ignore[no-untyped-def]
    out = {}
    for nd in topo.nodes:
        for t in ("mcr.microsoft.com:443", "login.microsoftonline.com:443", "management.azure.com:443"):
            if nd.name == bad:
                out[EgressKey(f"node/{nd.name}", t)] = dataclasses.replace(failed(n, "dns-failure"), loss_pct=0.0)
            else:
                out[EgressKey(f"node/{nd.name}", t)] = dataclasses.replace(rows([3.0] * n), last_outcome="open")
    return out


def test_f17_upstream_broken_from_one_node():
    topo = topology()
    bad = topo.nodes[2].name
    dns = {k: rows([0.5] * 2) for k in healthy_dns(topo)}
    dns[ProbeKey(f"node/{bad}", "nodelocal", EXTERNAL)] = failed(2, "timeout")
    obs = Observations(topo, dns, NOW, egress=egress_rows(topo, bad))
    f = found(obs, "F17")
    assert [(x.subject, x.severity) for x in f] == [(f"node/{bad}", Severity.CRITICAL)]
    assert f[0].evidence["egress_name_failures"] == "6/6 checks" and not found(obs, "F6")
    # DNS alone: two of four external lookups lost is beyond a 0.5 % loss; one of four is not
    assert found(Observations(topo, dns, NOW), "F17")
    dns[ProbeKey(f"node/{bad}", "nodelocal", EXTERNAL)] = rows([None, 0.5])
    assert not found(Observations(topo, dns, NOW), "F17")
    dns[ProbeKey(f"node/{bad}", "nodelocal", EXTERNAL)] = failed(2, "timeout")
    # the same on most nodes is the cluster's upstream, not one node
    for nd in topo.nodes[:3]:
        dns[ProbeKey(f"node/{nd.name}", "nodelocal", EXTERNAL)] = failed(2, "timeout")
    eg = egress_rows(topo, bad)
    for k in list(eg):
        if k.vantage in {f"node/{n.name}" for n in topo.nodes[:3]}:
            eg[k] = dataclasses.replace(failed(2, "dns-failure"), loss_pct=0.0)
    assert not found(Observations(topo, dns, NOW, egress=eg), "F17")


def test_f17_not_when_the_nodes_dns_is_down():
    topo = topology()
    bad = topo.nodes[2].name
    dns = {k: rows([0.5] * 2) for k in healthy_dns(topo)}
    for k in list(dns):
        if k.vantage == f"node/{bad}":
            dns[k] = failed(2, "timeout")
    assert not found(Observations(topo, dns, NOW, egress=egress_rows(topo, bad)), "F17")


@pytest.mark.parametrize(
    "dns_outcome, egress_outcome, words, cause, step",
    [
        ("timeout", "dns-timeout", "no answer (timeout)", "no answer (timeout)", "dig @168.63.129.16"),
        ("servfail", "dns-servfail", "SERVFAIL", "answers with errors", "forwards external names to"),
        ("nxdomain", "dns-nxdomain", "NXDOMAIN", "private DNS zone", "private-dns link"),
    ],
)
def test_f17_names_the_kind_and_a_next_step_for_it(dns_outcome, egress_outcome, words, cause, step):
    topo = topology()
    bad = topo.nodes[2].name
    dns = {k: rows([0.5] * 4) for k in healthy_dns(topo)}
    row = rows([0.5] * 4, "nxdomain") if dns_outcome == "nxdomain" else failed(4, dns_outcome)
    dns[ProbeKey(f"node/{bad}", "nodelocal", EXTERNAL)] = row
    eg = {
        k: (dataclasses.replace(v, last_outcome=egress_outcome) if k.vantage == f"node/{bad}" else v)
        for k, v in egress_rows(topo, bad, 4).items()
    }
    f = found(Observations(topo, dns, NOW, egress=eg), "F17")
    assert [(x.subject, x.severity) for x in f] == [(f"node/{bad}", Severity.CRITICAL)]
    assert f[0].evidence["failure"] == words and f[0].evidence["egress_name_failures"] == "12/12 checks"
    assert cause in f[0].cause and step in f[0].next_step
    # the other kinds' words are not borrowed
    others = {"no answer (timeout)", "SERVFAIL", "NXDOMAIN"} - {words}
    assert not any(o in f[0].cause for o in others)
    # the egress checks alone say it (the node's DNS probes of external names answer)
    dns[ProbeKey(f"node/{bad}", "nodelocal", EXTERNAL)] = rows([0.5] * 4)
    f = found(Observations(topo, dns, NOW, egress=eg), "F17")
    assert f and f[0].evidence["failure"] == words and f[0].evidence["external_dns_failed"] == "0/8"
    # ... and nothing when that node's checks resolve
    assert not found(Observations(topo, dns, NOW, egress=egress_rows(topo, None, 4)), "F17")


def test_f17_egress_alone_needs_enough_checks_and_most_failing():
    topo = topology()
    bad = topo.nodes[2].name
    dns = {k: rows([0.5] * 4) for k in healthy_dns(topo)}
    targets = ("mcr.microsoft.com:443", "login.microsoftonline.com:443", "management.azure.com:443")

    def eg(bad_rows: dict[str, Stats]):  # type: ignore[no-untyped-def]
        out = egress_rows(topo, None, 4)
        for t, row in bad_rows.items():
            out[EgressKey(f"node/{bad}", t)] = row
        return out

    one = dataclasses.replace(failed(1, "dns-servfail"), loss_pct=0.0)
    ok = dataclasses.replace(rows([3.0] * 4), last_outcome="open")
    # two failed checks: too few to say anything (MIN_SAMPLES)
    assert not found(Observations(topo, dns, NOW, egress=eg({targets[0]: one, targets[1]: one})), "F17")
    # three of three: beyond noise, F17 with the kind
    f = found(Observations(topo, dns, NOW, egress=eg(dict.fromkeys(targets, one))), "F17")
    assert f and f[0].evidence["failure"] == "SERVFAIL"
    # one target failing (4 of 12 checks): under half, not the node's resolver
    many = dataclasses.replace(failed(4, "dns-servfail"), loss_pct=0.0)
    assert not found(Observations(topo, dns, NOW, egress=eg({targets[0]: many, targets[1]: ok})), "F17")


def test_f17_nxdomain_counts_only_for_names_other_nodes_resolve():
    """NXDOMAIN is an answer: it counts against node X only when other nodes resolve the
    same name; a name that exists nowhere is no fault of X's."""
    topo = topology()
    bad = topo.nodes[2].name
    dns = {k: rows([0.5] * 4) for k in healthy_dns(topo)}
    dns[ProbeKey(f"node/{bad}", "nodelocal", EXTERNAL)] = rows([0.5] * 4, "nxdomain")
    dns[ProbeKey(f"node/{bad}", "kube-dns", EXTERNAL)] = rows([0.5] * 4, "nxdomain")
    f = found(Observations(topo, dns, NOW), "F17")
    assert f and f[0].evidence["failure"] == "NXDOMAIN" and f[0].evidence["external_dns_failed"] == "8/8"
    for k in list(dns):
        if k.name == EXTERNAL:
            dns[k] = rows([0.5] * 4, "nxdomain")
    assert not found(Observations(topo, dns, NOW), "F17")


def test_f17_not_when_the_nodes_cache_is_down_for_cluster_names():
    """NodeLocal down on X (F4) fails X's egress name resolution too, while kube-dns still
    answers cluster names from X: that is F4's finding, not an upstream one."""
    topo = topology()
    bad = topo.nodes[2].name
    dns = {k: rows([0.5] * 4) for k in healthy_dns(topo)}
    for name in (CLUSTER, EXTERNAL):
        dns[ProbeKey(f"node/{bad}", "nodelocal", name)] = failed(4, "timeout")
    eg = egress_rows(topo, bad, 4)
    eg = {
        k: (dataclasses.replace(v, last_outcome="dns-timeout") if k.vantage == f"node/{bad}" else v)
        for k, v in eg.items()
    }
    assert not found(Observations(topo, dns, NOW, egress=eg), "F17")
    assert found(Observations(topo, dns, NOW, egress=eg), "F4")


# --- F18 -------------------------------------------------------------------------------
def snat_row(name: str, used: float, series: tuple[float, ...] = ()) -> NodeSnat:
    times = tuple(1000.0 + 60 * i for i in range(len(series)))
    return NodeSnat("10.224.0.9", name, "userpool", 1000, used, used, 0.0, 0.0, times, series)


def test_f18_pressure_thresholds_and_time_left():
    topo = topology()
    n = topo.nodes[0].name

    def f18(row: NodeSnat):  # type: ignore[no-untyped-def]
        obs = Observations(topo, {}, NOW, snat=SnatTable(nodes=(row,), unmatched=(), silent=()))
        return [(x.rule, x.severity) for x in diagnose(obs) if x.fault in ("F10", "F18")]

    assert f18(snat_row(n, 790.0)) == []
    assert f18(snat_row(n, 810.0)) == [("snat-pressure", Severity.WARNING)]
    assert f18(snat_row(n, 940.0)) == [("snat-pressure", Severity.WARNING)]
    assert f18(snat_row(n, 970.0)) == [("snat-pressure", Severity.CRITICAL)]  # 97 %, no failure (was silent)
    assert f18(snat_row(n, 1000.0)) == [("snat-exhausted", Severity.CRITICAL)]
    # 82 % rising 20 ports a minute: 180 ports left, 9 minutes -> critical
    rising = snat_row(n, 820.0, (740.0, 760.0, 780.0, 800.0, 820.0))
    assert f18(rising) == [("snat-pressure", Severity.CRITICAL)]
    obs = Observations(topo, {}, NOW, snat=SnatTable(nodes=(rising,), unmatched=(), silent=()))
    assert next(x for x in diagnose(obs) if x.fault == "F18").evidence["time_left"] == "9 min"
    # rising 5 a minute: 36 minutes left -> a warning
    assert f18(snat_row(n, 820.0, (800.0, 805.0, 810.0, 815.0, 820.0))) == [("snat-pressure", Severity.WARNING)]
    # two points are not a slope
    assert f18(snat_row(n, 820.0, (500.0, 820.0))) == [("snat-pressure", Severity.WARNING)]


# --- F19 -------------------------------------------------------------------------------
def kube_dns_loss(topo, lost_per_node: int, n: int = 4):  # type: ignore[no-untyped-def]
    dns = {k: rows([0.5] * n) for k in healthy_dns(topo)}
    for nd in topo.nodes:
        dns[ProbeKey(f"node/{nd.name}", "kube-dns", CLUSTER)] = rows(
            [None] * lost_per_node + [0.5] * (n - lost_per_node)
        )
    return dns


def test_f19_intermittent_loss_on_the_clusterip():
    topo = topology()
    f = found(Observations(topo, kube_dns_loss(topo, 1), NOW), "F19")  # 5 of 20 on the ClusterIP... of 40 rows
    assert [(x.subject, x.severity) for x in f] == [("resolver/kube-dns", Severity.WARNING)]
    assert "single-request-reopen" in f[0].next_step
    assert not found(Observations(topo, kube_dns_loss(topo, 0), NOW), "F19")
    # one lost query in 40 is noise
    dns = kube_dns_loss(topo, 0)
    dns[ProbeKey(f"node/{topo.nodes[0].name}", "kube-dns", CLUSTER)] = rows([None, 0.5, 0.5, 0.5])
    assert not found(Observations(topo, dns, NOW), "F19")
    # answers after 5 s count as the retry
    dns = kube_dns_loss(topo, 0)
    for nd in topo.nodes:
        dns[ProbeKey(f"node/{nd.name}", "kube-dns", CLUSTER)] = rows([5003.0, 0.5, 0.5, 0.5])
    assert found(Observations(topo, dns, NOW), "F19")


# --- F20 -------------------------------------------------------------------------------
def test_f20_localdns_dead_on_a_labelled_node():
    objs = small_cluster()
    labelled = objs["nodes"][1]
    labelled["metadata"]["labels"]["kubernetes.azure.com/localdns-state"] = "enabled"
    topo = topology(objs)
    name = labelled["metadata"]["name"]
    dns = {k: rows([0.5] * 4) for k in healthy_dns(topo)}
    for res in ("localdns-1", "localdns-2"):
        for q in (CLUSTER, EXTERNAL):
            dns[ProbeKey(f"node/{name}", res, q)] = failed(4, "timeout")
    f = [x for x in diagnose(Observations(topo, dns, NOW)) if x.severity > Severity.INFO]
    assert [(x.fault, x.subject, x.severity) for x in f] == [("F20", f"node/{name}", Severity.CRITICAL)]
    assert "169.254.10.11" in f[0].cause
    # kube-dns failing there too: not LocalDNS
    for q in (CLUSTER, EXTERNAL):
        dns[ProbeKey(f"node/{name}", "kube-dns", q)] = failed(4, "timeout")
    assert not found(Observations(topo, dns, NOW), "F20")


# --- healthy, randomised ---------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    n_system=st.integers(1, 6),
    n_user=st.integers(1, 6),  # small_cluster puts its two CoreDNS pods on the first two nodes
    samples=st.integers(1, 30),
    jitter=st.lists(st.floats(0.0, 4.0), min_size=30, max_size=30),
    base=st.floats(0.2, 3.0),
    cordon=st.integers(0, 11),
    localdns=st.booleans(),
    snat_pct=st.floats(0.0, 79.0),
)
def test_random_healthy_observations_raise_nothing_above_info(
    n_system, n_user, samples, jitter, base, cordon, localdns, snat_pct
):
    objs = small_cluster(n_system, n_user)
    if cordon < len(objs["nodes"]):
        objs["nodes"][cordon]["spec"] = {"unschedulable": True}
    if localdns:
        for nd in objs["nodes"]:
            nd["metadata"]["labels"]["kubernetes.azure.com/localdns-state"] = "enabled"
    topo = topology(objs)
    dns = {}
    for i, k in enumerate(healthy_dns(topo)):
        lat = [base + jitter[(i + j) % 30] for j in range(samples)]
        dns[k] = rows(lat)
        if localdns and k.resolver == "nodelocal":
            dns[ProbeKey(k.vantage, "localdns-1", k.name)] = rows(lat)
    eg = {}
    for nd in topo.nodes:
        eg[EgressKey(f"node/{nd.name}", "mcr.microsoft.com:443")] = dataclasses.replace(
            rows([5.0 + j for j in jitter[:samples]]), last_outcome="open"
        )
    snat = SnatTable(
        nodes=tuple(
            NodeSnat(nd.internal_ip, nd.name, nd.pool, 1024, 10.24 * snat_pct, 10.24 * snat_pct, 0.0, 0.0)
            for nd in topo.nodes
        ),
        unmatched=(),
        silent=(),
    )
    assert above_info(Observations(topo, dns, NOW, egress=eg, snat=snat)) == []
