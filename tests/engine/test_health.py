"""Health is judged once: every outcome of both enums maps to a Health, `judge` turns a
row's window into one, and the rules' helpers ask the outcomes the same questions the
rules asked before (the outcome sets they used to spell out)."""

from __future__ import annotations

import pytest

from probes.diagnose.model import _answering, _egress_failing, _failing
from probes.dns.probe import ANSWERED, DnsOutcome
from probes.egress.result import LOST, EgressOutcome
from probes.engine.health import Health, worst
from probes.engine.history import Stats, judge

DNS_HEALTH = {
    DnsOutcome.OK: Health.GOOD,
    DnsOutcome.NXDOMAIN: Health.DEGRADED,
    DnsOutcome.TRUNCATED_TCP_OK: Health.DEGRADED,
    DnsOutcome.SERVFAIL: Health.FAILING,
    DnsOutcome.REFUSED: Health.FAILING,
    DnsOutcome.OTHER_RCODE: Health.FAILING,
    DnsOutcome.TIMEOUT: Health.FAILING,
    DnsOutcome.TRUNCATED_TCP_FAILED: Health.FAILING,
    DnsOutcome.NETWORK_ERROR: Health.FAILING,
    DnsOutcome.MALFORMED: Health.FAILING,
}
EGRESS_HEALTH = {
    EgressOutcome.OPEN: Health.GOOD,
    EgressOutcome.REFUSED: Health.FAILING,
    EgressOutcome.TIMEOUT: Health.FAILING,
    EgressOutcome.UNREACHABLE: Health.FAILING,
    EgressOutcome.DNS_TIMEOUT: Health.FAILING,
    EgressOutcome.DNS_SERVFAIL: Health.FAILING,
    EgressOutcome.DNS_NXDOMAIN: Health.FAILING,
    EgressOutcome.DNS_FAILURE: Health.FAILING,
    EgressOutcome.LOCAL_ERROR: Health.FAILING,
    EgressOutcome.PROXY_REFUSED: Health.FAILING,
    EgressOutcome.PROXY_TIMEOUT: Health.FAILING,
    EgressOutcome.PROXY_UNREACHABLE: Health.FAILING,
}


def stats(outcome: str, attempts: int = 10, successes: int = 10, loss: float = 0.0) -> Stats:
    return Stats(
        count=attempts,
        attempts=attempts,
        successes=successes,
        p50=1.0,
        p95=1.0,
        p99=1.0,
        loss_pct=loss,
        last_outcome=outcome,
        last_error="",
        last_raw="",
        last_ts=0.0,
        last=None,
        recent=(),
        version=1,
    )


def test_every_outcome_has_a_health():
    assert set(DNS_HEALTH) == set(DnsOutcome) and set(EGRESS_HEALTH) == set(EgressOutcome)
    for o in DnsOutcome:
        assert o.health is DNS_HEALTH[o], o
    for e in EgressOutcome:
        assert e.health is EGRESS_HEALTH[e], e
    assert ANSWERED == {o for o in DnsOutcome if o.health is not Health.FAILING}


def test_down_is_the_sets_the_rules_used():
    assert {o.value for o in DnsOutcome if o.down} == {"timeout", "network-error", "servfail", "refused"}
    assert (
        {o for o in EgressOutcome if o.down}
        == LOST
        == {EgressOutcome.TIMEOUT, EgressOutcome.UNREACHABLE, EgressOutcome.REFUSED}
        | {EgressOutcome.PROXY_REFUSED, EgressOutcome.PROXY_TIMEOUT, EgressOutcome.PROXY_UNREACHABLE}
    )


@pytest.mark.parametrize("kind,table", [(DnsOutcome, DNS_HEALTH), (EgressOutcome, EGRESS_HEALTH)])
def test_judge_a_row(kind, table):  # type: ignore[no-untyped-def]
    assert judge(None, kind) is Health.PENDING
    assert judge(stats("whatever"), kind, reachable=False) is Health.UNREACHABLE
    assert judge(stats("error"), kind) is Health.FAILING  # a scheduler's failure, not an outcome
    for o, h in table.items():
        assert judge(stats(o.value), kind) is h
        # a miss earlier in the window degrades a good row, never a failing one
        missed = judge(stats(o.value, successes=9, loss=10.0), kind)
        assert missed is (Health.DEGRADED if h is Health.GOOD else h)


def test_worst_first():
    assert worst([Health.GOOD, Health.PENDING, Health.DEGRADED]) is Health.DEGRADED
    assert worst([Health.GOOD, Health.FAILING, Health.UNREACHABLE]) is Health.FAILING
    assert worst([]) is Health.GOOD
    assert [h for h in Health if h.problem] == [Health.DEGRADED, Health.FAILING]


