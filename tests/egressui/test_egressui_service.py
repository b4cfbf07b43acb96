"""EgressService against the loopback lab in demo mode: the real API server and kube
source, the demo's per-node DNS answers and loopback targets that accept, refuse or drop.

Bounded: every wait has a deadline, intervals are short, everything is stopped in
finally, and a guard fails the test if a thread is left behind. Nothing here dials
beyond loopback: every vantage is confined to the lab.
"""

from __future__ import annotations

import socket

import pytest

from probes.config import KubeConfig
from probes.dns.service import wait_for
from probes.egress.probe import EgressKey, EgressMode, EgressProbe, resolver_at
from probes.egress.service import EgressService, EgressSettings, EgressVantage, build_plan, server_of
from probes.engine.store import Store
from probes.kube.model import LOCAL_VANTAGE, node_vantage
from probes.kube.source import KubeSource
from probes.lab.egressdemo import EgressDemo
from probes.lab.egressspec import EgressLabSpec, PortRule, parse_egress_section
from probes.lab.scenario import ScenarioError, load_scenario, parse_scenario
from probes.lab.serve import start_embedded
from probes.lab.tcptargets import LoopbackTargets
from tests.support.leaks import guard_threads
from tests.ui.test_app import make_store

FAST = dict(interval=0.3, timeout=0.3, dns_timeout=0.5, jitter=0.05)


@pytest.fixture(autouse=True)
def no_leftover_threads():
    yield from guard_threads()


def stats_of(svc: EgressService) -> dict[EgressKey, object]:
    return {k: svc.history.stats(k) for k in svc.history.keys()}


def complete(svc: EgressService, vantages: int, rounds: int = 2) -> bool:
    plan = svc.plan()
    if len(plan.vantages) != vantages or not plan.jobs:
        return False
    keys = [EgressKey(vp.vantage.name, t.text) for vp in plan.vantages for t in vp.targets]
    sts = [svc.history.stats(k) for k in keys]
    return all(s is not None and s.attempts >= rounds for s in sts)


def test_one_node_times_out_others_open_unknown_name_is_nxdomain():
    lab, kubeconfig = start_embedded("egress-one-node")
    store = Store()
    source = KubeSource(store, KubeConfig(kubeconfig=kubeconfig))
    demo = EgressDemo(lab.scenario)
    svc = EgressService(
        store, EgressSettings(targets=("nothing.example:443", "192.0.2.1:443"), **FAST), vantage_map=demo, poll=0.1
    )
    try:
        source.start()
        demo.start()
        svc.start()
        assert wait_for(lambda: complete(svc, 6), 20), "not every check reported in time"
        plan, stats = svc.plan(), stats_of(svc)
        topo = store.snapshot().topology
        bad = lab.scenario.node_name("userpool", 0)
        assert [vp.vantage.name for vp in plan.vantages] == [LOCAL_VANTAGE] + sorted(
            node_vantage(n.name) for n in topo.nodes
        )
        assert plan.server == server_of(store.snapshot().target) and plan.server.startswith("http://127.0.0.1:")
        # the documentation address is never dialled from the lab's confined vantages
        assert all(vp.left_out == 1 and all(t.host != "192.0.2.1" for t in vp.targets) for vp in plan.vantages)
        for vp in plan.vantages:
            for t in vp.targets:
                st = stats[EgressKey(vp.vantage.name, t.text)]
                mode = st.last.mode
                assert mode in (EgressMode.SYN, EgressMode.CONNECT) and (mode is EgressMode.SYN or st.last.fallback)
                if t.host == "nothing.example":
                    assert st.last_outcome == "dns-nxdomain" and "NXDOMAIN" in st.last_error
                elif t.source == "apiserver":  # the lab's API server itself, on loopback
                    assert st.last_outcome == "open"
                elif vp.vantage.name == node_vantage(bad):
                    assert st.last_outcome == "timeout" and st.successes == 0, (t.text, st)
                    assert st.last.address == "127.0.0.4"
                else:
                    assert st.last_outcome == "open" and st.p50 is not None, (vp.vantage.name, t.text, st)
                    assert st.last.address == "127.0.0.2"
    finally:
        svc.stop(3.0)
        demo.stop()
        source.stop(3.0)
        lab.stop()


