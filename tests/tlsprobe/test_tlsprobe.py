"""The HTTPS probe against real TLS servers on loopback: every outcome, the chain summary,
the bounds, HEAD /, and what a server that is not TLS gets (an outcome, never a raise)."""

from __future__ import annotations

import asyncio
import time

import pytest

from probes.engine.health import Health
from probes.engine.history import History, judge
from probes.ingress.tlsprobe import TlsProbe
from probes.ingress.tlsresult import TlsKey, TlsOutcome
from probes.lab.tlshosts import FAKE_CN

DAY = 86400.0
LIMIT = 10.0  # no await in these tests outlives this, whatever the probe does


async def bounded(aw):
    return await asyncio.wait_for(aw, LIMIT)


def probe(lab, **kw) -> TlsProbe:
    kw.setdefault("timeout", 2.0)
    return TlsProbe(ca_bundle=lab.ca_path, **kw)


async def test_valid_host_and_its_chain(lab, target):
    r = await probe(lab).probe(*target("shop.lab.test"))
    assert r.outcome is TlsOutcome.VALID, r.error
    assert r.error == ""
    assert r.outcome.health is Health.GOOD
    assert (r.host, r.address, r.port) == target("shop.lab.test")
    assert r.key == TlsKey("local", *target("shop.lab.test"))
    leaf, inter = r.chain  # the server sends its leaf and the intermediate; the root is ours
    assert leaf.subject_cn == "shop.lab.test"
    assert leaf.sans == ("shop.lab.test",)
    assert leaf.issuer_cn == "aksnet-top lab issuing CA"
    assert "CN=aksnet-top lab issuing CA" in leaf.issuer
    assert not leaf.self_signed and not leaf.is_ca
    assert 89.9 < r.days_left < 90.1
    assert abs(leaf.not_after - (r.timestamp + 90 * DAY)) < 120
    assert leaf.not_after_text.endswith("UTC") and len(leaf.sha256) == 64
    assert inter.subject_cn == "aksnet-top lab issuing CA" and inter.is_ca
    assert inter.issuer_cn == "aksnet-top lab root CA"
    assert r.tls_version in ("TLSv1.2", "TLSv1.3") and r.cipher
    assert r.success and not r.lost
    assert r.handshake_ms is not None and 0 < r.latency_ms < 2000
    assert 0 < r.connect_ms < 2000
    assert r.http_status is None and r.http_error == ""  # HEAD is off by default


@pytest.mark.parametrize(
    ("host", "outcome", "health", "words"),
    [
        ("soon.lab.test", TlsOutcome.EXPIRING, Health.DEGRADED, "expires in 5.0 days"),
        ("old.lab.test", TlsOutcome.EXPIRED, Health.FAILING, "expired 2.0 days ago"),
        ("wrong.lab.test", TlsOutcome.WRONG_HOST, Health.FAILING, "for other-wrong.lab.test, not wrong.lab.test"),
        ("self.lab.test", TlsOutcome.UNTRUSTED, Health.FAILING, "self-signed certificate (CN=self.lab.test)"),
    ],
)
async def test_certificate_outcomes(lab, target, host, outcome, health, words):
    r = await probe(lab).probe(*target(host))
    assert r.outcome is outcome, r.error
    assert r.outcome.health is health
    assert words in r.error
    assert r.success and not r.lost  # a handshake completed: its time is a latency
    assert r.chain, "the certificate is summarised whatever the verdict"


async def test_expiry_figures(lab, target):
    p = probe(lab)
    soon = await p.probe(*target("soon.lab.test"))
    old = await p.probe(*target("old.lab.test"))
    assert 4.9 < soon.days_left < 5.1
    assert -2.1 < old.days_left < -1.9
    assert old.leaf is not None and old.leaf.not_after < old.timestamp


async def test_self_signed_chain_is_one_certificate(lab, target):
    r = await probe(lab).probe(*target("self.lab.test"))
    (leaf,) = r.chain
    assert leaf.self_signed and leaf.issuer_cn == leaf.subject_cn == "self.lab.test"
    assert leaf.sans == ("self.lab.test",)