@pytest.mark.parametrize("loss", [0.0, 49.0, 50.0, 100.0])
@pytest.mark.parametrize("successes", [0, 1, 10])
def test_rule_helpers_unchanged(loss, successes):  # type: ignore[no-untyped-def]
    """The helpers' old definitions, spelled out, against the new ones for every outcome."""
    for value in [o.value for o in DnsOutcome] + ["error", ""]:
        st = stats(value, successes=successes, loss=loss)
        old_failing = st.attempts > 0 and (loss >= 50 or value in ("timeout", "network-error", "servfail", "refused"))
        old_answering = successes > 0 and value in ("ok", "nxdomain", "truncated-tcp-ok")
        assert _failing(st) == old_failing, value
        assert _answering(st) == old_answering, value
    for value in [o.value for o in EgressOutcome] + ["error"]:
        for attempts in (1, 2, 10):
            st = stats(value, attempts=attempts, successes=min(successes, attempts), loss=loss)
            lost = attempts - min(successes, attempts)
            down = ("timeout", "unreachable", "refused", "proxy-refused", "proxy-timeout", "proxy-unreachable")
            old = value in down and loss >= 50 and lost >= min(2, attempts)
            assert _egress_failing(st) == old, (value, attempts)


def test_check_report_says_each_rows_health():
    from probes.check import _dns_json, _egress_json
    from probes.dns.probe import ProbeKey
    from probes.egress.result import EgressKey

    dns = _dns_json({ProbeKey("local", "kube-dns", "a.example"): stats("nxdomain")})
    egress = _egress_json({EgressKey("local", "a.example:443"): stats("open", successes=9, loss=10.0)})
    assert dns[0]["health"] == "degraded" and egress[0]["health"] == "degraded"


def test_history_keeps_one_raw_answer_per_key():
    """The raw answer text is kept once per key (the detail screens show the latest); the
    results themselves are stored without it, so a full history costs no text per result."""
    from probes.dns.result import DnsOutcome, DnsResult
    from probes.engine.history import History

    h = History(maxlen=5)

    def res(i: int, raw: str) -> DnsResult:
        return DnsResult("local", "kube-dns", "10.0.0.10", "10.0.0.10:53", "a.", "A", DnsOutcome.OK, 1.0 + i, raw=raw)

    for i in range(3):
        h.add("k", res(i, f";; ANSWER {i}"))
    h.add("k", res(3, ""))  # an answer without text keeps the last one that had it
    assert [r.raw for r in h.results("k")] == ["", "", "", ""]
    assert [r.latency_ms for r in h.results("k")] == [1.0, 2.0, 3.0, 4.0]
    st = h.stats("k")
    assert st is not None and st.last_raw == ";; ANSWER 2"


def test_history_trims_owned_results_in_place_and_copies_the_others():
    """An agent's read hands its freshly decoded results over (`owned`): the history keeps
    those very objects, trimmed of their raw text; a result someone else may hold (the
    app's own probes) is copied, and the caller's object keeps its text."""
    from probes.dns.result import DnsOutcome, DnsResult
    from probes.engine.history import History

    def res(i: int) -> DnsResult:
        return DnsResult(
            "local", "kube-dns", "10.0.0.10", "10.0.0.10:53", "a.", "A", DnsOutcome.OK, 1.0 + i, raw=f";; {i}"
        )

    h = History(maxlen=5)
    mine, theirs = res(0), res(1)
    h.add_many([("k", mine)], owned=True)
    h.add("k", theirs)
    kept = h.results("k")
    assert kept[0] is mine and mine.raw == ""
    assert kept[1] is not theirs and kept[1].raw == "" and theirs.raw == ";; 1"
    st = h.stats("k")
    assert st is not None and st.last_raw == ";; 1"


def test_history_results_share_the_text_their_key_repeats():
    """An agent's results are decoded afresh from each read: the history keeps one copy of
    the resolver, address, name and rcode text per key, not one per result; what differs
    (a new error, another rcode) is kept as it came, and the values are unchanged."""
    from probes.dns.result import DnsOutcome, DnsResult
    from probes.engine.history import History

    h = History(maxlen=10)

    def fresh(text: str) -> str:
        return "".join(list(text))  # an equal string that is another object, as a decode gives

    def res(i: int, rcode: str = "NOERROR", error: str = "") -> DnsResult:
        return DnsResult(
            fresh("aks-pool-vmss000001"),
            fresh("nodelocal"),
            fresh("169.254.20.10"),
            fresh("169.254.20.10:53"),
            fresh("kubernetes.default.svc.cluster.local."),
            "A",
            DnsOutcome.OK if not error else DnsOutcome.SERVFAIL,
            1.0 + i,
            rcode=fresh(rcode),
            error=fresh(error),
            raw=fresh(f";; ANSWER {i}"),
        )

    made = [res(0), res(1), res(2, rcode="SERVFAIL", error="server failure"), res(3)]
    for r in made:
        h.add("k", r)
    kept = h.results("k")
    assert [(r.vantage, r.resolver, r.address, r.target, r.qname, r.rcode, r.error, r.latency_ms) for r in kept] == [
        (r.vantage, r.resolver, r.address, r.target, r.qname, r.rcode, r.error, r.latency_ms) for r in made
    ]
    first = kept[0]
    for r in kept[1:]:
        assert r.vantage is first.vantage and r.qname is first.qname and r.target is first.target
    assert kept[1].rcode is first.rcode and kept[2].rcode is not first.rcode  # SERVFAIL kept as it came
    assert kept[3].rcode is not kept[2].rcode and kept[3].rcode == "NOERROR"
    assert all(r.raw == "" for r in kept)
