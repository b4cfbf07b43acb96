"""The HTTPS service: probes every ingress host's TLS endpoint from this host, forever.

A Source (``start()``/``stop(timeout)``) built like the egress service on
:class:`probes.engine.following.FollowingService`: the scheduler runs on a background loop,
the jobs are re-planned whenever the hosts change, unchanged keys keep their cadence, and
each result goes into a bounded :class:`~probes.engine.history.History` keyed by
``TlsKey(vantage, host, address, port)``. Views read ``history`` and :meth:`HttpsService.plan`.

What to probe comes from a callable returning ``(host, address, port)`` tuples (the
ingress model builds them from the frame: each Ingress host with its controller's load
balancer address). It is called on the service's loop thread when the store's version
moves and at least every ``refresh`` seconds; it must be quick. Rows it returns that make
no sense (no host, an address that is not an IP, a port out of range) are left out and
counted in the plan, never raised.

Bounds, like the egress probes: one job per host every ``interval`` seconds (± jitter), at
most ``concurrency`` handshakes at once, each within ``timeout`` (+ ``http_timeout`` with
HEAD /), a per-job deadline above that, ``history`` results kept per row.

The lab: ``dial_map`` sends an address (or address:port) elsewhere (a DNAT in front of
the loopback endpoints) and ``confine`` leaves out any row that would dial beyond
loopback, so a demo never sends a packet off the machine.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from probes.engine.following import FollowingService
from probes.engine.health import Health
from probes.engine.history import History, judge
from probes.engine.scheduler import Job
from probes.ingress.tlsprobe import (
    DEFAULT_CONCURRENCY,
    DEFAULT_HTTP_TIMEOUT,
    DEFAULT_TIMEOUT,
    TlsProbe,
    overrun_result,
)
from probes.ingress.tlsresult import EXPIRING_DAYS, TlsKey, TlsOutcome
from probes.kube.model import LOCAL_VANTAGE

DEFAULT_INTERVAL = 30.0  # certificates change slowly; a refused or hung endpoint shows within one interval
DEFAULT_HISTORY = 60  # results kept per row: 30 minutes at the default interval

HostsFn = Callable[[], Iterable[tuple[str, str, int]]]


@dataclass(frozen=True, slots=True)
class HttpsSettings:
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    http: bool = False  # HEAD / after the handshake (off: the probe never sends a request)
    http_timeout: float = DEFAULT_HTTP_TIMEOUT
    ca_bundle: str | None = None  # PEM file of CAs to trust instead of the system's
    expiring_days: float = EXPIRING_DAYS
    concurrency: int = DEFAULT_CONCURRENCY
    jitter: float = 0.1
    history: int = DEFAULT_HISTORY

    @staticmethod
    def from_config(https: object, ca_bundle: str | None = None) -> HttpsSettings:
        """From a validated probes.config.HttpsConfig; `ca_bundle` (the demo's lab root)
        replaces the configured one."""
        h: Any = https
        return HttpsSettings(
            interval=h.interval,
            timeout=h.timeout,
            http=h.http,
            http_timeout=h.http_timeout,
            ca_bundle=ca_bundle or h.ca_bundle or None,
            concurrency=h.concurrency,
        )


@dataclass(frozen=True, slots=True)
class TlsTarget:
    host: str
    address: str
    port: int
    dial: tuple[str, int] | None = None  # where the lab's dial map sends it

    @property
    def text(self) -> str:
        a = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.host} @ {a}:{self.port}"


@dataclass(frozen=True, slots=True)
class HttpsVantage:
    name: str = LOCAL_VANTAGE
    agent: bool = False  # probed by the agent on that node (none today: the jumpbox only)


@dataclass(frozen=True, slots=True)
class HttpsVantagePlan:
    vantage: HttpsVantage
    targets: tuple[TlsTarget, ...]


@dataclass(frozen=True, slots=True)
class HttpsPlan:
    """What is probed now. Immutable; a new one replaces it on every change."""

    version: int
    vantages: tuple[HttpsVantagePlan, ...]
    interval: float = DEFAULT_INTERVAL
    left_out: tuple[str, ...] = ()  # rows not probed, each with why (first few)
    left_out_count: int = 0
    error: str = ""  # why the plan could not be (re)built, shown by views

    @property
    def targets(self) -> tuple[TlsTarget, ...]:
        return tuple(t for vp in self.vantages for t in vp.targets)

    @property
    def jobs(self) -> int:
        return sum(len(vp.targets) for vp in self.vantages if not vp.vantage.agent)


EMPTY_PLAN = HttpsPlan(0, ())
_SHOWN_LEFT_OUT = 5


def _loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def plan_targets(
    rows: Iterable[Any], dial_map: Mapping[str, tuple[str, int]] | None = None, confine: bool = False
) -> tuple[list[TlsTarget], list[str]]:
    """Pure: the targets from (host, address, port) rows, in their order, duplicates
    dropped; and the rows left out, each with why. `dial_map`: 'addr:port' or 'addr' ->
    (address, port) actually dialled; `confine`: only loopback is ever dialled."""
    out: list[TlsTarget] = []
    left: list[str] = []
    seen: set[tuple[str, str, int]] = set()
    for row in rows:
        try:
            host, addr, port = row
        except (TypeError, ValueError):
            left.append(f"{row!r:.60}: not a (host, address, port) row")
            continue
        if not isinstance(host, str) or not host.strip() or len(host) > 253 or any(c in host for c in " /\r\n\t"):
            left.append(f"{host!r:.60}: not a host name")
            continue
        if "*" in host:
            left.append(f"{host}: a wildcard host (probe a concrete name under it)")
            continue
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            left.append(f"{host}: address {addr!r:.40} is not an IP address")
            continue
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            left.append(f"{host}: port {port!r:.20} out of range")
            continue
        a = str(ip)
        key = (host.strip().lower().rstrip("."), a, port)
        if key in seen:
            continue
        seen.add(key)
        dial = None
        if dial_map:
            hp = f"[{a}]:{port}" if ":" in a else f"{a}:{port}"
            dial = dial_map.get(hp) or dial_map.get(a)
        if confine and not _loopback(dial[0] if dial is not None else a):
            left.append(f"{host}: {a} is beyond loopback (the lab dials loopback only)")
            continue
        out.append(TlsTarget(key[0], a, port, dial))
    return out, left


class _Follow:
    """What the following loop polls: the store's version, and a tick every `refresh` s
    (the hosts may change with what the store does not hold, e.g. DNS answers); the
    store's nudges wake the loop at once."""

    def __init__(self, store: object, refresh: float) -> None:
        self.store = store
        self.refresh = max(refresh, 0.1)
        self.nudges = getattr(store, "nudges", None)

    @property
    def version(self) -> int:
        return hash((getattr(self.store, "version", 0), int(time.monotonic() // self.refresh)))


class HttpsService(FollowingService):
    """Source for the app: start() returns at once; stop(timeout) joins the loop thread."""

    name = "https"
    what = "HTTPS probes"

    def __init__(
        self,
        hosts: HostsFn,
        settings: HttpsSettings | None = None,
        *,
        store: object = None,
        history: History | None = None,
        poll: float = 0.5,
        refresh: float = 5.0,
        dial_map: Mapping[str, tuple[str, int]] | None = None,
        confine: bool = False,
        now: Callable[[], float] | None = None,
    ) -> None:
        s = settings or HttpsSettings()
        super().__init__(_Follow(store, refresh), EMPTY_PLAN, history=history or History(maxlen=s.history), poll=poll)
        self.settings = s
        self.hosts = hosts
        self.source_store = store
        self.dial_map = dict(dial_map or {})
        self.confine = confine
        self._now = now
        self._probe: TlsProbe | None = None

    def plan(self) -> HttpsPlan:
        plan: HttpsPlan = super().plan()
        return plan

    def health(self, key: TlsKey) -> Health:
        """A row's health, judged once (probes.engine.history.judge)."""
        return judge(self.history.stats(key), TlsOutcome)

    def _concurrency_now(self) -> int:
        return max(1, self.settings.concurrency)

    def _with_error(self, p: HttpsPlan, error: str) -> HttpsPlan:
        return HttpsPlan(p.version, p.vantages, p.interval, p.left_out, p.left_out_count, error)

    def _make_probe(self) -> TlsProbe:
        s = self.settings
        opts: dict[str, Any] = {"now": self._now} if self._now is not None else {}
        return TlsProbe(
            LOCAL_VANTAGE,
            timeout=s.timeout,
            ca_bundle=s.ca_bundle,
            expiring_days=s.expiring_days,
            http=s.http,
            http_timeout=s.http_timeout,
            concurrency=s.concurrency,
            **opts,
        )

    def _replan(self) -> None:
        old = self.plan()
        s = self.settings
        if self._probe is None:
            try:
                self._probe = self._make_probe()
            except ValueError as e:  # a CA bundle that cannot be read: said, nothing probed
                plan = HttpsPlan(old.version + 1, (), s.interval, error=f"HTTPS probes: {e}"[:300])
                if plan.error != old.error:
                    self._commit(plan, [])
                return
        targets, left = plan_targets(self.hosts(), self.dial_map, self.confine)
        vp = HttpsVantagePlan(HttpsVantage(LOCAL_VANTAGE), tuple(targets))
        plan = HttpsPlan(old.version + 1, (vp,), s.interval, tuple(left[:_SHOWN_LEFT_OUT]), len(left))
        if (plan.vantages, plan.left_out, plan.left_out_count) == (
            old.vantages,
            old.left_out,
            old.left_out_count,
        ) and not old.error:
            return
        self._commit(plan, https_jobs(targets, self._probe, interval=s.interval, jitter=s.jitter))


def https_jobs(
    targets: Iterable[TlsTarget], probe: TlsProbe, *, interval: float = DEFAULT_INTERVAL, jitter: float = 0.1
) -> list[Job]:
    """Scheduler jobs, one per target, keyed by TlsKey(vantage, host, address, port). The
    probe bounds the handshakes in flight; the deadline is the probe's own bound plus
    slack for the wait for a slot."""
    jobs = []
    for t in targets:

        def run(t: TlsTarget = t) -> Any:
            return probe.probe(t.host, t.address, t.port, t.dial)

        def late(waited: float, t: TlsTarget = t) -> Any:
            return overrun_result(probe.vantage, t.host, t.address, t.port, waited)

        jobs.append(
            Job(
                TlsKey(probe.vantage, t.host, t.address, t.port),
                run,
                interval=interval,
                deadline=probe.deadline + max(2.0, probe.timeout),
                jitter=jitter,
                on_timeout=late,
            )
        )
    return jobs


__all__ = [
    "DEFAULT_HISTORY",
    "DEFAULT_INTERVAL",
    "EMPTY_PLAN",
    "HttpsPlan",
    "HttpsService",
    "HttpsSettings",
    "HttpsVantage",
    "HttpsVantagePlan",
    "TlsTarget",
    "https_jobs",
    "plan_targets",
]
