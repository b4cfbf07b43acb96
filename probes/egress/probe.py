"""TCP egress checks, classified the way an operator reads them.

One check = resolve the target's name (dnspython, through an injectable resolve function)
then one TCP handshake attempt to the first address:

* **SYN mode** (raw sockets, packets built with scapy; see probes/egress/syn.py): send a
  SYN from a reserved ephemeral port, wait for SYN-ACK, RST or ICMP, answer a SYN-ACK
  with RST. Sees ICMP codes a plain connect cannot tell apart.
* **connect mode**: a non-blocking connect with a timeout, like ``nc -v -w 2 host 443``;
  an open connection is closed at once with RST (SO_LINGER 0), so thousands of checks
  leave no TIME_WAIT behind on the jumpbox.

``auto`` uses SYN mode when a raw socket can be opened and connect mode otherwise; every
result carries the mode that ran and, on fallback, why.

Outcomes: **open** (handshake time in ms, monotonic clock, first SYN → SYN-ACK),
**refused** (RST, or ICMP port unreachable: a kernel turns both into ECONNREFUSED, so
both modes agree), **timeout** (no answer: dropped by an NSG, a firewall, an exhausted SNAT
pool or a silent blackhole on the way), **unreachable** (ICMP unreachable other than port,
EHOSTUNREACH, ENETUNREACH, local blackhole/prohibit routes, a local firewall), the name
not resolving — **dns-timeout** (no answer before the deadline), **dns-servfail** (the
resolver answered SERVFAIL), **dns-nxdomain** (the name does not exist for it),
**dns-failure** (anything else: no A/AAAA record, REFUSED, no resolver) — and
**local-error** (this host: no free local port, out of descriptors).

Both modes retransmit the SYN once after 1 s, as the kernel's connect does, so one lost
packet does not read as "dropped".
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import os
import resource
import select
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from probes.dns.resolvers import parse_address
from probes.egress.proxy import ProxySettings, bypass, connect_via, parse_proxy, proxy_text
from probes.egress.result import LOST, EgressKey, EgressMode, EgressOutcome, EgressResult, classify_errno  # noqa: F401 - re-exported
from probes.egress.targets import Target, parse_target
from probes.engine.scheduler import Job
from probes.kube.model import LOCAL_VANTAGE

DEFAULT_TIMEOUT = 2.0
DEFAULT_DNS_TIMEOUT = 2.0
DEFAULT_INTERVAL = 10.0
MAX_CONCURRENCY = 1024  # in-flight handshakes per probe, whatever the descriptor limit
FD_RESERVE = 64  # descriptors left for everything else in the process


# --- name resolution --------------------------------------------------------------------

Resolve = Callable[[str], Awaitable[Sequence[str]]]


class DnsFailure(Exception):
    """A resolve function's way to say why a name did not resolve (user's language), and
    which kind of failure it was (one of probes.egress.result.DNS_FAILED)."""

    def __init__(self, message: str, kind: EgressOutcome = EgressOutcome.DNS_FAILURE) -> None:
        super().__init__(message)
        self.kind = kind


def _rcodes(e: BaseException) -> set[int]:
    """The rcodes of the answers a dnspython NoNameservers collected (its `errors`: one
    (server, tcp, port, error, response) per failed try)."""
    out: set[int] = set()
    for err in getattr(e, "kwargs", {}).get("errors") or ():
        response = err[4] if isinstance(err, tuple) and len(err) > 4 else None
        if response is not None and hasattr(response, "rcode"):
            out.add(int(response.rcode()))
    return out


def dns_failure(e: BaseException, name: str) -> tuple[EgressOutcome, str]:
    """Which kind of name-resolution failure `e` is, from dnspython's exception and the
    rcodes the servers answered (never from what a lab meant), and why in words:
    dns-nxdomain (the name does not exist for this resolver), dns-servfail (it answered
    SERVFAIL: its upstream failed), dns-timeout (no answer before the deadline), or
    dns-failure (no A/AAAA record, REFUSED, no resolver configured, anything else)."""
    # lazy: dnspython (~25 ms) loads on the first resolve, not with the module (check and the lab import it)
    import dns.rcode
    import dns.resolver

    if isinstance(e, DnsFailure):
        return e.kind, str(e)
    if isinstance(e, dns.resolver.NXDOMAIN):
        return EgressOutcome.DNS_NXDOMAIN, f"{name}: name does not exist (NXDOMAIN)"
    if isinstance(e, dns.resolver.NoAnswer):
        return EgressOutcome.DNS_FAILURE, f"{name}: no A or AAAA record"
    if isinstance(e, dns.resolver.NoNameservers):
        rcodes = _rcodes(e)
        if dns.rcode.SERVFAIL in rcodes:
            return EgressOutcome.DNS_SERVFAIL, f"{name}: the DNS server answered SERVFAIL (its upstream failed)"
        if rcodes:
            words = ", ".join(sorted(dns.rcode.to_text(dns.rcode.Rcode.make(r)) for r in rcodes))
            return EgressOutcome.DNS_FAILURE, f"{name}: the DNS server answered {words}"
        return EgressOutcome.DNS_FAILURE, f"{name}: every DNS server failed (no usable answer)"
    if isinstance(e, (dns.resolver.LifetimeTimeout, TimeoutError)):
        return EgressOutcome.DNS_TIMEOUT, f"{name}: no DNS answer before the deadline"
    if isinstance(e, dns.resolver.NoResolverConfiguration):
        return EgressOutcome.DNS_FAILURE, "no DNS servers configured on this host (/etc/resolv.conf)"
    return EgressOutcome.DNS_FAILURE, f"{name}: {type(e).__name__}: {e}"[:200]


def _dns_reason(e: BaseException, name: str) -> str:
    return dns_failure(e, name)[1]


def _dnspython_resolver(nameservers: Sequence[str] | None, port: int, timeout: float) -> Resolve:
    state: dict[str, Any] = {}

    async def resolve(name: str) -> list[str]:
        # lazy: dnspython (~25 ms) loads on the first resolve, not with the module (check and the lab import it)
        import dns.asyncresolver
        import dns.resolver

        r = state.get("r")
        if r is None:
            if nameservers is None:
                r = dns.asyncresolver.Resolver()
            else:
                r = dns.asyncresolver.Resolver(configure=False)
                r.nameservers = list(nameservers)
                r.port = port
            r.lifetime = timeout
            r.timeout = timeout
            state["r"] = r
        fq = name if name.endswith(".") else name + "."
        out: list[str] = []
        try:
            ans = await r.resolve(fq, "A", search=False)
            out = [rr.address for rr in ans]
        except dns.resolver.NoAnswer:
            pass
        if not out:
            ans = await r.resolve(fq, "AAAA", search=False)
            out = [rr.address for rr in ans]
        return out

    return resolve


def system_resolver(timeout: float = DEFAULT_DNS_TIMEOUT) -> Resolve:
    """Resolve with the host's resolv.conf servers (A first, then AAAA)."""
    return _dnspython_resolver(None, 53, timeout)


