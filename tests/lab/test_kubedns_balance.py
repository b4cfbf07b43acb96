"""The lab's kube-dns ClusterIP as kube-proxy makes it: every flow to one ready CoreDNS pod
chosen at random, so a pod that drops makes the ClusterIP lose about 1/N."""

from __future__ import annotations

import socket

import dns.exception
import dns.message
import dns.query
import pytest

from probes.lab.dnsdemo import DnsDemo
from probes.lab.dnsserver import DnsResponder
from probes.lab.dnsspec import ANSWER, Behaviour, DnsFaultMode, parse_dns_section

NAME = "kubernetes.default.svc.cluster.local"
DROP = Behaviour(DnsFaultMode.DROP)


def udp_answered(addr: tuple[str, int], n: int, timeout: float = 0.15) -> int:
    """Queries answered of `n`, each from a new socket (a new flow, as a resolver's query is)."""
    ok = 0
    for _ in range(n):
        try:
            dns.query.udp(dns.message.make_query(NAME, "A"), addr[0], port=addr[1], timeout=timeout)
            ok += 1
        except dns.exception.Timeout:
            pass
    return ok


def test_one_dropping_pod_of_two_loses_about_half_of_the_flows():
    with DnsResponder(ANSWER, backends=[ANSWER, DROP], seed=3) as kube_dns:
        ok = udp_answered(kube_dns.address, 60)
        assert 15 <= ok <= 45  # ~30 of 60; p(outside) < 1e-4
        assert sum(kube_dns.backend_queries) == 60 and min(kube_dns.backend_queries) >= 15


def test_a_tcp_connection_stays_on_its_pod():
    with DnsResponder(ANSWER, backends=[ANSWER, DROP], seed=5) as kube_dns:
        outcomes = set()
        for _ in range(6):
            with socket.create_connection(kube_dns.address, timeout=1.0) as s:
                got = []
                for _ in range(3):
                    try:
                        dns.query.tcp(dns.message.make_query(NAME, "A"), "", timeout=0.3, sock=s)
                        got.append(True)
                    except (dns.exception.Timeout, TimeoutError):
                        got.append(False)
                        break  # the connection's answers are behind: a dropping pod never sends them
                assert len(set(got)) == 1, got  # one pod per connection
                outcomes.add(got[0])
        assert outcomes == {True, False}  # six connections reached both pods (p = 2 * 2^-6)


def test_the_path_decides_first_and_no_endpoints_answers_nothing():
    with DnsResponder(DROP, backends=[ANSWER]) as path_down, DnsResponder(ANSWER, backends=[]) as empty:
        assert udp_answered(path_down.address, 5) == 0
        assert udp_answered(empty.address, 5) == 0
    with DnsResponder(ANSWER) as plain:  # no backends at all: answers itself, as before
        assert udp_answered(plain.address, 5) == 5


def test_demo_balances_over_ready_pods_only():
    spec = parse_dns_section({"pods": {"#1": {"behaviour": "drop"}}}, "x.yaml")
    # the dropping pod not ready: out of the endpoints, kube-dns loses nothing; its own address still drops
    with DnsDemo(spec=spec, coredns=[("coredns-b", False), ("coredns-a", True)]) as demo:
        assert udp_answered(demo.responders["kube-dns"].address, 20) == 20
        assert demo.pod_address("coredns-b") == demo.responders["coredns/#1"].address
        assert udp_answered(demo.pod_address("coredns-b"), 2) == 0  # type: ignore[arg-type]
        assert udp_answered(demo.pod_address("coredns-a"), 2) == 2  # type: ignore[arg-type]
    with DnsDemo(spec=spec, coredns=[("coredns-a", True), ("coredns-b", True)]) as demo:
        ok = udp_answered(demo.responders["kube-dns"].address, 40)
        assert 8 <= ok <= 32


@pytest.mark.parametrize("flows", [5000])
def test_the_flow_table_stays_bounded(flows):
    r = DnsResponder(ANSWER, backends=[ANSWER, ANSWER])
    for i in range(flows):
        r._backend(("127.0.0.1", 1024 + i))
    assert len(r._flows) <= 4096
