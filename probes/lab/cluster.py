"""Live cluster state of the lab.

``ClusterState`` holds small mutable records (:mod:`.records`: nodes, pods, services,
events) and mirrors each into the :class:`~probes.lab.store.LabStore` as a Kubernetes
JSON object (:mod:`.objects`). Every mutation bumps the store's resourceVersion once per
changed object and appends a watch event to its bounded log; ``EventTimeline`` applies
the scenario's timeline.
"""

from __future__ import annotations

import copy
import ipaddress
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import ingresslab
from . import objects as O
from .gatewayspec import ANNOTATION, GatewayLabSpec
from .policyspec import DEFAULT as POLICY_DEFAULT
from .policyspec import PolicyLabSpec
from .records import AgentState, EventState, LabAgentPod, LabPod, NodeState, ServiceState
from .scenario import Scenario, ScenarioError, TimedEvent, resolve_node_ref
from .scenario.model import ntoa
from .store import KINDS, NAMESPACED, RESOURCES, Entry, LabStore, WatchEvent

# importable from here as before: the store and the records used to live in this module
__all__ = [
    "AGENT_NAME",
    "AGENT_NAMESPACE",
    "KINDS",
    "NAMESPACED",
    "RESOURCES",
    "ClusterState",
    "Entry",
    "EventState",
    "EventTimeline",
    "LabAgentPod",
    "LabPod",
    "LabStore",
    "NodeState",
    "ServiceState",
    "WatchEvent",
]

AGENT_NAMESPACE = "aksnet-top"
AGENT_NAME = "aksnet-top-agent"
AGENT_LABELS = {
    "app.kubernetes.io/name": AGENT_NAME,
    "app.kubernetes.io/part-of": "aksnet-top",
    "app.kubernetes.io/component": "agent",
}
AGENT_IMAGE = "ghcr.io/aksnet-top/aksnet-top:0.1.0"

_SAFE = "bcdfghjklmnpqrstvwxz2456789"
DEPLOYMENTS = (("coredns", None), ("coredns-autoscaler", 1), ("metrics-server", 2), ("konnectivity-agent", 2))


