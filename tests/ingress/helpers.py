"""The ingress path of a lab scenario, as the Kubernetes source would file it: the lab's
objects through the kinds' routes into a Store (no HTTP), and answers made by hand."""

from __future__ import annotations

from probes.engine.store import Store
from probes.ingress.kinds import INGRESS_KINDS
from probes.ingress.model import HostAnswer
from probes.kube.kinds import KINDS
from probes.lab.cluster import ClusterState
from probes.lab.scenario import load_scenario

PATHS = {
    "/api/v1/nodes": "nodes",
    "/api/v1/services": "services",
    "/apis/networking.k8s.io/v1/ingressclasses": "ingressclasses",
    "/apis/networking.k8s.io/v1/ingresses": "ingresses",
    "/apis/discovery.k8s.io/v1/endpointslices": "endpointslices",
    "/apis/cert-manager.io/v1/certificates": "certificates",
    "/apis/cert-manager.io/v1/certificaterequests": "certificaterequests",
    "/apis/acme.cert-manager.io/v1/orders": "orders",
    "/apis/acme.cert-manager.io/v1/challenges": "challenges",
    "/apis/gateway.networking.k8s.io/v1/gateways": "gateways",
    "/apis/gateway.networking.k8s.io/v1/httproutes": "httproutes",
}


def store_of(scenario: str, clock=None) -> tuple[Store, ClusterState]:
    """A Store filled from the lab's objects of `scenario` (every kind routed as the source does)."""
    cs = ClusterState(load_scenario(scenario), **({"clock": clock} if clock else {}))
    store = Store()
    for kind in (*KINDS, *INGRESS_KINDS):
        resource = PATHS.get(kind.path, "pods")
        items: dict[str, dict] = {c: {} for c in kind.collections}
        for e in cs.store.items[resource].values():
            labels = e.obj["metadata"].get("labels") or {}
            if kind.name in ("controller-pods", "agic-pods", "pods") and not _selected(kind.selector, labels):
                continue
            if kind.name == "pods" and e.namespace != "kube-system":
                continue
            for coll, key, rec in kind.route(e.obj):
                items[coll][key] = rec
        for coll, recs in items.items():
            store.replace(coll, recs)
    return store, cs


def _selected(selector: str, labels: dict) -> bool:
    key, _, values = selector.partition(" in ")
    return labels.get(key.strip()) in {v.strip() for v in values.strip("()").split(",")}


def answer(host: str, *ips: str, outcome: str = "ok", vantage: str = "local", at: float = 1.0) -> HostAnswer:
    return HostAnswer(vantage, "kube-dns 10.0.0.10", host, outcome, ips, at)


def served(
    host: str,
    address: str,
    outcome: str = "valid",
    *,
    days: float = 90.0,
    at: float = 0.0,
    issuer: str = "R11",
    subject: str = "",
    error: str = "",
    http_status: int | None = None,
) -> object:
    """A TlsResult as the HTTPS probe files it: a leaf (days left at `at`) from `issuer`
    under an intermediate, or no chain for an endpoint that never answered TLS."""
    # lazy: the probe's records only for the tests that inject results
    from probes.ingress.tlsresult import CertSummary, TlsOutcome, TlsResult

    o = TlsOutcome(outcome)
    chain: tuple[CertSummary, ...] = ()
    if o.handshake:
        self_signed = o is TlsOutcome.UNTRUSTED
        cn = subject or host
        leaf = CertSummary(
            cn, (cn,), cn if self_signed else issuer, f"CN={cn if self_signed else issuer}",
            at + (days - 90) * 86400, at + days * 86400, self_signed, False, "01", "ab" * 32,
        )  # fmt: skip
        inter = CertSummary(
            issuer, (), "ISRG Root X1", "CN=ISRG Root X1,O=Internet Security Research Group,C=US",
            at - 300 * 86400, at + 600 * 86400, False, True, "02", "cd" * 32,
        )  # fmt: skip
        chain = (leaf,) if self_signed else (leaf, inter)
    return TlsResult(
        "local", host, address, 443, o, 12.5 if o.handshake else 3000.0, 1.0, chain,
        "TLSv1.3" if o.handshake else "", "", http_status, "", error, at,
    )  # fmt: skip


class FakeHttps:
    """What the publisher reads from an HttpsService: plan(), history, error."""

    def __init__(self, results: list) -> None:
        # lazy: the engine's history only for the tests that inject results
        from probes.engine.history import History

        self.history = History()
        for r in results:
            self.history.add(r.key, r)
        self.error = ""
        self._plan = None

    def plan(self):  # type: ignore[no-untyped-def]
        return self._plan
