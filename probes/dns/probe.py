"""One DNS query, classified the way an operator needs it.

The transport is our own (a connected UDP socket, then TCP on TC) instead of
dns.asyncquery so that the id, deadline and error handling are exact: a stub keeps
listening past answers with the wrong query id until its deadline, an ICMP port
unreachable arrives as ECONNREFUSED on a connected socket, and the TCP retry after a
truncated answer shares the query's one deadline. Messages are dnspython's.

A UDP answer's arrival time is the kernel's (``SO_TIMESTAMPNS``), not the moment the
event loop got round to it: an agent held to 10 millicores, CFS-throttled, or a laptop
busy with something else would otherwise add its own scheduling delay to the
resolver's latency, and the slow-resolver rule (F14) would blame the resolver.
"""

from __future__ import annotations

import asyncio
import platform
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype

from probes.dns.resolvers import Resolver
from probes.dns.result import (  # noqa: F401 - re-exported: the probe's own record types
    ANSWERED,
    LOST,
    DnsOutcome,
    DnsResult,
    ProbeKey,
)
from probes.engine.scheduler import Job
from probes.kube.model import LOCAL_VANTAGE

DEFAULT_TIMEOUT = 2.0
EDNS_PAYLOAD = 1232  # what NodeLocal/CoreDNS forwarders and modern stubs advertise (DNS flag day 2020)
PLAIN_LIMIT = 512  # a UDP answer's limit for a client without EDNS (RFC 1035): glibc's default, musl
SECOND_QUERY_S = 0.5  # the no-EDNS query may run this long past the first one's deadline
RAW_LIMIT = 4000  # characters of the last answer kept as text


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one received packet means for one query."""

    outcome: DnsOutcome
    error: str = ""
    message: dns.message.Message | None = None
    truncated: bool = False  # TC set on a UDP answer: retry over TCP
    ignorable: bool = False  # not an answer to this query (wrong id): keep listening
    rcode: str = ""


_RCODES = {
    dns.rcode.NOERROR: DnsOutcome.OK,
    dns.rcode.NXDOMAIN: DnsOutcome.NXDOMAIN,
    dns.rcode.SERVFAIL: DnsOutcome.SERVFAIL,
    dns.rcode.REFUSED: DnsOutcome.REFUSED,
}


def _hex(raw: bytes, limit: int = 48) -> str:
    return f"<{len(raw)} bytes> {raw[:limit].hex(' ')}" + (" …" if len(raw) > limit else "")


def classify(query: dns.message.Message, raw: bytes | None, *, tcp: bool = False) -> Verdict:
    """Classify `raw` as an answer to `query` (None: nothing came). Pure; never raises."""
    try:
        return _classify(query, raw, tcp)
    except Exception as e:  # noqa: BLE001 - a classifier of hostile bytes must not raise
        return Verdict(DnsOutcome.MALFORMED, f"unparseable answer ({type(e).__name__})")


def _classify(query: dns.message.Message, raw: bytes | None, tcp: bool) -> Verdict:
    if raw is None:
        return Verdict(DnsOutcome.TIMEOUT, "no answer before the deadline")
    if len(raw) < 12:
        return Verdict(DnsOutcome.MALFORMED, f"answer too short for a DNS header ({len(raw)} bytes)")
    rid = int.from_bytes(raw[0:2], "big")
    flags = int.from_bytes(raw[2:4], "big")
    if rid != query.id:
        return Verdict(DnsOutcome.MALFORMED, f"answer with the wrong query id ({rid}, sent {query.id})", ignorable=True)
    if not flags & dns.flags.QR:
        return Verdict(DnsOutcome.MALFORMED, "not an answer (QR bit clear)")
    if dns.opcode.from_flags(flags) != query.opcode():
        return Verdict(DnsOutcome.MALFORMED, "answer with a different opcode")
    tc = bool(flags & dns.flags.TC)
    try:
        msg = dns.message.from_wire(raw)
    except dns.exception.DNSException as e:
        if tc and not tcp:  # a truncated answer may be cut anywhere; TC is what matters
            return Verdict(DnsOutcome.TRUNCATED_TCP_FAILED, "truncated (TC)", truncated=True)
        return Verdict(DnsOutcome.MALFORMED, f"unparseable answer: {_short(e)}")
    q = query.question[0]
    if len(msg.question) != 1:
        if tc and not tcp and not msg.question:
            return Verdict(DnsOutcome.TRUNCATED_TCP_FAILED, "truncated (TC)", msg, truncated=True)
        return Verdict(DnsOutcome.MALFORMED, f"answer carries {len(msg.question)} questions, expected 1")
    a = msg.question[0]
    if a.name != q.name or a.rdtype != q.rdtype or a.rdclass != q.rdclass:
        return Verdict(
            DnsOutcome.MALFORMED,
            "answer for a different question (asked "
            f"{q.name} {dns.rdatatype.to_text(q.rdtype)}, got {a.name} "
            f"{dns.rdatatype.to_text(a.rdtype)})",
            msg,
        )
    rcode = msg.rcode()
    rtext = dns.rcode.to_text(rcode)
    if tc and not tcp:
        return Verdict(DnsOutcome.TRUNCATED_TCP_FAILED, "truncated (TC)", msg, truncated=True, rcode=rtext)
    outcome = _RCODES.get(rcode, DnsOutcome.OTHER_RCODE)
    err = "" if outcome in (DnsOutcome.OK, DnsOutcome.NXDOMAIN) else f"server answered {rtext}"
    return Verdict(outcome, err, msg, rcode=rtext)


def _short(e: BaseException) -> str:
    s = str(e) or type(e).__name__
    return s if len(s) <= 120 else s[:117] + "…"


def _count(msg: dns.message.Message | None) -> int:
    return sum(len(rrset) for rrset in msg.answer) if msg is not None else 0


def _text(msg: dns.message.Message | None, raw: bytes | None) -> str:
    if msg is not None:
        try:
            t = msg.to_text()
        except Exception:  # noqa: BLE001
            t = _hex(raw or b"")
    elif raw:
        t = _hex(raw)
    else:
        return ""
    return t if len(t) <= RAW_LIMIT else t[:RAW_LIMIT] + "\n… (truncated)"


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _neterr(e: OSError, host: str, port: int, proto: str) -> str:
    if isinstance(e, ConnectionRefusedError):
        if proto == "udp":
            return f"port unreachable: nothing listens on {host} udp/{port}"
        return f"TCP connection to {host}:{port} refused"
    return f"{proto} to {host}:{port}: {e.strerror or _short(e)}"


class DnsProbe:
    """Queries resolvers from one vantage. Stateless apart from its settings: safe to
    share across many concurrent queries.

    Two client profiles: every query is what NodeLocal/CoreDNS forwarders send (EDNS,
    `payload` bytes, 1,232 by default). When that answer is over 512 bytes and arrived
    whole, the same question is asked again without EDNS, as glibc (without `options
    edns0`, the default in a pod's resolv.conf) and musl ask it: such a client gets TC
    and must retry over TCP. That second query (and its TCP retry) runs only for answers
    over 512 bytes, so it costs nothing for the usual small answers; its outcome is the
    result's `no_edns`. `no_edns=False` turns it off."""

    def __init__(
        self,
        vantage: str = LOCAL_VANTAGE,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        payload: int = EDNS_PAYLOAD,
        no_edns: bool = True,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.vantage = vantage
        self.timeout = timeout
        self.payload = payload
        self.no_edns = no_edns and payload > PLAIN_LIMIT
        self._wall = wall

    async def query(
        self, resolver: Resolver, name: str, rdtype: str = "A", *, timeout: float | None = None
    ) -> DnsResult:
        """Ask `resolver` for `name`/`rdtype` within one hard deadline. Whatever the
        network does becomes a DnsResult; only an invalid name or type raises (validate
        names at config time with probes.dns.resolvers.validate_name)."""
        loop = asyncio.get_running_loop()
        budget = self.timeout if timeout is None else timeout
        deadline = loop.time() + budget
        host, port = resolver.dest
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        stamp = self._wall()
        q = dns.message.make_query(name, rdtype, use_edns=0 if self.payload else None, payload=self.payload or 512)
        wire = q.to_wire()

        def done(
            outcome: DnsOutcome,
            t0: float,
            *,
            msg: Any = None,
            raw: bytes | None = None,
            error: str = "",
            tc: bool = False,
            tcp: bool = False,
            rcode: str = "",
            size: int = 0,
            no_edns: str = "",
        ) -> DnsResult:
            return DnsResult(
                vantage=self.vantage,
                resolver=resolver.key,
                address=resolver.address,
                target=target,
                qname=name,
                qtype=rdtype,
                outcome=outcome,
                latency_ms=(time.perf_counter() - t0) * 1000.0 if t1 is None else (t1 - t0) * 1000.0,
                answers=_count(msg),
                tc_seen=tc,
                via_tcp=tcp,
                rcode=rcode,
                error=error,
                raw=_text(msg, raw),
                timestamp=stamp,
                size=size,
                no_edns=no_edns,
            )

        t1: float | None = None
        stamps: list[float] = []  # send and arrival times, taken next to the syscalls
        v, raw, err = await self._udp(loop, q, wire, host, port, deadline, stamps)
        t0 = stamps[0] if stamps else time.perf_counter()
        if err is not None:
            return done(DnsOutcome.NETWORK_ERROR, t0, error=err)
        assert v is not None  # an answer whenever there is no error
        t1 = stamps[1] if len(stamps) > 1 and not v.truncated else time.perf_counter()
        if not v.truncated:
            size = len(raw or b"")
            plain = ""
            if self.no_edns and size > PLAIN_LIMIT and v.message is not None:
                later = max(deadline, loop.time() + min(SECOND_QUERY_S, budget / 2))
                plain = (await self._plain(loop, name, rdtype, host, port, later)).value
            return done(v.outcome, t0, msg=v.message, raw=raw, error=v.error, rcode=v.rcode, size=size, no_edns=plain)
        t1 = None
        tv, traw, terr = await self._tcp(loop, q, wire, host, port, deadline)
        t1 = time.perf_counter()
        size = len(traw) if traw else len(raw or b"")
        if terr is None and tv is not None and tv.outcome in (DnsOutcome.OK, DnsOutcome.NXDOMAIN):
            out = DnsOutcome.TRUNCATED_TCP_OK
            plain = out.value if self.no_edns else ""  # truncated at 1,232 bytes: at 512 too
            return done(out, t0, msg=tv.message, raw=traw, tc=True, tcp=True, rcode=tv.rcode, size=size, no_edns=plain)
        why = terr if terr is not None else (tv.error or tv.outcome.value) if tv is not None else "no answer"
        return done(
            DnsOutcome.TRUNCATED_TCP_FAILED,
            t0,
            msg=tv.message if tv else v.message,
            raw=traw if traw else raw,
            tc=True,
            tcp=True,
            rcode=tv.rcode if tv else v.rcode,
            error=f"UDP answer truncated (TC); TCP retry failed: {why}",
            size=size,
            no_edns=DnsOutcome.TRUNCATED_TCP_FAILED.value if self.no_edns else "",
        )

    async def _plain(
        self, loop: asyncio.AbstractEventLoop, name: str, rdtype: str, host: str, port: int, deadline: float
    ) -> DnsOutcome:
        """The same question as a client without EDNS asks it (512-byte UDP, then TCP on
        TC, as glibc does): what that client ends with."""
        q = dns.message.make_query(name, rdtype)  # no OPT record: the 512-byte limit applies
        wire = q.to_wire()
        v, _, err = await self._udp(loop, q, wire, host, port, deadline, [])
        if err is not None or v is None:
            return DnsOutcome.NETWORK_ERROR
        if not v.truncated:
            return v.outcome
        tv, _, terr = await self._tcp(loop, q, wire, host, port, deadline)
        if terr is None and tv is not None and tv.outcome in (DnsOutcome.OK, DnsOutcome.NXDOMAIN):
            return DnsOutcome.TRUNCATED_TCP_OK
        return DnsOutcome.TRUNCATED_TCP_FAILED

    async def _udp(
        self,
        loop: asyncio.AbstractEventLoop,
        q: dns.message.Message,
        wire: bytes,
        host: str,
        port: int,
        deadline: float,
        stamps: list[float],
    ) -> tuple[Verdict, bytes | None, str | None]:
        bad: Verdict | None = None
        bad_raw: bytes | None = None
        try:
            sock = socket.socket(_family(host), socket.SOCK_DGRAM)
        except OSError as e:
            return Verdict(DnsOutcome.NETWORK_ERROR), None, _neterr(e, host, port, "udp")
        try:
            sock.setblocking(False)
            stamped = _stamps_on(sock)
            sock.connect((host, port))
            sent_wall = time.time()
            sent = time.perf_counter()
            stamps.append(sent)
            sock.send(wire)
            async with asyncio.timeout_at(deadline):
                while True:
                    data, wall = await _recv(loop, sock) if stamped else (await loop.sock_recv(sock, 65535), None)
                    now = time.perf_counter()
                    if wall is not None and 0.0 <= wall - sent_wall <= now - sent:
                        now = sent + (wall - sent_wall)  # the kernel's arrival time, on our clock
                    v = classify(q, data)
                    if v.ignorable:
                        bad, bad_raw = v, data
                        continue
                    stamps.append(now)
                    return v, data, None
        except TimeoutError:
            if bad is not None:
                return Verdict(DnsOutcome.MALFORMED, bad.error + "; no good answer before the deadline"), bad_raw, None
            return classify(q, None), None, None
        except OSError as e:
            return Verdict(DnsOutcome.NETWORK_ERROR), None, _neterr(e, host, port, "udp")
        finally:
            sock.close()

    async def _tcp(
        self,
        loop: asyncio.AbstractEventLoop,
        q: dns.message.Message,
        wire: bytes,
        host: str,
        port: int,
        deadline: float,
    ) -> tuple[Verdict | None, bytes | None, str | None]:
        writer = None
        try:
            async with asyncio.timeout_at(deadline):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(len(wire).to_bytes(2, "big") + wire)
                n = int.from_bytes(await reader.readexactly(2), "big")
                data = await reader.readexactly(n)
            return classify(q, data, tcp=True), data, None
        except TimeoutError:
            return None, None, "no TCP answer before the deadline"
        except asyncio.IncompleteReadError:
            return None, None, "TCP connection closed without an answer"
        except OSError as e:
            return None, None, _neterr(e, host, port, "tcp")
        finally:
            if writer is not None:
                writer.transport.abort()


async def probe(
    resolver: Resolver, name: str, rdtype: str = "A", *, vantage: str = LOCAL_VANTAGE, timeout: float = DEFAULT_TIMEOUT
) -> DnsResult:
    """One query with a throwaway DnsProbe."""
    return await DnsProbe(vantage, timeout=timeout).query(resolver, name, rdtype)


def timeout_result(
    resolver: Resolver, name: str, rdtype: str, vantage: str, waited_s: float, error: str = "probe overran its deadline"
) -> DnsResult:
    host, port = resolver.dest
    return DnsResult(
        vantage,
        resolver.key,
        resolver.address,
        f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        name,
        rdtype,
        DnsOutcome.TIMEOUT,
        waited_s * 1000.0,
        error=error,
        timestamp=time.time(),
    )


def dns_jobs(
    resolvers: Iterable[Resolver],
    names: Iterable[str],
    *,
    probe: DnsProbe | None = None,
    rdtype: str = "A",
    interval: float = 5.0,
    jitter: float = 0.1,
) -> list[Any]:
    """Scheduler jobs, one per (resolver, name) of each reachable resolver, keyed by ProbeKey. Pass them to
    Scheduler.set_jobs whenever the resolver set changes; unchanged keys keep their cadence."""
    p = probe or DnsProbe()
    jobs = []
    for r in resolvers:
        if r.unreachable:
            continue  # not reachable from this vantage: shown, never probed
        for n in names:
            key = ProbeKey(p.vantage, r.key, n, rdtype)

            def run(r: Resolver = r, n: str = n) -> Any:
                return p.query(r, n, rdtype)

            def late(waited: float, r: Resolver = r, n: str = n) -> DnsResult:
                return timeout_result(r, n, rdtype, p.vantage, waited)

            jobs.append(Job(key, run, interval=interval, deadline=p.timeout + 1.0, jitter=jitter, on_timeout=late))
    return jobs


# Python does not name it; Linux's value where struct timespec is two 64-bit fields
# (asm-generic: x86-64 and arm64, every AKS node); elsewhere the loop's own time is used
_SO_TIMESTAMPNS = getattr(
    socket,
    "SO_TIMESTAMPNS",
    35 if sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64") else None,
)
_ANC = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0  # struct timespec


def _stamps_on(sock: socket.socket) -> bool:
    """Ask the kernel to stamp arrivals (Linux); False where it cannot."""
    if _SO_TIMESTAMPNS is None or not _ANC:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


async def _recv(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> tuple[bytes, float | None]:
    """One datagram and its kernel arrival time (wall clock, s), or None without a stamp."""
    while True:
        try:
            data, anc, _flags, _addr = sock.recvmsg(65535, _ANC)
        except (BlockingIOError, InterruptedError):
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(sock.fileno(), _wake, ready)
            try:
                await ready
            finally:
                loop.remove_reader(sock.fileno())
            continue
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(value) >= 16:
                sec, nsec = struct.unpack("qq", value[:16])
                return data, sec + nsec / 1e9
        return data, None
