"""The real probe against real loopback responders: every outcome."""

from __future__ import annotations

import asyncio
import socket
import time

import dns.flags
import dns.message
import dns.rrset
import pytest

from probes.dns.probe import RAW_LIMIT, DnsOutcome, DnsProbe, ProbeKey, classify
from probes.lab.dnsserver import Zone
from probes.lab.dnsspec import Behaviour, Delay, DnsFaultMode, DnsTimeline


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


CLUSTER = "kubernetes.default.svc.cluster.local"
EXTERNAL = "mcr.microsoft.com"


@pytest.mark.parametrize(
    "behaviour, outcome, answers",
    [
        (Behaviour(), DnsOutcome.OK, 1),
        (Behaviour(mode=DnsFaultMode.NXDOMAIN), DnsOutcome.NXDOMAIN, 0),
        (Behaviour(mode=DnsFaultMode.SERVFAIL), DnsOutcome.SERVFAIL, 0),
        (Behaviour(mode=DnsFaultMode.REFUSED), DnsOutcome.REFUSED, 0),
        (Behaviour(mode=DnsFaultMode.TRUNCATE), DnsOutcome.TRUNCATED_TCP_OK, 1),
        (Behaviour(mode=DnsFaultMode.TRUNCATE, tcp=False), DnsOutcome.TRUNCATED_TCP_FAILED, 0),
        (Behaviour(mode=DnsFaultMode.GARBAGE), DnsOutcome.MALFORMED, 0),
    ],
    ids=lambda v: getattr(getattr(v, "mode", None), "value", None) or str(v),
)
async def test_outcomes(responder, via, behaviour, outcome, answers):
    r = responder(behaviour)
    res = await DnsProbe("node/aks-1", timeout=2.0).query(via(r), CLUSTER)
    assert res.outcome is outcome, res
    assert res.answers == answers
    assert res.address == "10.99.0.53" and res.target == f"127.0.0.1:{r.port}"
    assert res.key == ProbeKey("node/aks-1", "custom/test", CLUSTER, "A")
    assert 0 < res.latency_ms < 2000
    assert res.timestamp > 0
    if outcome in (DnsOutcome.TRUNCATED_TCP_OK, DnsOutcome.TRUNCATED_TCP_FAILED):
        assert res.tc_seen and res.via_tcp
        assert r.udp_queries == 1 and r.tcp_queries == 1
    else:
        assert not res.tc_seen and not res.via_tcp
        assert r.queries == 1
    if outcome is DnsOutcome.OK:
        assert "10.0.0.1" in res.raw and res.rcode == "NOERROR" and not res.error
    if outcome in (DnsOutcome.SERVFAIL, DnsOutcome.REFUSED, DnsOutcome.MALFORMED, DnsOutcome.TRUNCATED_TCP_FAILED):
        assert res.error


async def test_drop_is_timeout(responder, via):
    r = responder(Behaviour(mode=DnsFaultMode.DROP))
    res = await DnsProbe(timeout=0.3).query(via(r), CLUSTER)
    assert res.outcome is DnsOutcome.TIMEOUT and res.lost and not res.success
    assert 250 <= res.latency_ms < 1500
    assert r.queries == 1


async def test_answer_after_deadline_is_timeout(responder, via):
    r = responder(Behaviour(delay=Delay("fixed", 600)))
    res = await DnsProbe(timeout=0.2).query(via(r), CLUSTER)
    assert res.outcome is DnsOutcome.TIMEOUT


async def test_wrong_id_listens_until_deadline_then_malformed(responder, via):
    r = responder(Behaviour(mode=DnsFaultMode.WRONG_ID))
    res = await DnsProbe(timeout=0.3).query(via(r), CLUSTER)
    assert res.outcome is DnsOutcome.MALFORMED
    assert "wrong query id" in res.error
    assert res.latency_ms >= 250  # it kept listening for the right id


