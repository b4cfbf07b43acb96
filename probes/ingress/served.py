"""What the HTTPS probe is pointed at and what its results say, for the engine, the
rules, the pane and `check`. Pure: no sockets, no ssl.

Which addresses a host is probed at (:func:`targets`): the addresses it resolves to from
this process's own vantage (what a client here gets), and its controller's load balancer
addresses when they differ (so a host resolving elsewhere shows both: what clients get,
and whether the controller itself serves it). Only hosts with a TLS entry (Ingress
``spec.tls``, a Gateway HTTPS listener) are probed; wildcards have nothing to dial.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from probes.engine.history import Stats
from probes.ingress.tlsresult import INGRESS_FAKE_CN, TlsKey, TlsOutcome, TlsResult
from probes.kube.model import LOCAL_VANTAGE

HTTPS_PORT = 443
MAX_ADDRESSES = 4  # per host: resolved first, then the load balancer's


def _is_ip(s: str) -> bool:
    parts = s.split(".")
    return (len(parts) == 4 and all(p.isdigit() for p in parts)) or ":" in s


def addresses_of(row: Any, vantage: str = LOCAL_VANTAGE) -> tuple[str, ...]:
    """The addresses to probe a host row (probes.ingress.view.HostRow) at."""
    resolved: list[str] = []
    for a in row.answers:
        if a.vantage == vantage and a.outcome == "ok":
            resolved.extend(a.addresses)
    expected = [e for e in row.expected if _is_ip(e)]
    return tuple(dict.fromkeys(resolved + expected))[:MAX_ADDRESSES]


def targets(view: Any, vantage: str = LOCAL_VANTAGE) -> list[tuple[str, str, int]]:
    """(host, address, 443) for every host with a TLS entry in an IngressView."""
    out: list[tuple[str, str, int]] = []
    if view is None:
        return out
    for row in view.host_rows():
        if row.tls is None or row.host.startswith("*"):
            continue
        for addr in addresses_of(row, vantage):
            out.append((row.host, addr, HTTPS_PORT))
    return out


# (stats, its keys, host -> its keys): the last mapping's; the keys move far less often than
# the stats (a frame's mapping is new whenever a result came in, its keys the same)
_INDEX: tuple[Any, Any, dict[str, list[TlsKey]]] = (None, None, {})


def by_host(stats: Mapping[Any, Stats]) -> dict[str, list[tuple[TlsKey, Stats]]]:
    """The probe rows by host (rows never probed left out)."""
    out: dict[str, list[tuple[TlsKey, Stats]]] = {}
    for host, keys in _keys_by_host(stats).items():
        got = [(k, stats[k]) for k in keys if stats[k].attempts]
        if got:
            out[host] = got
    return out


def _keys_by_host(stats: Mapping[Any, Stats]) -> dict[str, list[TlsKey]]:
    """The HTTPS keys by host; the last index is kept while the keys are the same (the pane
    and the rules ask for every host of each frame's mapping: one pass over the keys when
    they change, not one per frame, nor per host)."""
    global _INDEX
    memo = _INDEX
    if memo[0] is stats:
        return memo[2]
    keys = stats.keys()
    old = memo[1]
    if old is not None and len(old) == len(stats) and old == keys:
        _INDEX = (stats, old, memo[2])
        return memo[2]
    index: dict[str, list[TlsKey]] = {}
    for k in keys:
        if isinstance(k, TlsKey):
            index.setdefault(k.host, []).append(k)
    _INDEX = (stats, frozenset(keys), index)
    return index


def results_for(stats: Mapping[Any, Stats] | None, row: Any) -> list[tuple[TlsKey, Stats]]:
    """A host row's probe rows, what clients get first (resolved addresses), then the
    load balancer's; rows never probed yet are left out."""
    if not stats:
        return []
    host = row.host.lower().rstrip(".")
    mine = _keys_by_host(stats).get(host)
    if not mine:
        return []
    order = {a: i for i, a in enumerate(addresses_of(row))}
    got = [(k, stats[k]) for k in mine if k.address in order and stats[k].attempts]
    got.sort(key=lambda kv: (order[kv[0].address], kv[0].vantage))
    return got


def outcome(st: Stats) -> TlsOutcome | None:
    return TlsOutcome._value2member_map_.get(st.last_outcome)  # type: ignore[return-value]


def is_fake(r: Any) -> bool:
    leaf = getattr(r, "leaf", None)
    return leaf is not None and leaf.subject_cn == INGRESS_FAKE_CN


def verdict(r: TlsResult) -> str:
    """One short phrase: valid 89 d / expiring in 5 d / expired 2 d ago / wrong host /
    untrusted / refused / timeout / …"""
    o = r.outcome
    days = r.days_left
    if o is TlsOutcome.VALID:
        return f"valid, {days:.0f} d left" if days is not None else "valid"
    if o is TlsOutcome.EXPIRING:
        return f"expiring in {days:.1f} d" if days is not None else "expiring"
    if o is TlsOutcome.EXPIRED:
        return f"expired {-days:.0f} d ago" if days is not None else "expired"
    if o is TlsOutcome.UNTRUSTED and is_fake(r):
        return "untrusted (the controller's Fake Certificate)"
    return str(o.value).replace("-", " ")


def issuer_of(r: Any) -> str:
    leaf = getattr(r, "leaf", None)
    if leaf is None:
        return ""
    return str(leaf.issuer_cn or leaf.issuer)


def summary(r: TlsResult) -> str:
    """A result in one line for evidence and JSON: '<verdict>, issuer <cn>[, HEAD / 200]'."""
    parts = [verdict(r)]
    iss = issuer_of(r) if not is_fake(r) else ""
    if iss:
        parts.append(f"issuer {iss}")
    if r.http_status is not None:
        parts.append(f"HEAD / {r.http_status}")
    return ", ".join(parts)


def rows_text(rows: Iterable[tuple[TlsKey, Stats]]) -> str:
    """'addr:port: summary; …' for evidence."""
    out = []
    for k, st in rows:
        r = st.last
        said = summary(r) if isinstance(r, TlsResult) else (st.last_outcome or "?")
        out.append(f"{k.address}:{k.port}: {said}")
    return "; ".join(out)


__all__ = [
    "HTTPS_PORT",
    "addresses_of",
    "by_host",
    "is_fake",
    "issuer_of",
    "outcome",
    "results_for",
    "rows_text",
    "summary",
    "targets",
    "verdict",
]
