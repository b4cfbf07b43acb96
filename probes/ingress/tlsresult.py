"""What an HTTPS probe of one host ends as: its outcome (and what that means for health),
the certificate chain summary, the record kept for it and the key it is filed under.

Pure data, its own module (like probes/dns/result.py and probes/egress/result.py) so that
the rules and the panes can ask an outcome what it means without importing ssl, asyncio
or cryptography (probes/ingress/tlsprobe.py does the handshake).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from probes.engine.health import Health

INGRESS_FAKE_CN = "Kubernetes Ingress Controller Fake Certificate"  # ingress-nginx's default
EXPIRING_DAYS = 14.0  # a certificate with fewer days left is "expiring" (F23)


class TlsOutcome(str, Enum):
    VALID = "valid"  # trusted chain, the host's name, within its dates, > 14 days left
    EXPIRING = "expiring"  # as valid, but fewer than EXPIRING_DAYS left
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    WRONG_HOST = "wrong-host"  # trusted, but issued for other names (SNI not served?)
    UNTRUSTED = "untrusted"  # self-signed, unknown CA, incomplete chain
    TLS_ERROR = "tls-error"  # the TCP handshake completed, the TLS one did not (not TLS, alert, reset)
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    LOCAL_ERROR = "local-error"  # this host: no descriptors, no free port

    @property
    def health(self) -> Health:
        """Only a certificate a browser would accept is good; one about to expire is worth
        a look (degraded); everything else fails the host."""
        return _TLS_HEALTH[self]

    @property
    def down(self) -> bool:
        """No TLS server answered at all (what History counts as loss)."""
        return self in _TLS_DOWN

    @property
    def handshake(self) -> bool:
        """A TLS handshake completed and a certificate came back (its time is a latency)."""
        return self in _HANDSHAKE


_TLS_HEALTH = {o: Health.FAILING for o in TlsOutcome}
_TLS_HEALTH.update({TlsOutcome.VALID: Health.GOOD, TlsOutcome.EXPIRING: Health.DEGRADED})
_TLS_DOWN = frozenset({TlsOutcome.REFUSED, TlsOutcome.TIMEOUT, TlsOutcome.UNREACHABLE})
_HANDSHAKE = frozenset(
    {
        TlsOutcome.VALID,
        TlsOutcome.EXPIRING,
        TlsOutcome.EXPIRED,
        TlsOutcome.NOT_YET_VALID,
        TlsOutcome.WRONG_HOST,
        TlsOutcome.UNTRUSTED,
    }
)


@dataclass(frozen=True, slots=True)
class CertSummary:
    """One certificate as the server sent it. Immutable and shared: the probe parses each
    distinct certificate once, so a history of results holds one copy of it."""

    subject_cn: str
    sans: tuple[str, ...]  # DNS names and IP addresses, as in the certificate
    issuer_cn: str
    issuer: str  # RFC 4514, e.g. "CN=R11,O=Let's Encrypt,C=US"
    not_before: float  # seconds since the epoch (UTC)
    not_after: float
    self_signed: bool  # issuer == subject and its own key signed it
    is_ca: bool
    serial: str  # hex
    sha256: str  # fingerprint of the DER, hex

    def days_left(self, at: float) -> float:
        """Days from `at` (epoch seconds) to notAfter; negative once expired."""
        return (self.not_after - at) / 86400.0

    @property
    def not_after_text(self) -> str:
        return _utc(self.not_after)

    @property
    def not_before_text(self) -> str:
        return _utc(self.not_before)


def _utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


class TlsKey(NamedTuple):
    """One row: a host as dialled from a vantage at one address (a host served from two
    addresses is two rows)."""

    vantage: str
    host: str
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class TlsResult:
    vantage: str
    host: str  # the name asked for: the SNI and the name the certificate must carry
    address: str  # the address planned for it (the ingress IP)
    port: int
    outcome: TlsOutcome
    latency_ms: float  # the TLS handshake (ClientHello -> Finished) when one completed; time waited otherwise
    connect_ms: float = 0.0  # the TCP handshake before it (0 when it did not complete)
    chain: tuple[CertSummary, ...] = ()  # leaf first, as the server sent it
    tls_version: str = ""  # "TLSv1.3"
    cipher: str = ""
    http_status: int | None = None  # HEAD / answered (only when asked for)
    http_error: str = ""  # why HEAD / gave no status (only when asked for)
    error: str = ""  # why, in the operator's words (empty only when valid)
    timestamp: float = 0.0  # wall clock at the start of the probe
    via: str = ""  # "addr:port" actually dialled when a dial map redirected it (the lab)
    raw: str = ""

    @property
    def key(self) -> TlsKey:
        return TlsKey(self.vantage, self.host, self.address, self.port)

    @property
    def success(self) -> bool:
        """A handshake completed (its time counts in the percentiles), whatever the cert."""
        return self.outcome.handshake

    @property
    def lost(self) -> bool:
        return self.outcome.down

    @property
    def handshake_ms(self) -> float | None:
        return self.latency_ms if self.outcome.handshake else None

    @property
    def leaf(self) -> CertSummary | None:
        return self.chain[0] if self.chain else None

    @property
    def days_left(self) -> float | None:
        """The leaf's days left at the probe's time (None without a certificate)."""
        leaf = self.leaf
        return leaf.days_left(self.timestamp) if leaf is not None else None


__all__ = ["EXPIRING_DAYS", "INGRESS_FAKE_CN", "CertSummary", "TlsKey", "TlsOutcome", "TlsResult"]