class ClusterState:
    """Mutable cluster; every method is thread-safe and emits watch events."""

    def __init__(self, scenario: Scenario, clock: Callable[[], float] = time.time, log_size: int = 10_000):
        self.scenario = scenario
        self.clock = clock
        self.pools = {p.name: p for p in scenario.pools}
        self.store = LabStore(log_size=log_size)
        self.lock = self.store.cond
        self._rng = random.Random(f"{scenario.cluster.name}/{scenario.name}")
        self.nodes: dict[str, NodeState] = {}
        self.pods: dict[str, LabPod] = {}
        self.pods_by_node: dict[str, set[str]] = {}
        self.services: dict[tuple[str, str], ServiceState] = {}
        self.events: dict[tuple[str, str], EventState] = {}
        self.agents: dict[str, AgentState] = {}  # node name -> its agent pod
        self._agent_nodes: dict[str, str] = {}  # agent pod name -> node name
        # its own stream: agent pods must not shift the names the scenario's pods get
        self._agent_rng = random.Random(f"{scenario.cluster.name}/{scenario.name}/agents")
        self.hashes = {app: self._rand(10) for app, _ in DEPLOYMENTS}
        self.hashes.update(
            {a: self._rand(5, "0123456789") + self._rand(3) for a in ("node-local-dns", "kube-proxy", "cilium")}
        )
        c = scenario.cluster
        t0 = self.clock()
        self.t0 = t0
        self.created = t0 - c.age
        self._next_instance = {p.name: p.count for p in scenario.pools}
        specs = scenario.nodes()
        # after the highest node's block (a fixed address may sit beyond the allocated ones)
        self._next_ip = max(
            (int(ipaddress.IPv4Address(x.ip)) + scenario.ip_stride(x.pool) for x in specs),
            default=int(c.subnet_cidr.network_address) + 4,
        )
        self._next_cidr = len(specs)
        with self.lock:
            for i, s in enumerate(specs):
                o = s.override
                age = o.age if o and o.age is not None else c.age - 600 - 60 * i
                created = t0 - max(age, 60.0)
                n = NodeState(
                    name=s.name,
                    pool=s.pool,
                    instance=s.instance,
                    ip=s.ip,
                    pod_cidr=s.pod_cidr,
                    zone=s.zone,
                    uid=O.make_uid(c.name, "node", s.name),
                    created=created,
                    ready_since=created + 40,
                    route_since=created + 20,
                    cordon_since=t0 - 300,
                    kubelet_version=o.kubelet_version if o else None,
                )
                n.next_pod_ip = self._first_pod_ip(n)
                if o:
                    n.ready, n.reason, n.message = o.ready, o.reason, o.message
                    if o.ready != "True":
                        n.ready_since = t0 - 120
                    n.cordoned = o.cordoned
                    n.network_unavailable = o.network_unavailable
                self.nodes[n.name] = n
                self.pods_by_node[n.name] = set()
            for name in (
                "default",
                "kube-node-lease",
                "kube-public",
                "kube-system",
                *sorted({s.namespace for s in scenario.services}),
            ):
                self.store.put("namespaces", O.namespace_object(self, name, self.created))
            for n in self.nodes.values():
                self._put_node(n)
                self._add_daemon_pods(n, n.created + 30)
            overrides_nl = {s.name for s in specs if s.override and not s.override.node_local_dns_ready}
            for p in self.pods.values():
                if p.app == "node-local-dns" and p.node in overrides_nl:
                    p.ready = False
                    p.ready_since = t0 - 120
            for app, count in DEPLOYMENTS:
                reps = scenario.coredns.replicas if count is None else count
                for k in range(reps):
                    dp = self._new_deploy_pod(app, k, self.created + 120, avoid=None)
                    if dp is not None and app == "coredns" and k >= scenario.coredns.ready:
                        dp.ready = False
                        dp.ready_since = t0 - 120
            for p in self.pods.values():
                self._put_pod(p)
            self._init_services()
            self._init_policies()
            self._init_gateway()
            ingresslab.build(self)  # the ingress path (scenario `ingress:`), after the services
            self.store.floor = self.store.rv
            self.store.recording = True

    def _init_policies(self) -> None:
        """The scenario's ``policies:``: app namespaces and pods, NetworkPolicies, Calico's."""
        spec: PolicyLabSpec = self.scenario.extra.get("policies") or POLICY_DEFAULT
        nodes = sorted(
            (n for n in self.nodes.values() if self.pools[n.pool].mode == "User"), key=lambda n: n.name
        ) or sorted(self.nodes.values(), key=lambda n: n.name)
        placed = [0]
        for ns in spec.namespaces:
            obj = O.namespace_object(self, ns.name, self.created + 60)
            obj["metadata"]["labels"].update(dict(ns.labels))
            self.store.put("namespaces", obj)
            for pods in ns.pods:
                self._place_pods(nodes, placed, ns.name, pods.name, pods.replicas, dict(pods.labels))
        for resource, obj in spec.objects:
            self._put_written(resource, obj)

    def _put_written(self, resource: str, obj: dict[str, Any], uid_kind: str = "") -> None:
        """An object as the scenario wrote it, with the metadata the API server adds."""
        o = copy.deepcopy(obj)
        md = o["metadata"]
        md.setdefault(
            "uid", O.make_uid(self.scenario.cluster.name, uid_kind or resource, md.get("namespace", ""), md["name"])
        )
        md.setdefault("creationTimestamp", O.ts(self.created + 200))
        md.setdefault("generation", 1)
        self.store.put(resource, o)

    def _place_pods(
        self,
        nodes: list[NodeState],
        placed: list[int],
        namespace: str,
        app: str,
        replicas: int,
        labels: dict[str, str],
        annotations: dict[str, str] | None = None,
    ) -> None:
        """`replicas` pods of `app`, round-robin over `nodes` (`placed` counts across calls)."""
        for _ in range(replicas):
            if not nodes:
                return
            n = nodes[placed[0] % len(nodes)]
            placed[0] += 1
            name = f"{app}-{self._rand(10)}-{self._rand(5)}"
            pod = O.app_pod_object(
                self, namespace, name, labels, n, self._alloc_pod_ip(n), self.created + 300, annotations
            )
            self.store.put("pods", pod)

    def _init_gateway(self) -> None:
        """The scenario's ``egressGateway:``: StaticGatewayConfigurations as written, and pods
        annotated for one, on the User pools' nodes (the gateway pool takes no workload)."""
        spec: GatewayLabSpec | None = self.scenario.extra.get("egress_gateway")
        if spec is None:
            return
        nodes = sorted(
            (n for n in self.nodes.values() if self.pools[n.pool].mode == "User"), key=lambda n: n.name
        ) or sorted((n for n in self.nodes.values() if self.pools[n.pool].mode != "Gateway"), key=lambda n: n.name)
        namespaces = {c["metadata"]["namespace"] for c in spec.configurations} | {p.namespace for p in spec.pods}
        for ns in sorted(namespaces):
            if self.store.get("namespaces", ns) is None:
                self.store.put("namespaces", O.namespace_object(self, ns, self.created + 60))
        for obj in spec.configurations:
            self._put_written("staticgatewayconfigurations", obj, uid_kind="sgc")
        placed = [0]
        for pods in spec.pods:
            self._place_pods(
                nodes, placed, pods.namespace, pods.name, pods.replicas, {"app": pods.name}, {ANNOTATION: pods.gateway}
            )

    # ------------------------------------------------------------------ helpers
    def now(self) -> float:
        return self.clock()

    def _rand(self, n: int, alphabet: str = _SAFE) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(n))

    def _first_pod_ip(self, n: NodeState) -> int:
        if n.pod_cidr:
            return int(ipaddress.IPv4Network(n.pod_cidr).network_address) + 2
        return int(ipaddress.IPv4Address(n.ip)) + 1

    def _alloc_pod_ip(self, n: NodeState) -> str:
        ip = n.next_pod_ip
        n.next_pod_ip += 1
        return ntoa(ip)

    def _put_node(self, n: NodeState) -> None:
        self.store.put("nodes", O.node_object(self, n))

    def _put_pod(self, p: LabPod) -> None:
        self.store.put("pods", O.pod_object(self, p))

    def _add_pod(self, p: LabPod) -> LabPod:
        self.pods[p.name] = p
        self.pods_by_node.setdefault(p.node, set()).add(p.name)
        return p

    def _add_daemon_pods(self, n: NodeState, created: float, put: bool = False) -> None:
        c = self.scenario.cluster
        if self.pools[n.pool].windows:
            return  # the kube-system DaemonSets select Linux nodes (Windows runs kube-proxy as a host process)
        apps = ["kube-proxy" if c.network_dataplane == "azure" else "cilium"]
        if c.node_local_dns:
            apps.append("node-local-dns")
        for app in apps:
            name = f"{app}-{self._rand(5)}"
            while name in self.pods:
                name = f"{app}-{self._rand(5)}"
            p = self._add_pod(
                LabPod(
                    name=name,
                    app=app,
                    node=n.name,
                    ip=n.ip,
                    host_ip=n.ip,
                    uid=O.make_uid(c.name, "pod", name),
                    created=created,
                    template_hash=self.hashes[app],
                    ready_since=created + 10,
                )
            )
            if put:
                self._put_pod(p)

    def _pick_node(self, app: str, slot: int, avoid: str | None) -> NodeState | None:
        """Deployment pods go to schedulable, ready system nodes, spread round-robin."""
        cands = [
            n
            for n in self.nodes.values()
            if self.pools[n.pool].mode == "System" and not n.cordoned and n.ready == "True" and n.name != avoid
        ]
        if not cands:  # Linux images: never a Windows node
            cands = [
                n for n in self.nodes.values() if not n.cordoned and n.name != avoid and not self.pools[n.pool].windows
            ]
        if not cands:
            return None
        off = [a for a, _ in DEPLOYMENTS].index(app)
        return cands[(slot + off) % len(cands)]

    def _new_deploy_pod(self, app: str, slot: int, created: float, avoid: str | None) -> LabPod | None:
        n = self._pick_node(app, slot, avoid)
        if n is None:
            return None
        c = self.scenario.cluster
        name = f"{app}-{self.hashes[app]}-{self._rand(5)}"
        while name in self.pods:
            name = f"{app}-{self.hashes[app]}-{self._rand(5)}"
        return self._add_pod(
            LabPod(
                name=name,
                app=app,
                node=n.name,
                ip=self._alloc_pod_ip(n),
                host_ip=n.ip,
                uid=O.make_uid(c.name, "pod", name),
                created=created,
                template_hash=self.hashes[app],
                ready_since=created + 15,
                replica=slot,
            )
        )

    def _init_services(self) -> None:
        c = self.scenario.cluster
        svc_net = c.service_cidr
        taken = {str(svc_net[1]), str(c.dns_service_ip)}
        created = self.created + 60
        builtin = [
            ServiceState(
                "default",
                "kubernetes",
                "ClusterIP",
                str(svc_net[1]),
                [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}],
                {},
                None,
                {"component": "apiserver", "provider": "kubernetes"},
                {},
                "",
                self.created,
            ),
            ServiceState(
                "kube-system",
                "kube-dns",
                "ClusterIP",
                str(c.dns_service_ip),
                [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
                {"k8s-app": "kube-dns"},
                None,
                {
                    "addonmanager.kubernetes.io/mode": "Reconcile",
                    "k8s-app": "kube-dns",
                    "kubernetes.io/cluster-service": "true",
                    "kubernetes.io/name": "CoreDNS",
                },
                {},
                "",
                created,
            ),
        ]
        ms_ip = self._svc_ip("kube-system/metrics-server", taken)
        builtin.append(
            ServiceState(
                "kube-system",
                "metrics-server",
                "ClusterIP",
                ms_ip,
                [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"}],
                {"k8s-app": "metrics-server"},
                None,
                {
                    "addonmanager.kubernetes.io/mode": "Reconcile",
                    "k8s-app": "metrics-server",
                    "kubernetes.io/cluster-service": "true",
                },
                {},
                "",
                created,
            )
        )
        node_port = 30000 + self._rng.randrange(2000)
        for sp in self.scenario.services:
            ip = str(sp.cluster_ip) if sp.cluster_ip else self._svc_ip(f"{sp.namespace}/{sp.name}", taken)
            taken.add(ip)
            ports = []
            for k, p in enumerate(sp.ports):
                d: dict[str, Any] = {}
                if p.name or len(sp.ports) > 1:
                    d["name"] = p.name or f"port-{k}"
                d.update(
                    port=p.port, protocol=p.protocol, targetPort=p.target_port if p.target_port is not None else p.port
                )
                if sp.type in ("LoadBalancer", "NodePort"):
                    node_port += 1 + self._rng.randrange(300)
                    if node_port > 32767:
                        node_port = 30000 + self._rng.randrange(2000)
                    d["nodePort"] = p.node_port or node_port
                ports.append(d)
            ann = dict(sp.annotations)
            if sp.internal:
                ann["service.beta.kubernetes.io/azure-load-balancer-internal"] = "true"
            builtin.append(
                ServiceState(
                    sp.namespace,
                    sp.name,
                    sp.type,
                    ip,
                    ports,
                    dict(sp.selector),
                    sp.external_ip,
                    dict(sp.labels),
                    ann,
                    "",
                    self.created + 3600,
                )
            )
        for s in builtin:
            s.uid = O.make_uid(c.name, "svc", s.namespace, s.name)
            self.services[(s.namespace, s.name)] = s
            self.store.put("services", O.service_object(self, s))
        for sp in self.scenario.services:
            s = self.services[(sp.namespace, sp.name)]
            for ev in sp.events:
                name = f"{s.name}.{(O.make_uid(s.uid, ev.reason).replace('-', ''))[:16]}"
                last = self.t0 - 90
                e = EventState(
                    s.namespace,
                    name,
                    "Service",
                    s.name,
                    s.uid,
                    ev.reason,
                    ev.message,
                    ev.type,
                    ev.count,
                    ev.component,
                    last - 300 * (ev.count - 1) - 60,
                    last,
                    O.make_uid(c.name, "event", s.namespace, name),
                )
                self.events[(e.namespace, e.name)] = e
                self.store.put("events", O.event_object(self, e))

    def _svc_ip(self, key: str, taken: set[str]) -> str:
        net = self.scenario.cluster.service_cidr
        size = net.num_addresses
        h = int.from_bytes(O.make_uid("svcip", key).encode()[:8], "big")
        for k in range(size):
            cand = str(net[16 + (h + k * 7919) % (size - 32)])
            if cand not in taken:
                taken.add(cand)
                return cand
        raise ScenarioError(f"serviceCidr {net} is full")

    # ------------------------------------------------------------------ references
    def resolve_node(self, ref: int | str) -> str:
        with self.lock:
            nodes = list(self.nodes.values())
            i = resolve_node_ref(self.scenario, nodes, ref)
            if i is None:
                raise KeyError(f"no node {ref!r}")
            return nodes[i].name

    def _node(self, ref: int | str) -> NodeState:
        return self.nodes[self.resolve_node(ref)]

    # ------------------------------------------------------------------ mutations
    def add_node(self, pool: str, ready: bool = True) -> str:
        """A new VMSS instance joins (scale-out or surge). Returns the node name."""
        with self.lock:
            sc, c = self.scenario, self.scenario.cluster
            p = self.pools[pool]
            inst = self._next_instance[pool]
            self._next_instance[pool] = inst + 1
            stride = sc.ip_stride(pool)
            if self._next_ip + stride - 1 >= int(c.subnet_cidr.broadcast_address):
                raise ValueError(f"subnet {c.subnet_cidr} is full")
            ip = ntoa(self._next_ip)
            self._next_ip += stride
            pod_cidr = None
            if c.pod_cidr is not None:
                used = {n.pod_cidr for n in self.nodes.values()}
                base = int(c.pod_cidr.network_address)
                for k in range(2 ** (24 - c.pod_cidr.prefixlen)):
                    cand = f"{ntoa(base + (k << 8))}/24"
                    if cand not in used:
                        pod_cidr = cand
                        break
                else:
                    raise ValueError(f"podCidr {c.pod_cidr} has no free /24")
            now = self.now()
            name = sc.node_name(pool, inst)
            zone = f"{c.location}-{p.zones[inst % len(p.zones)]}" if p.zones else "0"
            n = NodeState(
                name=name,
                pool=pool,
                instance=inst,
                ip=ip,
                pod_cidr=pod_cidr,
                zone=zone,
                uid=O.make_uid(c.name, "node", name, str(now)),
                created=now,
                ready="True" if ready else "False",
                ready_since=now,
                route_since=now,
                network_unavailable=(not ready and c.network_plugin == "kubenet"),
                cordon_since=now,
            )
            if not ready:
                n.reason = "KubeletNotReady"
            n.next_pod_ip = self._first_pod_ip(n)
            self.nodes[name] = n
            self.pods_by_node[name] = set()
            self._put_node(n)
            self._add_daemon_pods(n, now + 5, put=True)
            return name

    def remove_node(self, ref: int | str) -> None:
        """The VM is deleted: its pods go, deployment pods are recreated elsewhere."""
        with self.lock:
            n = self._node(ref)
            now = self.now()
            moved = []
            for pname in sorted(self.pods_by_node.pop(n.name, ())):
                p = self.pods.pop(pname)
                self.store.delete("pods", f"kube-system/{pname}")
                if p.replica >= 0:
                    moved.append(p)
            self._delete_agent(n.name)
            del self.nodes[n.name]
            self.store.delete("nodes", n.name)
            for p in moved:
                q = self._new_deploy_pod(p.app, p.replica, now, avoid=n.name)
                if q is not None:
                    self._put_pod(q)

    def set_node_ready(
        self, ref: int | str, ready: bool | str = True, reason: str | None = None, message: str | None = None
    ) -> None:
        with self.lock:
            n = self._node(ref)
            st = "True" if ready is True or ready == "True" else "Unknown" if ready == "Unknown" else "False"
            if st != n.ready:
                n.ready_since = self.now()
            n.ready, n.reason, n.message = st, reason, message
            self._put_node(n)
            for pname in sorted(self.pods_by_node.get(n.name, ())):
                self._put_pod(self.pods[pname])
            if n.name in self.agents:
                self._put_agent(self.agents[n.name])

    def cordon(self, ref: int | str, on: bool = True) -> None:
        with self.lock:
            n = self._node(ref)
            if n.cordoned != on:
                n.cordoned = on
                n.cordon_since = self.now()
                self._put_node(n)

    def set_route(self, ref: int | str, created: bool = True) -> None:
        """kubenet: NetworkUnavailable False/RouteCreated or True/NoRouteCreated."""
        with self.lock:
            n = self._node(ref)
            if n.network_unavailable == created:
                n.network_unavailable = not created
                n.route_since = self.now()
                self._put_node(n)

    def set_pod_ready(self, pod: str, ready: bool, node: int | str | None = None, index: int = 0) -> str:
        """``pod`` is a pod name, or 'node-local-dns' (with ``node``), or 'coredns' (replica ``index``)."""
        with self.lock:
            if pod in self.pods:
                p = self.pods[pod]
            elif pod == "node-local-dns" and node is not None:
                nn = self.resolve_node(node)
                cand = [self.pods[x] for x in self.pods_by_node.get(nn, ()) if self.pods[x].app == "node-local-dns"]
                if not cand:
                    raise KeyError(f"no node-local-dns pod on {nn}")
                p = cand[0]
            elif pod == "coredns":
                cand = sorted((x for x in self.pods.values() if x.app == "coredns"), key=lambda x: x.replica)
                if index >= len(cand):
                    raise KeyError(f"no coredns replica {index}")
                p = cand[index]
            else:
                raise KeyError(f"no pod {pod!r}")
            if p.ready != ready:
                p.ready = ready
                p.ready_since = self.now()
                if not ready:
                    p.restarts += 1
                self._put_pod(p)
            return p.name

    def set_service_external_ip(self, service: str, ip: str | None) -> None:
        with self.lock:
            ns, _, name = service.partition("/")
            s = self.services[(ns, name)]
            s.external_ip = ip
            self.store.put("services", O.service_object(self, s))

    def add_event(self, service: str, reason: str, message: str, type: str = "Warning") -> None:
        """Record (or repeat) an event on a service, like the service controller does."""
        with self.lock:
            ns, _, name = service.partition("/")
            s = self.services[(ns, name)]
            now = self.now()
            for e in self.events.values():
                if e.involved_uid == s.uid and e.reason == reason and e.message == message:
                    e.count += 1
                    e.last = now
                    break
            else:
                ename = f"{s.name}.{O.make_uid(s.uid, reason, message).replace('-', '')[:16]}"
                e = EventState(
                    ns,
                    ename,
                    "Service",
                    s.name,
                    s.uid,
                    reason,
                    message,
                    type,
                    1,
                    "service-controller",
                    now,
                    now,
                    O.make_uid("event", ns, ename),
                )
                self.events[(ns, ename)] = e
            self.store.put("events", O.event_object(self, e))

    # ------------------------------------------------------------------ agent pods
    def set_agent_pods(self, pods: Mapping[str, LabAgentPod]) -> dict[str, str]:
        """Make the aksnet-top agent DaemonSet's pods exactly ``pods`` (node name -> LabAgentPod).

        Nodes left out lose their pod (watch DELETED); a changed IP, port or a Running pod
        set back to Pending replaces the pod (new name, as the DaemonSet controller would);
        readiness and restarts update it in place. Returns node name -> pod name.
        """
        with self.lock:
            wanted = {self.resolve_node(ref): spec for ref, spec in pods.items()}
            for node in sorted(set(self.agents) - set(wanted)):
                self._delete_agent(node)
            for node in sorted(wanted):
                self._upsert_agent(node, wanted[node])
            return self.agent_pod_names()

    def set_agent_pod(self, node: int | str, pod: LabAgentPod | None) -> str | None:
        """Add, change or (``None``) remove one node's agent pod. Returns its pod name."""
        with self.lock:
            name = self.resolve_node(node)
            if pod is None:
                self._delete_agent(name)
                return None
            return self._upsert_agent(name, pod).name

    def agent_pod_names(self) -> dict[str, str]:
        """Node name -> agent pod name."""
        with self.lock:
            return {node: a.name for node, a in sorted(self.agents.items())}

    def dial_target(self, namespace: str, name: str, port: int) -> tuple[str, int] | None:
        """Where the pod proxy really connects for ``namespace/name:port``; None = nothing listens.

        Only agent pods have anything behind them: their ``endpoint`` for the agent port, or
        their given pod IP. Every other lab pod's IP is a lookalike, so its ports refuse.
        """
        if namespace != AGENT_NAMESPACE:
            return None
        with self.lock:
            a = self.agents.get(self._agent_nodes.get(name, ""))
            if a is None or a.ip is None:
                return None
            if a.spec.endpoint is not None:
                return a.spec.endpoint if port == a.spec.port else None
            return (a.ip, port) if a.spec.ip is not None else None

    def _upsert_agent(self, node: str, spec: LabAgentPod) -> AgentState:
        a = self.agents.get(node)
        if a is not None:
            old = a.spec
            replace = old.ip != spec.ip or old.port != spec.port or (old.phase == "Running" and spec.phase == "Pending")
            if not replace:
                a.spec = spec
                changed = old.phase != spec.phase or old.ready != spec.ready or old.restarts != spec.restarts
                if old.phase == "Pending" and spec.phase == "Running":
                    a.ip = spec.ip or self._alloc_pod_ip(self.nodes[node])
                if old.ready != spec.ready or old.phase != spec.phase:
                    a.ready_since = self.now()
                if changed:
                    self._put_agent(a)
                return a
            self._delete_agent(node)
        if self.store.get("namespaces", AGENT_NAMESPACE) is None:
            self.store.put("namespaces", O.namespace_object(self, AGENT_NAMESPACE, self.now()))
        name = ""
        while not name or name in self._agent_nodes:
            name = f"{AGENT_NAME}-{''.join(self._agent_rng.choice(_SAFE) for _ in range(5))}"
        now = self.now()
        ip = None
        if spec.phase == "Running":
            ip = spec.ip or self._alloc_pod_ip(self.nodes[node])
        a = AgentState(
            node=node,
            name=name,
            uid=O.make_uid(self.scenario.cluster.name, "pod", name, str(now)),
            spec=spec,
            ip=ip,
            created=now,
            ready_since=now,
        )
        self.agents[node] = a
        self._agent_nodes[name] = node
        self._put_agent(a)
        return a

    def _delete_agent(self, node: str) -> None:
        a = self.agents.pop(node, None)
        if a is not None:
            self._agent_nodes.pop(a.name, None)
            self.store.delete("pods", f"{AGENT_NAMESPACE}/{a.name}")

    def _put_agent(self, a: AgentState) -> None:
        self.store.put("pods", self._agent_pod_object(a))

    def _agent_pod_object(self, a: AgentState) -> dict[str, Any]:
        """A DaemonSet pod as the real API server shows it (the agent's manifest, scheduled)."""
        node = self.nodes.get(a.node)
        running = a.spec.phase == "Running" and a.ip is not None
        ready = running and a.spec.ready and node is not None and node.ready == "True"
        created, started, rt = O.ts(a.created), O.ts(a.created + 2), O.ts(a.ready_since)
        ds_uid = O.make_uid(self.scenario.cluster.name, "daemonset", AGENT_NAMESPACE, AGENT_NAME)
        rev = ds_uid.replace("-", "")[:10]
        unready = {"reason": "ContainersNotReady", "message": "containers with unready status: [agent]"}
        image_id = (O.make_uid("img", AGENT_IMAGE).replace("-", "") * 2)[:64]
        status_c: dict[str, Any] = {
            "name": "agent",
            "image": AGENT_IMAGE,
            "imageID": "",
            "ready": ready,
            "restartCount": a.spec.restarts,
            "started": running,
        }
        if running:
            status_c.update(
                imageID=f"{AGENT_IMAGE.rsplit(':', 1)[0]}@sha256:{image_id}",
                containerID=f"containerd://{(O.make_uid('ctr', a.name).replace('-', '') * 2)[:64]}",
                state={"running": {"startedAt": started}},
            )
        else:
            status_c["state"] = {"waiting": {"reason": "ContainerCreating"}}
        host_ip = node.ip if node is not None else ""
        status: dict[str, Any] = {
            "phase": a.spec.phase,
            "conditions": [
                {
                    "type": "PodReadyToStartContainers",
                    "status": "True" if running else "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": started if running else created,
                },
                {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": created},
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": rt,
                    **({} if ready else unready),
                },
                {
                    "type": "ContainersReady",
                    "status": "True" if ready else "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": rt,
                    **({} if ready else unready),
                },
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": created},
            ],
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "startTime": created,
            "containerStatuses": [status_c],
            "qosClass": "Burstable",
        }
        if a.ip is not None:
            status["podIP"] = a.ip
            status["podIPs"] = [{"ip": a.ip}]
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": a.name,
                "generateName": f"{AGENT_NAME}-",
                "namespace": AGENT_NAMESPACE,
                "uid": a.uid,
                "creationTimestamp": created,
                "labels": {**AGENT_LABELS, "controller-revision-hash": rev, "pod-template-generation": "1"},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "DaemonSet",
                        "name": AGENT_NAME,
                        "uid": ds_uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "containers": [
                    {
                        "name": "agent",
                        "image": AGENT_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "args": ["agent", "--listen", f":{a.spec.port}"],
                        "ports": [{"containerPort": a.spec.port, "name": "http", "protocol": "TCP"}],
                        "readinessProbe": {
                            "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                            "periodSeconds": 10,
                            "timeoutSeconds": 1,
                            "successThreshold": 1,
                            "failureThreshold": 3,
                        },
                        "resources": {"requests": {"cpu": "20m", "memory": "48Mi"}, "limits": {"memory": "128Mi"}},
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"add": ["NET_RAW"], "drop": ["ALL"]},
                        },
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                    }
                ],
                "nodeName": a.node,
                "restartPolicy": "Always",
                "dnsPolicy": "ClusterFirst",
                "serviceAccountName": AGENT_NAME,
                "serviceAccount": AGENT_NAME,
                "schedulerName": "default-scheduler",
                "priority": 0,
                "enableServiceLinks": True,
                "terminationGracePeriodSeconds": 5,
                "preemptionPolicy": "PreemptLowerPriority",
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [a.node]}]}
                            ]
                        }
                    }
                },
                "tolerations": [
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
                    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
                ],
            },
            "status": status,
        }

    def apply(self, ev: TimedEvent) -> None:
        """Apply one scenario timeline event."""
        a = ev.action
        if a == "node-add":
            self.add_node(ev.pool or "", ready=ev.ready)
        elif a == "node-remove":
            self.remove_node(_node_ref(ev))
        elif a == "node-ready":
            self.set_node_ready(_node_ref(ev), True)
        elif a == "node-notready":
            self.set_node_ready(_node_ref(ev), ev.pod or "False", ev.reason, ev.message)
        elif a == "node-cordon":
            self.cordon(_node_ref(ev), True)
        elif a == "node-uncordon":
            self.cordon(_node_ref(ev), False)
        elif a == "node-route-missing":
            self.set_route(_node_ref(ev), False)
        elif a == "node-route-created":
            self.set_route(_node_ref(ev), True)
        elif a in ("pod-ready", "pod-notready"):
            self.set_pod_ready(ev.pod or "", a == "pod-ready", node=ev.node, index=ev.index or 0)
        elif a == "service-external-ip":
            self.set_service_external_ip(ev.service or "", ev.ip)
        else:  # pragma: no cover - the loader rejects unknown actions
            raise ValueError(a)


