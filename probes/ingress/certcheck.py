"""Judging a certificate chain the way a browser would: the CAs trusted (the system's
store or a CA bundle), each certificate parsed once into its summary, the host's name
matched (RFC 6125), and the verdict in the order an operator fixes things: untrusted →
wrong host → expired / not yet valid → expiring → valid.

``cryptography``'s verifier applies the WebPKI rules; no I/O but reading the CA files.
The handshake that fetches the chain is probes/ingress/tlsprobe.py.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import os
import re
import ssl
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    DNSName,
    ExtensionPolicy,
    IPAddress,
    PolicyBuilder,
    Store,
    VerificationError,
)

from probes.ingress.tlsresult import EXPIRING_DAYS, INGRESS_FAKE_CN, CertSummary, TlsOutcome

# --- trusted CAs -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrustedCAs:
    """The CA certificates a probe trusts, ready for cryptography's verifier."""

    store: Store | None  # None: no CA could be loaded (every chain is then untrusted)
    subjects: frozenset[bytes]  # DER of each CA's subject name (to say "unknown CA")
    source: str  # where they came from, for messages
    count: int


_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_trust_lock = threading.Lock()
_trust_cache: dict[tuple[str, float], TrustedCAs] = {}


def _system_bundle() -> list[str]:
    """The system's CA files: the default bundle file, else every file of the CA directory."""
    paths = ssl.get_default_verify_paths()
    for f in (os.environ.get(paths.openssl_cafile_env or ""), paths.cafile, paths.openssl_cafile):
        if f and os.path.isfile(f):
            return [f]
    for d in (os.environ.get(paths.openssl_capath_env or ""), paths.capath, paths.openssl_capath):
        if d and os.path.isdir(d):
            return sorted(os.path.join(d, n) for n in os.listdir(d) if os.path.isfile(os.path.join(d, n)))
    return []


