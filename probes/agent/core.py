"""The per-node agent: the app's DNS and egress probes, run from one node, on a feed.

An :class:`Agent` runs inside the *current* event loop (``await agent.start()``), so one
process can host one agent (the DaemonSet pod) or hundreds (the demo's farm, benchmarks).
One :class:`~probes.engine.scheduler.Scheduler` runs every DNS job (resolver × name) and every
egress job (target) on its own cadence; each result gets the next ``seq`` and goes into a
bounded ring (``feed_size`` results), the only state that grows with time — and it does
not. The app reads the ring every 10–200 s with "results since the last seq I saw" and
replays them into its own histories, so the agent keeps no statistics of its own apart
from the counters and short latency windows ``/metrics`` needs.

What is probed is decided exactly as the app decides it for a node vantage, by the same
functions (:func:`settings_for`): resolvers from a tiny :class:`~probes.kube.model.Topology`
through :func:`probes.dns.service.build_plan` (so keys are the app's: ``nodelocal``,
``localdns-1``/``-2``, ``kube-dns``, ``custom/<addr>``), targets through
:func:`probes.egress.service.build_plan` (AKS's required endpoints, the API server, extras).

Rounds on request (:mod:`probes.agent.rounds`): a reader that cannot wait for the
cadence (`check`) asks that every job have run K times (at most MAX_ROUNDS); the jobs
short of it run now, one round after the other (:meth:`Agent.probe_now`): none on a
long-running agent, the CoreDNS pods just handed over twice. Granted at most once per
:meth:`Agent.round_gap` (the slowest job's interval, the pods' stretched one included),
so whoever asks, every job runs at most ``1 + MAX_ROUNDS`` times per its own interval.

CoreDNS pods (``coredns/<pod>``): an agent has no API access, so the app's reader hands it
the pods with each read (:mod:`probes.agent.hint`) and :meth:`Agent.set_coredns` adds one
job per (pod, name) from then on. Their cost is bounded whatever the replica count: at
most :data:`POD_QUERIES` per-pod queries per DNS interval in all (2 replicas × 3 names at
the full cadence, AKS's default); with more (pod, name) pairs each job's interval
stretches by ``pairs / POD_QUERIES``, so the agent's query rate, CPU and the load its
node puts on CoreDNS stay those of a few more resolvers (bench/agent_bench.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from typing import Any, NamedTuple

from probes.agent.echo import check_echo_url, fetch_echo
from probes.agent.hint import CorednsPod
from probes.agent.rounds import MAX_ROUNDS
from probes.dns.probe import DnsProbe, DnsResult, dns_jobs
from probes.dns.resolvers import DEFAULT_NAMES, Resolver, ResolverKind, validate_names, with_override
from probes.dns.service import DnsSettings, Vantage
from probes.dns.service import build_plan as dns_plan
from probes.egress.probe import DEFAULT_DNS_TIMEOUT, EgressMode, EgressProbe, EgressResult, Resolve, egress_jobs
from probes.egress.proxy import ProxySettings, parse_proxy
from probes.egress.service import EgressSettings, EgressVantage, vantage_resolve
from probes.egress.service import build_plan as egress_plan
from probes.egress.targets import Target, apiserver_target, parse_target
from probes.engine.scheduler import JobFailure, Scheduler
from probes.kube.model import NetworkPlugin, NodeInfo, PodState, Topology, node_vantage

log = logging.getLogger("probes.agent")

DEFAULT_INTERVAL = 10.0  # s; bench/agent_bench.py: ~2 millicores for 2 resolvers × 2 names + 8 targets
DEFAULT_TIMEOUT = 2.0
DEFAULT_FEED = 2048
RAW_CAP = 1024  # characters of a raw answer kept (the newest per key only)
LATENCY_WINDOW = 60  # successful answers per key behind the /metrics quantiles
MAX_ERRORS = 20
# per-pod CoreDNS queries per DNS interval, over every (pod, name): beyond it the jobs'
# interval stretches (see the module docstring)
POD_QUERIES = 6
# a pod list not given again for an hour is dropped: its IPs may belong to other pods by then
HINT_TTL = 3600.0
# jobs of a requested round running at once (one after the other): a burst would time its own
# queueing (a busy node, the demo's farm of 50 agents on one loop) as DNS latency (F14)
ROUND_PARALLEL = 1
TRANSITION_QUIET = 60.0  # s: at most one "ok -> timeout" log line per key per minute


def agent_version() -> str:
    global _VERSION
    if _VERSION is None:
        try:
            _VERSION = version("aksnet-top")
        except Exception:  # noqa: BLE001 - running from a source tree
            _VERSION = "0+unknown"
    return _VERSION


_VERSION: str | None = None


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """Everything one agent probes, and how. Build it with :func:`settings_for` (which
    plans resolvers and targets the way the app does); tests may fill it directly."""

    node: str
    resolvers: tuple[Resolver, ...] = ()  # `target` set: the lab's loopback stand-in
    names: tuple[str, ...] = DEFAULT_NAMES
    qtype: str = "A"
    dns_interval: float = DEFAULT_INTERVAL
    dns_timeout: float = DEFAULT_TIMEOUT
    targets: tuple[Target, ...] = ()
    egress_interval: float = DEFAULT_INTERVAL
    egress_timeout: float = DEFAULT_TIMEOUT
    egress_dns_timeout: float = DEFAULT_DNS_TIMEOUT
    mode: str = "auto"  # auto | connect | syn
    egress_dns: tuple[str, int] | None = None  # None: the pod's resolv.conf
    dial_map: Mapping[str, int] = field(default_factory=dict)  # the lab's DNAT
    # the lab's: resolver key or production address -> (host, port) dialled; applied to the
    # CoreDNS pods the reader hands over (the planned resolvers have theirs already)
    dns_overrides: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    confine: bool = False  # the lab: resolve to loopback only, never use resolv.conf
    # the cluster's HTTP proxy as AKS injects it into pods (HTTPS_PROXY/NO_PROXY): egress
    # targets the no-proxy list does not cover are checked with CONNECT through it
    proxy: ProxySettings | None = None
    echo_url: str = ""  # agents.echo_url: GET it every echo_interval s, keep the IP it saw ("" = off)
    echo_interval: float = 60.0
    feed_size: int = DEFAULT_FEED
    jitter: float = 0.1
    concurrency: int = 32  # jobs running at once
    notes: tuple[str, ...] = ()  # what the agent decided by itself, logged once at start

    def __post_init__(self) -> None:
        if not self.node:
            raise ValueError("the agent needs its node name (--node, or NODE_NAME from the downward API)")
        for what, v in (
            ("DNS interval", self.dns_interval),
            ("DNS timeout", self.dns_timeout),
            ("egress interval", self.egress_interval),
            ("egress timeout", self.egress_timeout),
            ("egress DNS timeout", self.egress_dns_timeout),
        ):
            if not v > 0 or v != v or v == float("inf"):
                raise ValueError(f"{what} must be a number of seconds > 0, got {v!r}")
        if self.mode not in ("auto", "connect", "syn"):
            raise ValueError(f"egress mode {self.mode!r}: choose auto, connect or syn")
        if not 1 <= self.feed_size <= 1_000_000:
            raise ValueError(f"results kept must be 1..1000000, got {self.feed_size}")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.echo_url:
            check_echo_url(self.echo_url)  # ValueError in words
            if not self.echo_interval > 0:
                raise ValueError(f"echo interval must be > 0 s, got {self.echo_interval!r}")
        if self.proxy is not None and self.proxy.enabled:
            for url in (self.proxy.http_proxy, self.proxy.https_proxy):
                if url:
                    _, host, _ = parse_proxy(url)  # ValueError in words
                    if self.confine and _literal_beyond_loopback(host):
                        raise ValueError(f"the lab dials loopback only: proxy {host} is not (give it a name)")

    @property
    def vantage(self) -> str:
        return node_vantage(self.node)


def _literal_beyond_loopback(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tiny_topology(
    node: str, kube_dns: str | None, nodelocal: bool, localdns: bool, nodelocal_ip: str | None = None
) -> Topology:
    """What resolvers_for needs to know about the cluster, as far as one node can tell."""
    info = NodeInfo(
        name=node,
        internal_ip="",
        pod_cidrs=(),
        pool="",
        ready=None,
        ready_reason="",
        cordoned=False,
        network_unavailable=None,
        network_reason="",
        kubelet_version="",
        zone="",
        provider_id="",
        vmss="",
        instance_id="",
        created=0.0,
        localdns=localdns,
    )
    return Topology(
        cluster="",
        plugin=NetworkPlugin.UNKNOWN,
        dataplane="",
        pod_cidrs=(),
        dns_service_ip=kube_dns or "",
        nodes=(info,),
        pools=(),
        coredns=(),
        # NodeLocal's address is its pod's -localip: given to the agent, it stands in for the pod
        nodelocal={node: PodState("", "", node, "", "Running", True, local_ip=nodelocal_ip)} if nodelocal_ip else {},
        nodelocal_enabled=nodelocal,
    )


def node_resolvers(
    node: str,
    *,
    kube_dns: str | None = None,
    nodelocal: bool = False,
    nodelocal_ip: str | None = None,
    localdns: bool = False,
    custom: Sequence[str] = (),
    overrides: Mapping[str, tuple[str, int]] | None = None,
    names: Sequence[str] = DEFAULT_NAMES,
    confine: bool = False,
) -> tuple[Resolver, ...]:
    """The resolvers the app plans for ``node_vantage(node)``, minus CoreDNS pods.
    `overrides` (key or production address -> dialled (host, port)) and `confine` (keep
    only overridden resolvers) are the lab's, as in probes.dns.service.Vantage."""
    if kube_dns:
        try:
            kube_dns = str(ipaddress.ip_address(kube_dns))
        except ValueError:
            raise ValueError(f"kube-dns address {kube_dns!r} is not an IP address") from None
    if nodelocal_ip:
        try:
            nodelocal_ip = str(ipaddress.ip_address(nodelocal_ip))
        except ValueError:
            raise ValueError(f"NodeLocal DNS address {nodelocal_ip!r} is not an IP address") from None
    topo = _tiny_topology(node, kube_dns, nodelocal, localdns, nodelocal_ip)
    ds = DnsSettings(names=tuple(names), resolvers=tuple(custom), overrides=dict(overrides or {}))
    vantage = node_vantage(node)
    plan = dns_plan(topo, ds, [Vantage(vantage, node, {}, confine=confine)], 1)
    for vp in plan.vantages:
        if vp.vantage.name == vantage:
            return vp.resolvers
    return ()  # pragma: no cover - build_plan always plans every vantage given


