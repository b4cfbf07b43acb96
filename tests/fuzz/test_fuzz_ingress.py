"""Fuzzing the ingress path's parsers and the view built from what they return: any JSON
shape an API server (or a CRD of another version) might send becomes records, never an
exception, and the view joins whatever came."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from probes.ingress import parse as P
from probes.ingress.model import IngressData
from probes.ingress.view import build_view
from tests.fuzz.strategies import json_like

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

KEYS = [
    "metadata", "name", "namespace", "annotations", "labels", "spec", "status", "rules", "host", "http", "paths",
    "path", "backend", "service", "port", "number", "tls", "hosts", "secretName", "ingressClassName",
    "loadBalancer", "ingress", "ip", "hostname", "controller", "ports", "nodePort", "appProtocol", "protocol",
    "selector", "externalTrafficPolicy", "healthCheckNodePort", "loadBalancerSourceRanges", "endpoints",
    "conditions", "ready", "nodeName", "type", "status", "reason", "message", "notAfter", "renewalTime",
    "dnsNames", "issuerRef", "kind", "state", "dnsName", "presented", "processing", "ownerReferences",
    "listeners", "addresses", "value", "parentRefs", "hostnames", "backendRefs", "parents", "containerStatuses",
    "restartCount", "kubernetes.io/service-name", "app.kubernetes.io/name", "cert-manager.io/cluster-issuer",
]  # fmt: skip

PARSERS = (
    P.parse_ingress_class,
    P.parse_ingress,
    P.parse_lb_service,
    P.parse_endpoint_slice,
    P.parse_controller_pod,
    P.parse_certificate,
    P.parse_certificate_request,
    P.parse_order,
    P.parse_challenge,
    P.parse_gateway,
    P.parse_http_route,
)


@FUZZ
@given(obj=json_like(KEYS))
def test_every_parser_takes_any_object(obj):
    if not isinstance(obj, dict):
        obj = {"metadata": {"name": "x"}, "spec": obj, "status": obj}
    out = [parse(obj) for parse in PARSERS]
    data = IngressData(
        classes=(out[0],),
        ingresses=(out[1],),
        services=(out[2],),
        slices=(out[3],),
        pods=(out[4],),
        certificates=(out[5],),
        requests=(out[6],),
        orders=(out[7],),
        challenges=(out[8],),
        gateways=(out[9],),
        routes=(out[10],),
    )
    view = build_view(data, None, nodes=3, region="westeurope")
    assert len(view.lbs) == 1 and view.hosts == sum(len(g.hosts) for g in view.groups)
