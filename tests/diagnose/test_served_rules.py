"""F23's served part on the lab's objects with HTTPS results made by hand: each verdict,
the covered cases (cert-manager's finding carries it), the disagreements said, the 14-day
threshold on both sides, and unanswered handshakes as F22/F24 evidence only."""

from __future__ import annotations

from probes.diagnose import diagnose, observe
from probes.diagnose.ingress import rule_certificates, rule_lb_probe, rule_served_certificates
from probes.ingress.report import ingress_json
from probes.ingress.view import build_view
from tests.ingress.helpers import FakeHttps, answer, served, store_of

LB = "20.31.150.10"


def obs_of(scenario: str, results: list, answers=None):  # type: ignore[no-untyped-def]
    store, cs = store_of(scenario)
    snap = store.snapshot()
    view = build_view(snap.ingress, answers, nodes=len(snap.topology.nodes))
    now = cs.now()
    stats = FakeHttps([r for r in results]).history.snapshot()
    return observe(snap.topology, now=now, ingress=view, https=stats), now


def at(now: float, host: str, outcome: str = "valid", address: str = LB, **kw):  # type: ignore[no-untyped-def]
    return served(host, address, outcome, at=now, **kw)


def _now(scenario: str) -> float:
    return store_of(scenario)[1].now()


def test_each_bad_verdict_on_a_ready_certificate_is_a_finding_that_says_what_cert_manager_says():
    now = _now("ingress")
    cases = {
        "expired": ("served-certificate-expired", "critical", "expired 2 days ago", {"days": -2.0}),
        "expiring": ("served-certificate-expiring", "warning", "expires in 5.0 days", {"days": 5.0}),
        "wrong-host": ("served-certificate-wrong-host", "critical", "for other names: for other-", {}),
        "untrusted": ("served-certificate-untrusted", "critical", "untrusted certificate: self-signed", {}),
    }
    for outcome, (rule, sev, words, kw) in cases.items():
        err = {"wrong-host": "for other-shop.contoso.com", "untrusted": "self-signed"}.get(outcome, "")
        obs, _ = obs_of("ingress", [at(now, "shop.contoso.com", outcome, error=err, **kw)])
        (f,) = rule_served_certificates(obs)
        assert (f.rule, str(f.severity), f.fault, f.subject) == (rule, sev, "F23", "host/shop.contoso.com")
        assert words in f.cause, f.cause
        # the Certificate is Ready for 75 days: they disagree, and the finding says so
        assert "cert-manager's Certificate shop/shop-tls is Ready until" in f.cause
        assert f.evidence["address"] == f"{LB}:443"


def test_the_threshold_is_14_days_on_both_sides():
    now = _now("ingress")
    obs, _ = obs_of("ingress", [at(now, "api.contoso.com", "valid", days=14.2)])
    assert not list(rule_served_certificates(obs))
    obs, _ = obs_of("ingress", [at(now, "api.contoso.com", "expiring", days=13.8)])
    assert [f.rule for f in rule_served_certificates(obs)] == ["served-certificate-expiring"]


def test_when_cert_manager_says_the_same_its_finding_carries_what_is_served():
    now = _now("f23")
    results = [
        at(now, "www.contoso.com", "expired", days=-2.0),
        at(now, "api.contoso.com", "expiring", days=5.0),
        at(now, "shop.contoso.com", "untrusted", subject="Kubernetes Ingress Controller Fake Certificate"),
        at(now, "portal.contoso.com", "valid", address="20.31.150.20", days=60.0),
    ]
    obs, _ = obs_of("f23", results)
    assert not list(rule_served_certificates(obs))  # every one covered by its Certificate's finding
    certs = {f.subject: f for f in rule_certificates(obs)}
    assert "expired 2 d ago" in certs["certificate/www/www-tls"].evidence["served"]
    assert "expiring in 5.0 d" in certs["certificate/api/api-tls"].evidence["served"]
    assert "Fake Certificate" in certs["certificate/shop/shop-tls"].evidence["served"]
    # a valid certificate served while cert-manager says expired: no served finding, the evidence says it
    obs, _ = obs_of("f23", [at(now, "www.contoso.com", "valid", days=80.0)])
    assert not list(rule_served_certificates(obs))
    assert (
        "valid, 80 d left"
        in {f.subject: f for f in rule_certificates(obs)}["certificate/www/www-tls"].evidence["served"]
    )


def test_unanswered_handshakes_are_evidence_never_a_finding():
    now = _now("f24-probe")
    results = [at(now, h, "timeout", error="no TLS answer") for h in ("shop.contoso.com", "api.contoso.com")]
    obs, _ = obs_of("f24-probe", results)
    assert not list(rule_served_certificates(obs))
    path = next(f for f in rule_lb_probe(obs) if f.rule == "lb-probe-path")
    assert path.evidence["https_from_here"] == (
        "api.contoso.com @ 20.31.150.10:443: timeout; shop.contoso.com @ 20.31.150.10:443: timeout"
    )
    # on the healthy scenario a refused endpoint alone raises nothing above info
    now = _now("ingress")
    obs, _ = obs_of("ingress", [at(now, "shop.contoso.com", "refused", error="refused")])
    assert all(f.severity == 0 for f in diagnose(obs))


def test_f22_evidence_lists_the_resolved_address_first():
    now = _now("f22")
    answers = {("local", "www.contoso.com"): answer("www.contoso.com", "20.31.99.7")}
    results = [at(now, "www.contoso.com", "valid"), at(now, "www.contoso.com", "timeout", address="20.31.99.7")]
    obs, _ = obs_of("f22", results, answers)
    www = next(f for f in diagnose(obs) if f.subject == "host/www.contoso.com")
    assert www.evidence["https_from_here"] == (
        "20.31.99.7:443: timeout; 20.31.150.10:443: valid, 90 d left, issuer R11"
    )


def test_check_json_shape():
    now = _now("f23")
    store, _ = store_of("f23")
    view = build_view(store.snapshot().ingress, None)
    stats = FakeHttps([at(now, "www.contoso.com", "expired", days=-2.0)]).history.snapshot()
    doc = ingress_json(view, stats)
    assert [h["host"] for h in doc["hosts"]][:1] and len(doc["hosts"]) == 5
    www = next(h for h in doc["hosts"] if h["host"] == "www.contoso.com")
    assert www["tls"]["certificate"] == "www/www-tls" and www["tls"]["ready"] is False
    (row,) = www["https"]
    assert row["outcome"] == "expired" and row["health"] == "failing" and row["days_left"] == -2.0
    assert row["chain"] == ["www.contoso.com", "R11"] and row["issuer"] == "R11" and row["address"] == LB
    assert next(h for h in doc["hosts"] if h["host"] == "api.contoso.com")["https"] == []
    assert doc["https"]["enabled"] is False and {lb["service"] for lb in doc["load_balancers"]} >= {"default/web"}
