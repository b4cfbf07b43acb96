"""Live cluster state of the lab and its object store with resource versions.

``ClusterState`` holds small mutable records (nodes, pods, services, events) and
mirrors each into the ``Store`` as a Kubernetes JSON object. Every mutation bumps the
store's resourceVersion once per changed object and appends a watch event to a bounded
log, like the API server's watch cache. One condition variable guards everything and
wakes watchers.
"""

from __future__ import annotations

import ipaddress
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import orjson

from . import objects as O
from .scenario import Scenario, ScenarioError, TimedEvent, resolve_node_ref

RESOURCES = ("nodes", "namespaces", "pods", "services", "events")
NAMESPACED = {"pods", "services", "events"}
KINDS = {"nodes": "Node", "namespaces": "Namespace", "pods": "Pod", "services": "Service", "events": "Event"}


class Entry:
    """One stored object; immutable once stored. ``raw`` is its JSON, serialized once."""

    __slots__ = ("resource", "namespace", "name", "key", "obj", "rv", "_raw")

    def __init__(self, resource: str, obj: dict[str, Any], rv: int):
        md = obj["metadata"]
        md["resourceVersion"] = str(rv)
        self.resource = resource
        self.namespace = md.get("namespace", "")
        self.name = md["name"]
        self.key = f"{self.namespace}/{self.name}" if self.namespace else self.name
        self.obj = obj
        self.rv = rv
        self._raw: bytes | None = None

    @property
    def labels(self) -> dict[str, str]:
        return self.obj["metadata"].get("labels") or {}

    @property
    def raw(self) -> bytes:
        r = self._raw
        if r is None:
            r = self._raw = orjson.dumps(self.obj)
        return r


@dataclass(slots=True)
class WatchEvent:
    rv: int
    type: str          # ADDED | MODIFIED | DELETED
    entry: Entry
    prev: Entry | None = None     # the object before this change (label-selector watches)
    _line: bytes | None = None

    @property
    def line(self) -> bytes:
        if self._line is None:
            self._line = b'{"type":"' + self.type.encode() + b'","object":' + self.entry.raw + b"}\n"
        return self._line


class Store:
    def __init__(self, log_size: int = 10_000, first_rv: int = 1000):
        self.cond = threading.Condition(threading.RLock())
        self.rv = first_rv
        self.items: dict[str, dict[str, Entry]] = {r: {} for r in RESOURCES}
        self._sorted: dict[str, list[str] | None] = {r: None for r in RESOURCES}
        self.log: deque[WatchEvent] = deque()
        self.log_size = log_size
        self.floor = first_rv    # every change with rv > floor is still in the log
        self.recording = False

    def put(self, resource: str, obj: dict[str, Any]) -> Entry:
        with self.cond:
            self.rv += 1
            e = Entry(resource, obj, self.rv)
            items = self.items[resource]
            prev = items.get(e.key)
            typ = "MODIFIED" if prev is not None else "ADDED"
            if typ == "ADDED":
                self._sorted[resource] = None
            items[e.key] = e
            self._record(WatchEvent(self.rv, typ, e, prev))
            return e

    def delete(self, resource: str, key: str) -> Entry | None:
        with self.cond:
            old = self.items[resource].pop(key, None)
            if old is None:
                return None
            self._sorted[resource] = None
            self.rv += 1
            obj = dict(old.obj)
            obj["metadata"] = dict(obj["metadata"])
            e = Entry(resource, obj, self.rv)
            self._record(WatchEvent(self.rv, "DELETED", e, old))
            return e

    def _record(self, ev: WatchEvent) -> None:
        if not self.recording:
            self.floor = ev.rv
            return
        self.log.append(ev)
        while len(self.log) > self.log_size:
            self.floor = self.log.popleft().rv
        self.cond.notify_all()

    def expire_log(self) -> None:
        """Forget all logged changes: any watch from an older RV gets 410 Expired."""
        with self.cond:
            self.log.clear()
            self.floor = self.rv

    def get(self, resource: str, key: str) -> Entry | None:
        return self.items[resource].get(key)

    def sorted_keys(self, resource: str) -> list[str]:
        with self.cond:
            keys = self._sorted[resource]
            if keys is None:
                keys = self._sorted[resource] = sorted(self.items[resource])
            return keys

    def snapshot(self, resource: str) -> tuple[int, list[str], dict[str, Entry]]:
        with self.cond:
            return self.rv, self.sorted_keys(resource), dict(self.items[resource])

    def since(self, rv: int) -> list[WatchEvent] | None:
        """Changes after ``rv``; None if ``rv`` is older than the log keeps."""
        with self.cond:
            if rv < self.floor:
                return None
            if not self.log or self.log[-1].rv <= rv:
                return []
            # log is sorted by rv: skip from the right end (watchers are usually close)
            out = []
            for ev in reversed(self.log):
                if ev.rv <= rv:
                    break
                out.append(ev)
            out.reverse()
            return out