async def test_wrong_id_then_right_answer_is_ok(responder, via):
    """A stray answer with another id is ignored; the real answer still counts."""
    bad = responder(Behaviour(mode=DnsFaultMode.WRONG_ID))
    good = responder(Behaviour(delay=Delay("fixed", 50)))
    probe = DnsProbe(timeout=1.0)
    q = dns.message.make_query(CLUSTER, "A")
    # classify alone: the stray one is ignorable, the good one is not
    resp = dns.message.make_response(q)
    resp.id = (q.id + 1) & 0xFFFF
    assert classify(q, resp.to_wire()).ignorable
    assert (await probe.query(via(good), CLUSTER)).outcome is DnsOutcome.OK
    assert bad.queries == 0


async def test_truncated_and_tcp_share_one_deadline(responder, via):
    # the UDP answer comes at 200 ms, the TCP one would come at 400 ms: past 300 ms
    r = responder(Behaviour(mode=DnsFaultMode.TRUNCATE, delay=Delay("fixed", 200)))
    res = await DnsProbe(timeout=0.3).query(via(r), CLUSTER)
    assert res.outcome is DnsOutcome.TRUNCATED_TCP_FAILED
    assert "deadline" in res.error
    assert res.latency_ms < 1000


async def test_huge_txt(responder, via):
    r = responder(Behaviour(mode=DnsFaultMode.HUGE_TXT, txt_size=9000))
    res = await DnsProbe(timeout=2.0).query(via(r), "big.example.com", "TXT")
    assert res.outcome is DnsOutcome.TRUNCATED_TCP_OK and res.tc_seen and res.via_tcp
    assert res.answers == 1
    assert len(res.raw) <= RAW_LIMIT + 40  # kept, but bounded


async def test_huge_txt_fits_with_large_edns_payload(responder, via):
    r = responder(Behaviour(mode=DnsFaultMode.HUGE_TXT, txt_size=3000))
    res = await DnsProbe(timeout=2.0, payload=8192).query(via(r), "big.example.com", "TXT")
    assert res.outcome is DnsOutcome.OK and not res.tc_seen


async def test_port_unreachable_is_network_error():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: the kernel answers ICMP port unreachable
    from probes.dns.resolvers import Resolver, ResolverKind

    res = await DnsProbe(timeout=1.0).query(Resolver("x", ResolverKind.CUSTOM, "127.0.0.1", port), CLUSTER)
    assert res.outcome is DnsOutcome.NETWORK_ERROR and res.lost
    assert "port unreachable" in res.error


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
async def test_ipv6_resolver(responder, via):
    r = responder(host="::1")
    from probes.dns.resolvers import Resolver, ResolverKind

    res = await DnsProbe(timeout=2.0).query(Resolver("custom/[::1]", ResolverKind.CUSTOM, "::1", r.port), EXTERNAL)
    assert res.outcome is DnsOutcome.OK and res.target == f"[::1]:{r.port}"
    r2 = responder(Behaviour(mode=DnsFaultMode.TRUNCATE), host="::1")
    res2 = await DnsProbe(timeout=2.0).query(via(r2, address="fd00::10"), CLUSTER)
    assert res2.outcome is DnsOutcome.TRUNCATED_TCP_OK and res2.address == "fd00::10"


async def test_upstream_behaviour_hits_external_names_only(responder, via):
    """F6: CoreDNS answers cluster names; its upstream is broken for external names."""
    r = responder(upstream=Behaviour(mode=DnsFaultMode.SERVFAIL))
    p = DnsProbe(timeout=1.0)
    assert (await p.query(via(r), CLUSTER)).outcome is DnsOutcome.OK
    assert (await p.query(via(r), EXTERNAL)).outcome is DnsOutcome.SERVFAIL
    assert (await p.query(via(r), "nope.default.svc.cluster.local")).outcome is DnsOutcome.NXDOMAIN


