"""What an egress check ends as: its outcome, the mode that ran, the record kept for it,
and the errno classification both modes share (connect mode and the SYN engine).

Its own module so that the SYN engine (probes/egress/syn.py) and the probe
(probes/egress/probe.py) both import it without importing each other.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from probes.engine.health import Health


class EgressOutcome(str, Enum):
    OPEN = "open"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    # the name did not resolve: the resolver was silent until the deadline, answered
    # SERVFAIL, answered NXDOMAIN, or anything else (no A/AAAA record, REFUSED, no resolver)
    DNS_TIMEOUT = "dns-timeout"
    DNS_SERVFAIL = "dns-servfail"
    DNS_NXDOMAIN = "dns-nxdomain"
    DNS_FAILURE = "dns-failure"
    LOCAL_ERROR = "local-error"
    # through the cluster's HTTP proxy (probes.egress.proxy): CONNECT answered non-2xx,
    # no answer to CONNECT in time, no TCP connection to the proxy
    PROXY_REFUSED = "proxy-refused"
    PROXY_TIMEOUT = "proxy-timeout"
    PROXY_UNREACHABLE = "proxy-unreachable"

    @property
    def health(self) -> Health:
        """Only a completed handshake is good; everything else fails the check."""
        return Health.GOOD if self is EgressOutcome.OPEN else Health.FAILING

    @property
    def down(self) -> bool:
        """The path or the far end did not complete a handshake (what History counts as loss)."""
        return self in LOST

    @property
    def dns(self) -> bool:
        """The check ended at name resolution (no address to dial)."""
        return self in DNS_FAILED

    @property
    def proxy(self) -> bool:
        """The proxy said no, hung or could not be reached (the F27 proxy rule's outcomes)."""
        return self in PROXY_FAILED


class EgressMode(str, Enum):
    SYN = "syn"
    CONNECT = "connect"
    PROXY = "proxy"  # CONNECT through the cluster's HTTP proxy


# what did not complete a handshake because of the network (History counts it as loss)
PROXY_FAILED = frozenset({EgressOutcome.PROXY_REFUSED, EgressOutcome.PROXY_TIMEOUT, EgressOutcome.PROXY_UNREACHABLE})
DNS_FAILED = frozenset(
    {EgressOutcome.DNS_TIMEOUT, EgressOutcome.DNS_SERVFAIL, EgressOutcome.DNS_NXDOMAIN, EgressOutcome.DNS_FAILURE}
)
LOST = frozenset({EgressOutcome.REFUSED, EgressOutcome.TIMEOUT, EgressOutcome.UNREACHABLE}) | PROXY_FAILED


class EgressKey(NamedTuple):
    vantage: str
    target: str  # Target.text


@dataclass(frozen=True, slots=True)
class EgressResult:
    vantage: str
    target: str  # "host:port" as configured (Target.text)
    address: str  # address dialled ("" when DNS failed)
    port: int
    mode: EgressMode
    outcome: EgressOutcome
    latency_ms: float  # handshake time when open; time waited otherwise
    error: str = ""
    timestamp: float = 0.0  # wall clock at the start of the check
    fallback: str = ""  # why connect mode ran when SYN mode was asked for (auto)
    via: str = ""  # "addr:port" actually dialled when the lab remapped the port
    raw: str = ""  # the answering packet (SYN mode), e.g. "TCP 203.0.113.10:443 > … SA"
    proxy: str = ""  # "host:port" of the HTTP proxy the check went through (mode proxy)
    status: int = 0  # the proxy's answer to CONNECT (mode proxy; 0: none)

    @property
    def key(self) -> EgressKey:
        return EgressKey(self.vantage, self.target)

    @property
    def success(self) -> bool:
        return self.outcome is EgressOutcome.OPEN

    @property
    def lost(self) -> bool:
        return self.outcome in LOST


# --- errno classification -------------------------------------------------------------

_UNREACH = {
    errno.EHOSTUNREACH: "no route to host (EHOSTUNREACH: an ICMP host unreachable or an 'unreachable' route)",
    errno.ENETUNREACH: "network unreachable (ENETUNREACH: no route to this network)",
    errno.EINVAL: "no route: a blackhole route covers this address (EINVAL)",
    errno.EACCES: "blocked on this host: a 'prohibit' route or a local firewall rule (EACCES)",
    errno.EPERM: "blocked on this host: a local firewall rule dropped the SYN (EPERM)",
    errno.EHOSTDOWN: "host is down (EHOSTDOWN: no ARP/ND answer)",
    errno.ENONET: "machine is not on the network (ENONET)",
}
_LOCAL = {
    errno.EADDRNOTAVAIL: "no free local port (EADDRNOTAVAIL): this host's ephemeral ports are exhausted",
    errno.EADDRINUSE: "local address in use (EADDRINUSE)",
    errno.EMFILE: "out of file descriptors (EMFILE): raise the open-files limit or lower concurrency",
    errno.ENFILE: "system-wide file table full (ENFILE)",
    errno.ENOBUFS: "kernel out of buffers (ENOBUFS)",
    errno.ENOMEM: "kernel out of memory (ENOMEM)",
    errno.EAFNOSUPPORT: "address family not supported on this host (no IPv6?)",
}


def classify_errno(err: int) -> tuple[EgressOutcome, str]:
    """What a socket error on connect/send means for egress."""
    if err in (errno.ECONNREFUSED, errno.ECONNRESET):
        return EgressOutcome.REFUSED, "connection refused (RST, or ICMP port unreachable)"
    if err == errno.ETIMEDOUT:
        return EgressOutcome.TIMEOUT, "no answer (the kernel's connect timed out)"
    if err in _UNREACH:
        return EgressOutcome.UNREACHABLE, _UNREACH[err]
    if err in _LOCAL:
        return EgressOutcome.LOCAL_ERROR, _LOCAL[err]
    name = errno.errorcode.get(err, str(err))
    return EgressOutcome.LOCAL_ERROR, f"{name}: {os.strerror(err)}"