# --------------------------------------------------------------------------- records

@dataclass(slots=True)
class NodeState:
    name: str
    pool: str
    instance: int
    ip: str
    pod_cidr: str | None
    zone: str
    uid: str
    created: float
    ready: str = "True"
    reason: str | None = None
    message: str | None = None
    ready_since: float = 0.0
    cordoned: bool = False
    cordon_since: float = 0.0
    network_unavailable: bool = False
    route_since: float = 0.0
    next_pod_ip: int = 0      # int address for the next pod IP on this node


@dataclass(slots=True)
class PodState:
    name: str
    app: str
    node: str
    ip: str
    host_ip: str
    uid: str
    created: float
    template_hash: str
    ready: bool = True
    ready_since: float = 0.0
    restarts: int = 0
    replica: int = -1         # deployment replica slot, -1 for DaemonSet pods


@dataclass(slots=True)
class ServiceState:
    namespace: str
    name: str
    type: str
    cluster_ip: str
    ports: list[dict[str, Any]]
    selector: dict[str, str]
    external_ip: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    uid: str
    created: float


@dataclass(slots=True)
class EventState:
    namespace: str
    name: str
    involved_kind: str
    involved_name: str
    involved_uid: str
    reason: str
    message: str
    type: str
    count: int
    component: str
    first: float
    last: float
    uid: str


_SAFE = "bcdfghjklmnpqrstvwxz2456789"
DEPLOYMENTS = (("coredns", None), ("coredns-autoscaler", 1), ("metrics-server", 2), ("konnectivity-agent", 2))


