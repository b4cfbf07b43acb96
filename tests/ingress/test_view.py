"""The ingress path joined into rows, from a lab scenario's objects: controllers behind
their classes, hosts' expected addresses and DNS states, TLS from cert-manager, backends,
LoadBalancer services with what Azure makes of their annotations."""

from __future__ import annotations

import msgspec

from probes.engine.publisher import ingress_view
from probes.ingress import azurelb
from probes.ingress.model import LbService, PortInfo
from probes.ingress.view import DNS_ELSEWHERE, DNS_NXDOMAIN, DNS_OK, DNS_UNKNOWN, build_view
from tests.ingress.helpers import answer, store_of


def test_hosts_grouped_by_class_with_their_controllers_lb():
    store, _ = store_of("ingress")
    snap = store.snapshot()
    view = ingress_view(snap, None)
    groups = {g.class_name: g for g in view.groups}
    assert set(groups) == {"nginx", "webapprouting.kubernetes.azure.com"}
    nginx = groups["nginx"]
    assert (nginx.family, nginx.service, nginx.lb_ips) == (
        "ingress-nginx",
        "ingress-nginx/ingress-nginx-controller",
        ("20.31.150.10",),
    )
    assert (nginx.pods_ready, nginx.pods_total) == (2, 2)
    assert [h.host for h in nginx.hosts] == ["api.contoso.com", "shop.contoso.com", "www.contoso.com"]
    ar = groups["webapprouting.kubernetes.azure.com"]
    assert ar.family == "app-routing" and ar.lb_ips == ("20.31.150.20",)
    row = nginx.hosts[1]
    assert row.expected == ("20.31.150.10",) and row.backends == (("shop/shop", 2, 2),)
    assert row.tls is not None and row.tls.certificate == "shop/shop-tls" and row.tls.ready is True
    assert row.dns == DNS_UNKNOWN  # nobody asked yet: never shown as a fault


def test_dns_state_from_the_answers():
    store, _ = store_of("f22")
    data = store.snapshot().ingress
    answers = {
        ("local", "shop.contoso.com"): answer("shop.contoso.com", outcome="nxdomain"),
        ("local", "www.contoso.com"): answer("www.contoso.com", "20.31.99.7"),
        ("local", "api.contoso.com"): answer("api.contoso.com", "20.31.150.10"),
    }
    rows = {r.host: r for r in build_view(data, answers).host_rows()}
    assert rows["shop.contoso.com"].dns == DNS_NXDOMAIN
    assert rows["www.contoso.com"].dns == DNS_ELSEWHERE and rows["www.contoso.com"].resolved == ("20.31.99.7",)
    assert rows["api.contoso.com"].dns == DNS_OK
    # one vantage right and another wrong is still wrong for someone
    answers[("node/x", "api.contoso.com")] = answer("api.contoso.com", "1.2.3.4", vantage="node/x")
    rows = {r.host: r for r in build_view(data, answers).host_rows()}
    assert rows["api.contoso.com"].dns == DNS_ELSEWHERE
    # a resolver that does not answer says nothing about the record
    answers = {("local", "api.contoso.com"): answer("api.contoso.com", outcome="timeout")}
    rows = {r.host: r for r in build_view(data, answers).host_rows()}
    assert rows["api.contoso.com"].dns == "failing"


def test_tls_states_from_cert_manager():
    store, cs = store_of("f23")
    rows = {r.host: r for r in ingress_view(store.snapshot(), None).host_rows()}
    now = cs.now()
    assert rows["www.contoso.com"].tls.not_after < now  # expired 2 days ago
    assert 4.9 < (rows["api.contoso.com"].tls.not_after - now) / 86400 < 5.1
    shop = rows["shop.contoso.com"].tls
    assert shop.ready is False and shop.reason == "DoesNotExist"
    assert shop.challenge is not None and shop.challenge.type == "DNS-01" and shop.challenge.state == "pending"
    assert 39 * 60 < now - shop.challenge.created < 41 * 60


def test_a_cluster_without_ingress_has_only_its_lb_services():
    store, _ = store_of("healthy")
    view = ingress_view(store.snapshot(), None)
    assert view.hosts == 0 and [lb.service.key for lb in view.lbs] == ["default/web"]
    lb = view.lbs[0]
    assert not lb.sliced and lb.controller == "" and lb.probes[0].protocol == "Tcp"


def test_lb_services_effects_and_endpoints():
    store, _ = store_of("ingress")
    lbs = {lb.service.key: lb for lb in ingress_view(store.snapshot(), None).lbs}
    pay = lbs["payments/payments"]
    words = {e.what: e.text for e in pay.effects}
    assert words["load balancer"].startswith("internal (kubernetes-internal) frontend on subnet snet-ilb")
    assert words["NSG"] == (
        "allow 10.10.0.0/16, 10.20.0.0/16 → 10.224.8.40 443/TCP (loadBalancerSourceRanges); other sources get no allow rule"
    )
    assert words["private link"] == "Private Link service pls-payments with NAT IPs on the load balancer's subnet"
    assert (pay.ready, pay.total, pay.ready_nodes) == (2, 2, 2)
    ctl = lbs["ingress-nginx/ingress-nginx-controller"]
    assert ctl.controller == "ingress-nginx"
    assert {e.what: e.text for e in ctl.effects}["DNS label"] == (
        "public IP's FQDN aks-lab-ingress.westeurope.cloudapp.azure.com"
    )
    assert [(p.protocol, p.path) for p in ctl.probes] == [("Http", "/healthz"), ("Https", "/healthz")]


