"""`check --json`'s `observations.ingress`: every ingress host with what it resolves to and
what its HTTPS endpoint served, and the LoadBalancer services. Pure: from a frame's
IngressView and the HTTPS probe's rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from probes.engine.history import Stats, judge
from probes.ingress.served import issuer_of, results_for, verdict
from probes.ingress.tlsresult import TlsOutcome, TlsResult


def _rounded(v: float | None, n: int = 1) -> float | None:
    return None if v is None else round(v, n)


def https_json(key: Any, st: Stats) -> dict[str, Any]:
    r = st.last if isinstance(st.last, TlsResult) else None
    leaf = r.leaf if r is not None else None
    return {
        "vantage": key.vantage,
        "address": key.address,
        "port": key.port,
        "attempts": st.attempts,
        "outcome": st.last_outcome,
        "health": judge(st, TlsOutcome).value,
        "verdict": verdict(r) if r is not None else st.last_outcome,
        "days_left": _rounded(r.days_left if r is not None else None),
        "subject": leaf.subject_cn if leaf is not None else None,
        "issuer": (issuer_of(r) or None) if r is not None else None,
        "not_after": leaf.not_after_text if leaf is not None else None,
        "chain": [c.subject_cn for c in r.chain] if r is not None else [],
        "handshake_p50_ms": _rounded(st.p50, 3),
        "http_status": r.http_status if r is not None else None,
        "error": st.last_error or None,
    }


def ingress_json(view: Any, https: Mapping[Any, Stats] | None, plan: Any = None) -> dict[str, Any]:
    """{"hosts": [...], "load_balancers": [...], "https": {...}} (empty lists without a view)."""
    hosts: list[dict[str, Any]] = []
    lbs: list[dict[str, Any]] = []
    if view is not None:
        for row in view.host_rows():
            t = row.tls
            hosts.append(
                {
                    "host": row.host,
                    "class": row.class_name,
                    "source": row.source,
                    "expected": list(row.expected),
                    "resolved": list(row.resolved),
                    "dns": row.dns,
                    "answers": [
                        {
                            "vantage": a.vantage,
                            "resolver": a.resolver,
                            "outcome": a.outcome,
                            "addresses": list(a.addresses),
                        }
                        for a in row.answers
                    ],
                    "tls": None
                    if t is None
                    else {
                        "certificate": t.certificate or None,
                        "secret": t.secret,
                        "ready": t.ready,
                        "reason": t.reason,
                        "not_after": t.not_after or None,
                    },
                    "https": [https_json(k, st) for k, st in results_for(https, row)],
                }
            )
        for lb in view.lbs:
            s = lb.service
            lbs.append(
                {
                    "service": s.key,
                    "external": list(s.external),
                    "pending": s.pending,
                    "controller": lb.controller or None,
                    "endpoints_ready": lb.ready if lb.sliced else None,
                    "endpoints": lb.total if lb.sliced else None,
                    "probes": [p.text for p in lb.probes],
                }
            )
    out: dict[str, Any] = {"hosts": hosts, "load_balancers": lbs}
    out["https"] = {
        "enabled": plan is not None,
        "probed": len(getattr(plan, "targets", ())),
        "left_out": list(getattr(plan, "left_out", ())),
        "left_out_count": getattr(plan, "left_out_count", 0),
        "error": getattr(plan, "error", "") or None,
    }
    return out


__all__ = ["https_json", "ingress_json"]