def resolver_at(host: str, port: int = 53, timeout: float = DEFAULT_DNS_TIMEOUT) -> Resolve:
    """Resolve by asking one server (a lab DNS responder, a node's resolver)."""
    return _dnspython_resolver([host], port, timeout)


def resolver_via(resolver: Any, timeout: float = DEFAULT_DNS_TIMEOUT) -> Resolve:
    """Resolve through a probes.dns.resolvers.Resolver (its dialled target), so a node's
    egress uses the DNS path that node uses."""
    host, port = resolver.dest
    return resolver_at(host, port, timeout)


def static_resolver(table: Mapping[str, str | Sequence[str]]) -> Resolve:
    """A fixed name -> address(es) table (tests, demo); other names do not exist."""
    norm = {k.lower().rstrip("."): ([v] if isinstance(v, str) else list(v)) for k, v in table.items()}

    async def resolve(name: str) -> list[str]:
        got = norm.get(name.lower().rstrip("."))
        if not got:
            raise DnsFailure(f"{name}: name does not exist (NXDOMAIN)", EgressOutcome.DNS_NXDOMAIN)
        return got

    return resolve


# --- descriptors ------------------------------------------------------------------------


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def default_concurrency(requested: int | None = None) -> int:
    """In-flight handshakes allowed: at most half the descriptors left under the soft
    RLIMIT_NOFILE (each check holds one socket), never above MAX_CONCURRENCY."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    room = max(1, (soft - open_fds() - FD_RESERVE) // 2)
    cap = min(MAX_CONCURRENCY, room)
    return max(1, min(cap, requested)) if requested else cap


def raise_nofile_limit() -> tuple[int, int]:
    """Lift the soft open-files limit to the hard one (call once at start-up; many
    shells default to 1024). Returns the (soft, hard) limits now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# --- the probe --------------------------------------------------------------------------

