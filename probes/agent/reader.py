"""Reads the per-node agents through the API server's pod proxy, within one request budget.

The agents (``aksnet-top agent run``, a DaemonSet) probe DNS and egress from their node
and keep their recent results. This reader finds their pods by label, then reads one
agent at a time — the one read longest ago first — through
``/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/v1/results?since=N``, asking only for
results it has not seen, and replays them into the app's DNS and egress histories under
the vantage of the pod's node (taken from the pod's ``spec.nodeName``, never from what the
agent says). Every request — discovery included — first takes a slot from a pacer that
spaces requests 1/budget seconds apart, so the API server never sees more than `budget`
requests per second from us, however many agents there are or however they misbehave.

Each read also hands the agent the CoreDNS pods it should probe besides the kube-dns
ClusterIP (``&coredns=…``, :mod:`probes.agent.hint`; the agent has no API access to list
them), taken from the app's own watch of kube-system. An agent never read yet is read
once as soon as the pods are known, even while `check` holds the other reads back; with
``rounds`` set (`check`: its cycles) that read also asks the agent to probe every row that
many times at once and answers when they are in (:mod:`probes.agent.rounds`), so one
read per agent carries every row's cycles, the pods' included.

A goldpinger-style mesh costs O(n²) probes and n watchers; this costs n agents each
probing a fixed handful of targets, and `budget` proxy GETs per second in total.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import orjson

from probes.agent.hint import PARAM as HINT_PARAM
from probes.agent.hint import CorednsPod, choose, format_hint
from probes.agent.rounds import MAX_ROUNDS, ROUND_WAIT
from probes.agent.rounds import PARAM as ROUNDS_PARAM
from probes.engine.nudge import Nudges
from probes.kube import connect as kubeconnect
from probes.kube.connect import HttpError
from probes.kube.model import node_vantage

log = logging.getLogger(__name__)

AGENT_NAMESPACE = "aksnet-top"
AGENT_SELECTOR = "app.kubernetes.io/name=aksnet-top-agent"
AGENT_PORT = 9102


@dataclass(frozen=True, slots=True)
class ReaderSettings:
    enabled: bool = True
    namespace: str = AGENT_NAMESPACE
    selector: str = AGENT_SELECTOR
    port: int = AGENT_PORT
    budget: float = 5.0  # API requests per second, discovery and proxy reads together
    timeout: float = 3.0  # seconds one request may take
    discover_every: float = 30.0  # seconds between pod listings
    concurrency: int = 4  # requests in flight (a hanging agent holds one slot, not the loop)
    rounds: int = 0  # rounds of every probe each read asks the agent for first (check: its cycles)

    @staticmethod
    def from_config(agents: Any) -> ReaderSettings:
        # enough reads in flight to spend the budget while each waits on a slow agent
        # (a read through the proxy takes 0.1–0.5 s): 4 at 5/s, 10 at 20/s
        return ReaderSettings(
            enabled=agents.enabled,
            namespace=agents.namespace,
            selector=agents.selector,
            port=agents.port,
            budget=agents.budget,
            timeout=agents.timeout,
            concurrency=min(16, max(4, math.ceil(agents.budget / 2))),
        )


@dataclass(frozen=True, slots=True)
class AgentPod:
    name: str
    node: str
    ip: str
    ready: bool


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """What the app knows of one node's agent; views show `age` and `error`."""

    node: str
    pod: str
    ready: bool = True
    read_at: float | None = None  # monotonic time of the last good read
    agent_now: float | None = None  # the agent's wall clock at that read
    error: str = ""  # the last read's failure, "" when it worked
    results: int = 0  # results replayed so far
    missed: int = 0  # results the agent had dropped before we read them
    seq: int = 0
    started: float = 0.0  # the agent's start time: a change means it restarted
    resolvers: tuple[Any, ...] = ()  # probes.dns.resolvers.Resolver, as the agent probes them
    targets: tuple[str, ...] = ()
    mode: str = ""
    echo_ip: str = ""  # the public IP the node's echo check saw ("" = off or none yet)
    echo_error: str = ""

    def age(self, now: float | None = None) -> float | None:
        if self.read_at is None:
            return None
        return max(0.0, (time.monotonic() if now is None else now) - self.read_at)


class Pacer:
    """Spaces calls 1/rate seconds apart (no bursts), plus `margin`: requests reach the API
    server with some jitter (thread hand-off, connection reuse), and spaced exactly 1/rate
    apart, rate+1 of them span exactly one second, so any jitter would let the server
    count rate+1 in a second. 10 % keeps a 5/s budget at the server with 18 ms to spare."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic, margin: float = 0.1) -> None:
        self.gap = (1.0 + margin) / max(rate, 0.01)
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; return how long to wait for it."""
        with self._lock:
            now = self._clock()
            at = max(now, self._next)
            self._next = at + self.gap
            return at - now