def _node_ref(ev: TimedEvent) -> int | str:
    """A node event's node: the loader requires one on every node event."""
    assert ev.node is not None, f"{ev.action} event without a node"
    return ev.node


class EventTimeline:
    """Applies a scenario's timed events relative to a start time.

    ``apply_until(t)`` is deterministic (tests call it directly); ``start()`` runs a
    thread that calls it as time passes, ``time_scale`` seconds per scenario second.
    """

    def __init__(
        self,
        state: ClusterState,
        events: Iterable[TimedEvent],
        time_scale: float = 1.0,
        on_error: Callable[[TimedEvent, Exception], None] | None = None,
    ):
        self.state = state
        self.events = list(events)
        self.time_scale = time_scale
        self.applied = 0
        self.errors: list[tuple[TimedEvent, str]] = []
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def apply_until(self, t: float) -> list[TimedEvent]:
        done = []
        with self._lock:
            while self.applied < len(self.events) and self.events[self.applied].at <= t:
                ev = self.events[self.applied]
                self.applied += 1
                try:
                    self.state.apply(ev)
                except (KeyError, ValueError) as e:
                    self.errors.append((ev, str(e)))
                    if self._on_error:
                        self._on_error(ev, e)
                done.append(ev)
        return done

    def start(self) -> None:
        if not self.events or self._thread is not None:
            return
        t0 = time.monotonic()

        def run() -> None:
            while self.applied < len(self.events) and not self._stop.is_set():
                nxt = self.events[self.applied].at * self.time_scale
                wait = nxt - (time.monotonic() - t0)
                if wait > 0 and self._stop.wait(min(wait, 1.0)):
                    return
                if wait <= 0 or time.monotonic() - t0 >= nxt:
                    self.apply_until((time.monotonic() - t0) / self.time_scale if self.time_scale else float("inf"))

        self._thread = threading.Thread(target=run, name="lab-timeline", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
