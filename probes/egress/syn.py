"""SYN mode of the egress probe: half-open handshakes over raw sockets (IPv4).

Loaded only when a check runs in SYN mode. Segments are stamped into fixed templates and
answers are summarised with struct alone: scapy (about 32 MB once its layers load) stays
out of the process — the per-node agent must fit in 60 MB — and serves only the tests,
which hold the templates byte for byte to scapy's own build.

How one check goes:

1. Route lookup with a connected UDP socket (no packet leaves): the source address for
   the TCP checksum, and the same EINVAL/EHOSTUNREACH/ENETUNREACH/EACCES answers a
   connect would get from blackhole/unreachable/prohibit routes.
2. Reserve an ephemeral port by binding a TCP socket to (source, 0): the kernel picks
   it from ip_local_port_range and no other socket can use it while we wait. The socket
   never listens nor connects, so the kernel itself answers the SYN-ACK with a RST
   (we send our own RST too, in case a firewall on this host eats the kernel's). Neither
   RST goes *to* our match key, so neither can be mistaken for the target's answer.
3. Send the SYN on a shared raw IPPROTO_TCP socket; retransmit once after 1 s.
4. Two shared raw sockets (TCP, ICMP) feed one reader callback each on the event loop;
   a packet is matched to a pending check by (peer address, peer port, our port) and by
   the ack/seq numbers, so stale answers to an earlier check on the same port are
   ignored. A BPF filter on the TCP socket lets only SYN or RST segments through, so a
   busy node's data traffic costs nothing. The raw sockets exist only while checks are
   in flight.

Classification: SYN-ACK → open (arrival − first SYN, monotonic, read in the reader
callback); RST → refused; ICMP port unreachable → refused (what connect reports too);
other ICMP destination unreachable / time exceeded → unreachable, with the code named.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import random
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from probes.egress.result import EgressOutcome, classify_errno

SO_ATTACH_FILTER = 26
_TCP_SYN, _TCP_RST, _TCP_ACK = 0x02, 0x04, 0x10

_ICMP_UNREACH = {
    0: "network unreachable (ICMP from {src})",
    1: "host unreachable (ICMP from {src})",
    2: "protocol unreachable (ICMP from {src})",
    4: "fragmentation needed (ICMP from {src})",
    5: "source route failed (ICMP from {src})",
    6: "destination network unknown (ICMP from {src})",
    7: "destination host unknown (ICMP from {src})",
    9: "network administratively prohibited (ICMP from {src})",
    10: "host administratively prohibited (ICMP from {src})",
    13: "communication administratively prohibited: a firewall rejects it (ICMP from {src})",
}

_layers: Any = None


def _scapy() -> Any:
    """scapy's IP and TCP layers (tests only: the reference the templates are held to)."""
    global _layers
    if _layers is None:
        # lazy: scapy's layers (~0.3 s, cryptography) load only when SYN mode is used
        from scapy.layers.inet import IP, TCP

        _layers = (IP, TCP)
    return _layers


def _scapy_segment(src: str, dst: str, sport: int, dport: int, flags: str, seq: int, ack: int = 0) -> bytes:
    IP, TCP = _scapy()
    opts = [("MSS", 1460), ("SAckOK", b""), ("NOP", None), ("WScale", 7)] if flags == "S" else []
    pkt = IP(src=src, dst=dst) / TCP(
        sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=64240 if flags == "S" else 0, options=opts
    )
    return bytes(pkt)[20:]


