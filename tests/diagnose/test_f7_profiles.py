"""F7 with two client profiles: an answer whole with EDNS but over 512 bytes is
truncated for glibc-without-edns0 and musl pods, and the finding says so."""

from __future__ import annotations

import dataclasses

from probes.diagnose import Observations, Severity, diagnose
from probes.dns.probe import DnsOutcome, DnsResult, ProbeKey
from tests.diagnose.test_rules import NOW, healthy_dns, stats, topology

BIG = "big.example.com"


def with_result(outcome: str, no_edns: str, size: int):  # type: ignore[no-untyped-def]
    last = DnsResult("node/x", "kube-dns", "10.0.0.10", "10.0.0.10:53", BIG, "A", DnsOutcome(outcome), 1.0)
    last = dataclasses.replace(last, size=size, no_edns=no_edns)
    return dataclasses.replace(stats(outcome), last=last)


def f7(dns):  # type: ignore[no-untyped-def]
    topo = topology()
    return [f for f in diagnose(Observations(topo, dns, NOW)) if f.fault == "F7"]


def rows(outcome: str, no_edns: str, size: int = 734):  # type: ignore[no-untyped-def]
    topo = topology()
    dns = healthy_dns(topo)
    for n in topo.nodes[:2]:
        dns[ProbeKey(f"node/{n.name}", "kube-dns", BIG)] = with_result(outcome, no_edns, size)
    return dns


def test_whole_with_edns_truncated_without_names_the_clients_and_edns0():
    (f,) = f7(rows("ok", "truncated-tcp-ok"))
    assert (f.rule, f.severity, f.subject) == ("dns-truncated-no-edns", Severity.INFO, "resolver/kube-dns")
    assert "734 bytes" in f.cause and "whole with EDNS" in f.cause
    assert "glibc without `options edns0`" in f.cause and "musl" in f.cause
    assert "musl before 1.2.4" in f.cause  # the clients that fail although TCP works
    assert "edns0" in f.next_step
    assert f.evidence["clients"] == "no EDNS (512 bytes)" and f.evidence["tcp_retry"] == "ok"


def test_tcp_failing_for_no_edns_clients_is_a_warning():
    (f,) = f7(rows("ok", "truncated-tcp-failed"))
    assert f.severity is Severity.WARNING and f.rule == "dns-truncated-no-edns"
    assert "cannot resolve" in f.cause
    assert f.next_step.startswith("allow TCP 53 to kube-dns")


def test_small_answers_and_untested_rows_say_nothing():
    assert f7(rows("ok", "", size=300)) == []
    assert f7(rows("ok", "ok", size=700)) == []  # the server fitted its answer in 512 bytes


def test_truncated_even_with_edns_is_said_once_for_every_client():
    (f,) = f7(rows("truncated-tcp-ok", "truncated-tcp-ok", size=3000))
    assert f.rule == "dns-truncated" and f.evidence["clients"] == "all"
    assert "even with EDNS" in f.cause and "3000 bytes" == f.evidence["size"]
