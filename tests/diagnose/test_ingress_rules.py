"""F22, F23 and F24's service part on the lab's objects, each threshold on both sides."""

from __future__ import annotations

import dataclasses

from probes.diagnose import diagnose, observe
from probes.diagnose.ingress import rule_certificates, rule_host_dns, rule_lb_probe
from probes.engine.publisher import ingress_view
from probes.ingress.view import build_view
from tests.ingress.helpers import answer, store_of

DAY = 86400.0


def obs_of(scenario: str, answers=None, shift: float = 0.0):
    store, cs = store_of(scenario)
    snap = store.snapshot()
    view = build_view(snap.ingress, answers, nodes=len(snap.topology.nodes))
    return observe(snap.topology, now=cs.now() + shift, ingress=view), cs


def test_f22_names_the_host_and_both_addresses():
    answers = {
        ("local", "shop.contoso.com"): answer("shop.contoso.com", outcome="nxdomain"),
        ("local", "www.contoso.com"): answer("www.contoso.com", "20.31.99.7"),
        ("local", "api.contoso.com"): answer("api.contoso.com", "20.31.150.10"),
    }
    obs, _ = obs_of("f22", answers)
    found = {f.subject: f for f in rule_host_dns(obs)}
    assert set(found) == {"host/shop.contoso.com", "host/www.contoso.com"}
    www = found["host/www.contoso.com"]
    assert www.fault == "F22" and str(www.severity) == "critical"
    assert "resolves to 20.31.99.7" in www.cause and "20.31.150.10" in www.cause
    assert www.evidence["answers"] == "local via kube-dns 10.0.0.10: 20.31.99.7"
    assert "does not resolve" in found["host/shop.contoso.com"].cause
    # no answer yet, or a resolver that times out: nothing to say about the record
    obs, _ = obs_of("f22", {("local", "www.contoso.com"): answer("www.contoso.com", outcome="timeout")})
    assert not list(rule_host_dns(obs))


def test_f23_expired_not_ready_expiring_and_the_stuck_challenge():
    obs, _ = obs_of("f23")
    got = {(f.rule, f.subject): f for f in rule_certificates(obs)}
    assert set(got) == {
        ("certificate-expired", "certificate/www/www-tls"),
        ("certificate-expiring", "certificate/api/api-tls"),
        ("certificate-not-ready", "certificate/shop/shop-tls"),
        ("acme-challenge-stuck", next(s for r, s in got if r == "acme-challenge-stuck")),
    }
    sev = {r: str(f.severity) for (r, _), f in got.items()}
    assert sev == {
        "certificate-expired": "critical",
        "certificate-expiring": "warning",
        "certificate-not-ready": "warning",
        "acme-challenge-stuck": "warning",
    }
    stuck = next(f for (r, _), f in got.items() if r == "acme-challenge-stuck")
    assert stuck.evidence["dns_name"] == "shop.contoso.com" and "_acme-challenge.shop.contoso.com" in stuck.next_step


def test_f23_thresholds_on_both_sides():
    # api.contoso.com expires in 5 days: 9 days earlier it had 14.1 days left (quiet), at 8.9 days 13.9 (warning)
    obs, _ = obs_of("f23", shift=-9.1 * DAY)
    assert not any(f.subject == "certificate/api/api-tls" for f in rule_certificates(obs))
    obs, _ = obs_of("f23", shift=-8.9 * DAY)
    assert any(f.subject == "certificate/api/api-tls" for f in rule_certificates(obs))
    # the challenge is 40 minutes old: at 9 minutes it is not stuck, at 11 it is
    obs, _ = obs_of("f23", shift=-31 * 60)
    assert not any(f.rule == "acme-challenge-stuck" for f in rule_certificates(obs))
    obs, _ = obs_of("f23", shift=-29 * 60)
    assert any(f.rule == "acme-challenge-stuck" for f in rule_certificates(obs))


def test_f24_probe_path_only_where_the_backend_is_known_not_to_serve_it():
    obs, _ = obs_of("f24-probe")
    got = {f.rule: f for f in rule_lb_probe(obs)}
    assert set(got) == {"lb-probe-path", "lb-probe-no-local-endpoint"}
    path = got["lb-probe-path"]
    assert path.subject == "service/ingress-nginx/ingress-nginx-controller" and str(path.severity) == "critical"
    assert "appProtocol: http on port 80; default path /" in path.evidence["probes"]
    assert "azure-load-balancer-health-probe-request-path=/healthz" in path.next_step
    local = got["lb-probe-no-local-endpoint"]
    assert local.subject == "service/default/api" and local.evidence["endpoints"] == "0/2 ready"
    # the same probe in front of another backend is not known to fail: no finding
    view = obs.ingress
    other = dataclasses.replace(view, lbs=tuple(dataclasses.replace(lb, controller="") for lb in view.lbs))
    assert {f.rule for f in rule_lb_probe(dataclasses.replace(obs, ingress=other))} == {"lb-probe-no-local-endpoint"}
    # with the request path set (the healthy scenario) it passes
    obs, _ = obs_of("ingress")
    assert not [f for f in rule_lb_probe(obs) if str(f.severity) != "info"]


def test_local_traffic_policy_on_few_nodes_is_info_only():
    obs, _ = obs_of("f24-probe")
    view = obs.ingress
    lbs = tuple(
        dataclasses.replace(lb, ready=1, ready_nodes=1) if lb.service.key == "default/api" else lb for lb in view.lbs
    )
    got = [
        f
        for f in rule_lb_probe(dataclasses.replace(obs, ingress=dataclasses.replace(view, lbs=lbs)))
        if f.subject == "service/default/api"
    ]
    assert [(f.rule, str(f.severity)) for f in got] == [("lb-probe-few-nodes", "info")]


def test_healthy_ingress_raises_nothing_above_info():
    store, cs = store_of("ingress")
    snap = store.snapshot()
    answers = {
        ("local", h): answer(h, ip)
        for h, ip in (
            ("shop.contoso.com", "20.31.150.10"),
            ("api.contoso.com", "20.31.150.10"),
            ("www.contoso.com", "20.31.150.10"),
            ("portal.contoso.com", "20.31.150.20"),
        )
    }
    view = ingress_view(snap, answers)
    found = diagnose(observe(snap.topology, now=cs.now(), ingress=view))
    assert all(str(f.severity) == "info" for f in found), [(f.rule, f.subject) for f in found]
