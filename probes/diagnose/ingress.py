"""Ingress path rules: hosts that resolve elsewhere (F22), certificates in trouble (F23),
load balancer health probes that cannot pass (F24's service part). Pure.

They read `obs.ingress` (probes.ingress.view.IngressView): the API objects and what the
hosts resolve to from the vantages this process asks from.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from probes.diagnose.model import Finding, Observations, Severity
from probes.ingress.azurelb import PROBE_PATH
from probes.ingress.model import NGINX
from probes.ingress.view import DNS_ELSEWHERE, DNS_NXDOMAIN

EXPIRY_WARN_DAYS = 14.0
CHALLENGE_STUCK_S = 600.0  # an ACME challenge still pending after 10 minutes is stuck
DAY = 86400.0


def _date(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def rule_host_dns(obs: Observations) -> Iterable[Finding]:
    """F22: an ingress host resolves to something other than its controller's load
    balancer, or not at all (NXDOMAIN / no A record), from a vantage that asked the
    cluster's DNS."""
    view = obs.ingress
    if view is None:
        return
    for row in view.host_rows():
        if row.dns not in (DNS_ELSEWHERE, DNS_NXDOMAIN):
            continue
        said = "; ".join(
            f"{a.vantage} via {a.resolver}: "
            + (", ".join(a.addresses) if a.addresses else a.outcome.upper() if a.outcome != "ok" else "no A record")
            for a in row.answers
        )
        lb = ", ".join(row.expected)
        if row.dns == DNS_NXDOMAIN:
            cause = f"{row.host} does not resolve (no record) while its controller's load balancer is {lb}"
        else:
            cause = (
                f"{row.host} resolves to {', '.join(row.resolved) or '?'}, not to its controller's load balancer {lb}"
            )
        yield Finding(
            "ingress-host-dns",
            "F22",
            Severity.CRITICAL,
            f"host/{row.host}",
            cause,
            {"class": row.class_name, "source": row.source, "expected": lb, "answers": said},
            f"the zone's A record for {row.host} must be {lb}: external-dns's logs "
            "(`kubectl -n external-dns logs deploy/external-dns`), its ownership TXT records and its permissions on the zone",
        )


def rule_certificates(obs: Observations) -> Iterable[Finding]:
    """F23: a cert-manager Certificate expired, not Ready, or expiring within 14 days;
    an ACME challenge pending for more than 10 minutes."""
    view = obs.ingress
    if view is None:
        return
    now = obs.now
    data = view.data
    for c in data.certificates:
        subject = f"certificate/{c.namespace}/{c.name}"
        ev = {
            "hosts": ", ".join(c.dns_names),
            "issuer": c.issuer,
            "secret": c.secret,
            **({"not_after": _date(c.not_after)} if c.not_after else {}),
            **({"reason": c.reason} if c.reason else {}),
            **({"message": c.message} if c.message else {}),
        }
        describe = (
            f"`kubectl -n {c.namespace} describe certificate {c.name}` and its CertificateRequest, Order, Challenge"
        )
        if c.not_after and c.not_after <= now:
            days = (now - c.not_after) / DAY
            yield Finding(
                "certificate-expired",
                "F23",
                Severity.CRITICAL,
                subject,
                f"certificate for {', '.join(c.dns_names) or c.name} expired {days:.0f} days ago ({_date(c.not_after)})",
                ev,
                f"{describe}; cert-manager renews 30 days before notAfter: it has been failing since",
            )
        elif c.ready is False:
            yield Finding(
                "certificate-not-ready",
                "F23",
                Severity.WARNING,
                subject,
                f"certificate for {', '.join(c.dns_names) or c.name} is not Ready: {c.reason or '?'}"
                + (f" — {c.message}" if c.message else ""),
                ev,
                describe,
            )
        elif c.not_after and c.not_after - now < EXPIRY_WARN_DAYS * DAY:
            days = (c.not_after - now) / DAY
            yield Finding(
                "certificate-expiring",
                "F23",
                Severity.WARNING,
                subject,
                f"certificate for {', '.join(c.dns_names) or c.name} expires in {days:.1f} days ({_date(c.not_after)})",
                ev,
                f"{describe}; renewal should have started (renewalTime): the issuer's and the challenge's status say why not",
            )
    for ch in data.challenges:
        if ch.state in ("valid",) or not ch.created:
            continue
        age = now - ch.created
        if age < CHALLENGE_STUCK_S:
            continue
        yield Finding(
            "acme-challenge-stuck",
            "F23",
            Severity.WARNING,
            f"challenge/{ch.namespace}/{ch.name}",
            f"{ch.type or 'ACME'} challenge for {ch.dns_name} {ch.state or 'pending'} for {age / 60:.0f} min"
            + (f": {ch.reason}" if ch.reason else ""),
            {
                "dns_name": ch.dns_name,
                "type": ch.type,
                "state": ch.state or "pending",
                "presented": ch.presented,
                "order": ch.order,
            },
            f"`kubectl -n {ch.namespace} describe challenge {ch.name}`"
            + (
                f"; the TXT record _acme-challenge.{ch.dns_name} must be visible to public resolvers: "
                "the DNS01 solver's permissions on the zone, CNAME delegation"
                if ch.type == "DNS-01"
                else ""
            ),
        )


