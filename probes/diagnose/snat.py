"""SNAT rules: exhaustion per node (F10) and the allocation tier ahead (F11)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from probes.diagnose.model import Finding, Observations, Severity, _egress_failing

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
            elif row.state == "warn":
                yield Finding(
                    "snat-pressure",
                    "F10",
                    Severity.WARNING,
                    f"node/{who}",
                    f"{pct:.0f}% of the node's {row.allocated} SNAT ports in use",
                    {"used": None if row.used is None else round(row.used), "allocated": row.allocated},
                    "find the pods opening many connections to one destination from this node",
                )
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