def node_targets(
    node: str,
    *,
    apiserver: str | None = None,
    extra: Sequence[str | Target] = (),
    aks_defaults: bool = True,
    egress_dns: tuple[str, int] | None = None,
    confine: bool = False,
) -> tuple[Target, ...]:
    """The targets the app's EgressService plans for ``node_vantage(node)``: AKS's
    required endpoints, the API server (``host:port`` or a URL), then `extra`. Raises
    ValueError naming a bad entry."""
    if apiserver:
        apiserver_target(apiserver)  # a bad URL is the user's to fix: say so, don't drop it
    texts = tuple(t.text if isinstance(t, Target) else parse_target(t, source="cli").text for t in extra)
    es = EgressSettings(targets=texts, aks_defaults=aks_defaults, apiserver=bool(apiserver))
    vantage = EgressVantage(node_vantage(node), node, egress_dns, {}, confine=confine)
    plan = egress_plan(es, [vantage], apiserver or "", 1)
    for vp in plan.vantages:
        if vp.vantage.name == vantage.name:
            return vp.targets
    return ()  # pragma: no cover


def settings_for(
    node: str,
    *,
    kube_dns: str | None = None,
    nodelocal: bool = False,
    nodelocal_ip: str | None = None,
    localdns: bool = False,
    custom: Sequence[str] = (),
    dns_overrides: Mapping[str, tuple[str, int]] | None = None,
    names: Sequence[str] = DEFAULT_NAMES,
    apiserver: str | None = None,
    targets: Sequence[str | Target] = (),
    aks_defaults: bool = True,
    egress_dns: tuple[str, int] | None = None,
    dial_map: Mapping[str, int] | None = None,
    confine: bool = False,
    **options: Any,
) -> AgentSettings:
    """Settings for the agent on `node`, planned like the app plans that node's vantage.
    `options` are the other AgentSettings fields (intervals, timeouts, mode, feed_size…).
    Raises ValueError in the user's words for a bad name, address or target."""
    ns = validate_names(names)
    resolvers = node_resolvers(
        node,
        kube_dns=kube_dns,
        nodelocal=nodelocal,
        nodelocal_ip=nodelocal_ip,
        localdns=localdns,
        custom=custom,
        overrides=dns_overrides,
        names=ns,
        confine=confine,
    )
    ts = node_targets(
        node, apiserver=apiserver, extra=targets, aks_defaults=aks_defaults, egress_dns=egress_dns, confine=confine
    )
    return AgentSettings(
        node=node,
        resolvers=resolvers,
        names=ns,
        targets=ts,
        egress_dns=egress_dns,
        dial_map=dict(dial_map or {}),
        dns_overrides=dict(dns_overrides or {}),
        confine=confine,
        **options,
    )