async def test_unknown_sni_gets_the_controllers_fake_certificate(lab, target):
    _, ip, port = target("shop.lab.test")
    r = await probe(lab).probe("nobody.lab.test", ip, port)
    assert r.outcome is TlsOutcome.UNTRUSTED
    assert "ingress controller has no certificate for this host" in r.error
    assert r.leaf is not None and r.leaf.subject_cn == FAKE_CN and r.leaf.sans == ("ingress.local",)


async def test_sni_picks_the_certificate_on_a_shared_address(lab, target):
    """Five hosts on one listener, five different certificates: the SNI sent is the host."""
    eps = {target(h)[1:] for h in ("shop.lab.test", "soon.lab.test", "old.lab.test", "wrong.lab.test")}
    assert len(eps) == 1
    p = probe(lab)
    rs = await p.probe_all([target(h) for h in ("shop.lab.test", "soon.lab.test", "old.lab.test")])
    assert [r.leaf.subject_cn for r in rs] == ["shop.lab.test", "soon.lab.test", "old.lab.test"]
    assert len({r.leaf.serial for r in rs}) == 3


async def test_the_system_store_does_not_trust_the_lab(lab, target):
    r = await TlsProbe(timeout=2.0).probe(*target("shop.lab.test"))
    assert r.outcome is TlsOutcome.UNTRUSTED
    assert "issued by aksnet-top lab root CA, which is not a CA trusted here" in r.error
    assert "system CA store" in r.error


async def test_refused(lab, target):
    r = await probe(lab).probe(*target("refused.lab.test"))
    assert r.outcome is TlsOutcome.REFUSED and "refused" in r.error
    assert r.lost and not r.success and r.chain == ()
    assert r.outcome.health is Health.FAILING


async def test_handshake_timeout_is_bounded(lab, target):
    p = probe(lab, timeout=0.5)
    t0 = time.monotonic()
    r = await bounded(p.probe(*target("hang.lab.test")))
    took = time.monotonic() - t0
    assert r.outcome is TlsOutcome.TIMEOUT
    assert "no TLS answer" in r.error
    assert r.connect_ms > 0  # the TCP handshake completed; the TLS one never did
    assert 0.4 < took < 2.5
    assert r.lost


async def test_tcp_timeout_when_the_syn_is_dropped():
    from probes.lab.tcptargets import DropListener

    drop = DropListener().start()
    try:
        t0 = time.monotonic()
        r = await bounded(TlsProbe(timeout=0.5).probe("drop.lab.test", drop.endpoint.host, drop.endpoint.port))
        took = time.monotonic() - t0
    finally:
        drop.stop()
    assert r.outcome is TlsOutcome.TIMEOUT and "TCP SYN" in r.error
    assert r.connect_ms == 0.0 and took < 2.5


@pytest.mark.parametrize("host", ["plain.lab.test", "junk.lab.test"])
async def test_not_tls_is_a_tls_error(lab, target, host):
    r = await probe(lab).probe(*target(host))
    assert r.outcome is TlsOutcome.TLS_ERROR
    assert "does not speak TLS" in r.error
    assert not r.success and not r.lost and r.chain == ()


async def test_head_status_when_asked(lab, target):
    p = probe(lab, http=True)
    ok, down, fake = await p.probe_all(
        [target("shop.lab.test"), target("api.lab.test"), ("x.lab.test", *target("shop.lab.test")[1:])]
    )
    assert (ok.outcome, ok.http_status, ok.http_error) == (TlsOutcome.VALID, 200, "")
    assert (down.outcome, down.http_status) == (TlsOutcome.VALID, 503)  # HEAD does not change the TLS verdict
    assert fake.http_status == 404  # the default backend


async def test_head_to_a_stuck_backend_is_bounded(lab, target):
    """TLS completes, the request gets no answer: the certificate's verdict stands, the
    status is missing with its reason, and HEAD waited no longer than its own bound."""
    p = probe(lab, http=True, http_timeout=0.3)
    t0 = time.monotonic()
    r = await bounded(p.probe(*target("stuck.lab.test")))
    took = time.monotonic() - t0
    assert r.outcome is TlsOutcome.VALID
    assert r.http_status is None and r.http_error == "HEAD /: no status line within 0.3s"
    assert 0.3 <= took < 2.0


