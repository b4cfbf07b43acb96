"""SNAT rules: exhaustion per node (F10), pressure with the time left (F18) and the
allocation tier ahead (F11)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from probes.diagnose.model import Finding, Observations, Severity, _egress_failing

# FAULTS F18: 80 % of the allocation used, no failure yet, is a warning; 95 % is critical,
# as is a slope that reaches the allocation within 15 minutes (one Azure Monitor minute
# per point, so 15 points of warning at the most).
PRESSURE_PCT = 80.0
CRITICAL_PCT = 95.0
SOON_S = 15 * 60
# the slope is a least-squares fit over the last points of the per-minute Maximum: three
# points at least (two are one burst), ten at most (older minutes describe another load)
SLOPE_MIN_POINTS = 3
SLOPE_MAX_POINTS = 10


def slope_per_s(times: Any, used: Any) -> float | None:
    """Ports per second over the newest points (least squares), None without enough."""
    pts = [(float(t), float(u)) for t, u in zip(times, used) if u == u][-SLOPE_MAX_POINTS:]
    if len(pts) < SLOPE_MIN_POINTS:
        return None
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mu = sum(u for _, u in pts) / n
    var = sum((t - mt) ** 2 for t, _ in pts)
    if var <= 0:
        return None
    return sum((t - mt) * (u - mu) for t, u in pts) / var


def time_left(row: Any) -> float | None:
    """Seconds until the node's SNAT ports run out at the current slope; None when not rising."""
    if row.used is None or not row.allocated:
        return None
    slope = slope_per_s(getattr(row, "times", ()) or (), getattr(row, "used_series", ()) or ())
    if slope is None or slope <= 0:
        return None
    return max(0.0, float(row.allocated - row.used) / slope)


def _minutes(s: float) -> str:
    return f"{s / 60:.0f} min" if s >= 60 else f"{s:.0f} s"


def _pressure(row: Any, pct: float) -> Finding:
    who = row.node or f"backend {row.ip}"
    left = time_left(row)
    soon = left is not None and left <= SOON_S
    critical = pct >= CRITICAL_PCT or soon
    when = f"; at the current slope they run out in about {_minutes(left)}" if left is not None else ""
    return Finding(
        "snat-pressure",
        "F18",
        Severity.CRITICAL if critical else Severity.WARNING,
        f"node/{who}",
        f"{pct:.0f}% of the node's {row.allocated} SNAT ports in use, no failed connection yet{when}",
        {
            "used": None if row.used is None else round(row.used),
            "allocated": row.allocated,
            "pct": f"{pct:.0f}%",
            "time_left": "not rising" if left is None else _minutes(left),
        },
        "find the pods opening many connections to one destination from this node (keep-alive, pooling); "
        "add outbound IPs or raise allocatedOutboundPorts before it fails",
    )


# per SNAT table (a new one each minute): its rows under pressure. The rules run every
# second or so; each run then reads those rows, not every node's.
_MEMO: list[Any] = [None, ()]


def _pressed(table: Any) -> tuple[Any, ...]:
    if _MEMO[0] is not table:
        _MEMO[:] = [table, tuple(r for r in table.nodes if r.failed > 0 or r.state in ("warn", "critical"))]
    return _MEMO[1]  # type: ignore[no-any-return]


def rule_snat(obs: Observations) -> Iterable[Finding]:
    """F10 from Azure Monitor per node; F11 from the allocation rules (tier drop, surge)."""
    table = obs.snat
    if table is not None:
        for row in _pressed(table):
            who = row.node or f"backend {row.ip}"
            pct = row.pct
            if row.failed > 0 or (pct is not None and pct >= 100):
                failing = sorted(
                    {
                        k.target
                        for k, st in obs.egress.items()
                        if k.vantage == f"node/{row.node}" and _egress_failing(st)
                    }
                )
                yield Finding(
                    "snat-exhausted",
                    "F10",
                    Severity.CRITICAL,
                    f"node/{who}",
                    "SNAT ports exhausted on this node: its new outbound connections are dropped at the load balancer while other nodes are fine",
                    {
                        "used": None if row.used is None else round(row.used),
                        "allocated": row.allocated,
                        "pct": "?" if pct is None else f"{pct:.0f}%",
                        "failed_connections": round(row.failed),
                        **({"egress_failing": ", ".join(failing[:3])} if failing else {}),
                    },
                    "reuse connections (keep-alive, pooling), add outbound IPs or raise allocatedOutboundPorts, or move to a NAT Gateway",
                )
            elif pct is not None and pct >= PRESSURE_PCT:
                yield _pressure(row, pct)
    alloc = obs.snat_allocation
    if alloc is not None:
        for f in alloc.findings:
            sev = {"critical": Severity.CRITICAL, "warning": Severity.WARNING}.get(f.severity, Severity.INFO)
            yield Finding(
                "snat-allocation",
                "F11",
                sev,
                "cluster",
                f.text,
                {
                    "nodes": alloc.nodes,
                    "surge": alloc.surge,
                    "ports_now": alloc.expected,
                    "ports_during_surge": alloc.during_surge,
                    "outbound_ips": alloc.outbound_ips,
                    "tier": alloc.tier,
                },
                "before the upgrade: set allocatedOutboundPorts with enough outbound IPs, or lower maxSurge",
            )