RawSocketFactory = Callable[[int, int], socket.socket]


def _raw_socket(family: int, proto: int) -> socket.socket:
    return socket.socket(family, socket.SOCK_RAW, proto)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class EgressProbe:
    """Checks TCP targets from one vantage. Share one per vantage: it bounds in-flight
    handshakes (descriptors) across all concurrent checks. Use from one event loop at a
    time; `close()` when done (SYN mode's raw sockets already close when idle).

    `dial_map` is the lab's DNAT: after resolving, 'addr:port' (one port of a host) or
    'addr' (any port) -> the port actually dialled on that address."""

    def __init__(
        self,
        vantage: str = LOCAL_VANTAGE,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        dns_timeout: float = DEFAULT_DNS_TIMEOUT,
        mode: str | EgressMode = "auto",
        resolve: Resolve | None = None,
        dial_map: Mapping[str, int] | None = None,
        concurrency: int | None = None,
        retransmit: float | None = 1.0,
        raw_socket: RawSocketFactory = _raw_socket,
        wall: Callable[[], float] = time.time,
        proxy: ProxySettings | None = None,
    ) -> None:
        m = mode.value if isinstance(mode, EgressMode) else str(mode)
        if m not in ("auto", "syn", "connect"):
            raise ValueError(f"egress mode {mode!r}: choose auto, syn or connect")
        if timeout <= 0:
            raise ValueError("egress timeout must be > 0 s")
        self.vantage = vantage
        self.timeout = timeout
        self.dns_timeout = dns_timeout
        self.requested_mode = m
        self.retransmit = retransmit
        self._resolve = resolve or system_resolver(dns_timeout)
        self._dial_map = dict(dial_map or {})
        self.concurrency = default_concurrency(concurrency)
        self._raw_socket = raw_socket
        self._wall = wall
        self.proxy = proxy if proxy is not None and proxy.enabled else None
        self._mode: EgressMode | None = None if m == "auto" else EgressMode(m)
        self._fallback = ""
        self._syn: Any = None  # probes.egress.syn.SynEngine, made on first SYN check
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        self.inflight = 0
        self.peak_inflight = 0

    # --- mode ---------------------------------------------------------------------------
    @property
    def mode(self) -> EgressMode | None:
        """The mode decided so far (None until the first check in auto mode)."""
        return self._mode

    @property
    def fallback(self) -> str:
        return self._fallback

    def _decide(self) -> EgressMode:
        if self._mode is not None:
            return self._mode
        try:
            s = self._raw_socket(socket.AF_INET, socket.IPPROTO_TCP)
            s.close()
        except PermissionError:
            self._fallback = "raw sockets not permitted (SYN mode needs root or CAP_NET_RAW); using connect"
            self._mode = EgressMode.CONNECT
            return self._mode
        except OSError as e:
            self._fallback = f"raw socket unavailable ({e.strerror or e}); using connect"
            self._mode = EgressMode.CONNECT
            return self._mode
        try:
            # lazy: scapy only when SYN mode is used (a presence check here; its layers load in probes.egress.syn)
            import scapy  # noqa: F401 - presence check only; layers load in egress_syn
        except ImportError:
            self._fallback = "scapy is not installed (pip install scapy); using connect"
            self._mode = EgressMode.CONNECT
            return self._mode
        self._mode = EgressMode.SYN
        return self._mode

    def _engine(self) -> Any:
        if self._syn is None:
            # lazy: scapy (~0.3 s) only when SYN mode is used
            from probes.egress.syn import SynEngine

            self._syn = SynEngine(self._raw_socket)
        return self._syn

    # --- checks -------------------------------------------------------------------------
    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:
            self._sem = asyncio.Semaphore(self.concurrency)
            self._sem_loop = loop
        return self._sem

    async def probe(self, target: Target | str) -> EgressResult:
        """Check one target. Whatever the network does becomes an EgressResult; only an
        unparseable target string raises (ValueError)."""
        t = target if isinstance(target, Target) else parse_target(target)
        stamp = self._wall()
        mode = self._decide()
        fallback = self._fallback

        def result(
            outcome: EgressOutcome,
            latency_ms: float,
            *,
            address: str = "",
            error: str = "",
            m: EgressMode = mode,
            fb: str = fallback,
            via: str = "",
            raw: str = "",
        ) -> EgressResult:
            return EgressResult(
                self.vantage, t.text, address, t.port, m, outcome, latency_ms, error, stamp, fb, via, raw
            )

        if self.proxy is not None and not bypass(self.proxy.no_proxy, t.host, t.port):
            return await self._through_proxy(t, self.proxy, stamp)
        # 1. resolve
        if t.is_ip:
            address = t.host
        else:
            d0 = time.monotonic()
            try:
                async with asyncio.timeout(self.dns_timeout):
                    addrs = list(await self._resolve(t.host))
                if not addrs:
                    raise DnsFailure(f"{t.host}: no A or AAAA record")
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every resolver failure is an outcome
                kind, why = dns_failure(e, t.host)
                return result(kind, (time.monotonic() - d0) * 1000.0, error=f"DNS: {why}")
            address = addrs[0]
        # the lab's DNAT: 'addr:port' (one port of a host) wins over 'addr' (every port)
        port = self._dial_map.get(_hostport(address, t.port), self._dial_map.get(address, t.port))
        via = _hostport(address, port) if port != t.port else ""
        v6 = ":" in address
        m, fb = mode, fallback
        if m is EgressMode.SYN and v6:
            m, fb = EgressMode.CONNECT, "SYN mode is IPv4-only; using connect for this IPv6 address"
        # 2. handshake, under the in-flight bound
        async with self._semaphore():
            self.inflight += 1
            self.peak_inflight = max(self.peak_inflight, self.inflight)
            try:
                if m is EgressMode.SYN:
                    outcome, ms, err, raw = await self._engine().check(address, port, self.timeout, self.retransmit)
                else:
                    outcome, ms, err = await self._connect(address, port)
                    raw = ""
            finally:
                self.inflight -= 1
        return result(outcome, ms, address=address, error=err, m=m, fb=fb, via=via, raw=raw)

    async def _through_proxy(self, t: Target, proxy: ProxySettings, stamp: float) -> EgressResult:
        """CONNECT host:port through the proxy (probes.egress.proxy): the target's name is
        the proxy's to resolve; the proxy's own name resolves here, as a pod resolves it."""
        url = proxy.url_for(t.port)
        label = proxy_text(url)

        def result(
            outcome: EgressOutcome, ms: float, error: str, address: str = "", via: str = "", status: int = 0
        ) -> EgressResult:
            return EgressResult(
                self.vantage,
                t.text,
                address,
                t.port,
                EgressMode.PROXY,
                outcome,
                ms,
                error,
                stamp,
                "",
                via,
                "",
                label,
                status,
            )

        try:
            scheme, host, pport = parse_proxy(url)
        except ValueError as e:
            return result(EgressOutcome.LOCAL_ERROR, 0.0, f"the cluster's proxy setting: {e}")
        try:
            address = str(ipaddress.ip_address(host))
        except ValueError:
            d0 = time.monotonic()
            try:
                async with asyncio.timeout(self.dns_timeout):
                    addrs = list(await self._resolve(host))
                if not addrs:
                    raise DnsFailure(f"{host}: no A or AAAA record")
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every resolver failure is an outcome
                return result(
                    EgressOutcome.PROXY_UNREACHABLE,
                    (time.monotonic() - d0) * 1000.0,
                    f"proxy {label}: its name does not resolve ({_dns_reason(e, host)})",
                )
            address = addrs[0]
        port = self._dial_map.get(_hostport(address, pport), self._dial_map.get(address, pport))
        via = _hostport(address, port) if port != pport else ""
        async with self._semaphore():
            self.inflight += 1
            self.peak_inflight = max(self.peak_inflight, self.inflight)
            try:
                outcome, ms, err, status = await connect_via(
                    address,
                    port,
                    t.host,
                    t.port,
                    self.timeout,
                    scheme=scheme,
                    proxy_label=label,
                    trusted_ca=proxy.trusted_ca,
                )
            finally:
                self.inflight -= 1
        return result(outcome, ms, err, address, via, status)

    async def _connect(self, address: str, port: int) -> tuple[EgressOutcome, float, str]:
        loop = asyncio.get_running_loop()
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            s = socket.socket(fam, socket.SOCK_STREAM)
        except OSError as e:
            o, why = classify_errno(e.errno or 0)
            return o, 0.0, why
        registered = False
        t0 = time.monotonic()
        try:
            s.setblocking(False)
            t0 = time.monotonic()
            err = s.connect_ex((address, port))
            if err == 0:
                return EgressOutcome.OPEN, (time.monotonic() - t0) * 1000.0, ""
            if err != errno.EINPROGRESS:
                o, why = classify_errno(err)
                return o, (time.monotonic() - t0) * 1000.0, why
            # a fast path (loopback, a LAN): the handshake may already be done; look now
            # rather than after an event-loop round trip, which would inflate the time
            poller = select.poll()
            poller.register(s.fileno(), select.POLLOUT)
            if poller.poll(0):
                t1 = time.monotonic()
                return self._finish(s, t0, t1)
            fut: asyncio.Future[float] = loop.create_future()

            def ready() -> None:
                if not fut.done():
                    fut.set_result(time.monotonic())

            loop.add_writer(s.fileno(), ready)
            registered = True
            try:
                async with asyncio.timeout(self.timeout):
                    t1 = await fut
            except TimeoutError:
                return (
                    EgressOutcome.TIMEOUT,
                    (time.monotonic() - t0) * 1000.0,
                    f"no answer to SYN within {self.timeout:g}s (dropped: NSG/firewall, "
                    "SNAT exhaustion or a silent blackhole)",
                )
            return self._finish(s, t0, t1)
        finally:
            if registered:
                loop.remove_writer(s.fileno())
            try:  # abort: RST instead of FIN, no TIME_WAIT left on this host
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
            s.close()

    @staticmethod
    def _finish(s: socket.socket, t0: float, t1: float) -> tuple[EgressOutcome, float, str]:
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err in (0, errno.ECONNRESET, errno.EPIPE):
            # ECONNRESET/EPIPE: established, then reset by the peer before we looked; the
            # handshake completed (a RST in SYN_SENT reads ECONNREFUSED instead)
            return EgressOutcome.OPEN, (t1 - t0) * 1000.0, ""
        o, why = classify_errno(err)
        return o, (t1 - t0) * 1000.0, why

    async def probe_all(self, targets: Iterable[Target | str]) -> list[EgressResult]:
        """One round over `targets`, all at once under the in-flight bound; results in
        input order."""
        return list(await asyncio.gather(*(self.probe(t) for t in targets)))

    async def close(self) -> None:
        if self._syn is not None:
            self._syn.close()


