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


_DNS_HEALTH = {o: Health.FAILING for o in DnsOutcome}
_DNS_HEALTH.update(
    {DnsOutcome.OK: Health.GOOD, DnsOutcome.NXDOMAIN: Health.DEGRADED, DnsOutcome.TRUNCATED_TCP_OK: Health.DEGRADED}
)
_DNS_DOWN = frozenset({DnsOutcome.TIMEOUT, DnsOutcome.NETWORK_ERROR, DnsOutcome.SERVFAIL, DnsOutcome.REFUSED})
ANSWERED = frozenset(o for o in DnsOutcome if o.health is not Health.FAILING)
LOST = frozenset({DnsOutcome.TIMEOUT, DnsOutcome.NETWORK_ERROR})


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
