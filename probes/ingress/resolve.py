"""What each ingress host resolves to, asked from every vantage this process probes from.

`HostResolver` follows the store's ingress records and the DNS service's plan: for each
vantage probed from here (not the agents' nodes) it asks that vantage's cluster resolver
— kube-dns first, then NodeLocal/LocalDNS, Azure DNS, a configured one; the first the
vantage can reach — for the A record of every host an Ingress or HTTPRoute names. Only
resolvers of the DNS plan are dialled (in the demo they are the lab's loopback
responders), one query per host and vantage every `interval` seconds, `concurrency` at a
time, each bounded by `timeout`. The answers (`HostAnswer`) are what the ingress pane
shows and F22 judges; they never leave memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from probes.ingress.model import HostAnswer

PREFERENCE = ("kube-dns", "nodelocal", "localdns", "azure-dns", "custom")
MAX_QUERIES = 5000  # per round: hosts × vantages beyond it wait for the next rounds


def hosts_of(data: Any) -> tuple[str, ...]:
    """Every host an Ingress or HTTPRoute names (wildcards left out: nothing to resolve)."""
    seen: dict[str, None] = {}
    for ing in getattr(data, "ingresses", ()):
        for h in ing.hosts:
            if h and not h.startswith("*"):
                seen.setdefault(h)
    for rt in getattr(data, "routes", ()):
        for h in rt.hostnames:
            if h and not h.startswith("*"):
                seen.setdefault(h)
    return tuple(seen)


def pick_resolvers(plan: Any) -> list[tuple[str, str, tuple[str, int]]]:
    """(vantage, resolver label, (host, port) dialled) per vantage probed from here."""
    out = []
    for vp in getattr(plan, "vantages", ()):
        if vp.vantage.agent:
            continue
        usable = [r for r in vp.resolvers if r.reachable]
        for kind in PREFERENCE:
            r = next((x for x in usable if x.kind.value == kind), None)
            if r is not None:
                out.append((vp.vantage.name, r.label, r.dest))
                break
    return out


def ask(host: str, dest: tuple[str, int], timeout: float) -> tuple[str, tuple[str, ...], str]:
    """(outcome, A addresses, error) of one A query for `host` to `dest`."""
    q = dns.message.make_query(host, dns.rdatatype.A)
    try:
        r = dns.query.udp(q, dest[0], timeout=timeout, port=dest[1])
        if r.flags & 0x0200:  # TC: ask again over TCP
            r = dns.query.tcp(q, dest[0], timeout=timeout, port=dest[1])
    except dns.exception.Timeout:
        return "timeout", (), f"no answer within {timeout:g} s"
    except Exception as e:  # noqa: BLE001 - any failure is this host's answer, said in one line
        return "error", (), f"{type(e).__name__}: {e}"[:200]
    rc = r.rcode()
    if rc == dns.rcode.NXDOMAIN:
        return "nxdomain", (), ""
    if rc != dns.rcode.NOERROR:
        return dns.rcode.to_text(rc).lower(), (), ""
    ips = tuple(str(rd) for rrset in r.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset)
    return ("ok" if ips else "nodata"), ips, ""


class HostResolver:
    """A source: start() returns at once; stop(timeout) joins its thread."""

    name = "hosts"

    def __init__(
        self,
        store: Any,
        dns_service: Any,
        *,
        interval: float = 15.0,
        timeout: float = 2.0,
        concurrency: int = 16,
        clock: Any = time.time,
    ) -> None:
        self.store = store
        self.dns = dns_service
        self.interval = interval
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        self.clock = clock
        self._answers: Mapping[tuple[str, str], HostAnswer] = MappingProxyType({})
        self.version = 0
        self.error = ""
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor = 0
        self._covered: tuple[Any, frozenset[str]] = (None, frozenset())  # (plan, hosts) of the last full round

    def answers(self) -> Mapping[tuple[str, str], HostAnswer]:
        return self._answers

    def settled(self) -> bool:
        """The ingress kinds were listed (or found not served) and a round asked about every
        host they name, with the DNS plan of now (for `check`: its verdict waits for it)."""
        # lazy: the kinds' list pulls the parsers; only `check` asks
        from probes.ingress.kinds import INGRESS_KINDS, SOURCE

        snap = self.store.snapshot()
        done = [
            s
            for s in snap.statuses
            if s.source.startswith(SOURCE + "/") and s.state.value not in ("connecting", "syncing")
        ]
        if len(done) < len(INGRESS_KINDS):
            return False
        plan, hosts = self._covered
        if not pick_resolvers(self.dns.plan() if self.dns is not None else None):
            return True  # nothing to ask from here
        return plan is not None and set(hosts_of(snap.ingress)) <= hosts

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ingress-hosts", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        t, self._thread = self._thread, None
        if t is not None:
            t.join(timeout)

    def _run(self) -> None:
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="ingress-hosts-q") as pool:
            seen: tuple[Any, ...] = ()
            next_round = 0.0
            while not self._stop.is_set():
                try:
                    snap = self.store.snapshot()
                    plan = self.dns.plan() if self.dns is not None else None
                    key = (snap.ingress, plan)
                    now = time.monotonic()
                    moved = not seen or key[0] is not seen[0] or key[1] is not seen[1]
                    if moved or now >= next_round:
                        seen = key
                        self._round(pool, snap.ingress, plan)
                        next_round = time.monotonic() + self.interval
                    self.error = ""
                except Exception as e:  # noqa: BLE001 - said in the pane; the loop goes on
                    self.error = f"host resolution failed: {type(e).__name__}: {e}"[:300]
                self._stop.wait(0.5)

    def _round(self, pool: ThreadPoolExecutor, data: Any, plan: Any) -> None:
        hosts = hosts_of(data)
        resolvers = pick_resolvers(plan)
        jobs = [(v, label, dest, h) for v, label, dest in resolvers for h in hosts]
        keep = {(v, h) for v, _, _, h in jobs}
        if len(jobs) > MAX_QUERIES:  # a slice per round, moving on
            start = self._cursor % len(jobs)
            jobs = (jobs[start:] + jobs[:start])[:MAX_QUERIES]
            self._cursor = start + MAX_QUERIES
        futures = [(v, label, h, pool.submit(ask, h, dest, self.timeout)) for v, label, dest, h in jobs]
        out = {k: a for k, a in self._answers.items() if k in keep}
        for v, label, h, fut in futures:
            if self._stop.is_set():
                return
            outcome, ips, err = fut.result()
            out[(v, h)] = HostAnswer(v, label, h, outcome, ips, self.clock(), err)
        if out != dict(self._answers):
            self._answers = MappingProxyType(out)
            self.version += 1
        if len(jobs) == len(keep) and resolvers:
            self._covered = (plan, frozenset(hosts))
