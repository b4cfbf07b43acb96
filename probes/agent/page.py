"""The agent's side of the ``aksnet-top/agent/v1`` contract: one ``GET /v1/results``
answer as JSON bytes, with the standard library only.

The schema is declared in :mod:`probes.agent.wire` (msgspec structs the app decodes into,
types and bounds checked there); this module writes the same document with :mod:`json`
so the agent runs where only pure-Python packages can be had: the zipapp in a ConfigMap
on a stock Python image (:mod:`probes.agent.pyz`). The field order and the positional
rows are the schema's; ``tests/agent/test_agent_wire.py`` decodes what this writes.
"""

from __future__ import annotations

import json
import math
from typing import Any

from probes.dns.resolvers import Resolver, ResolverKind
from probes.dns.result import DnsResult

__all__ = ["SCHEMA", "CONTENT_TYPE", "TC_SEEN", "VIA_TCP", "encode"]

SCHEMA = "aksnet-top/agent/v1"
CONTENT_TYPE = "application/json"
TC_SEEN, VIA_TCP = 1, 2


def _r3(x: float) -> float:
    return round(x, 3) if math.isfinite(x) else 0.0


def _ms(x: float) -> float:
    return round(x, 3) if math.isfinite(x) and x >= 0 else 0.0


def _num(x: float) -> float:
    return float(x) if math.isfinite(x) else 0.0


def _slot(index: dict[str, int], items: list[str], key: str) -> int:
    """The position of `key` in `items` (the page's tables of names, targets and texts),
    appended when it is new."""
    i = index.get(key)
    if i is None:
        i = index[key] = len(items)
        items.append(key)
    return i


def encode(agent: Any, since: int = 0) -> bytes:
    """The agent's results with seq > `since`, as JSON bytes (see probes.agent.wire)."""
    s = agent.settings
    since = agent.effective_since(since)
    planned = tuple(getattr(agent, "resolvers", s.resolvers))  # CoreDNS pods included
    r_index = {r.key: i for i, r in enumerate(planned)}
    n_index = {n: i for i, n in enumerate(s.names)}
    t_index = {t.text: i for i, t in enumerate(s.targets)}
    texts: list[str] = [""]
    t_of: dict[str, int] = {"": 0}

    def text(v: str) -> int:
        return _slot(t_of, texts, v)

    raws = agent.raw_since(since)
    resolvers: list[Resolver] = list(planned)
    names = list(s.names)
    targets = [t.text for t in s.targets]
    dns: list[list[Any]] = []
    egress: list[list[Any]] = []
    for seq, r in agent.results_since(since):
        raw = text(raws[seq]) if seq in raws else 0
        if isinstance(r, DnsResult):
            ri = r_index.get(r.resolver)
            if ri is None:  # no longer probed (a CoreDNS pod gone), or not planned: list it
                ri = r_index[r.resolver] = len(resolvers)
                known = agent.resolver(r.resolver) if hasattr(agent, "resolver") else None
                resolvers.append(known or Resolver(r.resolver, ResolverKind.CUSTOM, r.address))
            ni = _slot(n_index, names, r.qname)
            dns.append(
                [
                    seq,
                    _r3(r.timestamp),
                    ri,
                    ni,
                    r.outcome.value,
                    _ms(r.latency_ms),
                    r.answers,
                    (TC_SEEN if r.tc_seen else 0) | (VIA_TCP if r.via_tcp else 0),
                    r.rcode,
                    text(r.error),
                    raw,
                    r.size,
                    r.no_edns or None,
                ]
            )
        else:
            ti = _slot(t_index, targets, r.target)
            egress.append(
                [
                    seq,
                    _r3(r.timestamp),
                    ti,
                    r.address,
                    r.mode.value,
                    r.outcome.value,
                    _ms(r.latency_ms),
                    text(r.error),
                    text(r.fallback),
                    r.via,
                    raw,
                    r.proxy,
                    r.status,
                ]
            )
    mode = agent.mode
    page = {
        "schema": SCHEMA,
        "node": s.node,
        "vantage": s.vantage,
        "version": agent.version,
        "started": _r3(agent.started),
        "now": _r3(agent.now()),
        "since": since,
        "seq": agent.seq,
        "oldest": agent.oldest,
        "dns_interval": _num(s.dns_interval),
        "egress_interval": _num(s.egress_interval),
        "mode": mode.value if mode is not None else None,
        "mode_requested": s.mode,
        "fallback": agent.fallback,
        "qtype": s.qtype,
        "resolvers": [
            {
                "key": r.key,
                "kind": r.kind.value,
                "address": r.address,
                "port": r.port,
                "target": list(r.target) if r.target is not None else None,
            }
            for r in resolvers
        ],
        "names": names,
        "targets": targets,
        "texts": texts,
        "dns": dns,
        "egress": egress,
        "errors": [[_r3(e.timestamp), e.message] for e in agent.errors],
        "echo": {"ip": agent.echo_ip, "at": _r3(agent.echo_at), "error": agent.echo_error} if s.echo_url else None,
    }
    return json.dumps(page, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8", "replace")