# What a Linux stack puts in a SYN: MSS 1460, SACK permitted, NOP, window scale 7, padded
# to a 4-byte boundary (12 bytes of options: data offset 8 words); a RST has none.
_SYN_OPTIONS = b"\x02\x04\x05\xb4" + b"\x04\x02" + b"\x01" + b"\x03\x03\x07" + b"\x00\x00"
_TEMPLATES = {
    "S": struct.pack("!HHIIBBHHH", 0, 0, 0, 0, (20 + len(_SYN_OPTIONS)) // 4 << 4, 0x02, 64240, 0, 0) + _SYN_OPTIONS,
    "R": struct.pack("!HHIIBBHHH", 0, 0, 0, 0, 5 << 4, 0x04, 0, 0, 0),
}


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def build_segment(src: str, dst: str, sport: int, dport: int, flags: str, seq: int, ack: int = 0) -> bytes:
    """A TCP segment (header only, checksum over the IPv4 pseudo-header) for a raw
    IPPROTO_TCP socket (the kernel adds the IP header): the flags' template with this
    probe's ports, sequence and ack numbers and checksum stamped in (4 µs; building each
    with scapy cost 0.35 ms of event-loop time, enough at thousands of checks in flight
    to delay other answers into timeouts)."""
    seg = bytearray(_TEMPLATES[flags])
    struct.pack_into("!HHII", seg, 0, sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(seg))
    struct.pack_into("!H", seg, 16, _checksum(pseudo + bytes(seg)))
    return bytes(seg)


_FLAG_LETTERS = "FSRPAUECN"  # scapy's order: bit 0 (FIN) first
_ICMP_NAMES = {3: "dest-unreach", 11: "time-exceeded", 0: "echo-reply", 8: "echo-request"}
_UNREACH_NAMES = {
    0: "network-unreachable",
    1: "host-unreachable",
    2: "protocol-unreachable",
    3: "port-unreachable",
    4: "fragmentation-needed",
    9: "network-prohibited",
    10: "host-prohibited",
    13: "communication-prohibited",
}


def tcp_flags(bits: int) -> str:
    """'SA', 'RA', 'R': the flag letters as scapy and tcpdump users read them."""
    return "".join(c for i, c in enumerate(_FLAG_LETTERS) if bits >> i & 1)


def describe_packet(data: bytes) -> str:
    """One line for the answering IPv4 packet (detail view), e.g.
    ``IP / TCP 203.0.113.10:443 > 10.224.0.4:40112 SA`` or
    ``IP / ICMP 10.224.0.1 > 10.224.0.4 dest-unreach host-unreachable``."""
    try:
        ihl = (data[0] & 0x0F) * 4
        src, dst = socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20])
        if data[9] == 6 and len(data) >= ihl + 14:
            sport, dport = struct.unpack_from("!HH", data, ihl)
            flags = (data[ihl + 12] & 0x01) << 8 | data[ihl + 13]
            return f"IP / TCP {src}:{sport} > {dst}:{dport} {tcp_flags(flags)}"
        if data[9] == 1 and len(data) >= ihl + 2:
            t, c = data[ihl], data[ihl + 1]
            what = _ICMP_NAMES.get(t, f"type {t}")
            code = _UNREACH_NAMES.get(c, f"code {c}") if t == 3 else f"code {c}"
            return f"IP / ICMP {src} > {dst} {what} {code}"
        return f"IP {src} > {dst} proto {data[9]}"
    except Exception:  # noqa: BLE001 - a description must never fail a check
        return data[:64].hex(" ")


def _bpf_syn_or_rst() -> bytes:
    """Classic BPF for a raw IPv4 TCP socket: accept only segments with SYN or RST."""
    prog = [
        (0xB1, 0, 0, 0x00000000),  # ldxb 4*([0]&0xf)  (IP header length)
        (0x50, 0, 0, 0x0000000D),  # ldb [x+13]        (TCP flags)
        (0x45, 0, 1, 0x00000006),  # jset #0x06 (SYN|RST)
        (0x06, 0, 0, 0x0000FFFF),  # ret #65535
        (0x06, 0, 0, 0x00000000),  # ret #0
    ]
    return b"".join(struct.pack("HBBI", *ins) for ins in prog)


def _attach_filter(sock: socket.socket) -> None:
    code = _bpf_syn_or_rst()
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(code) // 8, ctypes.addressof(buf))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError:
        pass  # an unfiltered socket still works, it just sees more packets


class _Pending:
    __slots__ = ("fut", "isn")

    def __init__(self, fut: asyncio.Future[Any], isn: int) -> None:
        self.fut = fut
        self.isn = isn


