"""The demo's DNS world: loopback responders standing in for every node's resolvers.

In ``--demo`` each scenario node is a vantage. From node X, NodeLocal DNS
(169.254.20.10, or LocalDNS 169.254.10.10/.11 where X carries the label), the kube-dns
ClusterIP and each CoreDNS pod IP are reached at loopback responders that behave as the
scenario's ``dns:`` section says (default: everything answers). :class:`DnsDemo` is a
:class:`probes.dns.service.VantageMap`: it hands the DNS service, per node vantage, the
production address → loopback (host, port) overrides. The probes still only see packets;
this module is the one place that reads the scenario.

Responders are shared by behaviour, not made per node: one for every node whose NodeLocal
has no override of its own, one per overridden node, one for kube-dns, one for CoreDNS
pods without an override, one per overridden pod. All start together, so timed changes
(``at: 30s``) count from the demo's start. The `local` vantage (the laptop) is confined to
kube-dns and CoreDNS, mapped to the same responders, so the demo never sends a packet
beyond loopback.

Given the lab's CoreDNS pods (``coredns``: name and readiness, as the lab's API server
lists them), the kube-dns responders balance every flow over the *ready* pods' behaviours
(probes.lab.dnsserver: kube-proxy's random choice per flow), so a replica that drops makes
kube-dns lose about 1/N; each pod's own address reaches its behaviour directly. Without
the list kube-dns answers as its own block says (tests, benchmarks).

Until the agent issue lands, node vantages are probed in-process (the seam is
``VantageMap``); at most ``max_nodes`` node vantages are offered (the first nodes by name)
to keep a 2,000-node demo cheap.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from typing import Any

from probes.dns.resolvers import LOCALDNS_IPS
from probes.kube.model import LOCAL_VANTAGE, Topology, node_vantage
from probes.lab.dnsserver import DnsResponder, responder_for
from probes.lab.dnsspec import DnsLabSpec
from probes.lab.ingresslab import dns_answers
from probes.lab.scenario import ScenarioError

MAX_NODES = 50


def spec_of(scenario: Any) -> DnsLabSpec:
    """The scenario's parsed ``dns:`` section, or the all-answer default, with the records
    of the ingress hosts (``ingress:``: the controller's IP, another one, or none)."""
    spec = getattr(scenario, "extra", {}).get("dns")
    spec = spec if isinstance(spec, DnsLabSpec) else DnsLabSpec()
    names, nx = dns_answers(scenario)
    if names or nx:
        spec = dataclasses.replace(
            spec, external_names={**names, **spec.external_names}, nxdomain_names=spec.nxdomain_names | nx
        )
    return spec


def resolve_node(scenario: Any, ref: str, section: str = "dns") -> str:
    """A ``dns.nodes`` (or ``<section>.nodes``) key -> node name: 'pool/N' (VMSS instance
    N), an index, or a name."""
    m = re.fullmatch(r"([a-z][a-z0-9]*)/(\d+)", ref)
    if m and scenario is not None:
        pool, n = m.group(1), int(m.group(2))
        if not any(p.name == pool for p in scenario.pools):
            raise ScenarioError(f"{scenario.source}: {section}.nodes.{ref}: no pool {pool!r} in this cluster")
        return scenario.node_name(pool, n)
    if ref.isdigit() and scenario is not None:
        nodes = scenario.nodes()
        if int(ref) >= len(nodes):
            raise ScenarioError(f"{scenario.source}: {section}.nodes.{ref}: the cluster has {len(nodes)} nodes")
        return nodes[int(ref)].name
    return ref


class DnsDemo:
    """Start the responders, answer VantageMap queries, stop everything."""

    version = 0

    def __init__(
        self,
        scenario: Any = None,
        *,
        spec: DnsLabSpec | None = None,
        max_nodes: int = MAX_NODES,
        host: str = "127.0.0.1",
        coredns: list[tuple[str, bool]] | None = None,
    ) -> None:
        base = spec if spec is not None else spec_of(scenario)
        # node refs ('nodepool1/1') become names once, with the scenario at hand
        nodes = {resolve_node(scenario, k): tl for k, tl in base.nodes.items()}
        kube_dns = {resolve_node(scenario, k): tl for k, tl in base.node_kube_dns.items()}
        upstream = {resolve_node(scenario, k): tl for k, tl in base.node_upstream.items()}
        self.spec = dataclasses.replace(base, nodes=nodes, node_kube_dns=kube_dns, node_upstream=upstream)
        self.max_nodes = max_nodes
        # the CoreDNS pods (name, ready) in name order; None: kube-dns does not balance
        self.coredns = None if coredns is None else sorted(coredns)
        self._host = host
        self._lock = threading.Lock()
        self.responders: dict[str, DnsResponder] = {}
        self._started = False

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> DnsDemo:
        # key -> (kind, node, pod)
        wanted: dict[str, tuple[str, str | None, str | None]] = {
            "nodelocal": ("nodelocal", None, None),
            "kube-dns": ("kube-dns", None, None),
            "coredns": ("coredns", None, None),
        }
        for node_name in (*self.spec.nodes, *self.spec.node_upstream):
            wanted[f"nodelocal/{node_name}"] = ("nodelocal", node_name, None)
        for node_name in self.spec.node_kube_dns:
            wanted[f"kube-dns/{node_name}"] = ("kube-dns", node_name, None)
        for pod_name in self.spec.pods:
            wanted[f"coredns/{pod_name}"] = ("coredns", None, pod_name)
        backends = None
        if self.coredns is not None:
            backends = [
                self.spec.timeline_for("coredns", pod=self.pod_ref(i))
                for i, (_, ready) in enumerate(self.coredns)
                if ready
            ]
        try:
            for key, (kind, node, pod) in wanted.items():
                self.responders[key] = responder_for(
                    self.spec,
                    kind,
                    node=node,
                    pod=pod,
                    host=self._host,
                    backends=backends if kind == "kube-dns" else None,
                ).start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def stop(self, timeout: float = 2.0) -> None:
        for r in list(self.responders.values()):
            try:
                r.stop(timeout)
            except Exception:  # noqa: BLE001
                pass
        self.responders.clear()
        self._started = False

    def __enter__(self) -> DnsDemo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pod_ref(self, i: int) -> str:
        """The spec's key for the i-th CoreDNS pod by name: its name, else '#i'."""
        assert self.coredns is not None
        name = self.coredns[i][0]
        return name if name in self.spec.pods else f"#{i}"

    def pod_address(self, name: str) -> tuple[str, int] | None:
        """Where a CoreDNS pod of the list (by name) answers: its own responder, else the shared one."""
        for i, (n, _) in enumerate(self.coredns or ()):
            if n == name:
                return self._addr(f"coredns/{self.pod_ref(i)}", "coredns")
        return None

    # --- VantageMap ----------------------------------------------------------------------
    def _addr(self, key: str, fallback: str) -> tuple[str, int] | None:
        r = self.responders.get(key) or self.responders.get(fallback)
        return r.address if r is not None else None

    def _shared(self, topology: Topology) -> dict[str, tuple[str, int]]:
        out: dict[str, tuple[str, int]] = {}
        if topology.dns_service_ip and (a := self._addr("kube-dns", "kube-dns")):
            out[topology.dns_service_ip] = a
        for i, pod in enumerate(sorted(topology.coredns, key=lambda p: p.name)):
            # a pod's own responder by name, else by its place in name order ("#1")
            a = self._addr(f"coredns/{pod.name}", f"coredns/#{i}") or self._addr("coredns", "coredns")
            if pod.ip and a:
                out[f"coredns/{pod.name}"] = a  # by key: pod IPs are node IPs for hostNetwork pods
        return out

    def vantages(self, topology: Topology) -> list[Any]:
        # lazy: probes.dns.service pulls in the DNS probe engine (~0.6 s of imports),
        # which only a running demo needs
        from probes.dns.service import Vantage

        if not self._started:
            return []
        shared = self._shared(topology)
        out = [Vantage(LOCAL_VANTAGE, None, dict(shared), confine=True)]
        # node vantages stand for agents, which run on Linux nodes only (the DaemonSet's nodeSelector)
        for node in sorted((n for n in topology.nodes if n.os != "windows"), key=lambda n: n.name)[: self.max_nodes]:
            over = dict(shared)
            if topology.dns_service_ip and f"kube-dns/{node.name}" in self.responders:
                over[topology.dns_service_ip] = self.responders[f"kube-dns/{node.name}"].address
            local = self._addr(f"nodelocal/{node.name}", "nodelocal")
            if local is not None:
                over["nodelocal"] = local  # by key: its address is the pods' -localip
                for ip in LOCALDNS_IPS:
                    over[ip] = local
            out.append(Vantage(node_vantage(node.name), node.name, over, confine=True))
        return out