def _egress_resolve(s: AgentSettings) -> Resolve | None:
    """How egress names resolve: exactly as the app's vantages do it."""
    return vantage_resolve(s.egress_dns, s.confine, s.egress_dns_timeout)


class AgentError(NamedTuple):
    timestamp: float
    message: str


Result = DnsResult | EgressResult


class Agent:
    """Probes one node's DNS path and egress on the running loop; keeps a bounded feed.

    Use from one event loop: ``await start()``, read with :meth:`results_since`, then
    ``await stop()``. ``record`` is the scheduler's sink (tests feed it directly)."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        probe_options: Mapping[str, Any] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.version = agent_version()
        self._probe_options = dict(probe_options or {})  # e.g. raw_socket (tests)
        self._wall = wall
        self.started = wall()
        self.seq = 0
        self._feed: deque[tuple[int, Result]] = deque(maxlen=settings.feed_size)
        self._raw: dict[Hashable, tuple[int, str]] = {}  # key -> newest non-empty raw
        self.dns_counts: dict[tuple[str, str, str], int] = {}  # (resolver, name, outcome)
        self.addresses: dict[str, str] = {r.key: r.address for r in settings.resolvers}
        self.egress_counts: dict[tuple[str, str], int] = {}  # (target, outcome)
        self._dns_lat: dict[tuple[str, str], deque[float]] = {}
        self._egress_lat: dict[str, deque[float]] = {}
        self.errors: deque[AgentError] = deque(maxlen=MAX_ERRORS)
        self.last_error = ""
        self.error_count = 0
        self._good: dict[Hashable, bool] = {}
        self._quiet: dict[Hashable, tuple[float, int]] = {}  # key -> (last log, changes not logged)
        self._scheduler: Scheduler | None = None
        self._egress: EgressProbe | None = None
        self._dns: DnsProbe | None = None
        self._mode_said = False
        self.pods: tuple[Resolver, ...] = ()  # the CoreDNS pods the reader handed over
        self._pods_at = 0.0  # monotonic time the list was last given
        self._expiry: asyncio.TimerHandle | None = None
        self._retired: dict[str, Resolver] = {}  # pods no longer probed whose results may still be held
        self.echo_ip = ""  # the address the echo endpoint saw last ("" = none yet, or off)
        self.echo_at = 0.0  # wall time of that answer (or of the last failure)
        self.echo_error = ""
        self._echo_task: asyncio.Task[None] | None = None
        self._rounds: asyncio.Task[None] | None = None  # the requested rounds running now
        self._rounds_at = -float("inf")  # monotonic time the last requested rounds were granted
        self.rounds_granted = 0  # requests for rounds that started rounds (tests, /metrics)
        self.recorded: dict[Hashable, int] = {}  # results recorded per job key (rounds top these up)

    # --- lifecycle -----------------------------------------------------------------------
    @property
    def node(self) -> str:
        return self.settings.node

    @property
    def vantage(self) -> str:
        return self.settings.vantage

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    async def start(self) -> None:
        """Start every job on the running loop; returns at once (results come later)."""
        if self._scheduler is not None:
            return
        s = self.settings
        self.started = self._wall()
        self._dns = DnsProbe(s.vantage, timeout=s.dns_timeout)
        self._egress = EgressProbe(
            s.vantage,
            timeout=s.egress_timeout,
            dns_timeout=s.egress_dns_timeout,
            mode=s.mode,
            resolve=_egress_resolve(s),
            dial_map=s.dial_map,
            concurrency=s.concurrency,
            proxy=s.proxy,
            **self._probe_options,
        )
        sched = Scheduler(self.record, concurrency=s.concurrency, wall=self._wall)
        sched.set_jobs(self._jobs())
        self._scheduler = sched
        await sched.start()
        if s.echo_url:
            self._echo_task = asyncio.get_running_loop().create_task(self._echo_loop(), name="agent-echo")

    async def _echo_loop(self) -> None:
        s = self.settings
        while True:
            ip, err = await fetch_echo(s.echo_url, max(s.egress_timeout, 2.0))
            self.echo_at = self._wall()
            if ip:
                if ip != self.echo_ip:
                    log.info("%s: the echo endpoint sees this node as %s", self.node, ip)
                self.echo_ip, self.echo_error = ip, ""
            else:
                self.echo_error = err
            await asyncio.sleep(s.echo_interval)

    def _jobs(self) -> list[Any]:
        s = self.settings
        assert self._dns is not None and self._egress is not None
        jobs = dns_jobs(s.resolvers, s.names, probe=self._dns, rdtype=s.qtype, interval=s.dns_interval, jitter=s.jitter)
        if self.pods:
            jobs += dns_jobs(
                self.pods, s.names, probe=self._dns, rdtype=s.qtype, interval=self.pod_interval, jitter=s.jitter
            )
        jobs += egress_jobs(s.targets, self._egress, interval=s.egress_interval, jitter=s.jitter)
        return jobs

    # --- the CoreDNS pods ----------------------------------------------------------------
    @property
    def resolvers(self) -> tuple[Resolver, ...]:
        """Every resolver probed now: the planned ones, then the CoreDNS pods."""
        return self.settings.resolvers + self.pods

    @property
    def pod_interval(self) -> float:
        """Seconds between two queries of one (pod, name): the DNS interval, stretched so
        that all pods together cost at most POD_QUERIES queries per interval."""
        pairs = len(self.pods) * len(self.settings.names)
        return self.settings.dns_interval * max(1.0, pairs / POD_QUERIES)

    def resolver(self, key: str) -> Resolver | None:
        """A resolver by key, including pods probed earlier (their results may still be held)."""
        for r in self.resolvers:
            if r.key == key:
                return r
        return self._retired.get(key)

    def set_coredns(self, pods: Iterable[CorednsPod]) -> bool:
        """Probe these CoreDNS pods from now on (the reader's list; probes.agent.hint), in
        place of the last list. True when the set changed. In the lab (`confine`) a pod is
        probed only where an override maps it to a loopback responder."""
        s = self.settings
        planned = {r.key for r in s.resolvers}
        out: list[Resolver] = []
        for p in pods:
            r = with_override(Resolver(f"coredns/{p.name}", ResolverKind.COREDNS, p.ip, detail=p.node), s.dns_overrides)
            if r.key in planned or (s.confine and r.target is None):
                continue
            out.append(r)
        new = tuple(out)
        if new == self.pods:
            self._expire_later()
            return False
        for r in self.pods:
            self._retired[r.key] = r
        for r in new:
            self._retired.pop(r.key, None)
            self.addresses[r.key] = r.address
        self.pods = new
        if self._scheduler is not None:
            self._scheduler.set_jobs(self._jobs())
        self._expire_later()
        return True

    # --- rounds on request -------------------------------------------------------------
    def round_gap(self) -> float:
        """Seconds between two granted requests for rounds: the slowest job's interval."""
        s = self.settings
        return max(s.dns_interval, s.egress_interval, self.pod_interval if self.pods else 0.0)

    def short_of(self, rounds: int) -> list[Hashable]:
        """The jobs that have recorded fewer than `rounds` results."""
        sched = self._scheduler
        keys = sched.keys() if sched is not None else []
        return [k for k in keys if self.recorded.get(k, 0) < rounds]

    def probe_now(self, rounds: int) -> asyncio.Task[None] | None:
        """Bring every job to `rounds` results (at most MAX_ROUNDS): the jobs short of it
        run now, one round after the other. Returns the task to wait on: the rounds
        already running if any; None when no job is short, the last grant was less than
        :meth:`round_gap` ago (the cadence's results are as fresh), or the agent is not
        running. Call on the agent's loop."""
        sched = self._scheduler
        n = min(rounds, MAX_ROUNDS)
        if sched is None or n < 1:
            return None
        if self._rounds is not None and not self._rounds.done():
            return self._rounds
        now = time.monotonic()
        if not self.short_of(n) or now - self._rounds_at < self.round_gap():
            return None
        self._rounds_at = now
        self.rounds_granted += 1

        async def run() -> None:
            while self._scheduler is sched and (short := self.short_of(n)):  # stopped meanwhile: done
                before = {k: self.recorded.get(k, 0) for k in short}
                await sched.run_round(short, parallel=ROUND_PARALLEL)
                if all(self.recorded.get(k, 0) == before[k] for k in short):
                    return  # no job recorded anything (each failed inside): not again

        self._rounds = asyncio.get_running_loop().create_task(run(), name="agent-rounds")
        return self._rounds

    def _expire_later(self) -> None:
        """The list was given (again) now; one timer per agent drops it HINT_TTL s after the last time."""
        self._pods_at = time.monotonic()
        if self._expiry is not None or not self.pods:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # told outside a loop (tests): no expiry
            return
        self._expiry = loop.call_later(HINT_TTL, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        left = self._pods_at + HINT_TTL - time.monotonic()
        if left > 0:
            self._expiry = asyncio.get_running_loop().call_later(left, self._expire)
        elif self.pods:
            log.info("%s: no CoreDNS pod list for %.0f s: probing them stops", self.node, HINT_TTL)
            self.set_coredns(())

    async def stop(self, timeout: float = 2.0) -> bool:
        """Cancel every job and wait at most `timeout` s. False if a job hung (abandoned)."""
        sched, self._scheduler = self._scheduler, None
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        for task in (self._echo_task, self._rounds):
            if task is not None:
                task.cancel()
                try:
                    async with asyncio.timeout(timeout):
                        await task
                except (asyncio.CancelledError, TimeoutError):
                    pass
        self._echo_task = self._rounds = None
        ok = True
        if sched is not None:
            ok = await sched.stop(timeout)
        if self._egress is not None:
            await self._egress.close()
        return ok

    # --- reads ---------------------------------------------------------------------------
    def now(self) -> float:
        """Wall-clock time as the agent stamps it."""
        return self._wall()

    @property
    def oldest(self) -> int:
        """The oldest seq still held; seq + 1 when nothing is held."""
        return self._feed[0][0] if self._feed else self.seq + 1

    @property
    def held(self) -> int:
        return len(self._feed)

    @property
    def mode(self) -> EgressMode | None:
        """The egress mode in use (None until the first check decides, in auto mode)."""
        return self._egress.mode if self._egress is not None else None

    @property
    def fallback(self) -> str:
        return self._egress.fallback if self._egress is not None else ""

    @property
    def scheduler_stats(self) -> Any:
        return self._scheduler.stats if self._scheduler is not None else None

    def effective_since(self, since: int) -> int:
        """A cursor beyond the newest seq comes from an earlier run of this agent (it
        restarted and counts from 1 again): the reader gets everything held."""
        return 0 if since < 0 or since > self.seq else since

    def results_since(self, since: int) -> list[tuple[int, Result]]:
        """(seq, result) with seq > since, oldest first (``raw`` is left out: see
        :meth:`raw_since`). O(results returned)."""
        since = self.effective_since(since)
        feed = self._feed
        if not feed:
            return []
        start = since + 1 - feed[0][0]
        if start <= 0:
            return list(feed)
        return list(itertools.islice(feed, start, None))

    def raw_since(self, since: int) -> dict[int, str]:
        """seq -> raw answer text, for the newest non-empty raw of each key after `since`."""
        since = self.effective_since(since)
        return {seq: raw for seq, raw in self._raw.values() if seq > since}

    def dns_latencies(self) -> dict[tuple[str, str], list[float]]:
        return {k: list(v) for k, v in self._dns_lat.items()}

    def egress_latencies(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self._egress_lat.items()}

    # --- the sink ------------------------------------------------------------------------
    def record(self, key: Hashable, result: Any) -> None:
        """Take one result (the scheduler's sink): next seq, into the ring and counters."""
        if isinstance(result, DnsResult):
            ck = (result.resolver, result.qname, result.outcome.value)
            if result.resolver not in self.addresses:
                self.addresses[result.resolver] = result.address
            self.dns_counts[ck] = self.dns_counts.get(ck, 0) + 1
            if result.success:
                lk = (result.resolver, result.qname)
                w = self._dns_lat.get(lk)
                if w is None:
                    w = self._dns_lat[lk] = deque(maxlen=LATENCY_WINDOW)
                w.append(result.latency_ms)
            label = f"DNS {result.resolver} {result.qname}"
            outcome = result.outcome.value
        elif isinstance(result, EgressResult):
            ck2 = (result.target, result.outcome.value)
            self.egress_counts[ck2] = self.egress_counts.get(ck2, 0) + 1
            if result.success:
                w = self._egress_lat.get(result.target)
                if w is None:
                    w = self._egress_lat[result.target] = deque(maxlen=LATENCY_WINDOW)
                w.append(result.latency_ms)
            if not self._mode_said:
                self._mode_said = True
                log.info(
                    "%s: egress checks use %s mode%s",
                    self.node,
                    result.mode.value,
                    f" ({result.fallback})" if result.fallback else "",
                )
            label = f"egress {result.target}"
            outcome = result.outcome.value
        elif isinstance(result, JobFailure):
            self._error(f"{_key_text(key)}: {result.error}")
            return
        else:
            self._error(f"{_key_text(key)}: unexpected result {type(result).__name__}")
            return
        self.seq += 1
        self.recorded[key] = self.recorded.get(key, 0) + 1
        if result.raw:
            self._raw[key] = (self.seq, result.raw[:RAW_CAP])
            result = replace(result, raw="")
        self._feed.append((self.seq, result))
        self._transition(key, label, result.success, outcome, result.error)

    def _error(self, text: str) -> None:
        text = text[:300]
        self.error_count += 1
        self.last_error = text
        self.errors.append(AgentError(self._wall(), text))
        log.warning("%s: %s", self.node, text)

    def _transition(self, key: Hashable, label: str, good: bool, outcome: str, error: str) -> None:
        was = self._good.get(key)
        self._good[key] = good
        if was is None:
            if good:
                return
        elif was == good:
            return
        now = time.monotonic()
        last, hidden = self._quiet.get(key, (-TRANSITION_QUIET, 0))
        if now - last < TRANSITION_QUIET:
            self._quiet[key] = (last, hidden + 1)
            return
        self._quiet[key] = (now, 0)
        more = f" ({hidden} earlier changes not logged)" if hidden else ""
        if good:
            log.info("%s: %s recovered: %s%s", self.node, label, outcome, more)
        else:
            log.info("%s: %s failing: %s%s%s", self.node, label, outcome, f" ({error})" if error else "", more)


def _key_text(key: Hashable) -> str:
    if isinstance(key, tuple) and len(key) >= 2:
        return " ".join(str(k) for k in key[1:])
    return str(key)


async def start_all(agents: Iterable[Agent]) -> None:
    """Start many agents on the running loop."""
    for a in agents:
        await a.start()


async def stop_all(agents: Iterable[Agent], timeout: float = 2.0) -> None:
    """Stop many agents at once (each waits at most `timeout` s)."""
    await asyncio.gather(*(a.stop(timeout) for a in agents), return_exceptions=True)
