"""Two client profiles against a real loopback responder: what NodeLocal/CoreDNS
forwarders send (EDNS, 1,232 bytes) and what glibc without `options edns0` and musl send
(no EDNS, 512-byte UDP). An answer between 513 and 1,232 bytes arrives whole with EDNS and
truncated (TC) without it; the second query runs only for answers over 512 bytes."""

from __future__ import annotations

import time

from probes.dns.probe import PLAIN_LIMIT, DnsOutcome, DnsProbe
from probes.engine.health import Health
from probes.engine.history import History, judge
from probes.lab.dnsspec import ANSWER, Behaviour, DnsFaultMode

NAME = "big.example.com"
TXT_734 = 675  # TXT bytes that make the EDNS answer to NAME exactly 734 bytes on the wire


def health_of(result) -> Health:  # type: ignore[no-untyped-def]
    h = History()
    h.add(result.key, result)
    return judge(h.stats(result.key), DnsOutcome)


async def test_734_byte_answer_is_whole_with_edns_and_truncated_without(responder, via):
    r = responder(Behaviour(mode=DnsFaultMode.HUGE_TXT, txt_size=TXT_734))
    res = await DnsProbe(timeout=2.0).query(via(r), NAME, "TXT")
    assert res.outcome is DnsOutcome.OK and not res.tc_seen  # EDNS: whole over UDP
    assert res.size == 734
    assert res.no_edns == DnsOutcome.TRUNCATED_TCP_OK.value  # 512 bytes: TC, then TCP works
    assert r.queries == 3  # EDNS over UDP, no-EDNS over UDP, its TCP retry
    assert health_of(res) is Health.DEGRADED  # the row is as bad as the worse profile


async def test_no_edns_clients_fail_when_tcp_is_closed(responder, via):
    r = responder(Behaviour(mode=DnsFaultMode.HUGE_TXT, txt_size=TXT_734, tcp=False))
    res = await DnsProbe(timeout=1.0).query(via(r), NAME, "TXT")
    assert res.outcome is DnsOutcome.OK  # EDNS clients never needed TCP
    assert res.no_edns == DnsOutcome.TRUNCATED_TCP_FAILED.value
    assert health_of(res) is Health.FAILING


async def test_small_answers_cost_no_second_query(responder, via):
    r = responder(ANSWER)
    res = await DnsProbe(timeout=1.0).query(via(r), "kubernetes.default.svc.cluster.local")
    assert res.outcome is DnsOutcome.OK and 0 < res.size <= PLAIN_LIMIT
    assert res.no_edns == ""
    assert r.queries == 1
    assert health_of(res) is Health.GOOD


async def test_answer_over_1232_is_truncated_for_both_profiles_without_asking_twice(responder, via):
    r = responder(Behaviour(mode=DnsFaultMode.HUGE_TXT, txt_size=3000))
    res = await DnsProbe(timeout=2.0).query(via(r), NAME, "TXT")
    assert res.outcome is DnsOutcome.TRUNCATED_TCP_OK and res.size > 3000
    assert res.no_edns == DnsOutcome.TRUNCATED_TCP_OK.value
    assert r.queries == 2  # UDP, TCP: a 512-byte client is truncated a fortiori


async def test_second_profile_can_be_turned_off(responder, via):
    r = responder(Behaviour(mode=DnsFaultMode.HUGE_TXT, txt_size=TXT_734))
    res = await DnsProbe(timeout=1.0, no_edns=False).query(via(r), NAME, "TXT")
    assert res.outcome is DnsOutcome.OK and res.no_edns == "" and r.queries == 1


async def test_a_plain_512_probe_is_itself_the_small_client(responder, via):
    r = responder(Behaviour(mode=DnsFaultMode.HUGE_TXT, txt_size=TXT_734))
    res = await DnsProbe(timeout=1.0, payload=0).query(via(r), NAME, "TXT")
    assert res.outcome is DnsOutcome.TRUNCATED_TCP_OK and res.no_edns == ""


async def test_second_query_stays_within_the_job_deadline(responder, via):
    """A resolver that answers EDNS but drops the no-EDNS retry's TCP: the result still
    comes back before the scheduler's deadline (timeout + 1 s), with the EDNS latency."""
    r = responder(Behaviour(mode=DnsFaultMode.HUGE_TXT, txt_size=TXT_734, tcp=False))
    t0 = time.monotonic()
    res = await DnsProbe(timeout=0.4).query(via(r), NAME, "TXT")
    assert time.monotonic() - t0 < 0.4 + 1.0
    assert res.outcome is DnsOutcome.OK and res.latency_ms < 400
