"""Loopback DNS responders for the demo and the tests: real DNS over UDP and TCP.

One responder = one address and port (UDP and TCP on the same port), answering with
dnspython-built messages, behaving as a :class:`~probes.lab.dnsspec.DnsTimeline` says
(answer, delay, drop, SERVFAIL, NXDOMAIN, REFUSED, TC with or without a TCP answer,
garbage, wrong query id, huge TXT; timed changes relative to start).

It runs on two threads of its own rather than on an asyncio loop: a receive thread
(selector over the UDP socket, the TCP listener and its connections) and a send thread
that releases delayed answers from a heap with a condition-variable wait. That keeps
injected delays precise to ~0.1 ms (an asyncio timer rounds to whole milliseconds), keeps
the responder independent of whichever loop the app or a test runs, and lets `stop()`
join everything within a bound.

A responder can stand for a Service ClusterIP in front of pods (``backends``): the
kube-dns ClusterIP over the CoreDNS pods. Each new flow goes to one backend chosen at
random, as kube-proxy's iptables rules do (``statistic --mode random``, conntrack then
keeping the flow on it): a UDP flow is the client's address and port, forgotten after
:data:`UDP_FLOW_TIMEOUT` s without a packet (nf_conntrack_udp_timeout); a TCP flow is the
connection. The responder's own behaviour is the path in front (the ClusterIP's DNAT,
a node's route to the pods): its loss and delay apply first, and anything but ``answer``
decides alone; otherwise the chosen pod's behaviour answers. With no backends (no ready
endpoints) every query goes unanswered. So a pod that drops every query makes the
ClusterIP lose about 1/N of the queries, as on a cluster.

Run one alone for benchmarks: ``python -m probes.lab.dnsserver --delay 10``.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import heapq
import itertools
import random
import select
import selectors
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from probes.lab.dnsspec import ANSWER, STEADY, Behaviour, Delay, DnsFaultMode, DnsLabSpec, DnsTimeline

CLUSTER_DOMAIN = dns.name.from_text("cluster.local.")
DEFAULT_CLUSTER = {
    "kubernetes.default.svc.cluster.local": "10.0.0.1",
    "kube-dns.kube-system.svc.cluster.local": "10.0.0.10",
}
DEFAULT_EXTERNAL = {
    "mcr.microsoft.com": "204.79.197.219",
    "management.azure.com": "4.150.240.10",
    "login.microsoftonline.com": "20.190.160.1",
}
TTL = 30
# a UDP peer as recvfrom gives it, (ip, port); None: the reply goes back on a TCP stream
_Addr = tuple[Any, ...] | None
_SPIN = 0.0003  # seconds the send thread spins before a due answer
UDP_FLOW_TIMEOUT = 30.0  # s: nf_conntrack_udp_timeout, a UDP flow's backend is kept this long
MAX_FLOWS = 4096


@dataclass(frozen=True, slots=True)
class Zone:
    """A records the responder knows. Unknown cluster.local names are NXDOMAIN; unknown
    external names get a stable synthetic address (an upstream resolves anything)."""

    cluster: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CLUSTER))
    external: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_EXTERNAL))
    synthesize_external: bool = True
    nxdomain: frozenset[str] = frozenset()  # external names with no record (an ingress host without its DNS record)

    def lookup(self, name: dns.name.Name) -> tuple[bool, str | None]:
        """(is_cluster_name, address or None)."""
        text = name.to_text(omit_final_dot=True).lower()
        if name.is_subdomain(CLUSTER_DOMAIN):
            return True, self.cluster.get(text)
        if text in self.nxdomain:
            return False, None
        ip = self.external.get(text)
        if ip is None and self.synthesize_external:
            h = hashlib.sha256(text.encode()).digest()
            ip = f"198.51.100.{1 + h[0] % 254}"
        return False, ip


def _zone_from(spec: DnsLabSpec) -> Zone:
    return Zone(
        {**DEFAULT_CLUSTER, **spec.cluster_names},
        {**DEFAULT_EXTERNAL, **spec.external_names},
        nxdomain=frozenset(spec.nxdomain_names),
    )


@dataclass(frozen=True, slots=True)
class Reply:
    wire: bytes | None  # None: no answer
    delay_ms: float = 0.0
    close: bool = False  # TCP: close the connection instead of answering


def build_reply(
    wire: bytes, own: Behaviour, upstream: Behaviour, zone: Zone, rng: random.Random, *, tcp: bool
) -> Reply:
    """What a responder sends for one query `wire` (pure apart from `rng`)."""
    try:
        q = dns.message.from_wire(wire)
    except Exception:  # noqa: BLE001 - a broken query gets no answer, like most servers
        return Reply(None)
    if not q.question:
        return Reply(None)
    qname = q.question[0].name
    qtype = q.question[0].rdtype
    if own.by_name or upstream.by_name:  # per-name rules (dns.<block>.names)
        text = qname.to_text(omit_final_dot=True).lower()
        own, upstream = own.for_name(text), upstream.for_name(text)
    is_cluster, ip = zone.lookup(qname)
    if not tcp and own.loss and rng.random() < own.loss:
        return Reply(None)  # lost on the way (F19: the client retries after 5 s)
    if (
        not tcp
        and not is_cluster
        and own.mode == DnsFaultMode.ANSWER
        and upstream.loss
        and rng.random() < upstream.loss
    ):
        return Reply(None)
    mode, delay = own.mode, own.delay.draw(rng)
    if mode == DnsFaultMode.ANSWER and not is_cluster:
        mode = upstream.mode
        delay += upstream.delay.draw(rng)
        beh = upstream
    else:
        beh = own
    if tcp and not own.tcp:
        return Reply(None, 0.0, close=True)
    if mode == DnsFaultMode.DROP:
        return Reply(None, delay)
    if mode == DnsFaultMode.GARBAGE:
        junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(20, 80)))
        return Reply(wire[:2] + junk, delay)
    r = dns.message.make_response(q)
    if mode in (DnsFaultMode.SERVFAIL, DnsFaultMode.NXDOMAIN, DnsFaultMode.REFUSED):
        r.set_rcode(
            {
                DnsFaultMode.SERVFAIL: dns.rcode.SERVFAIL,
                DnsFaultMode.NXDOMAIN: dns.rcode.NXDOMAIN,
                DnsFaultMode.REFUSED: dns.rcode.REFUSED,
            }[mode]
        )
    elif mode == DnsFaultMode.TRUNCATE and not tcp:
        r.flags |= dns.flags.TC
    elif mode == DnsFaultMode.HUGE_TXT:
        size = beh.txt_size
        chunks = [("x" * min(255, size - i)) for i in range(0, size, 255)]
        text = " ".join(f'"{c}"' for c in chunks)
        r.answer.append(dns.rrset.from_text(qname, TTL, "IN", "TXT", text))
        # the question may not be TXT: answering TXT anyway keeps the behaviour per-responder
    else:  # ANSWER, TRUNCATE over TCP, WRONG_ID
        if ip is None:
            r.set_rcode(dns.rcode.NXDOMAIN)
        elif qtype == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text(qname, TTL, "IN", "A", ip))
        # other types: NOERROR with no records (NODATA)
    if mode == DnsFaultMode.WRONG_ID:
        r.id = (q.id + 0x5555) & 0xFFFF
    limit = 65535 if tcp else max(512, q.payload if q.edns >= 0 else 512)
    try:
        out = r.to_wire(max_size=limit, prefer_truncation=True)
    except Exception:  # noqa: BLE001
        r.answer.clear()
        r.flags |= dns.flags.TC
        out = r.to_wire()
    return Reply(out, delay)


class DnsResponder:
    """A loopback DNS server. Thread-safe controls; start()/stop() from any thread."""

    def __init__(
        self,
        timeline: DnsTimeline | Behaviour = STEADY,
        *,
        upstream: DnsTimeline | Behaviour = STEADY,
        host: str = "127.0.0.1",
        port: int = 0,
        zone: Zone | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
        backends: Sequence[DnsTimeline | Behaviour] | None = None,
    ) -> None:
        self.name = name
        # a ClusterIP's endpoints (see the module docstring); None: answers itself
        self._backends = None if backends is None else [_tl(b) for b in backends]
        self._flows: dict[Any, tuple[int, float]] = {}  # flow -> (backend, last packet)
        self.backend_queries: list[int] = [0] * len(self._backends or ())
        self._host = host
        self._want_port = port
        self._zone = zone or Zone()
        self._rng = random.Random(seed)
        self._clock = clock
        self._lock = threading.Lock()
        self._timeline = _tl(timeline)
        self._upstream = _tl(upstream)
        self._t0 = clock()  # re-set by start()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._conns: dict[socket.socket, bytearray] = {}
        self._stop = threading.Event()
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, socket.socket, _Addr, bytes]] = []
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self.udp_queries = 0
        self.tcp_queries = 0
        self.port = 0

    # --- control -----------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        return self._host, self.port

    @property
    def queries(self) -> int:
        return self.udp_queries + self.tcp_queries

    def set_behaviour(
        self,
        timeline: DnsTimeline | Behaviour,
        *,
        upstream: DnsTimeline | Behaviour | None = None,
        restart_clock: bool = False,
    ) -> None:
        """Change behaviour now (timed changes count from start, or from now with
        `restart_clock`)."""
        with self._lock:
            self._timeline = _tl(timeline)
            if upstream is not None:
                self._upstream = _tl(upstream)
            if restart_clock:
                self._t0 = self._clock()

    def behaviour(self) -> tuple[Behaviour, Behaviour]:
        """(own, upstream) behaviour in force now."""
        with self._lock:
            el = self._clock() - self._t0
            return self._timeline.at(el), self._upstream.at(el)

    def reset_counts(self) -> None:
        with self._lock:
            self.udp_queries = self.tcp_queries = 0

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> DnsResponder:
        fam = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        for _ in range(50):
            udp = socket.socket(fam, socket.SOCK_DGRAM)
            tcp = socket.socket(fam, socket.SOCK_STREAM)
            try:
                udp.bind((self._host, self._want_port))
                port = udp.getsockname()[1]
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((self._host, port))
                break
            except OSError as e:
                udp.close()
                tcp.close()
                if e.errno != errno.EADDRINUSE or self._want_port:
                    raise
        else:
            raise OSError(errno.EADDRINUSE, "no free port for UDP and TCP together")
        tcp.listen(64)
        udp.setblocking(False)
        tcp.setblocking(False)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._udp, self._tcp, self.port = udp, tcp, port
        self._t0 = self._clock()
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._rx, name=f"dns-rx:{port}", daemon=True),
            threading.Thread(target=self._tx, name=f"dns-tx:{port}", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._threads = []
        for s in [self._udp, self._tcp, *self._conns]:
            if s is not None:
                s.close()
        self._conns.clear()
        self._heap.clear()
        self._udp = self._tcp = None

    def __enter__(self) -> DnsResponder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- threads -----------------------------------------------------------------------
    def _reply(self, wire: bytes, tcp: bool, flow: Any = None) -> Reply:
        with self._lock:
            if tcp:
                self.tcp_queries += 1
            else:
                self.udp_queries += 1
            el = self._clock() - self._t0
            own, up = self._timeline.at(el), self._upstream.at(el)
            if self._backends is None or own.mode != DnsFaultMode.ANSWER:
                return build_reply(wire, own, up, self._zone, self._rng, tcp=tcp)
            if not tcp and own.loss and self._rng.random() < own.loss:
                return Reply(None)  # lost on the path to the ClusterIP
            if tcp and not own.tcp:
                return Reply(None, 0.0, close=True)
            if not self._backends:
                return Reply(None)  # no ready endpoints
            b = self._backend(flow)
            self.backend_queries[b] += 1
            reply = build_reply(wire, self._backends[b].at(el), up, self._zone, self._rng, tcp=tcp)
            path = own.delay.draw(self._rng)
            return replace(reply, delay_ms=reply.delay_ms + path) if path and reply.wire is not None else reply

    def _backend(self, flow: Any) -> int:
        """The backend of this flow: kept while the flow lives, else chosen at random."""
        assert self._backends
        now = self._clock()
        got = self._flows.get(flow) if flow is not None else None
        if got is not None and (not isinstance(flow, tuple) or now - got[1] < UDP_FLOW_TIMEOUT):
            b = got[0]
        else:
            b = self._rng.randrange(len(self._backends))
        if flow is not None:
            self._flows[flow] = (b, now)
            if len(self._flows) > MAX_FLOWS:  # the oldest half goes (dicts keep insertion order)
                for k in list(self._flows)[: MAX_FLOWS // 2]:
                    del self._flows[k]
        return b

    def _schedule(self, reply: Reply, sock: socket.socket, addr: _Addr, received: float) -> None:
        if reply.wire is None:
            return
        # the delay counts from the query's arrival, so our own processing is inside it
        due = received + reply.delay_ms / 1000.0
        if due <= time.perf_counter():
            self._send(sock, addr, reply.wire)
            return
        with self._cv:
            heapq.heappush(self._heap, (due, next(self._seq), sock, addr, reply.wire))
            self._cv.notify()

    def _send(self, sock: socket.socket, addr: _Addr, wire: bytes) -> None:
        try:
            if addr is not None:
                sock.sendto(wire, addr)
            else:
                _sendall(sock, len(wire).to_bytes(2, "big") + wire)
        except OSError:
            pass  # the client went away; so would a real server's answer

    def _tx(self) -> None:
        while not self._stop.is_set():
            with self._cv:
                if not self._heap:
                    self._cv.wait(0.2)
                    continue
                due = self._heap[0][0]
                wait = due - time.perf_counter()
                if wait > _SPIN:
                    # a timed wait wakes ~0.1 ms late: wake early, spin the rest
                    self._cv.wait(min(wait - _SPIN, 0.2))
                    continue
                _, _, sock, addr, wire = heapq.heappop(self._heap)
            while time.perf_counter() < due:
                time.sleep(0)  # yields the GIL while spinning
            if sock.fileno() >= 0:
                self._send(sock, addr, wire)

    def _rx(self) -> None:
        sel = selectors.DefaultSelector()
        assert self._udp is not None and self._tcp is not None
        sel.register(self._udp, selectors.EVENT_READ, "udp")
        sel.register(self._tcp, selectors.EVENT_READ, "listen")
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.1):
                    if key.data == "udp":
                        self._rx_udp()
                    elif key.data == "listen":
                        self._accept(sel)
                    else:
                        self._rx_tcp(sel, key.fileobj)  # type: ignore[arg-type]
        finally:
            sel.close()

    def _rx_udp(self) -> None:
        assert self._udp is not None
        for _ in range(256):  # drain a burst, then let TCP have a turn
            try:
                wire, addr = self._udp.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            received = time.perf_counter()
            self._schedule(self._reply(wire, tcp=False, flow=addr), self._udp, addr, received)

    def _accept(self, sel: selectors.BaseSelector) -> None:
        assert self._tcp is not None
        try:
            conn, _ = self._tcp.accept()
        except OSError:
            return
        conn.setblocking(False)
        self._conns[conn] = bytearray()
        sel.register(conn, selectors.EVENT_READ, "conn")

    def _drop(self, sel: selectors.BaseSelector, conn: socket.socket) -> None:
        sel.unregister(conn)
        self._conns.pop(conn, None)
        with self._lock:
            self._flows.pop(conn, None)
        conn.close()

    def _rx_tcp(self, sel: selectors.BaseSelector, conn: socket.socket) -> None:
        try:
            data = conn.recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sel, conn)
            return
        received = time.perf_counter()
        buf = self._conns[conn]
        buf += data
        while len(buf) >= 2:
            n = int.from_bytes(buf[:2], "big")
            if len(buf) < 2 + n:
                break
            wire = bytes(buf[2 : 2 + n])
            del buf[: 2 + n]
            reply = self._reply(wire, tcp=True, flow=conn)
            if reply.close:
                self._drop(sel, conn)
                return
            self._schedule(reply, conn, None, received)


def _sendall(sock: socket.socket, data: bytes, timeout: float = 2.0) -> None:
    end = time.monotonic() + timeout
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view)
            view = view[n:]
        except BlockingIOError:
            left = end - time.monotonic()
            if left <= 0:
                return
            select.select([], [sock], [], left)


def _tl(x: DnsTimeline | Behaviour) -> DnsTimeline:
    return x if isinstance(x, DnsTimeline) else DnsTimeline(base=x)


def responder_for(
    spec: DnsLabSpec,
    kind: str,
    *,
    node: str | None = None,
    pod: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], float] = time.monotonic,
    backends: list[DnsTimeline] | None = None,
) -> DnsResponder:
    """A (not yet started) responder for one resolver of the lab, as `spec` describes;
    `backends`: the pods behind a ClusterIP (kube-dns), see the module docstring."""
    seed = zlib.crc32(f"{spec.seed}/{kind}/{node}/{pod}".encode())
    return DnsResponder(
        spec.timeline_for(kind, node=node, pod=pod),
        upstream=spec.timeline_for("upstream", node=node),
        host=host,
        port=port,
        zone=_zone_from(spec),
        seed=seed,
        clock=clock,
        name=f"{kind}" + (f"/{node}" if node else "") + (f"/{pod}" if pod else ""),
        backends=backends,
    )


def main(argv: list[str] | None = None) -> int:
    """Serve until stdin closes: prints the port on the first line (for benchmarks)."""
    ap = argparse.ArgumentParser(description="a loopback DNS responder")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay", type=float, default=0.0, help="ms before every answer")
    ap.add_argument("--behaviour", default="answer", choices=[m.value for m in DnsFaultMode])
    a = ap.parse_args(argv)
    b = replace(ANSWER, mode=DnsFaultMode(a.behaviour), delay=Delay("fixed", a.delay))
    r = DnsResponder(b, host=a.host, port=a.port).start()
    print(r.port, flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    finally:
        r.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