async def test_timed_changes_with_injected_clock(responder, via):
    now = [0.0]
    r = responder(
        DnsTimeline(Behaviour(), ((30.0, Behaviour(mode=DnsFaultMode.DROP)), (90.0, Behaviour()))), clock=lambda: now[0]
    )
    p = DnsProbe(timeout=0.3)
    assert (await p.query(via(r), CLUSTER)).outcome is DnsOutcome.OK
    now[0] = 45.0
    assert (await p.query(via(r), CLUSTER)).outcome is DnsOutcome.TIMEOUT
    now[0] = 95.0
    assert (await p.query(via(r), CLUSTER)).outcome is DnsOutcome.OK
    assert r.queries == 3


async def test_runtime_behaviour_change(responder, via):
    r = responder()
    p = DnsProbe(timeout=1.0)
    assert (await p.query(via(r), CLUSTER)).outcome is DnsOutcome.OK
    r.set_behaviour(Behaviour(mode=DnsFaultMode.REFUSED))
    assert (await p.query(via(r), CLUSTER)).outcome is DnsOutcome.REFUSED
    assert r.queries == 2


async def test_nodata_for_other_types(responder, via):
    r = responder()
    res = await DnsProbe(timeout=1.0).query(via(r), CLUSTER, "AAAA")
    assert res.outcome is DnsOutcome.OK and res.answers == 0


async def test_zone_extra_names(responder, via):
    r = responder(zone=Zone(cluster={"my.default.svc.cluster.local": "10.0.3.3"}))
    res = await DnsProbe(timeout=1.0).query(via(r), "my.default.svc.cluster.local")
    assert res.outcome is DnsOutcome.OK and "10.0.3.3" in res.raw


def test_classify_wrong_question_is_malformed():
    q = dns.message.make_query(CLUSTER, "A")
    other = dns.message.make_query("evil.example.com", "A")
    other.id = q.id
    resp = dns.message.make_response(other)
    v = classify(q, resp.to_wire())
    assert v.outcome is DnsOutcome.MALFORMED and "different question" in v.error and not v.ignorable


def test_classify_case_insensitive_question_is_ok():
    q = dns.message.make_query(CLUSTER, "A")
    other = dns.message.make_query(CLUSTER.upper(), "A")
    other.id = q.id
    assert classify(q, dns.message.make_response(other).to_wire()).outcome is DnsOutcome.OK


def test_classify_edges():
    q = dns.message.make_query(CLUSTER, "A")
    assert classify(q, None).outcome is DnsOutcome.TIMEOUT
    assert classify(q, b"").outcome is DnsOutcome.MALFORMED
    assert classify(q, q.to_wire()).outcome is DnsOutcome.MALFORMED  # QR clear: our own query echoed
    resp = dns.message.make_response(q)
    resp.flags |= dns.flags.TC
    v = classify(q, resp.to_wire())
    assert v.truncated
    assert not classify(q, resp.to_wire(), tcp=True).truncated
    r2 = dns.message.make_response(q)
    r2.set_rcode(5 + 4)  # NOTAUTH
    assert classify(q, r2.to_wire()).outcome is DnsOutcome.OTHER_RCODE
    assert classify(q, dns.message.make_response(q).to_wire() + b"\0").outcome is DnsOutcome.MALFORMED


async def test_latency_is_the_answers_arrival_not_the_loops_lag(responder, via):
    """A busy agent (a blocked loop: CFS throttling, a long callback) measures the
    resolver, not itself: the UDP answer's time is the kernel's arrival stamp."""
    r = responder(Behaviour(delay=Delay("fixed", 20.0)))
    probe = DnsProbe("node/aks-1", timeout=2.0)
    loop = asyncio.get_running_loop()
    # the loop is blocked for 300 ms right after the query goes out
    loop.call_later(0.005, time.sleep, 0.3)
    res = await probe.query(via(r), CLUSTER)
    assert res.outcome is DnsOutcome.OK
    assert 19.0 <= res.latency_ms < 150.0, res.latency_ms  # not the 300 ms the loop was away