async def test_head_on_a_server_that_never_answers_is_bounded(lab, target):
    """The hang endpoint never completes TLS; HEAD is never sent and nothing waits longer
    than the TLS bound."""
    p = probe(lab, timeout=0.4, http=True, http_timeout=0.3)
    t0 = time.monotonic()
    r = await bounded(p.probe(*target("hang.lab.test")))
    assert r.outcome is TlsOutcome.TIMEOUT and r.http_status is None
    assert time.monotonic() - t0 < 2.0
    assert p.deadline == pytest.approx(0.7)


async def test_concurrency_bounds_handshakes_in_flight(lab, target):
    p = probe(lab, timeout=0.3, concurrency=3)
    t0 = time.monotonic()
    rs = await bounded(p.probe_all([target("hang.lab.test")] * 9))
    took = time.monotonic() - t0
    assert {r.outcome for r in rs} == {TlsOutcome.TIMEOUT}
    assert p.peak_inflight == 3
    assert 0.85 < took < 4.0  # three waves of 0.3 s


async def test_dial_redirects_and_keeps_the_planned_address(lab, target):
    host, ip, port = target("shop.lab.test")
    r = await probe(lab).probe(host, "203.0.113.10", 443, dial=(ip, port))
    assert r.outcome is TlsOutcome.VALID
    assert (r.address, r.port, r.via) == ("203.0.113.10", 443, f"{ip}:{port}")


def test_bad_ca_bundle_is_one_clear_line(tmp_path):
    with pytest.raises(ValueError, match=r"CA bundle .*nope.pem: No such file"):
        TlsProbe(ca_bundle=str(tmp_path / "nope.pem"))
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="no PEM certificate"):
        TlsProbe(ca_bundle=str(empty))


async def test_results_fit_history_and_judge(lab, target):
    """The row's health is judged once, by the engine, from the outcome's .health."""
    h = History(maxlen=5)
    p = probe(lab)
    for host in ("shop.lab.test", "soon.lab.test", "refused.lab.test"):
        r = await p.probe(*target(host))
        h.add(r.key, r)
    by_host = {k.host: judge(h.stats(k), TlsOutcome) for k in h.keys()}
    assert by_host == {
        "shop.lab.test": Health.GOOD,
        "soon.lab.test": Health.DEGRADED,
        "refused.lab.test": Health.FAILING,
    }
    st = h.stats(TlsKey("local", *target("refused.lab.test")))
    assert st.loss_pct == 100.0 and st.last_outcome == "refused"


def test_every_outcome_has_a_health():
    for o in TlsOutcome:
        assert isinstance(o.health, Health)
    assert {o for o in TlsOutcome if o.health is Health.GOOD} == {TlsOutcome.VALID}
    assert {o for o in TlsOutcome if o.down} == {TlsOutcome.REFUSED, TlsOutcome.TIMEOUT, TlsOutcome.UNREACHABLE}


async def test_cancelled_probes_leave_no_descriptor_registered(lab, target):
    """Probes cancelled at every step (connect, handshake, waiting for a slot) release
    their socket: the next probes reuse the descriptor numbers without a complaint."""
    import random

    p = probe(lab, timeout=5.0, concurrency=8)
    rng = random.Random(7)
    hosts = ["hang.lab.test", "shop.lab.test", "self.lab.test"]
    tasks = [asyncio.create_task(p.probe(*target(rng.choice(hosts)))) for _ in range(40)]
    for t in tasks:
        await asyncio.sleep(rng.uniform(0, 0.01))
        t.cancel()
    await bounded(asyncio.gather(*tasks, return_exceptions=True))
    assert p.inflight == 0
    rs = await bounded(p.probe_all([target("shop.lab.test")] * 24))
    assert {r.outcome for r in rs} == {TlsOutcome.VALID}, {r.error for r in rs}