class ClusterState:
    """Mutable cluster; every method is thread-safe and emits watch events."""

    def __init__(self, scenario: Scenario, clock: Callable[[], float] = time.time,
                 log_size: int = 10_000):
        self.scenario = scenario
        self.clock = clock
        self.pools = {p.name: p for p in scenario.pools}
        self.store = Store(log_size=log_size)
        self.lock = self.store.cond
        self._rng = random.Random(f"{scenario.cluster.name}/{scenario.name}")
        self.nodes: dict[str, NodeState] = {}
        self.pods: dict[str, PodState] = {}
        self.pods_by_node: dict[str, set[str]] = {}
        self.services: dict[tuple[str, str], ServiceState] = {}
        self.events: dict[tuple[str, str], EventState] = {}
        self.hashes = {app: self._rand(10) for app, _ in DEPLOYMENTS}
        self.hashes.update({a: self._rand(5, "0123456789") + self._rand(3) for a in ("node-local-dns", "kube-proxy", "cilium")})
        c = scenario.cluster
        t0 = self.clock()
        self.t0 = t0
        self.created = t0 - c.age
        self._next_instance = {p.name: p.count for p in scenario.pools}
        specs = scenario.nodes()
        self._next_ip = (int(ipaddress.IPv4Address(specs[-1].ip)) + scenario.ip_stride(specs[-1].pool)
                         if specs else int(c.subnet_cidr.network_address) + 4)
        self._next_cidr = len(specs)
        with self.lock:
            for i, s in enumerate(specs):
                o = s.override
                age = o.age if o and o.age is not None else c.age - 600 - 60 * i
                created = t0 - max(age, 60.0)
                n = NodeState(name=s.name, pool=s.pool, instance=s.instance, ip=s.ip, pod_cidr=s.pod_cidr,
                              zone=s.zone, uid=O.make_uid(c.name, "node", s.name), created=created,
                              ready_since=created + 40, route_since=created + 20, cordon_since=t0 - 300)
                n.next_pod_ip = self._first_pod_ip(n)
                if o:
                    n.ready, n.reason, n.message = o.ready, o.reason, o.message
                    if o.ready != "True":
                        n.ready_since = t0 - 120
                    n.cordoned = o.cordoned
                    n.network_unavailable = o.network_unavailable
                self.nodes[n.name] = n
                self.pods_by_node[n.name] = set()
            for name in ("default", "kube-node-lease", "kube-public", "kube-system",
                         *sorted({s.namespace for s in scenario.services})):
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
                    p = self._new_deploy_pod(app, k, self.created + 120, avoid=None)
                    if p is not None and app == "coredns" and k >= scenario.coredns.ready:
                        p.ready = False
                        p.ready_since = t0 - 120
            for p in self.pods.values():
                self._put_pod(p)
            self._init_services()
            self.store.floor = self.store.rv
            self.store.recording = True

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
        return O._ntoa(ip)

    def _put_node(self, n: NodeState) -> None:
        self.store.put("nodes", O.node_object(self, n))

    def _put_pod(self, p: PodState) -> None:
        self.store.put("pods", O.pod_object(self, p))

    def _add_pod(self, p: PodState) -> PodState:
        self.pods[p.name] = p
        self.pods_by_node.setdefault(p.node, set()).add(p.name)
        return p

    def _add_daemon_pods(self, n: NodeState, created: float, put: bool = False) -> None:
        c = self.scenario.cluster
        apps = ["kube-proxy" if c.network_dataplane == "azure" else "cilium"]
        if c.node_local_dns:
            apps.append("node-local-dns")
        for app in apps:
            name = f"{app}-{self._rand(5)}"
            while name in self.pods:
                name = f"{app}-{self._rand(5)}"
            p = self._add_pod(PodState(name=name, app=app, node=n.name, ip=n.ip, host_ip=n.ip,
                                       uid=O.make_uid(c.name, "pod", name), created=created,
                                       template_hash=self.hashes[app], ready_since=created + 10))
            if put:
                self._put_pod(p)

    def _pick_node(self, app: str, slot: int, avoid: str | None) -> NodeState | None:
        """Deployment pods go to schedulable, ready system nodes, spread round-robin."""
        cands = [n for n in self.nodes.values()
                 if self.pools[n.pool].mode == "System" and not n.cordoned and n.ready == "True" and n.name != avoid]
        if not cands:
            cands = [n for n in self.nodes.values() if not n.cordoned and n.name != avoid]
        if not cands:
            return None
        off = [a for a, _ in DEPLOYMENTS].index(app)
        return cands[(slot + off) % len(cands)]

    def _new_deploy_pod(self, app: str, slot: int, created: float, avoid: str | None) -> PodState | None:
        n = self._pick_node(app, slot, avoid)
        if n is None:
            return None
        c = self.scenario.cluster
        name = f"{app}-{self.hashes[app]}-{self._rand(5)}"
        while name in self.pods:
            name = f"{app}-{self.hashes[app]}-{self._rand(5)}"
        return self._add_pod(PodState(name=name, app=app, node=n.name, ip=self._alloc_pod_ip(n), host_ip=n.ip,
                                      uid=O.make_uid(c.name, "pod", name), created=created,
                                      template_hash=self.hashes[app], ready_since=created + 15, replica=slot))

    def _init_services(self) -> None:
        c = self.scenario.cluster
        svc_net = c.service_cidr
        taken = {str(svc_net[1]), str(c.dns_service_ip)}
        created = self.created + 60
        builtin = [
            ServiceState("default", "kubernetes", "ClusterIP", str(svc_net[1]),
                         [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}], {}, None,
                         {"component": "apiserver", "provider": "kubernetes"}, {}, "", self.created),
            ServiceState("kube-system", "kube-dns", "ClusterIP", str(c.dns_service_ip),
                         [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                          {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}],
                         {"k8s-app": "kube-dns"}, None,
                         {"addonmanager.kubernetes.io/mode": "Reconcile", "k8s-app": "kube-dns",
                          "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
                         {}, "", created),
        ]
        ms_ip = self._svc_ip("kube-system/metrics-server", taken)
        builtin.append(ServiceState("kube-system", "metrics-server", "ClusterIP", ms_ip,
                                    [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"}],
                                    {"k8s-app": "metrics-server"}, None,
                                    {"addonmanager.kubernetes.io/mode": "Reconcile", "k8s-app": "metrics-server",
                                     "kubernetes.io/cluster-service": "true"}, {}, "", created))
        node_port = 30000 + self._rng.randrange(2000)
        for sp in self.scenario.services:
            ip = str(sp.cluster_ip) if sp.cluster_ip else self._svc_ip(f"{sp.namespace}/{sp.name}", taken)
            taken.add(ip)
            ports = []
            for k, p in enumerate(sp.ports):
                d: dict[str, Any] = {}
                if p.name or len(sp.ports) > 1:
                    d["name"] = p.name or f"port-{k}"
                d.update(port=p.port, protocol=p.protocol,
                         targetPort=p.target_port if p.target_port is not None else p.port)
                if sp.type in ("LoadBalancer", "NodePort"):
                    node_port += 1 + self._rng.randrange(300)
                    if node_port > 32767:
                        node_port = 30000 + self._rng.randrange(2000)
                    d["nodePort"] = p.node_port or node_port
                ports.append(d)
            ann = dict(sp.annotations)
            if sp.internal:
                ann["service.beta.kubernetes.io/azure-load-balancer-internal"] = "true"
            builtin.append(ServiceState(sp.namespace, sp.name, sp.type, ip, ports, dict(sp.selector), sp.external_ip,
                                        dict(sp.labels), ann, "", self.created + 3600))
        for s in builtin:
            s.uid = O.make_uid(c.name, "svc", s.namespace, s.name)
            self.services[(s.namespace, s.name)] = s
            self.store.put("services", O.service_object(self, s))
        for sp in self.scenario.services:
            s = self.services[(sp.namespace, sp.name)]
            for ev in sp.events:
                name = f"{s.name}.{(O.make_uid(s.uid, ev.reason).replace('-', ''))[:16]}"
                last = self.t0 - 90
                e = EventState(s.namespace, name, "Service", s.name, s.uid, ev.reason, ev.message, ev.type,
                               ev.count, ev.component, last - 300 * (ev.count - 1) - 60, last,
                               O.make_uid(c.name, "event", s.namespace, name))
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
            ip = O._ntoa(self._next_ip)
            self._next_ip += stride
            pod_cidr = None
            if c.pod_cidr is not None:
                used = {n.pod_cidr for n in self.nodes.values()}
                base = int(c.pod_cidr.network_address)
                for k in range(2 ** (24 - c.pod_cidr.prefixlen)):
                    cand = f"{O._ntoa(base + (k << 8))}/24"
                    if cand not in used:
                        pod_cidr = cand
                        break
                else:
                    raise ValueError(f"podCidr {c.pod_cidr} has no free /24")
            now = self.now()
            name = sc.node_name(pool, inst)
            zone = f"{c.location}-{p.zones[inst % len(p.zones)]}" if p.zones else "0"
            n = NodeState(name=name, pool=pool, instance=inst, ip=ip, pod_cidr=pod_cidr, zone=zone,
                          uid=O.make_uid(c.name, "node", name, str(now)), created=now,
                          ready="True" if ready else "False", ready_since=now, route_since=now,
                          network_unavailable=(not ready and c.network_plugin == "kubenet"), cordon_since=now)
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
            del self.nodes[n.name]
            self.store.delete("nodes", n.name)
            for p in moved:
                q = self._new_deploy_pod(p.app, p.replica, now, avoid=n.name)
                if q is not None:
                    self._put_pod(q)

    def set_node_ready(self, ref: int | str, ready: bool | str = True, reason: str | None = None,
                       message: str | None = None) -> None:
        with self.lock:
            n = self._node(ref)
            st = "True" if ready is True or ready == "True" else "Unknown" if ready == "Unknown" else "False"
            if st != n.ready:
                n.ready_since = self.now()
            n.ready, n.reason, n.message = st, reason, message
            self._put_node(n)
            for pname in sorted(self.pods_by_node.get(n.name, ())):
                self._put_pod(self.pods[pname])

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
                e = EventState(ns, ename, "Service", s.name, s.uid, reason, message, type, 1,
                               "service-controller", now, now, O.make_uid("event", ns, ename))
                self.events[(ns, ename)] = e
            self.store.put("events", O.event_object(self, e))

    def apply(self, ev: TimedEvent) -> None:
        """Apply one scenario timeline event."""
        a = ev.action
        if a == "node-add":
            self.add_node(ev.pool or "", ready=ev.ready)
        elif a == "node-remove":
            self.remove_node(ev.node)
        elif a == "node-ready":
            self.set_node_ready(ev.node, True)
        elif a == "node-notready":
            self.set_node_ready(ev.node, ev.pod or "False", ev.reason, ev.message)
        elif a == "node-cordon":
            self.cordon(ev.node, True)
        elif a == "node-uncordon":
            self.cordon(ev.node, False)
        elif a == "node-route-missing":
            self.set_route(ev.node, False)
        elif a == "node-route-created":
            self.set_route(ev.node, True)
        elif a in ("pod-ready", "pod-notready"):
            self.set_pod_ready(ev.pod or "", a == "pod-ready", node=ev.node, index=ev.index or 0)
        elif a == "service-external-ip":
            self.set_service_external_ip(ev.service or "", ev.ip)
        else:  # pragma: no cover - the loader rejects unknown actions
            raise ValueError(a)


class Timeline:
    """Applies a scenario's timed events relative to a start time.

    ``apply_until(t)`` is deterministic (tests call it directly); ``start()`` runs a
    thread that calls it as time passes, ``time_scale`` seconds per scenario second.
    """

    def __init__(self, state: ClusterState, events: Iterable[TimedEvent], time_scale: float = 1.0,
                 on_error: Callable[[TimedEvent, Exception], None] | None = None):
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