HTTP_PORT = (PortInfo(80, "TCP", 30080, "http"),)


def _svc(annotations=(), ports=HTTP_PORT, etp="Cluster") -> LbService:
    return LbService("ns", "s", "10.0.0.5", ("20.0.0.1",), ports, (), tuple(sorted(annotations)), etp, 31000)


def test_health_probe_precedence_as_the_cloud_provider_reads_it():
    # appProtocol alone: HTTP on /
    assert [(p.protocol, p.path, p.probe_port) for p in azurelb.probes(_svc())] == [("Http", "/", 30080)]
    # the service-wide annotations win over appProtocol; the per-port ones over both
    svc = _svc([(azurelb.PROBE_PROTOCOL, "Tcp")])
    assert azurelb.probes(svc)[0].protocol == "Tcp"
    svc = _svc(
        [(azurelb.PROBE_PROTOCOL, "Tcp"), (azurelb.port_probe_protocol(80), "Https"), (azurelb.PROBE_PATH, "/ready")]
    )
    assert [(p.protocol, p.path) for p in azurelb.probes(svc)] == [("Https", "/ready")]
    svc = _svc([(azurelb.PROBE_PATH, "/ready"), (azurelb.port_probe_path(80), "/live")])
    assert azurelb.probes(svc)[0].path == "/live"
    # no protocol anywhere: TCP
    assert azurelb.probes(_svc(ports=(PortInfo(80, "TCP", 30080),)))[0].protocol == "Tcp"
    # externalTrafficPolicy: Local: kube-proxy's health check, whatever the annotations say
    svc = _svc([(azurelb.PROBE_PATH, "/ready")], etp="Local")
    assert [(p.protocol, p.path, p.probe_port) for p in azurelb.probes(svc)] == [("Http", "/healthz", 31000)]


def test_dns_label_on_an_internal_lb_is_said_to_be_ignored():
    svc = _svc([(azurelb.INTERNAL, "true"), (azurelb.DNS_LABEL, "x")])
    words = {e.what: e.text for e in azurelb.effects(svc, "westeurope")}
    assert words["DNS label"] == "x: ignored on an internal load balancer"
    svc = _svc([(azurelb.DNS_LABEL, "x")])
    assert {e.what: e.text for e in azurelb.effects(svc, "")}[
        "DNS label"
    ] == "public IP's FQDN x.<region>.cloudapp.azure.com"


def test_a_view_built_on_the_previous_one_is_the_view_built_afresh():
    store, _ = store_of("f22")
    data = store.snapshot().ingress
    first = {("local", "www.contoso.com"): answer("www.contoso.com", "20.31.150.10")}
    then = {
        ("local", "www.contoso.com"): answer("www.contoso.com", "20.31.99.7"),
        ("local", "shop.contoso.com"): answer("shop.contoso.com", outcome="nxdomain"),
    }
    prev = build_view(data, first, nodes=5, region="westeurope")
    again = build_view(data, then, nodes=5, region="westeurope", prev=prev)
    assert again == build_view(data, then, nodes=5, region="westeurope")
    assert again.lbs is prev.lbs  # nothing of the services moved: the same rows
    api = next(r for r in again.host_rows() if r.host == "api.contoso.com")
    assert api is next(r for r in prev.host_rows() if r.host == "api.contoso.com")  # its answers did not move
    # another node count is another input: built afresh
    other = build_view(data, then, nodes=6, region="westeurope", prev=prev)
    assert other.lbs is not prev.lbs and other.lbs[0].nodes == 6


def test_a_rebuilt_view_keeps_the_rows_that_did_not_change():
    """A slice of one backend moved: the view is built afresh (its inputs are not the
    same objects), yet every row, group and LoadBalancer row that reads the same is the
    previous view's object, so the pane looks at the one row that changed."""

    store, _ = store_of("ingress")
    data = store.snapshot().ingress
    prev = build_view(data, None, nodes=5, region="westeurope")
    shop = next(s for s in data.slices if s.service == "shop/shop")
    down = msgspec.structs.replace(shop, endpoints=tuple((False, n) for _, n in shop.endpoints))
    moved = msgspec.structs.replace(data, slices=tuple(down if s is shop else s for s in data.slices))
    view = build_view(moved, None, nodes=5, region="westeurope", prev=prev)
    assert view == build_view(moved, None, nodes=5, region="westeurope")  # what a fresh build says
    old = {(r.class_name, r.host): r for r in prev.host_rows()}
    for r in view.host_rows():
        if r.host == "shop.contoso.com":
            assert r is not old[(r.class_name, r.host)] and r.backends == (("shop/shop", 0, 2),)
        else:
            assert r is old[(r.class_name, r.host)]
    groups = {g.class_name: g for g in prev.groups}
    assert [g is groups[g.class_name] for g in view.groups] == [g.class_name != "nginx" for g in view.groups]
    lbs = {lb.service.key: lb for lb in prev.lbs}
    assert all(lb is lbs[lb.service.key] for lb in view.lbs if lb.service.key != "shop/shop")
    # only answers moved, and for no host: the same groups
    again = build_view(moved, None, nodes=5, region="westeurope", prev=view)
    assert again.groups is not view.groups and all(a is b for a, b in zip(again.groups, view.groups))