class _Stopping(Exception):
    """The reader stopped while a request waited for its turn."""


class AgentReader:
    """Source: start() returns at once, stop(timeout) joins. Feeds two histories."""

    name = "agents"

    def __init__(
        self,
        kube: Any,
        settings: ReaderSettings | None = None,
        *,
        dns_history: Any = None,
        egress_history: Any = None,
        api_factory: Callable[[], Any] | None = None,
        coredns: Callable[[], Sequence[CorednsPod] | None] | None = None,
    ) -> None:
        self.kube = kube  # probes.config.KubeConfig (kubeconfig, context)
        self.settings = settings or ReaderSettings()
        self.dns_history = dns_history
        self.egress_history = egress_history
        self._api_factory = api_factory
        # the CoreDNS pods now (None: not known yet, the pods not listed); None: never hand any over
        self._coredns = coredns
        self._api: Any = None
        self.pacer = Pacer(self.settings.budget)
        self._lock = threading.Lock()
        self._pods: dict[str, AgentPod] = {}  # by pod name
        self._status: dict[str, AgentStatus] = {}  # by node
        self._attempt: dict[str, float] = {}  # pod -> monotonic time of the last read started
        self._inflight: set[str] = set()
        self._done: set[str] = set()  # pods read at least once (answer or failure)
        self._slots = threading.Semaphore(self.settings.concurrency)
        self._stop = threading.Event()
        self._reads_from = 0.0
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.version = 0  # bumps when agents come or go, or change what they probe
        self.nudges = Nudges()  # fired when `version` bumps
        self.discovered = False  # one listing done (the views can tell "no agents" from "not yet")
        self.error = ""  # discovery's failure, shown by views
        self.requests = 0  # API requests made (discovery + reads)
        self.sent: deque[float] = deque(maxlen=4096)  # monotonic send times (benchmarks, tests)

    # --- reads (views, services) ---------------------------------------------------------
    def statuses(self) -> dict[str, AgentStatus]:
        with self._lock:
            return dict(self._status)

    def period(self) -> float:
        """Seconds one rolling refresh of every agent takes at the budget."""
        with self._lock:
            n = len(self._pods)
        return n / max(self.settings.budget, 0.01)

    def stale_after(self) -> float:
        """An agent read longer ago than this is stale (it missed at least two turns)."""
        return max(30.0, 2.0 * self.period() + 10.0)

    def read_once(self) -> bool:
        """Every discovered agent that can be read has been tried at least once (check
        waits for this; pods not ready or without an IP are not waited for)."""
        with self._lock:
            return self.discovered and all(p.name in self._done for p in self._pods.values() if p.ready and p.ip)

    # --- lifecycle -----------------------------------------------------------------------
    def start(self, reads_from: float = 0.0) -> None:
        """Start; the agents are listed at once, read from `reads_from` (monotonic) on:
        `check` holds the reads until the agents have probed its cycles, so that one
        round of reads sees them all (reading earlier only means reading again)."""
        self._reads_from = reads_from
        if self._thread is not None or not self.settings.enabled:
            return
        self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="agent-read")
        self._thread = threading.Thread(target=self._run, name="agent-reader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._slots.release()  # the loop may be waiting for a slot: it wakes and sees the stop
        t, self._thread = self._thread, None
        if t is not None:
            t.join(timeout)
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # --- the loop --------------------------------------------------------------------------
    def _wait_slot(self) -> bool:
        """Wait for this request's turn; False when stopping. Called right before each
        request is sent (not when it is queued), so the spacing is what the server sees."""
        delay = self.pacer.reserve()
        return not self._stop.wait(delay) if delay > 0 else not self._stop.is_set()

    def _run(self) -> None:
        next_listing = 0.0
        empty_wait = 2.0  # no agent pods yet: look again soon (2, 4, 8 … s), then every discover_every
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_listing:
                self._discover()
                with self._lock:
                    found = bool(self._pods)
                wait = self.settings.discover_every
                if not found:
                    wait, empty_wait = min(wait, empty_wait), empty_wait * 2
                next_listing = time.monotonic() + wait
                continue
            if now < self._reads_from:
                # held back; but an agent never read gets the CoreDNS pods now, so its
                # per-pod probes run meanwhile (probes.agent.hint)
                pod = self._next_pod(unread=True) if self._pods_now() is not None else None
                if pod is None:
                    self._stop.wait(min(0.2, self._reads_from - now, max(0.01, next_listing - now)))
                    continue
            else:
                pod = self._next_pod()
            if pod is None:
                self._stop.wait(min(1.0, max(0.05, next_listing - now)))
                continue
            # a slot frees when a read ends (the budget spaces them 0.2 s apart); stop() frees one too
            while not self._slots.acquire(timeout=2.0):
                if self._stop.is_set():
                    return
            if self._stop.is_set():
                return
            with self._lock:
                self._inflight.add(pod.name)
                self._attempt[pod.name] = time.monotonic()
            pool = self._pool
            if pool is None:
                self._slots.release()
                return
            try:
                pool.submit(self._read, pod)
            except RuntimeError:  # shut down under us
                self._slots.release()
                return

    def _pods_now(self) -> Sequence[CorednsPod] | None:
        if self._coredns is None:
            return None
        try:
            return self._coredns()
        except Exception:  # noqa: BLE001 - a hint is a bonus: without it the agent probes the rest
            log.debug("CoreDNS pods for the agents not available", exc_info=True)
            return None

    def _next_pod(self, unread: bool = False) -> AgentPod | None:
        """The ready agent read longest ago (never-read first), not already in flight;
        `unread`: only one never read."""
        with self._lock:
            best: AgentPod | None = None
            best_t = float("inf")
            for p in self._pods.values():
                if not p.ready or not p.ip or p.name in self._inflight:
                    continue
                if unread and p.name in self._attempt:
                    continue
                t = self._attempt.get(p.name, -1.0)
                if t < best_t:
                    best, best_t = p, t
            return best

    def _client(self) -> Any:
        if self._api is None:
            if self._api_factory is not None:
                self._api = self._api_factory()
            else:
                self._api, _ = kubeconnect.load(self.kube.kubeconfig, self.kube.context)
            # no silent retries: a failed read is that agent's status, and the next read
            # comes in its turn within the budget (urllib3 would retry 3 times, unpaced)
            if hasattr(self._api, "retries"):  # a probes.kube.client.KubeClient
                self._api.retries = False
        return self._api

    def _get(self, path: str, query: list[tuple[str, str]], hold: float = 0.0) -> bytes:
        """GET within the budget; `hold`: seconds the agent may keep the answer back (rounds)."""
        api = self._client()
        if not self._wait_slot():
            raise _Stopping()
        self.requests += 1
        self.sent.append(time.monotonic())
        resp = kubeconnect.get(api, path, query, timeout=self.settings.timeout + hold)
        try:
            return resp.data
        finally:
            resp.release_conn()

    def _discover(self) -> None:
        s = self.settings
        try:
            body = self._get(f"/api/v1/namespaces/{s.namespace}/pods", [("labelSelector", s.selector)])
            pods = parse_pods(body)
            self.error = ""
        except _Stopping:
            return
        except Exception as e:  # noqa: BLE001 - shown in the views; the app goes on without agents
            self.error = describe_error(e, f"cannot list the agent pods in {s.namespace}")
            log.debug("agent discovery failed", exc_info=True)
            self.discovered = True
            return
        with self._lock:
            before = {(p.name, p.node) for p in self._pods.values()}
            self._pods = {p.name: p for p in pods}
            nodes = {p.node for p in pods}
            for node in list(self._status):
                if node not in nodes:
                    del self._status[node]
            for p in pods:
                st = self._status.get(p.node)
                if st is None or st.pod != p.name:
                    st = AgentStatus(p.node, p.name, p.ready)
                elif st.ready != p.ready:
                    st = replace(st, ready=p.ready, error="" if p.ready else "agent pod not ready")
                if not p.ready and not st.error:
                    st = replace(st, error="agent pod not ready")
                self._status[p.node] = st
            for name in list(self._attempt):
                if name not in self._pods:
                    del self._attempt[name]
            self._done &= set(self._pods)
            if {(p.name, p.node) for p in pods} != before:
                self.version += 1
                self.nudges.fire()
            self.discovered = True

    def _read(self, pod: AgentPod) -> None:
        # lazy: the wire format pulls in the probes (asyncio, dnspython, msgspec): loaded in the reader's thread
        from probes.agent.wire import AgentDataError, decode

        s = self.settings
        try:
            with self._lock:
                st = self._status.get(pod.node) or AgentStatus(pod.node, pod.name)
            since = st.seq if st.pod == pod.name else 0
            path = f"/api/v1/namespaces/{s.namespace}/pods/{pod.name}:{s.port}/proxy/v1/results"
            query = [("since", str(since))]
            pods = self._pods_now()
            told: dict[str, str] = {}
            if pods is not None:
                mine = choose(pods, pod.node)
                query.append((HINT_PARAM, format_hint(mine)))
                told = {f"coredns/{p.name}": p.node for p in mine}
            hold = 0.0
            if s.rounds > 0:
                query.append((ROUNDS_PARAM, str(min(s.rounds, MAX_ROUNDS))))
                hold = ROUND_WAIT
            asked = time.monotonic()
            try:
                body = self._get(path, query, hold)
                report = decode(body, node_vantage(pod.node))
            except _Stopping:
                return
            except AgentDataError as e:
                self._fail(pod, str(e))
                return
            except Exception as e:  # noqa: BLE001 - one agent's failure is that node's status
                self._fail(pod, describe_error(e, "agent not reachable through the API server"))
                log.debug("agent read failed: %s", pod.name, exc_info=True)
                return
            # the agent answers only results after `since`; after a restart it echoes
            # since=0 and sends everything it holds (all new to us)
            since = report.since
            fresh_dns, fresh_egress = report.dns, report.egress
            log.debug(
                "agent read %s: %d results in %.3f s (since %d)",
                pod.name,
                len(fresh_dns) + len(fresh_egress),
                time.monotonic() - asked,
                since,
            )
            if self.dns_history is not None and fresh_dns:
                _replay(self.dns_history, fresh_dns)
            if self.egress_history is not None and fresh_egress:
                _replay(self.egress_history, fresh_egress)
            missed = max(0, report.oldest - since - 1) if since and report.oldest else 0
            with self._lock:
                cur = self._status.get(pod.node)
                if cur is None or cur.pod != pod.name:
                    return  # the pod left while we read it
                new = replace(
                    cur,
                    read_at=time.monotonic(),
                    agent_now=report.now,
                    error="",
                    results=cur.results + len(fresh_dns) + len(fresh_egress),
                    missed=cur.missed + missed,
                    seq=report.seq,
                    started=report.started,
                    resolvers=tuple(_with_node(r, told) for r in report.resolvers),
                    targets=tuple(report.targets),
                    mode=report.mode.value if report.mode is not None else "",
                    echo_ip=report.echo_ip or cur.echo_ip,
                    echo_error=report.echo_error,
                )
                if (new.resolvers, new.targets) != (cur.resolvers, cur.targets):
                    self.version += 1
                    self.nudges.fire()
                self._status[pod.node] = new
        finally:
            with self._lock:
                self._inflight.discard(pod.name)
                if pod.name in self._pods:
                    self._done.add(pod.name)
            self._slots.release()

    def _fail(self, pod: AgentPod, message: str) -> None:
        with self._lock:
            cur = self._status.get(pod.node)
            if cur is not None and cur.pod == pod.name:
                self._status[pod.node] = replace(cur, error=message[:300])


def _with_node(r: Any, told: dict[str, str]) -> Any:
    """A CoreDNS pod's resolver with its node (the pane's detail), as the app told the agent."""
    node = told.get(r.key)
    return replace(r, detail=node) if node and not r.detail else r


def _replay(history: Any, results: Iterable[Any]) -> None:
    """Into the history; the results were decoded for it alone, so it may trim them in place."""
    add_many = getattr(history, "add_many", None)
    if add_many is not None:
        add_many(((r.key, r) for r in results), owned=True)
    else:
        for r in results:
            history.add(r.key, r)


def _part(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def parse_pods(body: bytes) -> list[AgentPod]:
    """A PodList → the agents on nodes (pods being deleted or not scheduled are left out)."""
    doc = orjson.loads(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ValueError("the pod list is not a PodList")
    out: list[AgentPod] = []
    for item in doc["items"]:
        if not isinstance(item, dict):
            continue
        meta, spec, status = (_part(item, k) for k in ("metadata", "spec", "status"))
        name, node = meta.get("name"), spec.get("nodeName")
        if not isinstance(name, str) or not isinstance(node, str) or not node or meta.get("deletionTimestamp"):
            continue
        ip = status.get("podIP") if isinstance(status.get("podIP"), str) else ""
        conds = c if isinstance(c := status.get("conditions"), list) else []
        ready = status.get("phase") == "Running" and any(
            isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True" for c in conds
        )
        out.append(AgentPod(name, node, ip or "", ready))
    return out


def describe_error(e: BaseException, what: str) -> str:
    """One line for the views: what failed and the API server's words."""
    if isinstance(e, HttpError):
        hint = {
            400: " (the agent pod has no usable IP yet)",
            401: " (credentials rejected)",
            403: " (you may not read pods/proxy in that namespace)",
            404: " (no such pod or namespace)",
            503: " (the API server could not reach the agent)",
        }
        return f"{what}: {e.status} {e.message}{hint.get(e.status, '')}"[:300]
    name = type(e).__name__
    if "Timeout" in name or "timed out" in str(e):
        return f"{what}: no answer in time"
    if isinstance(e, (orjson.JSONDecodeError, ValueError)):
        return f"{what}: the answer was not a pod list: {e}"[:300]
    return f"{what}: {name}: {e}"[:300]