def test_nsg_443_drops_one_port_of_one_name_and_raw_socket_refusal_falls_back():
    store = make_store()  # the small test cluster, no API server needed
    sc = load_scenario("egress-nsg-443")
    demo = EgressDemo(sc)

    def no_raw(family: int, proto: int) -> socket.socket:
        raise PermissionError(1, "Operation not permitted")

    try:
        demo.start()
        extra = demo.extra_targets()
        assert extra == ["mcr.microsoft.com:80"]
        svc = EgressService(
            store,
            EgressSettings(targets=tuple(extra), apiserver=False, **FAST),
            vantage_map=demo,
            poll=0.1,
            probe_options={"raw_socket": no_raw},
        )
        try:
            svc.start()
            n = 1 + len(store.snapshot().topology.nodes)
            assert wait_for(lambda: complete(svc, n), 20)
            stats = stats_of(svc)
        finally:
            svc.stop(3.0)
    finally:
        demo.stop()
    for (vantage, target), st in stats.items():
        assert st.last.mode is EgressMode.CONNECT and "raw sockets not permitted" in st.last.fallback
        if target == "mcr.microsoft.com:443":
            assert st.last_outcome == "timeout", vantage
            assert st.last.address == "127.0.0.5" and st.last.via.startswith("127.0.0.5:")
        else:
            assert st.last_outcome == "open", (vantage, target)


def test_demo_views_per_node_and_known_names():
    sc = parse_scenario(
        {
            **_doc(),
            "egress": {
                "names": {"example.org": "refused", "gone.example.com": "nxdomain"},
                "nodes": {"nodepool1/1": {"*": "drop", "login.microsoftonline.com": "open"}, "userpool/0": "refused"},
            },
        },
        "x.yaml",
    )
    demo = EgressDemo(sc)
    n1, u0 = sc.node_name("nodepool1", 1), sc.node_name("userpool", 0)
    assert set(demo.views) == {None, n1, u0}
    assert demo.views[n1]["mcr.microsoft.com"] == PortRule("drop")
    assert demo.views[n1]["login.microsoftonline.com"] == PortRule("open")
    assert demo.views[None]["example.org"] == PortRule("refused")
    assert demo.views[None]["gone.example.com"].nxdomain
    assert "mcr.microsoft.com" in demo.names and "gone.example.com" in demo.names


def test_demo_answers_each_dns_kind_per_node_and_the_probe_tells_them_apart():
    """Per-node DNS failure kinds for the egress names: each node's view has its own lab
    responder, which answers NXDOMAIN, SERVFAIL or nothing for the names its rule says;
    the probe, asking that responder for real, ends each check with the matching kind.
    Other names and other nodes resolve and connect."""
    import asyncio

    sc = parse_scenario(
        {
            **_doc(),
            "egress": {
                "nodes": {
                    "nodepool1/0": {"mcr.microsoft.com": "dns-timeout"},
                    "nodepool1/1": "servfail",
                    "userpool/0": {"*": "nxdomain", "login.microsoftonline.com": "open"},
                }
            },
        },
        "x.yaml",
    )
    n0, n1, u0 = (sc.node_name("nodepool1", 0), sc.node_name("nodepool1", 1), sc.node_name("userpool", 0))
    targets = ["mcr.microsoft.com:443", "login.microsoftonline.com:443"]

    async def run(dns: tuple[str, int] | None, dial: dict[str, int]) -> dict[str, str]:
        assert dns is not None
        probe = EgressProbe(
            mode="connect", timeout=0.5, dns_timeout=0.6, resolve=resolver_at(*dns, timeout=0.6), dial_map=dial
        )
        try:
            return {r.target: r.outcome.value for r in await probe.probe_all(targets)}
        finally:
            await probe.close()

    with EgressDemo(sc) as demo:
        dial = demo.dial_map()
        got = {node: asyncio.run(run(demo.dns_for(node), dial)) for node in (None, n0, n1, u0)}
        asked = {node: demo.responders[node].queries for node in (n0, n1, u0)}
    assert got[None] == {t: "open" for t in targets}
    assert got[n0] == {"mcr.microsoft.com:443": "dns-timeout", "login.microsoftonline.com:443": "open"}
    assert got[n1] == {t: "dns-servfail" for t in targets}
    assert got[u0] == {"mcr.microsoft.com:443": "dns-nxdomain", "login.microsoftonline.com:443": "open"}
    assert all(n >= 2 for n in asked.values()), asked  # every kind came from a real answer (or silence)


def test_dial_map_port_rule_wins_over_host_rule():
    import asyncio

    host = "127.0.0.9"

    async def run(dial: dict[str, int]) -> list[str]:
        probe = EgressProbe(mode="connect", timeout=0.3, dial_map=dial)
        try:
            return [r.outcome.value for r in await probe.probe_all([f"{host}:443", f"{host}:80"])]
        finally:
            await probe.close()

    with LoopbackTargets(host, host, host) as t:
        dial = {host: t.open.port, f"{host}:443": t.refused.port}
        assert asyncio.run(run(dial)) == ["refused", "open"]


