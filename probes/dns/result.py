"""What a DNS query ends as: its outcome (and what that outcome means for health), the
record kept for it and the key it is filed under.

Pure data, its own module so that the rules (probes/diagnose) can ask an outcome what it
means without importing the probe's sockets and dnspython.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from probes.engine.health import Health


class DnsOutcome(str, Enum):
    OK = "ok"
    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    OTHER_RCODE = "other-rcode"
    TIMEOUT = "timeout"
    TRUNCATED_TCP_OK = "truncated-tcp-ok"
    TRUNCATED_TCP_FAILED = "truncated-tcp-failed"
    NETWORK_ERROR = "network-error"
    MALFORMED = "malformed"

    @property
    def health(self) -> Health:
        """An answer (even NXDOMAIN, or the full answer over TCP after a truncation) is not
        a failure; NXDOMAIN and a needed TCP retry are worth a look."""
        return _DNS_HEALTH[self]

    @property
    def down(self) -> bool:
        """The resolver is not answering: silent, unreachable, or refusing to serve."""
        return self in _DNS_DOWN

    @property
    def truncation(self) -> bool:
        """The UDP answer came with TC set (whatever the TCP retry then did)."""
        return self in (DnsOutcome.TRUNCATED_TCP_OK, DnsOutcome.TRUNCATED_TCP_FAILED)


_DNS_HEALTH = {o: Health.FAILING for o in DnsOutcome}
_DNS_HEALTH.update(
    {DnsOutcome.OK: Health.GOOD, DnsOutcome.NXDOMAIN: Health.DEGRADED, DnsOutcome.TRUNCATED_TCP_OK: Health.DEGRADED}
)
_DNS_DOWN = frozenset({DnsOutcome.TIMEOUT, DnsOutcome.NETWORK_ERROR, DnsOutcome.SERVFAIL, DnsOutcome.REFUSED})
ANSWERED = frozenset(o for o in DnsOutcome if o.health is not Health.FAILING)
LOST = frozenset({DnsOutcome.TIMEOUT, DnsOutcome.NETWORK_ERROR})


PLAIN_CLIENTS = "glibc without `options edns0` (a pod's default resolv.conf) and musl (Alpine)"
OLD_MUSL = "musl before 1.2.4 (Alpine 3.17 and older) has no TCP fallback"


def profile_words(result: object) -> str:
    """What a client without EDNS (512-byte UDP) gets for this result's question, in one
    line for the detail screen; "" when nothing is known."""
    size = int(getattr(result, "size", 0) or 0)
    o = DnsOutcome._value2member_map_.get(getattr(result, "no_edns", "") or "")
    if o is DnsOutcome.TRUNCATED_TCP_OK:
        return f"truncated at 512 bytes (TC); its TCP retry works — {OLD_MUSL} and fails"
    if o is DnsOutcome.TRUNCATED_TCP_FAILED:
        return f"truncated at 512 bytes (TC) and TCP fails: {PLAIN_CLIENTS} cannot resolve it"
    if o is not None:
        return f"{o.value} (asked again without EDNS: the answer is {size} bytes)"
    if 0 < size <= 512:
        return f"fits in 512 bytes ({size}): every client gets it whole"
    return ""


class ProbeKey(NamedTuple):
    vantage: str
    resolver: str
    name: str
    qtype: str = "A"


@dataclass(frozen=True, slots=True)
class DnsResult:
    vantage: str
    resolver: str  # Resolver.key
    address: str  # production address queried (what the UI shows)
    target: str  # "host:port" actually dialled
    qname: str
    qtype: str
    outcome: DnsOutcome
    latency_ms: float  # send → answer (incl. TCP retry); time waited for timeouts
    answers: int = 0
    tc_seen: bool = False
    via_tcp: bool = False
    rcode: str = ""
    error: str = ""
    raw: str = ""
    timestamp: float = 0.0  # wall clock
    size: int = 0  # bytes of the answer (the whole one: over TCP after a truncation); 0: none
    # what a client without EDNS (512-byte UDP: glibc without `options edns0`, musl) gets
    # for the same question, a DnsOutcome value: asked only when the answer is over 512
    # bytes ("" when it fits, or nothing came), and the same outcome as this query's when
    # even the 1,232-byte EDNS answer was truncated
    no_edns: str = ""

    @property
    def key(self) -> ProbeKey:
        return ProbeKey(self.vantage, self.resolver, self.qname, self.qtype)

    @property
    def success(self) -> bool:
        """A usable answer came back (its latency counts in percentiles)."""
        return self.outcome in ANSWERED

    @property
    def lost(self) -> bool:
        """No answer at all (counts as loss)."""
        return self.outcome in LOST

    @property
    def profile_outcome(self) -> DnsOutcome | None:
        """The no-EDNS client's outcome when it was truncated (`judge` takes the worse of
        both); None when 512-byte clients get the answer whole or were not asked."""
        o = DnsOutcome._value2member_map_.get(self.no_edns)
        return o if isinstance(o, DnsOutcome) and o.truncation else None
