"""The demo's simulated nodes: one process, one loop, one real agent per node, each seeing
what its node sees in the scenario."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter

import pytest

from probes.agent.wire import decode
from probes.dns.probe import DnsOutcome as Outcome
from probes.egress.probe import EgressOutcome as EOut
from probes.kube.model import NetworkPlugin, PodState, Topology
from probes.lab.agentfarm import FarmError, local_dns_overrides, parse_request
from probes.lab.scenario import load_scenario
from tests.agent.agent_helpers import wait_sync


def _start(request: dict) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "probes.lab.agentfarm"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=os.getcwd(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(request).encode() + b"\n")
    proc.stdin.flush()
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        ready = sel.select(20)
    finally:
        sel.close()
    if not ready:
        _stop(proc)
        pytest.fail("the farm printed nothing within 20 s")
    return proc, json.loads(proc.stdout.readline())


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None and not f.closed:
            f.close()


def _report(addr: str, node: str):
    with urllib.request.urlopen(f"http://{addr}/v1/results?since=0", timeout=3) as r:
        return decode(r.read(), f"node/{node}")


def test_f4_nodelocal_times_out_only_on_the_staged_nodes_agent():
    sc = load_scenario("f4")
    staged, healthy = sc.node_name("nodepool1", 1), sc.node_name("userpool", 0)
    proc, info = _start(
        {
            "scenario": "f4",
            "agents": [staged, healthy],
            "interval": 0.2,
            "timeout": 0.3,
            "egress_interval": 0.3,
            "egress_timeout": 0.3,
            "mode": "connect",
            "apiserver": None,
        }
    )
    try:
        assert set(info["agents"]) == {staged, healthy}
        local = info["local"]
        assert set(local["dns_overrides"]) == {"10.0.0.10", "coredns"}
        assert local["egress_dns"][0] == "127.0.0.1" and local["dial"]
        reports = {}

        def enough() -> bool:
            for node, addr in info["agents"].items():
                reports[node] = _report(addr, node)
            return all(
                Counter(d.resolver for d in r.dns)["nodelocal"] >= 4 and len(r.egress) >= 7 for r in reports.values()
            )

        wait_sync(enough, 10, "four nodelocal queries and a round of egress from both agents")
        for node, rep in reports.items():
            outcomes = {res: {d.outcome for d in rep.dns if d.resolver == res} for res in ("nodelocal", "kube-dns")}
            want_local = {Outcome.TIMEOUT} if node == staged else {Outcome.OK}
            assert outcomes == {"nodelocal": want_local, "kube-dns": {Outcome.OK}}, node
            assert {e.outcome for e in rep.egress} == {EOut.OPEN}, node
            assert rep.vantage == f"node/{node}" and rep.node == node
        t0 = time.monotonic()
        proc.stdin.close()  # the parent went away
        assert proc.wait(timeout=3) == 0
        assert time.monotonic() - t0 < 2.0
    finally:
        _stop(proc)


def test_farm_stops_on_sigterm_within_2s():
    proc, info = _start({"scenario": "healthy", "nodes": 3, "interval": 0.5, "egress_interval": 0.5})
    try:
        assert len(info["agents"]) == 3  # default: every node up to 50
        node, addr = next(iter(info["agents"].items()))
        wait_sync(lambda: _report(addr, node).seq > 0, 5, "a first result")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=3) == 0
        assert time.monotonic() - t0 < 2.0
    finally:
        _stop(proc)


@pytest.mark.parametrize(
    "request_line, says",
    [
        ({"scenario": "no-such-scenario"}, "unknown scenario"),
        ({"scenario": "f4", "interval": -1}, "interval"),
        ({"scenario": "f4", "mode": "icmp"}, "mode"),
        ({"scenario": "f4", "colour": "blue"}, "unknown keys colour"),
    ],
)
def test_errors_are_one_json_line_and_exit_3(request_line, says):
    proc, info = _start(request_line)
    try:
        assert proc.wait(timeout=5) == 3
        assert says in info["error"]
    finally:
        _stop(proc)


def test_request_parsing_and_local_overrides():
    with pytest.raises(FarmError, match="not JSON"):
        parse_request(b"{nope")
    with pytest.raises(FarmError, match="agents: expected a list of text"):
        parse_request(json.dumps({"scenario": "f4", "agents": [1]}))
    with pytest.raises(FarmError, match="nodelocal: expected true or false"):
        parse_request(json.dumps({"scenario": "f4", "nodelocal": "yes"}))
    r = parse_request(json.dumps({"scenario": "f4", "nodes": 7, "targets": ["a.example:80"]}))
    assert (r.nodes, r.targets, r.mode, r.agents) == (7, ("a.example:80",), "connect", None)
    pods = tuple(
        PodState("kube-system", n, "x", ip, "Running", True)
        for n, ip in (("coredns-a", "10.244.0.5"), ("coredns-b", "10.244.1.5"), ("coredns-c", ""))
    )
    topo = Topology("c", NetworkPlugin.KUBENET, "azure", (), "10.0.0.10", (), (), pods)
    got = local_dns_overrides(
        {"10.0.0.10": ["127.0.0.1", 1], "coredns": ["127.0.0.1", 2], "coredns/coredns-b": ["127.0.0.1", 3]}, topo
    )
    assert got == {
        "10.0.0.10": ("127.0.0.1", 1),
        "coredns/coredns-a": ("127.0.0.1", 2),
        "coredns/coredns-b": ("127.0.0.1", 3),
    }


def test_proxy_and_echo_in_the_farm():
    """f27-proxy: every agent checks the AKS endpoints with CONNECT through the scenario's
    proxy (403) and the API server (in NO_PROXY) directly; `echo`: each agent asks the lab's
    echo endpoint, which answers the lab ARM endpoint's outbound public IP."""
    from probes.egress.probe import EgressMode
    from probes.lab.echo import lab_egress_ip

    sc = load_scenario("f27-proxy")
    node = sc.node_name("nodepool1", 0)
    proc, info = _start(
        {
            "scenario": "f27-proxy",
            "agents": [node],
            "interval": 1.0,
            "egress_interval": 0.3,
            "egress_timeout": 0.5,
            "apiserver": "127.0.0.1:1",
            "echo": True,
        }
    )
    try:
        rep = None

        def enough() -> bool:
            nonlocal rep
            rep = _report(info["agents"][node], node)
            return bool(rep.echo_ip) and len({e.target for e in rep.egress}) >= 8

        wait_sync(enough, 10, "a round of egress and the echo answer")
        assert rep is not None and rep.echo_ip == lab_egress_ip(sc)
        via = {e.target: e for e in rep.egress if e.mode is EgressMode.PROXY}
        assert "mcr.microsoft.com:443" in via and "127.0.0.1:1" not in via
        assert {(e.outcome, e.status, e.proxy) for e in via.values()} == {
            (EOut.PROXY_REFUSED, 403, "proxy.hub.example:3128")
        }
    finally:
        _stop(proc)