class SynEngine:
    def __init__(self, raw_socket: Callable[[int, int], socket.socket]) -> None:
        self._factory = raw_socket
        self._tcp: socket.socket | None = None
        self._icmp: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[tuple[str, int, int], _Pending] = {}
        self._users = 0
        self.stray = 0  # matched packets that failed the seq/ack check

    # --- raw sockets, open only while checks are in flight --------------------------------
    def _acquire(self) -> None:
        loop = asyncio.get_running_loop()
        if self._users == 0:
            tcp = self._factory(socket.AF_INET, socket.IPPROTO_TCP)
            try:
                icmp = self._factory(socket.AF_INET, socket.IPPROTO_ICMP)
            except BaseException:
                tcp.close()
                raise
            for s in (tcp, icmp):
                s.setblocking(False)
            _attach_filter(tcp)
            self._tcp, self._icmp, self._loop = tcp, icmp, loop
            loop.add_reader(tcp.fileno(), self._on_tcp)
            loop.add_reader(icmp.fileno(), self._on_icmp)
        self._users += 1

    def _release(self) -> None:
        self._users -= 1
        if self._users == 0:
            self.close()

    def close(self) -> None:
        loop = self._loop
        for s in (self._tcp, self._icmp):
            if s is None:
                continue
            if loop is not None and not loop.is_closed():
                try:
                    loop.remove_reader(s.fileno())
                except Exception:  # noqa: BLE001
                    pass
            s.close()
        self._tcp = self._icmp = None
        self._loop = None
        self._users = 0

    # --- receive --------------------------------------------------------------------------
    @staticmethod
    def _drain(sock: socket.socket | None, handle: Callable[[bytes, float], None]) -> None:
        """Read every queued packet off a non-blocking raw socket and hand it on."""
        assert sock is not None
        while True:
            try:
                data = sock.recv(65535)
            except OSError:  # BlockingIOError / InterruptedError: queue empty; others: socket closed
                return
            if len(data) >= 20:
                handle(data, time.monotonic())

    def _on_tcp(self) -> None:
        self._drain(self._tcp, self._tcp_packet)

    def _on_icmp(self) -> None:
        self._drain(self._icmp, self._icmp_packet)

    def _tcp_packet(self, data: bytes, now: float) -> None:
        ihl = (data[0] & 0x0F) * 4
        if len(data) < ihl + 20 or data[9] != 6:
            return
        src = socket.inet_ntoa(data[12:16])
        sport, dport, seq, ack = struct.unpack_from("!HHII", data, ihl)
        flags = data[ihl + 13]
        p = self._pending.get((src, sport, dport))
        if p is None or p.fut.done():
            return
        want = (p.isn + 1) & 0xFFFFFFFF
        if flags & (_TCP_SYN | _TCP_ACK) == (_TCP_SYN | _TCP_ACK) and ack == want:
            p.fut.set_result(("synack", now, data, seq))
        elif flags & _TCP_RST and (ack == want or not flags & _TCP_ACK):
            p.fut.set_result(("rst", now, data, 0))
        else:
            self.stray += 1

    def _icmp_packet(self, data: bytes, now: float) -> None:
        ihl = (data[0] & 0x0F) * 4
        if len(data) < ihl + 8 + 20 + 8:
            return
        itype, icode = data[ihl], data[ihl + 1]
        if itype not in (3, 11):
            return
        inner = ihl + 8
        iihl = (data[inner] & 0x0F) * 4
        if data[inner + 9] != 6 or len(data) < inner + iihl + 8:
            return
        dst = socket.inet_ntoa(data[inner + 16 : inner + 20])
        sport, dport, seq = struct.unpack_from("!HHI", data, inner + iihl)
        p = self._pending.get((dst, dport, sport))
        if p is None or p.fut.done():
            return
        if seq != p.isn:
            self.stray += 1
            return
        p.fut.set_result(("icmp", now, data, (itype, icode, socket.inet_ntoa(data[12:16]))))

    # --- one check --------------------------------------------------------------------------
    async def check(
        self, address: str, port: int, timeout: float, retransmit: float | None = 1.0
    ) -> tuple[EgressOutcome, float, str, str]:
        t_start = time.monotonic()

        def waited() -> float:
            return (time.monotonic() - t_start) * 1000.0

        # 1. route lookup (also how local blackhole/prohibit routes show up)
        try:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        except OSError as e:
            o, why = classify_errno(e.errno or 0)
            return o, waited(), why, ""
        try:
            u.connect((address, port))
            src = u.getsockname()[0]
        except OSError as e:
            o, why = classify_errno(e.errno or 0)
            return o, waited(), why, ""
        finally:
            u.close()
        # 2. reserve an ephemeral port
        try:
            hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:
            o, why = classify_errno(e.errno or 0)
            return o, waited(), why, ""
        try:
            try:
                hold.bind((src, 0))
            except OSError as e:
                o, why = classify_errno(e.errno or errno.EADDRNOTAVAIL)
                return o, waited(), why, ""
            sport = hold.getsockname()[1]
            try:
                self._acquire()
            except PermissionError:
                return (
                    EgressOutcome.LOCAL_ERROR,
                    waited(),
                    "SYN mode needs raw sockets (root or CAP_NET_RAW); use connect mode",
                    "",
                )
            except OSError as e:
                o, why = classify_errno(e.errno or 0)
                return EgressOutcome.LOCAL_ERROR, waited(), f"raw socket: {why}", ""
            try:
                return await self._exchange(src, address, port, sport, timeout, retransmit)
            finally:
                self._release()
        finally:
            hold.close()

    async def _exchange(
        self, src: str, dst: str, dport: int, sport: int, timeout: float, retransmit: float | None
    ) -> tuple[EgressOutcome, float, str, str]:
        assert self._tcp is not None and self._loop is not None
        loop = self._loop
        isn = random.getrandbits(32)
        syn = build_segment(src, dst, sport, dport, "S", isn)
        key = (dst, dport, sport)
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending[key] = _Pending(fut, isn)
        t0 = time.monotonic()
        try:
            try:
                self._tcp.sendto(syn, (dst, 0))
            except OSError as e:
                o, why = classify_errno(e.errno or 0)
                return o, (time.monotonic() - t0) * 1000.0, why, ""
            deadline = t0 + timeout
            got = None
            try:
                if retransmit and retransmit < timeout:
                    try:
                        async with asyncio.timeout_at(loop.time() + retransmit):
                            got = await asyncio.shield(fut)
                    except TimeoutError:
                        try:
                            if self._tcp is not None:
                                self._tcp.sendto(syn, (dst, 0))
                        except OSError:
                            pass
                if got is None:
                    remaining = deadline - time.monotonic()
                    async with asyncio.timeout(max(0.0, remaining)):
                        got = await fut
            except TimeoutError:
                return (
                    EgressOutcome.TIMEOUT,
                    (time.monotonic() - t0) * 1000.0,
                    f"no answer to SYN within {timeout:g}s (dropped: NSG/firewall, SNAT "
                    "exhaustion or a silent blackhole)",
                    "",
                )
            kind, t1, data, info = got
            ms = (t1 - t0) * 1000.0
            if kind == "synack":
                try:  # tear the half-open connection down (the kernel RSTs it as well)
                    rst = build_segment(src, dst, sport, dport, "R", (isn + 1) & 0xFFFFFFFF)
                    if self._tcp is not None:
                        self._tcp.sendto(rst, (dst, 0))
                except OSError:
                    pass
                return EgressOutcome.OPEN, ms, "", describe_packet(data)
            if kind == "rst":
                return (EgressOutcome.REFUSED, ms, "connection refused: the target answered RST", describe_packet(data))
            itype, icode, frm = info
            if itype == 3 and icode == 3:
                return (
                    EgressOutcome.REFUSED,
                    ms,
                    f"connection refused: ICMP port unreachable from {frm}",
                    describe_packet(data),
                )
            if itype == 11:
                why = f"TTL exceeded in transit (ICMP from {frm}): a routing loop"
            else:
                why = _ICMP_UNREACH.get(icode, "destination unreachable, code {code} (ICMP from {src})")
                why = why.format(src=frm, code=icode)
            return EgressOutcome.UNREACHABLE, ms, why, describe_packet(data)
        finally:
            self._pending.pop(key, None)
            if not fut.done():
                fut.cancel()