def _load_cas(files: list[str], source: str) -> TrustedCAs:
    certs: list[x509.Certificate] = []
    seen: set[bytes] = set()
    for f in files:
        try:
            with open(f, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        for block in _PEM.findall(data):
            try:
                with warnings.catch_warnings():  # old roots with odd serials: said once, by cryptography
                    warnings.simplefilter("ignore")
                    c = x509.load_pem_x509_certificate(block)
            except ValueError:
                continue  # one odd certificate in a bundle is left out, not the bundle
            fp = c.fingerprint(_SHA256)
            if fp not in seen:
                seen.add(fp)
                certs.append(c)
    store = Store(certs) if certs else None
    return TrustedCAs(store, frozenset(c.subject.public_bytes() for c in certs), source, len(certs))


def trusted_cas(ca_bundle: str | None = None) -> TrustedCAs:
    """The CAs in `ca_bundle` (a PEM file), or the system's store when None. Cached per
    file and modification time. Raises ValueError (one line) for a bundle that cannot be
    read or holds no certificate."""
    if ca_bundle:
        try:
            mtime = os.stat(ca_bundle).st_mtime
        except OSError as e:
            raise ValueError(f"CA bundle {ca_bundle}: {e.strerror or e}") from None
        key = (ca_bundle, mtime)
    else:
        key = ("", 0.0)
    with _trust_lock:
        hit = _trust_cache.get(key)
    if hit is not None:
        return hit
    if ca_bundle:
        cas = _load_cas([ca_bundle], f"CA bundle {ca_bundle}")
        if cas.store is None:
            raise ValueError(f"CA bundle {ca_bundle}: no PEM certificate in it")
    else:
        files = _system_bundle()
        where = files[0] if len(files) == 1 else os.path.dirname(files[0]) if files else "no CA file found"
        cas = _load_cas(files, f"the system CA store ({where})")
    with _trust_lock:
        _trust_cache[key] = cas
    return cas


# --- certificates ------------------------------------------------------------------------

_SHA256 = hashes.SHA256()


def _cn(name: x509.Name) -> str:
    try:
        attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return ""
    v = attrs[0].value if attrs else ""
    return v if isinstance(v, str) else v.decode("utf-8", "replace")


def _sans(c: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    return (*ext.get_values_for_type(x509.DNSName), *(str(a) for a in ext.get_values_for_type(x509.IPAddress)))


def _self_signed(c: x509.Certificate) -> bool:
    if c.issuer != c.subject:
        return False
    try:
        c.verify_directly_issued_by(c)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def _is_ca(c: x509.Certificate) -> bool:
    try:
        return bool(c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


@functools.lru_cache(maxsize=4096)
def parse_cert(der: bytes) -> tuple[x509.Certificate, CertSummary]:
    """A certificate from the wire and its summary, parsed once per distinct certificate
    (1,000 hosts behind one ingress send a handful of certificates between them). Raises
    ValueError for bytes that are not a certificate."""
    try:
        c = x509.load_der_x509_certificate(der)
    except x509.InvalidVersion as e:  # not a ValueError in cryptography: a damaged version field
        raise ValueError(f"not a certificate: {e}") from None
    try:  # cryptography parses the names lazily: a damaged one raises here, as TypeError too
        summary = CertSummary(
            subject_cn=_cn(c.subject),
            sans=_sans(c),
            issuer_cn=_cn(c.issuer),
            issuer=c.issuer.rfc4514_string(),
            not_before=c.not_valid_before_utc.timestamp(),
            not_after=c.not_valid_after_utc.timestamp(),
            self_signed=_self_signed(c),
            is_ca=_is_ca(c),
            serial=format(c.serial_number, "x"),
            sha256=hashlib.sha256(der).hexdigest(),
        )
    except (TypeError, ValueError) as e:
        raise ValueError(f"not a certificate: {e}") from None
    return c, summary


def host_matches(sans: Iterable[str], host: str) -> bool:
    """RFC 6125 as browsers apply it: a DNS name equal to the host (case-insensitive) or a
    wildcard as the whole leftmost label standing for exactly one label; an IP host only
    against IP addresses. The subject's CN is not looked at (browsers stopped in 2017)."""
    h = host.rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        ip = None
    for san in sans:
        if ip is not None:
            try:
                if ipaddress.ip_address(san) == ip:
                    return True
            except ValueError:
                pass
            continue
        s = san.rstrip(".").lower()
        if s == h:
            return True
        if s.startswith("*.") and "*" not in s[2:]:
            head, _, rest = h.partition(".")
            if head and rest == s[2:] and rest.count(".") >= 1:
                return True
    return False


_ENCOUNTERED = re.compile(r"\s*\(encountered processing .*\)\s*$", re.S)


def _why(e: VerificationError) -> str:
    text = _ENCOUNTERED.sub("", str(e)).removeprefix("validation failed: ")
    if "not valid at validation time" in text:
        return "a certificate in the chain is outside its dates (an expired intermediate?)"
    return text[:200]


def _names(sans: tuple[str, ...]) -> str:
    if not sans:
        return "no name at all (no subjectAltName)"
    shown = ", ".join(sans[:3])
    return shown + (f" (+{len(sans) - 3} more)" if len(sans) > 3 else "")


def _untrusted_why(chain: list[tuple[x509.Certificate, CertSummary]], cas: TrustedCAs, e: VerificationError) -> str:
    leaf, ls = chain[0]
    if cas.store is None:
        return f"no trusted CA could be loaded from {cas.source}"
    if ls.self_signed:
        if ls.subject_cn == INGRESS_FAKE_CN:
            return f"self-signed '{INGRESS_FAKE_CN}': the ingress controller has no certificate for this host"
        return f"self-signed certificate (CN={ls.subject_cn or '?'}), not from a trusted CA"
    top, ts = chain[-1]
    if ts.self_signed and top.subject.public_bytes() not in cas.subjects:
        return f"the chain ends at {ts.subject_cn or ts.issuer}, which is not a trusted CA (a private CA?)"
    if top.issuer.public_bytes() not in cas.subjects:
        hint = "" if len(chain) > 1 else " (or the server does not send its intermediate)"
        return f"issued by {ts.issuer_cn or ts.issuer}, which is not a CA trusted here ({cas.source}){hint}"
    return _why(e)


def _at(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


_CACHE_MAX = 4096
# chains that passed the full check for a host: (earliest, latest) moment it holds (the
# validated chain's dates; WebPKI verification depends on nothing else that moves)
_passed: dict[tuple[tuple[bytes, ...], str, int], tuple[float, float]] = {}


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_MAX:
        for k in list(cache)[: _CACHE_MAX // 2]:  # the oldest half
            cache.pop(k, None)
    cache[key] = value


def _subject(host: str) -> DNSName | IPAddress:
    try:
        return IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return DNSName(host.rstrip("."))


def _verify_now(
    key: tuple[bytes, ...], chain: list[tuple[x509.Certificate, CertSummary]], host: str, cas: TrustedCAs, now: float
) -> tuple[bool, str]:
    """The whole check, as a browser makes it at `now`: (passed, why not)."""
    assert cas.store is not None
    ck = (key, host, id(cas))
    hit = _passed.get(ck)
    if hit is not None and hit[0] <= now <= hit[1]:
        return True, ""
    try:
        built = (
            PolicyBuilder()
            .store(cas.store)
            .time(_at(now))
            .build_server_verifier(_subject(host))
            .verify(chain[0][0], [c for c, _ in chain[1:]])
        )
    except VerificationError as e:
        return False, _why(e)
    except ValueError as e:  # a host the verifier cannot take as a name
        return False, f"{host}: {e}"[:200]
    lo = max(c.not_valid_before_utc.timestamp() for c in built)
    hi = min(c.not_valid_after_utc.timestamp() for c in built)
    _remember(_passed, ck, (lo, hi))
    return True, ""


def _untrusted(chain: list[tuple[x509.Certificate, CertSummary]], cas: TrustedCAs, now: float) -> str:
    """Why the chain is not trusted at the moment nearest `now` that its leaf is valid
    (the leaf's own dates are judged apart); "" when it is trusted."""
    assert cas.store is not None
    ls = chain[0][1]
    try:
        (
            PolicyBuilder()
            .store(cas.store)
            .time(_at(min(max(now, ls.not_before), ls.not_after)))
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all())
            .build_client_verifier()
            .verify(chain[0][0], [c for c, _ in chain[1:]])
        )
    except VerificationError as e:
        return _untrusted_why(chain, cas, e)
    return ""


def classify(
    ders: list[bytes], host: str, cas: TrustedCAs, now: float, expiring_days: float = EXPIRING_DAYS
) -> tuple[TlsOutcome, str, tuple[CertSummary, ...]]:
    """Judge a chain as the server sent it (leaf first) for `host` at `now` (epoch s):
    the outcome, why (empty when valid) and the chain's summaries.

    A chain that passes the whole check is remembered for as long as that holds: probing
    a healthy host again costs no verification (a failing one is judged afresh)."""
    chain: list[tuple[x509.Certificate, CertSummary]] = []
    for der in ders:
        try:
            chain.append(parse_cert(der))
        except ValueError as e:
            if not chain:
                return TlsOutcome.TLS_ERROR, f"the server's certificate could not be read: {e}"[:200], ()
            break  # an unreadable extra certificate: judge what came before it
    if not chain:
        return TlsOutcome.TLS_ERROR, "the server sent no certificate", ()
    summaries = tuple(s for _, s in chain)
    ls = chain[0][1]
    if cas.store is None:
        return TlsOutcome.UNTRUSTED, f"no trusted CA could be loaded from {cas.source}", summaries
    key = tuple(ders[: len(chain)])
    host = host.rstrip(".")
    days = ls.days_left(now)
    ok, why_now = _verify_now(key, chain, host, cas, now)
    if ok:
        if days < expiring_days:
            return TlsOutcome.EXPIRING, f"expires in {days:.1f} days (notAfter {ls.not_after_text})", summaries
        return TlsOutcome.VALID, "", summaries
    # what is wrong, in the order it is fixed: the chain (at a moment the leaf is valid:
    # its dates are judged apart), the name, the leaf's dates, then whatever else failed
    why = _untrusted(chain, cas, now)
    if why:
        return TlsOutcome.UNTRUSTED, why, summaries
    if not host_matches(ls.sans, host):
        return TlsOutcome.WRONG_HOST, f"the certificate is for {_names(ls.sans)}, not {host}", summaries
    if now > ls.not_after:
        return TlsOutcome.EXPIRED, f"expired {-days:.1f} days ago (notAfter {ls.not_after_text})", summaries
    if now < ls.not_before:
        return TlsOutcome.NOT_YET_VALID, f"not valid before {ls.not_before_text}", summaries
    return TlsOutcome.UNTRUSTED, why_now, summaries


__all__ = ["INGRESS_FAKE_CN", "TrustedCAs", "classify", "host_matches", "parse_cert", "trusted_cas"]