def rule_lb_probe(obs: Observations) -> Iterable[Finding]:
    """F24 (service part): a LoadBalancer service whose Azure health probe cannot pass.

    Evidence from the API objects only: (1) the ingress-nginx controller behind a
    service whose ports carry appProtocol http/https (the Helm chart's) or an HTTP probe
    annotation, with no request path: AKS (Kubernetes 1.24+) probes HTTP GET / on its
    NodePort and nginx's default server answers 404 there, so every node fails; (2)
    externalTrafficPolicy: Local with no ready endpoint on any node: kube-proxy's
    health check fails everywhere. For another backend an HTTP probe path is not
    verifiable from the API and is only shown in the pane."""
    view = obs.ingress
    if view is None:
        return
    for lb in view.lbs:
        svc = lb.service
        if svc.pending:
            continue  # F12
        subject = f"service/{svc.namespace}/{svc.name}"
        if svc.external_traffic_policy == "Local":
            if lb.sliced and lb.ready_nodes == 0:
                yield Finding(
                    "lb-probe-no-local-endpoint",
                    "F24",
                    Severity.CRITICAL,
                    subject,
                    f"externalTrafficPolicy: Local and no node has a ready endpoint ({lb.ready}/{lb.total} ready): "
                    f"every node fails the probe on health port {svc.health_check_node_port or '?'}, "
                    "the load balancer sends traffic nowhere",
                    {
                        "endpoints": f"{lb.ready}/{lb.total} ready",
                        "health_check_node_port": svc.health_check_node_port,
                        "nodes": lb.nodes,
                    },
                    f"`kubectl -n {svc.namespace} get endpointslices -l kubernetes.io/service-name={svc.name}`: "
                    "why its pods are not ready",
                )
            elif lb.sliced and lb.nodes and lb.ready_nodes * 2 < lb.nodes:
                yield Finding(
                    "lb-probe-few-nodes",
                    "F24",
                    Severity.INFO,
                    subject,
                    f"externalTrafficPolicy: Local: only {lb.ready_nodes} of {lb.nodes} nodes have a ready endpoint "
                    "and pass the probe; the load balancer sends everything to them",
                    {"endpoints": f"{lb.ready}/{lb.total} ready", "ready_nodes": lb.ready_nodes, "nodes": lb.nodes},
                    "by design with Local; spread the pods (topologySpreadConstraints) for more entry nodes",
                )
            continue
        if lb.controller != NGINX:
            continue
        bad = [p for p in lb.probes if p.protocol in ("Http", "Https") and p.path == "/"]
        if not bad:
            continue
        yield Finding(
            "lb-probe-path",
            "F24",
            Severity.CRITICAL,
            subject,
            "the Azure load balancer probes the ingress-nginx controller with "
            + ", ".join(f"{p.protocol.upper()} GET / on node port {p.probe_port}" for p in bad)
            + ": nginx's default server answers 404 there, so every node fails the probe and no traffic enters",
            {
                "probes": "; ".join(f"port {p.port}: {p.text} ({p.why})" for p in bad),
                "controller_pods": lb.controller,
                "endpoints": f"{lb.ready}/{lb.total} ready",
            },
            f"`kubectl -n {svc.namespace} annotate service {svc.name} {PROBE_PATH}=/healthz` "
            "(the controller answers 200 on /healthz), or the Helm value controller.service.annotations",
        )
