"""Egress faults with real packets in network namespaces (root): NSG drop of D:443 only
(F8), blackhole / unreachable / prohibit routes (F9), rejects, and SNAT exhaustion on one
node while the other still connects (F10). Each checked in SYN mode and connect mode,
with the probe running inside the node's namespace as its own process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.leaks import guard_threads
from tests.support.netns import D, E, NetnsLab, cleanup_stale

pytestmark = pytest.mark.netns
MODES = ("connect", "syn")


@pytest.fixture(scope="module")
def netlab():
    from tests.support.netns import available

    ok, why = available()
    if not ok:
        import os

        if os.environ.get("CI"):
            pytest.fail(f"CI is set but network namespaces are unavailable: {why}")
        pytest.skip(why)
    cleanup_stale()
    lab = NetnsLab(snat_ports=4)
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture(autouse=True)
def no_leftovers():
    """Overrides the package guard: the module-wide namespace lab legitimately holds
    descriptors (its listeners' pipes) from the first test to the module's end, and they
    may open after a test's baseline was taken. Threads are still checked; the lab's own
    stop() removes namespaces and listeners."""
    yield from guard_threads()


@pytest.fixture
def nl(netlab):
    netlab.clear()
    try:
        yield netlab
    finally:
        netlab.clear()


def run(lab: NetnsLab, plan: list[tuple[str, str]], targets: list[str], timeout: float = 1.5):
    """Probe `targets` from each (node, mode) in `plan`, concurrently; returns
    {(node, mode, target): result dict}."""
    with ThreadPoolExecutor(len(plan)) as ex:
        futs = {(n, m): ex.submit(lab.probe, n, targets, mode=m, timeout=timeout) for n, m in plan}
    out = {}
    for (n, m), f in futs.items():
        for r in f.result():
            assert r["mode"] == m, r
            out[(n, m, r["target"])] = r
    return out


ALL = [(n, m) for n in ("node1", "node2") for m in MODES]


def outcomes(res, target):
    return {(n, m): r["outcome"] for (n, m, t), r in res.items() if t == target}


def test_baseline_everything_open(nl):
    res = run(nl, ALL, [f"{D}:443", f"{D}:80", f"{E}:443"])
    assert {r["outcome"] for r in res.values()} == {"open"}, res
    assert all(r["latency_ms"] > 0 for r in res.values())


def test_f8_nsg_drops_d443_only(nl):
    nl.nsg_drop(D, 443)
    res = run(nl, ALL, [f"{D}:443", f"{D}:80", f"{E}:443"])
    assert set(outcomes(res, f"{D}:443").values()) == {"timeout"}
    assert set(outcomes(res, f"{D}:80").values()) == {"open"}
    assert set(outcomes(res, f"{E}:443").values()) == {"open"}


@pytest.mark.parametrize(
    "kind, expect",
    [
        ("blackhole", "timeout"),  # silent drop in the router (next hop None)
        ("unreachable", "unreachable"),  # the router answers ICMP host unreachable
        ("prohibit", "unreachable"),  # ICMP communication administratively prohibited
    ],
)
def test_f9_route_in_the_router(nl, kind, expect):
    nl.route(D, kind, "lb")
    # 2.5 s: the router's ICMP errors are rate limited per node (a burst, then 1/s); the
    # SYN retransmitted after 1 s gets its answer if the first one was limited
    res = run(nl, ALL, [f"{D}:443", f"{E}:443"], timeout=2.5)
    assert set(outcomes(res, f"{D}:443").values()) == {expect}, res
    assert set(outcomes(res, f"{E}:443").values()) == {"open"}
    if expect == "unreachable":
        syn = res[("node1", "syn", f"{D}:443")]
        assert "ICMP from 192.0.2.1" in syn["error"] and "dest-unreach" in syn["raw"]


@pytest.mark.parametrize(
    "kind, words",
    [
        ("blackhole", "blackhole"),
        ("unreachable", "EHOSTUNREACH"),
        ("prohibit", "prohibit"),
    ],
)
def test_f9_route_on_the_node(nl, kind, words):
    nl.route(D, kind, "node1")
    res = run(nl, [("node1", m) for m in MODES], [f"{D}:443"])
    for m in MODES:
        r = res[("node1", m, f"{D}:443")]
        assert r["outcome"] == "unreachable" and words in r["error"], r


@pytest.mark.parametrize(
    "how, expect, words",
    [
        ("tcp-reset", "refused", "RST"),
        ("icmp-port", "refused", "refused"),
        ("icmp-admin", "unreachable", ""),
        ("icmp-host", "unreachable", ""),
    ],
)
def test_reject(nl, how, expect, words):
    nl.reject(D, 443, how)
    res = run(nl, [("node2", m) for m in MODES], [f"{D}:443", f"{D}:80"])
    for m in MODES:
        r = res[("node2", m, f"{D}:443")]
        assert r["outcome"] == expect and words in r["error"], r
        assert res[("node2", m, f"{D}:80")]["outcome"] == "open"
    if how == "icmp-admin":
        assert "administratively prohibited" in res[("node2", "syn", f"{D}:443")]["error"]


def test_f10_snat_exhaustion_on_one_node(nl):
    nl.flush_conntrack()
    assert nl.fill_snat("node1", D, 443) == nl.snat_ports  # node1's block is now in use
    res = run(nl, ALL, [f"{D}:443"])
    for m in MODES:
        assert res[("node1", m, f"{D}:443")]["outcome"] == "timeout", res
        assert res[("node2", m, f"{D}:443")]["outcome"] == "open", res
    # SNAT ports are per destination: node1 still reaches another destination
    again = run(nl, [("node1", "connect")], [f"{E}:443"])
    assert again[("node1", "connect", f"{E}:443")]["outcome"] == "open"
    # releasing the held connections frees the block
    nl.clear()
    after = run(nl, [("node1", m) for m in MODES], [f"{D}:443"])
    assert {r["outcome"] for r in after.values()} == {"open"}
