"""The lab's ingress path: the API objects of the scenario's ``ingress:`` section
(IngressClasses, the controllers' pods and LoadBalancer services, Ingresses, backend
services and their EndpointSlices, cert-manager's Certificates, CertificateRequests,
Orders and Challenges, Gateway API Gateways and HTTPRoutes) and what the lab's DNS
answers for each host.

cert-manager's and Gateway API's groups are served only when ``ingress.crds`` installs
them: otherwise discovery does not list them and their paths answer 404, as on a cluster
without those CRDs.
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import objects as O
from .ingressspec import ControllerSpec, HostSpec, IngressLabSpec, LbServiceSpec
from .store import CRD_GROUPS

ALWAYS = ("discovery.k8s.io/v1", "networking.k8s.io/v1")
CONTROLLER = {
    "ingress-nginx": "k8s.io/ingress-nginx",
    "app-routing": "webapprouting.kubernetes.azure.com/nginx",
    "agic": "azure/application-gateway",
}
NAMESPACE = {"ingress-nginx": "ingress-nginx", "app-routing": "app-routing-system", "agic": "kube-system"}
DEPLOYMENT = {"ingress-nginx": "ingress-nginx-controller", "app-routing": "nginx", "agic": "ingress-appgw-deployment"}
LABELS = {
    "ingress-nginx": {
        "app.kubernetes.io/name": "ingress-nginx",
        "app.kubernetes.io/instance": "ingress-nginx",
        "app.kubernetes.io/component": "controller",
    },
    "app-routing": {
        "app.kubernetes.io/name": "nginx",
        "app.kubernetes.io/component": "ingress-controller",
        "app.kubernetes.io/managed-by": "aks-app-routing-operator",
        "app": "nginx",
    },
    "agic": {"app": "ingress-appgw"},
}
IMAGE = {
    "ingress-nginx": "registry.k8s.io/ingress-nginx/controller:v1.11.3",
    "app-routing": "mcr.microsoft.com/oss/kubernetes/ingress/nginx-ingress-controller:v1.11.3",
    "agic": "mcr.microsoft.com/azure-application-gateway/kubernetes-ingress:1.7.5",
}


def spec_of(scenario: Any) -> IngressLabSpec | None:
    spec = getattr(scenario, "extra", {}).get("ingress")
    return spec if isinstance(spec, IngressLabSpec) else None


def served_group_versions(scenario: Any) -> set[str]:
    spec = spec_of(scenario)
    out = set(ALWAYS)
    for crd in spec.crds if spec is not None else ():
        out.update(CRD_GROUPS[crd])
    return out


def dns_answers(scenario: Any) -> tuple[dict[str, str], frozenset[str]]:
    """(host -> the A record the lab's DNS answers, hosts answered NXDOMAIN)."""
    spec = spec_of(scenario)
    if spec is None:
        return {}, frozenset()
    names: dict[str, str] = {}
    nx: set[str] = set()
    for h in spec.hosts:
        c = spec.controller(h.class_name)
        if h.dns == "nxdomain":
            nx.add(h.host)
        elif h.dns == "lb":
            if c is not None and c.ip:
                names[h.host] = c.ip
            else:
                nx.add(h.host)  # no record yet: external-dns writes one once the controller has an IP
        else:
            names[h.host] = h.dns
    for g in spec.gateways:
        for host in g.hosts:
            names.setdefault(host, g.ip)
    return names, frozenset(nx)


def _h(*parts: str, n: int = 10) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


class IngressObjects:
    """Builds the section's objects into the lab store (called once, at the cluster's start)."""

    def __init__(self, cs: Any, spec: IngressLabSpec) -> None:
        self.cs = cs
        self.spec = spec
        self.c = cs.scenario.cluster
        self.created = cs.created + 7200
        self.nodes = sorted(cs.nodes)
        self._ip = 0

    # ------------------------------------------------------------------ helpers
    def _md(self, kind: str, ns: str | None, name: str, **extra: Any) -> dict[str, Any]:
        md: dict[str, Any] = {
            "name": name,
            "uid": O.make_uid(self.c.name, kind, ns or "", name),
            "creationTimestamp": O.ts(extra.pop("created", self.created)),
            "generation": 1,
        }
        if ns is not None:
            md["namespace"] = ns
        md.update({k: v for k, v in extra.items() if v})
        return md

    def _ns(self, name: str) -> None:
        if self.cs.store.get("namespaces", name) is None:
            self.cs.store.put("namespaces", O.namespace_object(self.cs, name, self.created))

    def _cluster_ip(self, key: str) -> str:
        taken: set[str] = {s.cluster_ip for s in self.cs.services.values()}
        return self.cs._svc_ip(key, taken)

    def _pod_ip(self, k: int) -> str:
        self._ip += 1
        node = self.cs.nodes[self.nodes[k % len(self.nodes)]]
        return str(self.cs._alloc_pod_ip(node))

    def _slice(self, ns: str, svc: str, eps: list[tuple[bool, str, str]], port: int) -> None:
        name = f"{svc}-{_h(ns, svc, n=5)}"
        self.cs.store.put(
            "endpointslices",
            {
                "kind": "EndpointSlice",
                "apiVersion": "discovery.k8s.io/v1",
                "metadata": self._md(
                    "slice",
                    ns,
                    name,
                    labels={
                        "kubernetes.io/service-name": svc,
                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                    },
                    generateName=f"{svc}-",
                ),
                "addressType": "IPv4",
                "endpoints": [
                    {
                        "addresses": [ip],
                        "conditions": {"ready": ready, "serving": ready, "terminating": False},
                        "nodeName": node,
                    }
                    for ready, node, ip in eps
                ],
                "ports": [{"name": "http", "protocol": "TCP", "port": port}],
            },
        )

    def _service(
        self,
        ns: str,
        name: str,
        typ: str,
        ports: list[dict[str, Any]],
        selector: dict[str, str],
        annotations: dict[str, str],
        ip: str = "",
        etp: str = "Cluster",
        source_ranges: tuple[str, ...] = (),
        labels: dict[str, str] | None = None,
    ) -> None:
        cip = self._cluster_ip(f"{ns}/{name}")
        spec: dict[str, Any] = {
            "type": typ,
            "clusterIP": cip,
            "clusterIPs": [cip],
            "ports": ports,
            "selector": selector,
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        }
        if typ == "LoadBalancer":
            spec["externalTrafficPolicy"] = etp
            spec["allocateLoadBalancerNodePorts"] = True
            if etp == "Local":
                spec["healthCheckNodePort"] = 30000 + int(_h(ns, name, "hc"), 16) % 2768
            if source_ranges:
                spec["loadBalancerSourceRanges"] = list(source_ranges)
            for p in ports:
                p["nodePort"] = 30000 + int(_h(ns, name, str(p["port"])), 16) % 2768
        status: dict[str, Any] = {"loadBalancer": {}}
        if typ == "LoadBalancer" and ip:
            status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"}]}
        self.cs.store.put(
            "services",
            {
                "kind": "Service",
                "apiVersion": "v1",
                "metadata": self._md("svc", ns, name, labels=labels or {}, annotations=annotations),
                "spec": spec,
                "status": status,
            },
        )

    # ------------------------------------------------------------------ the objects
    def build(self) -> None:
        for c in self.spec.controllers:
            self._controller(c)
        backends: set[tuple[str, str]] = set()
        for h in self.spec.hosts:
            self._ns(h.namespace)
            if (h.namespace, h.service) not in backends:
                backends.add((h.namespace, h.service))
                self._backend(h)
            self._ingress(h)
            if h.tls and h.certificate is not None and "cert-manager" in self.spec.crds:
                self._certificate(h)
        for s in self.spec.services:
            self._lb(s)
        for g in self.spec.gateways:
            self._gateway(g)

    def _controller(self, c: ControllerSpec) -> None:
        ns, deploy, labels = NAMESPACE[c.family], DEPLOYMENT[c.family], LABELS[c.family]
        self._ns(ns)
        ann = {"ingressclass.kubernetes.io/is-default-class": "true"} if c.default else {}
        self.cs.store.put(
            "ingressclasses",
            {
                "kind": "IngressClass",
                "apiVersion": "networking.k8s.io/v1",
                "metadata": self._md("ingressclass", None, c.class_name, annotations=ann, labels=dict(labels)),
                "spec": {"controller": CONTROLLER[c.family]},
            },
        )
        rs = _h(c.class_name, "rs")
        eps = []
        for k in range(c.replicas):
            node = self.nodes[k % len(self.nodes)]
            ready = k < c.ready
            ip = self._pod_ip(k)
            name = f"{deploy}-{rs}-{_h(c.class_name, str(k), n=5)}"
            eps.append((ready, node, ip))
            cond = "True" if ready else "False"
            self.cs.store.put(
                "pods",
                {
                    "kind": "Pod",
                    "apiVersion": "v1",
                    "metadata": self._md(
                        "pod",
                        ns,
                        name,
                        labels={**labels, "pod-template-hash": rs},
                        ownerReferences=[
                            {
                                "apiVersion": "apps/v1",
                                "kind": "ReplicaSet",
                                "name": f"{deploy}-{rs}",
                                "controller": True,
                            }
                        ],
                    ),
                    "spec": {
                        "nodeName": node,
                        "containers": [
                            {
                                "name": "controller",
                                "image": IMAGE[c.family],
                                "ports": [{"containerPort": 80, "name": "http"}],
                            }
                        ],
                    },
                    "status": {
                        "phase": "Running",
                        "podIP": ip,
                        "podIPs": [{"ip": ip}],
                        "conditions": [
                            {"type": "Ready", "status": cond, "lastTransitionTime": O.ts(self.created)},
                            {"type": "ContainersReady", "status": cond, "lastTransitionTime": O.ts(self.created)},
                        ],
                        "containerStatuses": [
                            {
                                "name": "controller",
                                "ready": ready,
                                "restartCount": 0 if ready else 7,
                                "image": IMAGE[c.family],
                                "state": {"running": {"startedAt": O.ts(self.created)}}
                                if ready
                                else {"waiting": {"reason": "CrashLoopBackOff"}},
                            }
                        ],
                    },
                },
            )
        if c.family == "agic":
            return  # the Application Gateway fronts it: no LoadBalancer service
        ann = dict(c.annotations)
        if c.internal:
            ann.setdefault("service.beta.kubernetes.io/azure-load-balancer-internal", "true")
        ports = [
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"},
        ]
        if c.app_protocol:
            ports[0]["appProtocol"], ports[1]["appProtocol"] = "http", "https"
        self._service(
            ns, deploy, "LoadBalancer", ports, dict(labels), ann, c.ip, c.external_traffic_policy, labels=dict(labels)
        )
        self._slice(ns, deploy, eps, 80)

    def _backend(self, h: HostSpec) -> None:
        sel = {"app": h.service}
        self._service(
            h.namespace,
            h.service,
            "ClusterIP",
            [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
            sel,
            {},
        )
        self._slice(
            h.namespace,
            h.service,
            [
                (k < h.ready, self.nodes[k % len(self.nodes)], f"10.244.{200 + k % 50}.{(len(h.host) + k) % 250 + 1}")
                for k in range(h.endpoints)
            ],
            8080,
        )

    def _ingress(self, h: HostSpec) -> None:
        c = self.spec.controller(h.class_name)
        ip = c.ip if c is not None else ""
        ann = {"cert-manager.io/cluster-issuer": h.issuer} if h.tls else {}
        spec: dict[str, Any] = {
            "ingressClassName": h.class_name,
            "rules": [
                {
                    "host": h.host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": h.service, "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        }
        if h.tls:
            spec["tls"] = [{"hosts": [h.host], "secretName": f"{h.ingress}-tls"}]
        self.cs.store.put(
            "ingresses",
            {
                "kind": "Ingress",
                "apiVersion": "networking.k8s.io/v1",
                "metadata": self._md("ingress", h.namespace, h.ingress, annotations=ann),
                "spec": spec,
                "status": {"loadBalancer": {"ingress": [{"ip": ip}]} if ip else {}},
            },
        )

    def _certificate(self, h: HostSpec) -> None:
        cert = h.certificate
        assert cert is not None
        now = self.cs.now()
        name = f"{h.ingress}-tls"
        conds = [
            {
                "type": "Ready",
                "status": "True" if cert.ready else "False",
                "reason": cert.reason,
                "message": cert.message,
                "lastTransitionTime": O.ts(now - 3600),
                "observedGeneration": 1,
            }
        ]
        status: dict[str, Any] = {"conditions": conds}
        if cert.ready or cert.not_after < 0:
            not_after = now + cert.not_after
            status.update(
                notBefore=O.ts(not_after - 90 * 86400),
                notAfter=O.ts(max(0.0, not_after)),
                renewalTime=O.ts(max(0.0, not_after - 30 * 86400)),
                revision=1,
            )
        owner = [{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": h.ingress, "controller": True}]
        self.cs.store.put(
            "certificates",
            {
                "kind": "Certificate",
                "apiVersion": "cert-manager.io/v1",
                "metadata": self._md("cert", h.namespace, name, ownerReferences=owner),
                "spec": {
                    "dnsNames": [h.host],
                    "secretName": name,
                    "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": h.issuer},
                    "usages": ["digital signature", "key encipherment"],
                },
                "status": status,
            },
        )
        cr = f"{name}-1"
        self.cs.store.put(
            "certificaterequests",
            {
                "kind": "CertificateRequest",
                "apiVersion": "cert-manager.io/v1",
                "metadata": self._md(
                    "cr",
                    h.namespace,
                    cr,
                    annotations={"cert-manager.io/certificate-name": name, "cert-manager.io/certificate-revision": "1"},
                ),
                "spec": {"issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": h.issuer}},
                "status": {
                    "conditions": [
                        {"type": "Approved", "status": "True", "reason": "cert-manager.io"},
                        {
                            "type": "Ready",
                            "status": "True" if cert.ready else "False",
                            "reason": "Issued" if cert.ready else "Pending",
                        },
                    ]
                },
            },
        )
        ch = h.challenge
        order = f"{cr}-{int(_h(cr), 16) % 10**10}"
        state = "valid" if ch is None else "pending"
        self.cs.store.put(
            "orders",
            {
                "kind": "Order",
                "apiVersion": "acme.cert-manager.io/v1",
                "metadata": self._md(
                    "order", h.namespace, order, annotations={"cert-manager.io/certificate-name": name}
                ),
                "spec": {"dnsNames": [h.host], "issuerRef": {"kind": "ClusterIssuer", "name": h.issuer}},
                "status": {"state": state},
            },
        )
        if ch is None:
            return
        self.cs.store.put(
            "challenges",
            {
                "kind": "Challenge",
                "apiVersion": "acme.cert-manager.io/v1",
                "metadata": self._md(
                    "challenge",
                    h.namespace,
                    f"{order}-{int(_h(order), 16) % 10**10}",
                    created=now - ch.age,
                    ownerReferences=[{"apiVersion": "acme.cert-manager.io/v1", "kind": "Order", "name": order}],
                ),
                "spec": {
                    "dnsName": h.host,
                    "type": ch.type.replace("-", ""),
                    "issuerRef": {"kind": "ClusterIssuer", "name": h.issuer},
                    "solver": {"dns01": {"azureDNS": {"hostedZoneName": h.host.partition(".")[2]}}},
                },
                "status": {"state": ch.state, "presented": True, "processing": True, "reason": ch.reason},
            },
        )

    def _lb(self, s: LbServiceSpec) -> None:
        self._ns(s.namespace)
        ann = dict(s.annotations)
        if s.internal:
            ann.setdefault("service.beta.kubernetes.io/azure-load-balancer-internal", "true")
        ports = [
            {"name": f"p{p}", "port": p, "protocol": "TCP", "targetPort": p, **({"appProtocol": ap} if ap else {})}
            for p, ap in s.ports
        ]
        self._service(
            s.namespace,
            s.name,
            "LoadBalancer",
            ports,
            {"app": s.name},
            ann,
            s.ip,
            s.external_traffic_policy,
            s.source_ranges,
        )
        self._slice(
            s.namespace,
            s.name,
            [
                (k < s.ready, self.nodes[k % len(self.nodes)], f"10.244.{100 + k % 50}.{k % 250 + 1}")
                for k in range(s.endpoints)
            ],
            s.ports[0][0],
        )

    def _gateway(self, g: Any) -> None:
        self._ns(g.namespace)
        self.cs.store.put(
            "gateways",
            {
                "kind": "Gateway",
                "apiVersion": "gateway.networking.k8s.io/v1",
                "metadata": self._md("gateway", g.namespace, g.name),
                "spec": {
                    "gatewayClassName": g.class_name,
                    "listeners": [
                        {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": h} for h in g.hosts[:1]
                    ]
                    or [{"name": "http", "port": 80, "protocol": "HTTP"}],
                },
                "status": {
                    "addresses": [{"type": "IPAddress", "value": g.ip}],
                    "conditions": [{"type": "Programmed", "status": "True", "reason": "Programmed"}],
                },
            },
        )
        self.cs.store.put(
            "httproutes",
            {
                "kind": "HTTPRoute",
                "apiVersion": "gateway.networking.k8s.io/v1",
                "metadata": self._md("httproute", g.namespace, f"{g.name}-route"),
                "spec": {
                    "parentRefs": [{"name": g.name}],
                    "hostnames": list(g.hosts),
                    "rules": [{"backendRefs": [{"name": f"{g.name}-backend", "port": 80}]}],
                },
                "status": {
                    "parents": [{"parentRef": {"name": g.name}, "conditions": [{"type": "Accepted", "status": "True"}]}]
                },
            },
        )


def build(cs: Any) -> None:
    spec = spec_of(cs.scenario)
    if spec is not None:
        IngressObjects(cs, spec).build()