def overrun_result(target: Target, vantage: str, mode: EgressMode | None, waited_s: float) -> EgressResult:
    """What the scheduler records when a check overran its deadline (a local problem:
    the probe waited too long for a free slot, or the event loop was starved)."""
    return EgressResult(
        vantage,
        target.text,
        "",
        target.port,
        mode or EgressMode.CONNECT,
        EgressOutcome.LOCAL_ERROR,
        waited_s * 1000.0,
        "check did not finish within its deadline (too many targets for the "
        "concurrency limit, or this host is overloaded)",
        time.time(),
    )


def egress_jobs(
    targets: Iterable[Target | str],
    probe: EgressProbe | None = None,
    *,
    interval: float = DEFAULT_INTERVAL,
    jitter: float = 0.1,
) -> list[Any]:
    """Scheduler jobs, one per target, keyed by EgressKey(vantage, 'host:port'). Pass them
    to Scheduler.set_jobs whenever the target list changes. The probe bounds in-flight
    handshakes; the scheduler's own concurrency bounds how many checks run at once."""
    p = probe or EgressProbe()
    jobs = []
    seen: set[str] = set()
    for raw in targets:
        t = raw if isinstance(raw, Target) else parse_target(raw)
        if t.text in seen or t.unreachable:
            continue  # a duplicate, or not reachable from this vantage (shown, never checked)
        seen.add(t.text)

        def run(t: Target = t) -> Any:
            return p.probe(t)

        def late(waited: float, t: Target = t) -> EgressResult:
            return overrun_result(t, p.vantage, p.mode, waited)

        deadline = p.dns_timeout + p.timeout + max(2.0, p.timeout)
        jobs.append(
            Job(EgressKey(p.vantage, t.text), run, interval=interval, deadline=deadline, jitter=jitter, on_timeout=late)
        )
    return jobs


