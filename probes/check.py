"""`aksnet-top check`: one headless run of the sources and probes, then a verdict.

For pipelines right after `az aks upgrade`: list the cluster, probe for N cycles, apply
the rules, print a table or JSON, and exit 0 healthy / 1 warnings / 2 critical / 3 could
not run. Never imports textual.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from enum import IntEnum
from typing import IO, Any

from probes.config import Config
from probes.diagnose import Finding, Severity, diagnose, node_phase, observe
from probes.model import SourceState, Topology

SCHEMA = "aksnet-top/check/v1"


class Exit(IntEnum):
    HEALTHY = 0
    WARNING = 1
    CRITICAL = 2
    COULD_NOT_RUN = 3


@dataclasses.dataclass
class CheckResult:
    exit: Exit
    findings: list[Finding]
    report: dict[str, Any]


def exit_for(findings: list[Finding]) -> Exit:
    worst = max((f.severity for f in findings), default=Severity.INFO)
    return {Severity.INFO: Exit.HEALTHY, Severity.WARNING: Exit.WARNING, Severity.CRITICAL: Exit.CRITICAL}[worst]


def _topology_json(topo: Topology, now: float) -> dict[str, Any]:
    return {
        "cluster": topo.cluster,
        "plugin": topo.plugin.value,
        "dataplane": topo.dataplane,
        "pod_cidrs": list(topo.pod_cidrs),
        "dns_service_ip": topo.dns_service_ip,
        "server_version": topo.server_version,
        "nodes": len(topo.nodes),
        "nodes_ready": topo.ready_nodes,
        "pools": [{"name": p.name, "mode": p.mode, "nodes": p.nodes, "ready": p.ready, "vm_size": p.instance_type,
                   "kubelet_versions": list(p.kubelet_versions)} for p in topo.pools],
        "nodelocal": {"enabled": topo.nodelocal_enabled, "ready": sum(1 for p in topo.nodelocal.values() if p.ready)},
        "coredns": {"pods": len(topo.coredns), "ready": sum(1 for p in topo.coredns if p.ready)},
        "loadbalancer_services": [{"namespace": s.namespace, "name": s.name, "external_ips": list(s.external_ips),
                                   "pending": s.pending, "internal": s.internal_lb} for s in topo.services],
        "node_list": [{"name": n.name, "pool": n.pool, "internal_ip": n.internal_ip, "pod_cidrs": list(n.pod_cidrs),
                       "ready": n.ready, "cordoned": n.cordoned, "network_unavailable": n.network_unavailable,
                       "phase": node_phase(n, now) or None} for n in topo.nodes],
    }


def _dns_json(stats: dict[Any, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, st in sorted(stats.items(), key=lambda kv: tuple(kv[0])):
        rows.append({"vantage": key.vantage, "resolver": key.resolver, "name": key.name, "type": key.qtype,
                     "attempts": st.attempts, "loss_pct": round(st.loss_pct, 1),
                     "p50_ms": None if st.p50 is None else round(st.p50, 3),
                     "p95_ms": None if st.p95 is None else round(st.p95, 3),
                     "last_outcome": st.last_outcome, "last_error": st.last_error})
    return rows


def run(cfg: Config, *, demo: bool = False, cycles: int = 2, interval: float | None = None,
        clock: Callable[[], float] = time.monotonic, log: Callable[[str], None] | None = None) -> CheckResult:
    """Run sources and probes for `cycles` probe intervals; never raises for cluster trouble."""
    from probes.dnsservice import DnsService, DnsSettings
    from probes.kubesource import KubeSource
    from probes.state import Store

    say = log or (lambda _m: None)
    t0 = clock()
    lab = dns_demo = None
    kube = cfg.kube
    errors: list[str] = []
    if demo:
        from probes.lab.dnsdemo import DnsDemo
        from probes.lab.serve import start_embedded

        lab, kubeconfig = start_embedded(cfg.demo.scenario, nodes=cfg.demo.nodes or None)
        kube = dataclasses.replace(kube, kubeconfig=kubeconfig, context="")
        try:
            dns_demo = DnsDemo(lab.scenario).start()
        except Exception:
            lab.stop()
            raise
    settings = DnsSettings.from_config(cfg.dns)
    if interval is not None:
        settings = dataclasses.replace(settings, interval=interval, timeout=min(settings.timeout, interval))
    store = Store()
    source = KubeSource(store, kube)
    dns = DnsService(store, settings, vantage_map=dns_demo, poll=0.1)
    try:
        source.start()
        dns.start()
        synced = source.wait_synced(max(5.0, kube.request_timeout * 2))
        snap = store.snapshot()
        if not synced or "nodes" not in snap.synced:
            bad = [s for s in snap.statuses if s.state not in (SourceState.LIVE, SourceState.SYNCING)]
            errors = [f"{s.source}: {s.message}" + (f" — {s.detail}" if s.detail else "") for s in bad] or ["the cluster could not be listed in time"]
            return CheckResult(Exit.COULD_NOT_RUN, [], _report(snap.topology, {}, [], errors, cycles, settings.interval, snap.target, Exit.COULD_NOT_RUN))
        say(f"listed {len(snap.topology.nodes)} nodes in {clock() - t0:.2f}s; probing DNS for {cycles} cycles")
        # every planned probe has had `cycles` attempts, or the time for them is up
        deadline = clock() + cycles * settings.interval + settings.timeout + 2.0
        while clock() < deadline:
            plan = dns.plan()
            stats = dns.history.snapshot()
            if plan.jobs and len(stats) >= plan.jobs and all(st.attempts >= cycles for st in stats.values()):
                break
            time.sleep(0.05)
        snap = store.snapshot()
        stats = dns.history.snapshot()
        findings = diagnose(observe(snap.topology, stats))
        code = exit_for(findings)
        return CheckResult(code, findings, _report(snap.topology, stats, findings, errors, cycles, settings.interval, snap.target, code))
    finally:
        dns.stop(2.0)
        source.stop(2.0)
        if dns_demo is not None:
            dns_demo.stop()
        if lab is not None:
            lab.stop()


def _report(topo: Topology, stats: dict[Any, Any], findings: list[Finding], errors: list[str], cycles: int,
            interval: float, target: str, code: Exit) -> dict[str, Any]:
    now = time.time()
    return {
        "schema": SCHEMA,
        "generated_at": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
        "target": target,
        "cycles": cycles,
        "interval_s": interval,
        "status": {Exit.HEALTHY: "healthy", Exit.WARNING: "warning", Exit.CRITICAL: "critical", Exit.COULD_NOT_RUN: "error"}[code],
        "exit_code": int(code),
        "errors": errors,
        "findings": [f.to_json() for f in findings],
        "observations": {
            "topology": _topology_json(topo, now),
            "dns": _dns_json(stats),
            "egress": [],
            "snat": [],
            "routes": [],
        },
    }


def render_table(result: CheckResult, out: IO[str] = sys.stdout) -> None:
    """Plain text for a terminal or a CI log: status, then one block per finding."""
    r = result.report
    topo = r["observations"]["topology"]
    print(f"aksnet-top check: {r['status'].upper()} — {topo['cluster'] or r['target']} · {topo['plugin']} · "
          f"{topo['nodes_ready']}/{topo['nodes']} nodes ready · {len(r['observations']['dns'])} DNS probes × {r['cycles']} cycles", file=out)
    for e in r["errors"]:
        print(f"  error: {e}", file=out)
    if not result.findings and not r["errors"]:
        print("  no findings", file=out)
    for f in result.findings:
        fault = f" {f.fault}" if f.fault else ""
        print(f"  [{str(f.severity).upper():8}]{fault} {f.subject}: {f.cause}", file=out)
        if f.evidence:
            print("      evidence: " + ", ".join(f"{k}={v}" for k, v in f.evidence.items()), file=out)
        if f.next_step:
            print(f"      next: {f.next_step}", file=out)
