"""Reports for the SNAT pane tests, built from injected samples (no Azure, fixed clocks)."""

from __future__ import annotations

import orjson

from probes.azure.service import AzureState, AzureTarget, SnatReport
from probes.azure.snat import allocation, join, node_findings, parse_metrics

T0 = 1795172400.0
SUB = "4b6c1f2e-8d3a-4e5f-9a7b-1c2d3e4f5a6b"
RG = "MC_rg-aks-lab_aks-lab_westeurope"
TARGET = AzureTarget(
    SUB,
    RG,
    cluster_name="aks-lab",
    lb_id=f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/loadBalancers/kubernetes",
    outbound_rule="aksOutboundRule",
    surge=1,
)


def node_name(i: int) -> str:
    pool, k = ("nodepool1", i) if i < 3 else ("userpool", i - 3)
    return f"aks-{pool}-12345678-vmss{k:06d}"


def samples(n: int, hot: int | None = 1, points: int = 30, start: int = 0) -> bytes:
    """`n` nodes at 10.224.x.y, 30 minutes from 10:00 + `start` minutes; node `hot` ramps
    into exhaustion with failures."""
    alloc = 1024 if n <= 50 else 512 if n <= 100 else 32
    ts = [f"2026-11-20T{10 + (start + m) // 60:02d}:{(start + m) % 60:02d}:00Z" for m in range(points)]
    a, u, c = [], [], []
    for i in range(n):
        ip = f"10.224.{i // 250}.{4 + i % 250}"
        md = [{"name": {"value": "backendipaddress"}, "value": ip}]
        base = (30 + (i * 37) % 50) * alloc / 1024
        used = [min(alloc, base + (alloc * m / 20 if i == hot else ((start + m) % 7))) for m in range(points)]
        a.append({"metadatavalues": md, "data": [{"timeStamp": t, "average": alloc, "maximum": alloc} for t in ts]})
        u.append(
            {
                "metadatavalues": md,
                "data": [{"timeStamp": t, "average": v * 0.95, "maximum": v} for t, v in zip(ts, used)],
            }
        )
        fails = [5.0 if i == hot and v >= alloc else 0.0 for v in used]
        c.append(
            {
                "metadatavalues": md + [{"name": {"value": "connectionstate"}, "value": "failed"}],
                "data": [{"timeStamp": t, "total": f} for t, f in zip(ts, fails)],
            }
        )
    return orjson.dumps(
        {
            "value": [
                {"name": {"value": "AllocatedSnatPorts"}, "timeseries": a},
                {"name": {"value": "UsedSnatPorts"}, "timeseries": u},
                {"name": {"value": "SnatConnectionCount"}, "timeseries": c},
            ]
        }
    )


def nodes(n: int) -> list[tuple[str, str, str]]:
    return [(node_name(i), f"10.224.{i // 250}.{4 + i % 250}", "nodepool1" if i < 3 else "userpool") for i in range(n)]


def live_report(n: int = 5, hot: int | None = 1, version: int = 1, start: int = 0) -> SnatReport:
    alloc = allocation(n, 1)
    table = join(parse_metrics(samples(n, hot, start=start)), nodes(n), alloc.expected)
    return SnatReport(
        version=version,
        state=AzureState.LIVE,
        target=TARGET,
        allocation=alloc,
        table=table,
        findings=node_findings(table, alloc) + alloc.findings,
        updated=T0,
        window_minutes=30,
    )


class FakeSource:
    def __init__(self, report: SnatReport) -> None:
        self.rep = report
        self.refreshes = 0

    def report(self) -> SnatReport:
        return self.rep

    def refresh_now(self) -> None:
        self.refreshes += 1
