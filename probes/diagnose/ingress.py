"""Ingress path rules: hosts that resolve elsewhere (F22), certificates in trouble (F23),
load balancer health probes that cannot pass (F24's service part). Pure.

They read `obs.ingress` (probes.ingress.view.IngressView): the API objects and what the
hosts resolve to from the vantages this process asks from; and `obs.https`, the HTTPS
probe's rows (TlsKey -> Stats): the certificate a client here is actually served (F23),
and whether the endpoint answers at all (evidence for F22 and F24, never a finding of its
own: a jumpbox may simply not reach an internal load balancer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from probes.diagnose.model import Finding, Observations, Severity
from probes.ingress.azurelb import PROBE_PATH
from probes.ingress.model import NGINX
from probes.ingress.served import is_fake, outcome, results_for, rows_text, summary
from probes.ingress.tlsresult import TlsOutcome, TlsResult
from probes.ingress.view import DNS_ELSEWHERE, DNS_NXDOMAIN, HostRow

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
        ev = {"class": row.class_name, "source": row.source, "expected": lb, "answers": said}
        served = results_for(obs.https, row)
        if served:  # what a client here gets at each address (the resolved one first), and the LB itself
            ev["https_from_here"] = rows_text(served)
        yield Finding(
            "ingress-host-dns",
            "F22",
            Severity.CRITICAL,
            f"host/{row.host}",
            cause,
            ev,
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
    served_by_cert: dict[str, list[tuple[str, Any, TlsResult]]] = {}
    for row in view.host_rows():
        if row.tls is not None and row.tls.certificate:
            for k, st in results_for(obs.https, row)[:1]:
                if isinstance(st.last, TlsResult) and st.last.outcome.handshake:
                    served_by_cert.setdefault(row.tls.certificate, []).append((row.host, k, st.last))
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
        served = served_by_cert.get(f"{c.namespace}/{c.name}", [])
        if served:  # what the endpoints actually hand a client (may differ: another secret, the default cert)
            ev["served"] = "; ".join(f"{h} @ {k.address}: {summary(r)}" for h, k, r in served[:3])
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
    for f in _lb_probe(obs):
        svc_key = f.subject.removeprefix("service/")
        hosts = [r for g in view.groups if g.service == svc_key for r in g.hosts]
        lb = next((x for x in view.lbs if x.service.key == svc_key), None)
        down = down_from_here(obs, lb.service.external if lb is not None else (), hosts) if hosts else ""
        yield dataclasses.replace(f, evidence={**f.evidence, "https_from_here": down}) if down else f


def _lb_probe(obs: Observations) -> Iterable[Finding]:
    view = obs.ingress
    assert view is not None
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


# --- the certificate actually served (the HTTPS probe) ------------------------------------
SERVED_RULES = {
    TlsOutcome.EXPIRED: ("served-certificate-expired", Severity.CRITICAL),
    TlsOutcome.NOT_YET_VALID: ("served-certificate-not-yet-valid", Severity.CRITICAL),
    TlsOutcome.WRONG_HOST: ("served-certificate-wrong-host", Severity.CRITICAL),
    TlsOutcome.UNTRUSTED: ("served-certificate-untrusted", Severity.CRITICAL),
    TlsOutcome.EXPIRING: ("served-certificate-expiring", Severity.WARNING),
}


def cert_manager_state(row: HostRow, now: float) -> str:
    """What cert-manager's Certificate for the host says, judged as rule_certificates
    judges it: 'expired', 'not-ready', 'expiring', 'ok', or '' when none covers the host."""
    t = row.tls
    if t is None or not t.certificate:
        return ""
    if t.not_after and t.not_after <= now:
        return "expired"
    if t.ready is False:
        return "not-ready"
    if t.not_after and t.not_after - now < EXPIRY_WARN_DAYS * DAY:
        return "expiring"
    return "ok"


def _covered(o: TlsOutcome, r: TlsResult, cm: str) -> bool:
    """The Certificate's own F23 finding says the same thing (it carries the served
    certificate as evidence): an expired one served expired, an expiring one expiring, a
    not-Ready one whose secret holds nothing yet (the controller's Fake Certificate)."""
    return (
        (o is TlsOutcome.EXPIRED and cm == "expired")
        or (o is TlsOutcome.EXPIRING and cm == "expiring")
        or (o is TlsOutcome.UNTRUSTED and cm == "not-ready" and is_fake(r))
    )


def _cm_words(row: HostRow, cm: str) -> str:
    t = row.tls
    assert t is not None
    when = f" ({_date(t.not_after)})" if t.not_after else ""
    return {
        "ok": f"is Ready until {_date(t.not_after)}" if t.not_after else "is Ready",
        "expired": f"expired{when}",
        "expiring": f"expires soon{when}",
        "not-ready": f"is not Ready ({t.reason or '?'})",
    }.get(cm, cm)


def _served_cause(host: str, r: TlsResult) -> str:
    o, leaf, days = r.outcome, r.leaf, r.days_left
    if o is TlsOutcome.EXPIRED and leaf is not None and days is not None:
        return f"{host} serves a certificate that expired {-days:.0f} days ago ({leaf.not_after_text})"
    if o is TlsOutcome.EXPIRING and leaf is not None and days is not None:
        return f"{host} serves a certificate that expires in {days:.1f} days ({leaf.not_after_text})"
    if o is TlsOutcome.NOT_YET_VALID and leaf is not None:
        return f"{host} serves a certificate not valid before {leaf.not_before_text}"
    if o is TlsOutcome.WRONG_HOST:
        return f"{host} serves a certificate for other names: {r.error or '?'}"
    return f"{host} serves an untrusted certificate: {r.error or '?'}"


def rule_served_certificates(obs: Observations) -> Iterable[Finding]:
    """F23 (served part): the certificate a client here actually gets for a host — expired,
    expiring within 14 days, for other names, untrusted — from the HTTPS probe. When the
    host's cert-manager Certificate already says the same, its finding carries this as
    evidence instead; when they disagree, the finding says what cert-manager says."""
    view = obs.ingress
    if view is None or not obs.https:
        return
    for row in view.host_rows():
        if row.tls is None:
            continue
        bad = [
            (k, st.last)
            for k, st in results_for(obs.https, row)
            if isinstance(st.last, TlsResult) and (o := outcome(st)) is not None and o in SERVED_RULES
        ]
        if not bad:
            continue
        k, r = bad[0]  # what a client gets first (a resolved address before the load balancer's)
        rule, severity = SERVED_RULES[r.outcome]
        cm = cert_manager_state(row, obs.now)
        if _covered(r.outcome, r, cm):
            continue
        cause = _served_cause(row.host, r)
        t = row.tls
        if cm:
            cause += f"; cert-manager's Certificate {t.certificate} {_cm_words(row, cm)}"
            if cm == "ok":
                cause += ": the controller serves another certificate than that Certificate's secret"
        leaf = r.leaf
        ev: dict[str, Any] = {
            "served": summary(r),
            "address": f"{k.address}:{k.port}",
            "source": row.source,
            "certificate": t.certificate or "none (no cert-manager Certificate for this host)",
            "secret": t.secret,
        }
        if leaf is not None:
            ev["subject"] = leaf.subject_cn
            ev["sans"] = ", ".join(leaf.sans[:5])
            ev["issuer"] = leaf.issuer
            ev["not_after"] = leaf.not_after_text
        if r.error:
            ev["error"] = r.error
        ns = row.source.partition(" ")[2].partition("/")[0]
        yield Finding(
            rule,
            "F23",
            severity,
            f"host/{row.host}",
            cause,
            ev,
            f"`openssl s_client -connect {k.address}:{k.port} -servername {row.host} -showcerts` shows the chain served; "
            f"the Ingress's spec.tls secretName and that secret in {ns or 'its namespace'} "
            "(`kubectl get secret … -o jsonpath='{.data.tls\\.crt}' | base64 -d | openssl x509 -noout -subject -dates`)",
        )


def down_from_here(obs: Observations, addresses: Iterable[str], hosts: Iterable[HostRow]) -> str:
    """'host @ addr: timeout; …' for hosts whose HTTPS endpoint at one of `addresses` did not
    answer from here (refused, timeout, unreachable): F22/F24 evidence."""
    want = set(addresses)
    out = []
    for row in hosts:
        for k, st in results_for(obs.https, row):
            o = outcome(st)
            if k.address in want and o is not None and o.down:
                out.append(f"{row.host} @ {k.address}:{k.port}: {o.value}")
    if len(out) > 3:
        return "; ".join(out[:3]) + f"; +{len(out) - 3} more"
    return "; ".join(out)