def test_build_plan_local_first_and_confinement():
    vs = [
        EgressVantage("node/b", "b", ("127.0.0.1", 5300), confine=True),
        EgressVantage("node/a", "a", None, confine=True),
    ]
    plan = build_plan(EgressSettings(targets=("10.0.0.1:443", "127.0.0.1:8080")), vs, "https://x.example:443", 1)
    assert [vp.vantage.name for vp in plan.vantages] == ["local", "node/a", "node/b"]
    local, a, b = plan.vantages
    assert len(local.targets) == len(plan.targets) == 10 and local.left_out == 0
    assert [t.text for t in a.targets] == ["127.0.0.1:8080"]  # no DNS, no outside IP
    assert "10.0.0.1:443" not in {t.text for t in b.targets} and "x.example:443" in {t.text for t in b.targets}
    assert plan.jobs == 10 + 1 + 9
    bad = build_plan(EgressSettings(), [], "https://[not-an-ip", 2)
    assert bad.note.startswith("API server left out") and len(bad.targets) == 7
    assert server_of("ctx @ https://a.b:443") == "https://a.b:443" and server_of("") == ""


def _doc() -> dict:
    from importlib import resources

    import yaml

    return yaml.safe_load(resources.files("probes.lab").joinpath("scenarios", "healthy.yaml").read_text())


@pytest.mark.parametrize(
    "section,needle",
    [
        ({"names": {"mcr.microsoft.com": "explode"}}, "egress.names.mcr.microsoft.com: unknown behaviour 'explode'"),
        (
            {"names": {"mcr.microsoft.com": {443: "nxdomain"}}},
            "egress.names.mcr.microsoft.com.443: unknown behaviour 'nxdomain'",
        ),
        (
            {"names": {"mcr.microsoft.com": {70000: "drop"}}},
            "egress.names.mcr.microsoft.com.70000: must be a port number",
        ),
        (
            {"names": {"mcr.microsoft.com": {443: "servfail"}}},
            "egress.names.mcr.microsoft.com.443: unknown behaviour 'servfail'; expected open, refused or drop",
        ),
        (
            {"nodes": {"nodepool1/1": "dns_timeout"}},
            "egress.nodes.nodepool1/1: unknown behaviour 'dns_timeout'; expected open, refused, drop, nxdomain, "
            "servfail or dns-timeout",
        ),
        ({"names": {"bad..name": "drop"}}, "egress.names.bad..name:"),
        ({"names": {"kubernetes.default.svc.cluster.local": "drop"}}, "cluster names are not egress targets"),
        ({"names": ["mcr.microsoft.com"]}, "egress.names: must be a mapping"),
        ({"ports": {}}, "egress.ports: unknown key"),
        ({"nodes": {"nodepool1/1": ["x"]}}, "egress.nodes.nodepool1/1: must be a mapping"),
    ],
)
def test_bad_egress_section_names_the_key(section, needle):
    with pytest.raises(ScenarioError) as e:
        parse_scenario({**_doc(), "egress": section}, "x.yaml")
    assert str(e.value).startswith("x.yaml: ") and needle in str(e.value)


def test_bad_node_ref_is_reported_at_demo_start():
    sc = parse_scenario({**_doc(), "egress": {"nodes": {"nopool/1": "drop"}}}, "x.yaml")
    with pytest.raises(ScenarioError, match="egress.nodes.nopool/1: no pool 'nopool'"):
        EgressDemo(sc)


def test_spec_precedence():
    spec = parse_egress_section(
        {
            "names": {"*": "refused", "a.example": "open"},
            "nodes": {"n1": {"*": "drop", "b.example": {443: "drop", "default": "refused"}}},
        },
        "x",
    )
    assert isinstance(spec, EgressLabSpec)
    names = spec.known(["c.example"])
    assert names == ["a.example", "b.example", "c.example"]
    assert spec.view(None, names) == {
        "a.example": PortRule("open"),
        "b.example": PortRule("refused"),
        "c.example": PortRule("refused"),
    }
    n1 = spec.view("n1", names)
    assert n1["a.example"] == PortRule("drop") and n1["b.example"].at(443) == "drop"
    assert n1["b.example"].at(80) == "refused"


def test_thousands_of_targets_stay_under_the_concurrency_bound():
    from probes.egress.probe import open_fds

    store = make_store()
    targets = tuple(f"127.0.0.3:{p}" for p in range(20000, 21500))  # nothing listens: RST, at once
    fds = open_fds()
    svc = EgressService(
        store, EgressSettings(targets=targets, aks_defaults=False, apiserver=False, concurrency=32, **FAST), poll=0.1
    )
    try:
        svc.start()
        assert wait_for(
            lambda: (
                len(svc.history.keys()) == 1500 and all(svc.history.stats(k) is not None for k in svc.history.keys())
            ),
            20,
        )
        outcomes = {svc.history.stats(k).last_outcome for k in svc.history.keys()}
        assert outcomes == {"refused"}
        probe = svc._probes["local"][1]
        assert 0 < probe.peak_inflight <= 32
        assert svc._scheduler is not None and svc._scheduler.stats.timeouts == 0
    finally:
        svc.stop(3.0)
    assert wait_for(lambda: open_fds() <= fds, 3), f"{open_fds()} descriptors open, {fds} before"
