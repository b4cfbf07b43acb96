"""The ingress controllers' HTTPS endpoints for the demo: one loopback TLS listener per
controller (probes/lab/tlshosts.py), serving each host the certificate the scenario says,
and the dial map the app's HTTPS probe uses to reach them instead of the load balancer IPs.

What a host is served (``served:`` in the scenario, else from its Certificate): an
expired Certificate's secret → ``expired``; a Certificate not Ready → nothing in the
secret, so the controller's Fake Certificate; fewer than 14 days → ``expiring``; else
``valid``. A controller's ``https:`` other than ``tls`` makes its whole 443 refuse,
hang, speak plain HTTP or garbage. A host that resolves to an address no controller has
(an old load balancer) gets a listener that never answers there: nothing is at that IP.
"""

from __future__ import annotations

from typing import Any

from .ingresslab import spec_of
from .ingressspec import HostSpec
from .tlshosts import TlsHosts, TlsHostSpec, start_tls_hosts

DAY = 86400.0
EXPIRING_DAYS = 14.0
LOOPBACK = "127.0.0.1"


def served_kind(h: HostSpec) -> str:
    """The certificate kind the host's controller serves it ('fake': the default one)."""
    if h.served:
        return h.served
    c = h.certificate
    if c is None:
        return "fake"
    if c.not_after <= 0:
        return "expired"
    if not c.ready:
        return "fake"
    if c.not_after < EXPIRING_DAYS * DAY:
        return "expiring"
    return "valid"


def specs_of(scenario: Any) -> tuple[list[TlsHostSpec], dict[str, str]]:
    """The endpoints' specs and, per listener's first host, the address it stands for."""
    spec = spec_of(scenario)
    if spec is None:
        return [], {}
    specs: list[TlsHostSpec] = []
    stands_for: dict[str, str] = {}  # spec host -> the address it answers for
    ips = {c.ip for c in spec.controllers if c.ip}
    for c in spec.controllers:
        if not c.ip:
            continue
        anchor = f"default-backend.{c.class_name}.lab.invalid"  # the listener's own name
        if c.https != "tls":
            specs.append(TlsHostSpec(anchor, c.https, LOOPBACK, endpoint=c.class_name))
            stands_for[anchor] = c.ip
            continue
        specs.append(TlsHostSpec(anchor, "valid", LOOPBACK, endpoint=c.class_name))
        stands_for[anchor] = c.ip
        for h in spec.hosts:
            if h.class_name != c.class_name or not h.tls:
                continue
            kind = served_kind(h)
            if kind == "fake":  # unknown to the listener: it serves its Fake Certificate
                continue
            # what the Certificate says is what its secret holds, unless `served:` says otherwise
            days = h.certificate.not_after / DAY if h.certificate is not None and not h.served else 0.0
            specs.append(TlsHostSpec(h.host, kind, LOOPBACK, endpoint=c.class_name, days=days))
    for h in spec.hosts:
        if h.dns not in ("lb", "nxdomain") and h.dns not in ips and h.dns not in stands_for.values():
            anchor = f"nothing-at.{h.dns}.lab.invalid"
            specs.append(TlsHostSpec(anchor, "hang", LOOPBACK, endpoint=h.dns))
            stands_for[anchor] = h.dns
    return specs, stands_for


class HttpsDemo:
    """start() → {"ca": path, "dial": {"<ip>:443": [loopback, port]}} or None without ingress."""

    def __init__(self, scenario: Any) -> None:
        self.scenario = scenario
        self.lab: TlsHosts | None = None

    def start(self) -> dict[str, Any] | None:
        specs, stands_for = specs_of(self.scenario)
        if not specs:
            return None
        self.lab = start_tls_hosts(specs)
        dial = {}
        for anchor, ip in stands_for.items():
            lo, port, _ = self.lab.hosts[anchor]
            dial[f"{ip}:443"] = [lo, port]
        return {"ca": self.lab.ca_path, "dial": dial}

    def stop(self) -> None:
        if self.lab is not None:
            self.lab.stop(2.0)
            self.lab = None
