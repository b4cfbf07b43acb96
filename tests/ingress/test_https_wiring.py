"""The HTTPS probe wired as the app wires it: the demo's lab process (API server, DNS
responders, the controllers' loopback TLS listeners), the Kubernetes source, every service
from probes.engine.services.build and the publisher. The served certificate reaches the
frame and the rules within 2 probe cycles; the healthy `ingress` scenario raises nothing
above info. Every wait is bounded; everything is stopped in finally."""

from __future__ import annotations

import dataclasses
import time

import pytest

from probes import demo as demomod
from probes.config import Config
from probes.diagnose import Severity
from probes.engine import services as servicesmod
from probes.engine.publisher import Publisher
from probes.engine.store import Store
from probes.ingress.tlsresult import TlsOutcome
from probes.kube.source import KubeSource

INTERVAL = 1.0


def run(scenario: str, until, limit: float = 30.0):  # type: ignore[no-untyped-def]
    """Frames until `until(frame)` holds (or `limit` s); returns (frame, the HTTPS plan)."""
    cfg = Config()
    cfg = dataclasses.replace(
        cfg,
        dns=dataclasses.replace(cfg.dns, interval=1.0),
        egress=dataclasses.replace(cfg.egress, interval=2.0),
        https=dataclasses.replace(cfg.https, interval=INTERVAL, timeout=1.5),
    )
    running = demomod.start(scenario, dns=cfg.dns, egress=cfg.egress)
    store = Store()
    kube = dataclasses.replace(cfg.kube, kubeconfig=running.kubeconfig, context="")
    source = KubeSource(store, kube)
    services = None
    try:
        source.start()
        services = servicesmod.build(cfg, store, running.endpoints, kube)
        assert services.https is not None
        for s in services.sources:
            s.start()
        pub = Publisher(
            store,
            dns=services.dns,
            egress=services.egress,
            snat=services.snat,
            hosts=services.hosts,
            https=services.https,
            findings_min=0.0,
        )
        deadline = time.monotonic() + limit
        frame = pub.step()
        while time.monotonic() < deadline and not until(frame):
            time.sleep(0.1)
            frame = pub.step()
        return frame, services.https.plan()
    finally:
        if services is not None:
            services.stop(1.0)
        source.stop(1.0)
        running.stop()


def _rows(frame):  # type: ignore[no-untyped-def]
    return dict(frame.https.stats) if frame.https is not None else {}


def test_f23_the_served_certificate_is_judged_within_two_cycles():
    def served_finding(frame) -> bool:  # type: ignore[no-untyped-def]
        return any(f.rule == "served-certificate-expired" for f in frame.findings or ())

    frame, plan = run("f23", served_finding)
    assert served_finding(frame), [f.rule for f in frame.findings or ()]
    # only loopback was dialled: every row went through the lab's dial map
    assert plan.targets and all(t.dial is not None and t.dial[0] == "127.0.0.1" for t in plan.targets)
    rows = {k.host: st for k, st in _rows(frame).items()}
    assert rows["checkout.contoso.com"].attempts <= 2  # within 2 cycles of its row
    assert rows["checkout.contoso.com"].last_outcome == TlsOutcome.EXPIRED.value
    f = next(f for f in frame.findings if f.rule == "served-certificate-expired")
    assert f.subject == "host/checkout.contoso.com" and f.severity is Severity.CRITICAL
    assert "checkout/checkout-tls is Ready until" in f.cause
    assert f.evidence["issuer"] == "CN=aksnet-top lab issuing CA"


def test_healthy_ingress_every_host_valid_nothing_above_info():
    def two_cycles(frame) -> bool:  # type: ignore[no-untyped-def]
        rows = _rows(frame)
        return len(rows) == 4 and all(st.attempts >= 2 for st in rows.values()) and frame.findings is not None

    frame, plan = run("ingress", two_cycles)
    rows = _rows(frame)
    assert two_cycles(frame), {k.host: st.attempts for k, st in rows.items()}
    assert {k.host for k in rows} == {"shop.contoso.com", "api.contoso.com", "www.contoso.com", "portal.contoso.com"}
    assert all(st.last_outcome == "valid" and st.successes == st.attempts for st in rows.values())
    # what the Certificates say is what is served: notAfter within a minute of it
    days = {k.host: st.last.days_left for k, st in rows.items()}
    assert days["shop.contoso.com"] == pytest.approx(75, abs=0.01)
    assert days["www.contoso.com"] == pytest.approx(45, abs=0.01)
    above = [f for f in frame.findings or () if f.severity > Severity.INFO]
    assert not above, [(f.rule, f.subject, f.cause) for f in above]
    assert not plan.left_out_count and not plan.error