# --- command line (used by the namespace tests: `ip netns exec NS python -m probes.egress.probe`)


def _as_json(r: EgressResult) -> str:
    return json.dumps(
        {
            "vantage": r.vantage,
            "target": r.target,
            "address": r.address,
            "port": r.port,
            "mode": r.mode.value,
            "outcome": r.outcome.value,
            "latency_ms": round(r.latency_ms, 3),
            "error": r.error,
            "fallback": r.fallback,
            "via": r.via,
            "raw": r.raw,
        }
    )


def main(argv: list[str] | None = None) -> int:
    # lazy: argparse only for `python -m probes.egress.probe`
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m probes.egress.probe", description="TCP egress checks, one JSON line per target"
    )
    ap.add_argument("targets", nargs="+", help="host:port or [v6]:port")
    ap.add_argument("--mode", default="auto", choices=("auto", "syn", "connect"))
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    ap.add_argument("--dns", help="ask this DNS server (host:port) instead of resolv.conf")
    ap.add_argument("--vantage", default=LOCAL_VANTAGE)
    a = ap.parse_args(argv)
    try:
        targets = [parse_target(t, source="cli") for t in a.targets]
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    resolve = None
    if a.dns:
        h, p = parse_address(a.dns)
        resolve = resolver_at(h, p)

    async def run() -> list[EgressResult]:
        probe = EgressProbe(a.vantage, timeout=a.timeout, mode=a.mode, resolve=resolve)
        try:
            return await probe.probe_all(targets)
        finally:
            await probe.close()

    for r in asyncio.run(run()):
        print(_as_json(r), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
