"""`aksnet-top check`: one headless run of the sources and probes, then a verdict.

For pipelines right after `az aks upgrade`: list the cluster, probe for N cycles, apply
the rules, print a table or JSON, and exit 0 healthy / 1 warnings / 2 critical / 3 could
not run (probes.exitcodes). The demo is reached through probes.demo. Never imports textual.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO, Any

from probes.agent.rounds import MAX_ROUNDS, ROUND_WAIT
from probes.azure.routes import routes_json
from probes.config import Config
from probes.diagnose import Finding, Severity, node_phase
from probes.dns.result import DnsOutcome, ProbeKey
from probes.egress.result import EgressKey, EgressOutcome
from probes.engine.frame import Frame
from probes.engine.history import judge
from probes.engine.publisher import Publisher, not_probed
from probes.engine.store import Store
from probes.exitcodes import ExitCode
from probes.ingress.report import ingress_json
from probes.ingress.tlsresult import TlsKey
from probes.kube.kinds import OPTIONAL_SOURCES
from probes.kube.model import NetworkPlugin, SourceState, SourceStatus, Topology
from probes.phases import Phases

SCHEMA = "aksnet-top/check/v1"
KUBE_SOURCE = "kubernetes"  # the status source of the API server and its kinds ("kubernetes/nodes", …)
_log = logging.getLogger("aksnet-top.check")

Exit = ExitCode  # check's verdicts are the shared exit codes (probes.exitcodes)


@dataclasses.dataclass
class CheckResult:
    exit: Exit
    findings: list[Finding]
    report: dict[str, Any]


def _status_error(s: SourceStatus) -> str:
    return f"{s.source}: {s.message}" + (f" — {s.detail}" if s.detail else "")


PROGRESS = (SourceState.CONNECTING, SourceState.SYNCING)


def _status_errors(log: Iterable[SourceStatus], now: Iterable[SourceStatus]) -> list[str]:
    """One line per Kubernetes source status that was not live: the failures in `log`
    (what happened during the run) and every status in `now` that is not live (progress
    included: a kind still listing did not give the run its data), each once, in order."""
    out: list[str] = []
    seen = [s for s in log if s.state not in PROGRESS or s.stale_since is not None] + list(now)
    for s in seen:
        if s.state is SourceState.FORBIDDEN and s.source in OPTIONAL_SOURCES:
            continue  # a NetworkPolicy kind the role may not read: F21 goes without, the topology stands
        if s.source.startswith(KUBE_SOURCE) and s.state is not SourceState.LIVE:
            line = _status_error(s)
            if line not in out:
                out.append(line)
    return out


def exit_for(findings: list[Finding]) -> Exit:
    worst = max((f.severity for f in findings), default=Severity.INFO)
    return {Severity.INFO: Exit.HEALTHY, Severity.WARNING: Exit.WARNINGS, Severity.CRITICAL: Exit.CRITICAL}[worst]


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
        "pools": [
            {
                "name": p.name,
                "mode": p.mode,
                "nodes": p.nodes,
                "ready": p.ready,
                "vm_size": p.instance_type,
                "kubelet_versions": list(p.kubelet_versions),
            }
            for p in topo.pools
        ],
        "nodelocal": {"enabled": topo.nodelocal_enabled, "ready": sum(1 for p in topo.nodelocal.values() if p.ready)},
        "coredns": {"pods": len(topo.coredns), "ready": sum(1 for p in topo.coredns if p.ready)},
        "loadbalancer_services": [
            {
                "namespace": s.namespace,
                "name": s.name,
                "external_ips": list(s.external_ips),
                "pending": s.pending,
                "internal": s.internal_lb,
            }
            for s in topo.services
        ],
        "node_list": [
            {
                "name": n.name,
                "pool": n.pool,
                "internal_ip": n.internal_ip,
                "pod_cidrs": list(n.pod_cidrs),
                "ready": n.ready,
                "cordoned": n.cordoned,
                "network_unavailable": n.network_unavailable,
                "phase": node_phase(n, now) or None,
            }
            for n in topo.nodes
        ],
    }


def _dns_json(stats: dict[Any, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, st in sorted(stats.items(), key=lambda kv: tuple(kv[0])):
        rows.append(
            {
                "vantage": key.vantage,
                "resolver": key.resolver,
                "name": key.name,
                "type": key.qtype,
                "attempts": st.attempts,
                "loss_pct": round(st.loss_pct, 1),
                "p50_ms": None if st.p50 is None else round(st.p50, 3),
                "p95_ms": None if st.p95 is None else round(st.p95, 3),
                "last_outcome": st.last_outcome,
                "health": judge(st, DnsOutcome).value,
                "last_error": st.last_error,
            }
        )
    return rows


def _settled(services: Any, cycles: int) -> bool:
    """Every planned probe has run `cycles` times and the SNAT source has had its say."""
    return not _waiting_for(services, cycles)


def _next_cycle(services: Any, cycles: int) -> tuple[list[Any], list[Any]]:
    """The DNS and egress rows this process probes itself (not an agent's) whose last
    cycle's result is in and that need another: 1 <= results < `cycles`."""
    out: tuple[list[Any], list[Any]] = ([], [])
    dplan, eplan = services.dns.plan(), services.egress.plan()
    rows: tuple[list[Any], list[Any]] = (
        [
            ProbeKey(vp.vantage.name, r.key, n, dplan.qtype)
            for vp in dplan.vantages
            if not vp.vantage.agent
            for r in vp.resolvers
            if r.reachable
            for n in dplan.names
        ],
        [
            EgressKey(vp.vantage.name, t.text)
            for vp in eplan.vantages
            if not vp.vantage.agent
            for t in vp.targets
            if t.reachable
        ],
    )
    for keys, hist, due in zip(rows, (services.dns.history, services.egress.history), out, strict=True):
        for k in keys:
            st = hist.stats(k)
            if st is not None and 1 <= st.attempts < cycles:
                due.append(k)
    return out


def _waiting_for(services: Any, cycles: int, probes_only: bool = False) -> str:
    """What the run still waits for, in words ("" once settled): the first planned probe
    row without `cycles` results, then the agents, the ingress hosts, HTTPS and ARM.
    `probes_only`: the DNS and egress rows alone (a cycle's results in)."""
    plan = services.dns.plan()
    want: list[Any] = [  # rows their vantage cannot reach are never probed: not waited for
        ProbeKey(vp.vantage.name, r.key, n, plan.qtype)
        for vp in plan.vantages
        for r in vp.resolvers
        if r.reachable
        for n in plan.names
    ]
    eplan = services.egress.plan()
    ewant: list[Any] = [EgressKey(vp.vantage.name, t.text) for vp in eplan.vantages for t in vp.targets if t.reachable]
    for what, keys, hist in (("DNS", want, services.dns.history), ("egress", ewant, services.egress.history)):
        stats = hist.snapshot()
        for k in keys:
            if (st := stats.get(k)) is None or st.attempts < cycles:
                # a probe (an agent's too) has not run its cycles, or not been read
                return f"{what} {' '.join(map(str, k))}: {0 if st is None else st.attempts}/{cycles} results"
    if probes_only:
        return ""
    agents = getattr(services, "agents", None)
    if agents is not None and not agents.read_once():
        return "the agents' first reads"
    hosts = getattr(services, "hosts", None)
    if hosts is not None and not hosts.settled():
        return "the ingress hosts' DNS answers"  # (F22)
    https = getattr(services, "https", None)
    if https is not None and not _https_settled(https, 1):
        return "the HTTPS endpoints' first probes"  # (F23's served certificate)
    # lazy: the Azure source (logging, orjson) loads when check runs, not with `import probes.check`
    from probes.azure.service import AzureState

    if services.snat.report().state in (AzureState.WAITING, AzureState.CONNECTING):
        return "ARM and Azure Monitor"
    return ""


def _https_settled(https: Any, cycles: int) -> bool:
    """The HTTPS plan covers the hosts as they resolve now, and each row ran `cycles` times
    (check waits for one: a served certificate does not change from one handshake to the
    next, and an endpoint that never answers would hold every cycle for the whole timeout)."""
    # lazy: the HTTPS service's planning loads with it
    from probes.ingress.httpsservice import plan_targets

    plan = https.plan()
    if plan.error:
        return True  # said in the report; nothing will be probed
    wanted, _ = plan_targets(https.hosts(), https.dial_map, https.confine)
    if {(t.host, t.address, t.port) for t in wanted} != {(t.host, t.address, t.port) for t in plan.targets}:
        return False  # answers came in since the plan was made: the next replan probes them
    stats = https.history.snapshot()
    for vp in plan.vantages:
        for t in vp.targets:
            st = stats.get(TlsKey(vp.vantage.name, t.host, t.address, t.port))
            if st is None or st.attempts < cycles:
                return False
    return True


BACK_TO_BACK = 1.0  # s between a check's probe cycles unless --interval says otherwise
STOP_WAIT = 0.5  # s the sources get to stop once the verdict is in
CHECK_WINDOW = 10  # minutes of SNAT metrics a check reads (the app charts 30)
EVIDENCE_WAIT = 3.0  # s a recorded check waits for the raw bodies behind its findings (GETs by name)


def run(
    cfg: Config,
    *,
    demo: bool = False,
    cycles: int = 2,
    interval: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    log: Callable[[str], None] | None = None,
    recorder: Any = None,
    phases: Phases | None = None,
    launching: Any = None,
) -> CheckResult:
    """Run sources and probes for `cycles` probe intervals; never raises for cluster trouble.
    `phases`: where the run's moments are marked (the --debug log's "check phase" lines).
    `launching`: the demo's lab, already started by probes.demo.launch_for (the command
    line starts it before it imports this module); else `demo` starts it here. Its agents
    probe at the configured cadence, as a cluster's DaemonSet does, not at the check's:
    the check's reads ask them for its cycles (probes.agent.rounds)."""
    say = log or (lambda _m: None)
    mark = (phases or Phases()).mark
    mark("check starts")
    t0 = clock()
    running = None  # the demo, when `demo`
    kube = cfg.kube
    if demo and launching is None:
        # lazy: the demo (its lab process, the agent farm) only for `check --demo`
        from probes import demo as demomod

        launching = demomod.launch_for(cfg)  # the configured cadence: before the check's below
        mark("lab process launched")
    # a check reads every agent once, in one bounded burst: its own budget
    cfg = dataclasses.replace(cfg, agents=dataclasses.replace(cfg.agents, budget=cfg.agents.check_budget))
    back_to_back = interval is None
    if interval is None:
        # a post-upgrade gate answers in seconds: cycles back to back, not at the app's
        # cadence (two egress cycles at 10 s made the default check take 12 s): each next
        # cycle starts when the last one's results are in (the cadence only as a fallback)
        interval = BACK_TO_BACK
    # a gate reads the SNAT metrics' last CHECK_WINDOW minutes, not the app's chart window:
    # a third of the answer to generate and parse at 1,000 nodes, and enough points for
    # the pressure rule's slope
    cfg = dataclasses.replace(
        cfg, azure=dataclasses.replace(cfg.azure, window_minutes=min(cfg.azure.window_minutes, CHECK_WINDOW))
    )
    if interval:  # one cadence for every probe in this run (0: the configured intervals)
        cfg = dataclasses.replace(
            cfg,
            # the timeouts stay as configured: a shorter one would call slow answers lost
            dns=dataclasses.replace(cfg.dns, interval=interval),
            egress=dataclasses.replace(cfg.egress, interval=interval),
            https=dataclasses.replace(cfg.https, interval=max(interval, 1.0)),
        )
    endpoints = None
    if demo:
        # lazy: the demo's error type, loaded with its launch
        from probes import demo as demomod

    # lazy: the engine's services and the Kubernetes source load when check runs (after the
    # demo's lab process was started: it starts while these import), not on `import probes.check`
    from probes.engine import services as servicesmod
    from probes.kube.source import KubeSource

    mark("engine imported")
    if cfg.azure.enabled:
        # lazy: the Azure SDK's imports (~0.6 s) run in a thread while this one waits for the
        # demo's lab and the lists (the verdict waits for ARM; the source would import them later)
        from probes.azure.warm import in_background

        in_background()
    if demo:
        running = launching.ready(agents=False)
        mark("lab ready (API server, ARM)")
        kube = dataclasses.replace(kube, kubeconfig=running.kubeconfig, context="")
        endpoints = running.endpoints

    store = Store()
    source = KubeSource(store, kube)
    source.start()  # the client library loads and lists while the services are built
    try:
        services = servicesmod.build(cfg, store, endpoints, kube)
    except Exception:
        source.stop(2.0)
        if running is not None:
            running.stop()
        raise
    if services.agents is not None:
        # each agent's first read asks it to probe every row `cycles` times at once (the
        # CoreDNS pods it is handed in that read included) and answers when they are in:
        # no waiting for its cadence, one read per agent (probes.agent.rounds)
        services.agents.settings = dataclasses.replace(services.agents.settings, rounds=min(cycles, MAX_ROUNDS))
    mark("services built")
    longest = max(cfg.dns.interval, cfg.egress.interval)
    try:
        for s in services.sources:
            if s is not services.agents:
                # ARM's reads and the SDK's imports need no agent: under way while the demo's
                # farm starts (the `local` probes begin when its maps fill)
                s.start()
        if running is not None and not (running.agents_ready() and not running.agents_error):
            # the probes' `local` vantage and every agent come from the farm: no farm, no check
            raise demomod.DemoError(running.agents_error or "the demo's agents did not start")
        if running is not None:
            mark("lab's agent farm ready")
        if services.agents is not None:
            # each agent's first read asks for the check's cycles (rounds); an agent that
            # does not know them is read again once its cadence ran them
            services.agents.start(reads_from=clock() + (cycles - 1) * longest * 1.1 + 0.1)
        mark("probes started")
        # every kind listed and watched: refused, no such name, 401 and 403 end the run at
        # once (fatal statuses), a silent server after the wait
        live, fatal = source.wait_live(max(5.0, kube.request_timeout * 2))
        snap = store.snapshot()
        if not live:
            # what went wrong meanwhile too: a retry in progress at the end hides the timeout before it
            errors = _status_errors(store.status_log(), snap.statuses) or [
                "the cluster could not be listed and watched in time"
            ]
            if fatal is not None:
                _log.error(_status_error(fatal))  # one line on stderr (the CLI's logging)
            return CheckResult(
                Exit.COULD_NOT_RUN, [], _report(snap, None, None, [], errors, cycles, longest, Exit.COULD_NOT_RUN)
            )
        t_live = clock()
        mark("kube lists live")
        say(f"listed {len(snap.topology.nodes)} nodes in {clock() - t0:.2f}s; probing for {cycles} cycles")
        t_probe = clock()
        # an endpoint that never answers holds each of its HTTPS cycles for the whole timeout
        https_wait = cfg.https.timeout + 2.0 if services.https is not None else 0.0
        deadline = clock() + cycles * longest + max(cfg.dns.timeout, cfg.egress.timeout, https_wait) + 2.0
        agents = services.agents
        progress = _Progress(services, cycles, mark) if phases is not None and phases.enabled else None
        while clock() < deadline and not _settled(services, cycles):
            if progress is not None:
                progress.step()
            if back_to_back:
                # a row whose last result is in gets its next cycle now, not at the cadence
                # (one under way is left to finish: the services run only idle rows)
                dns_due, egress_due = _next_cycle(services, cycles)
                services.dns.run_now(dns_due)
                services.egress.run_now(egress_due)
            if agents is not None and agents.discovered:
                # every agent read at the budget, after its probes ran `cycles` times
                read = cfg.agents.timeout + ROUND_WAIT  # a read that asks for rounds is held for them
                deadline = max(deadline, t_probe + cycles * longest + 2 * agents.period() + read + 2.0)
            if any(st.fatal for st in store.snapshot().statuses):
                break  # refused or rejected mid-run: the verdict cannot get better
            time.sleep(0.05)
        # the report renders one frame, built by the same publisher the app's panes read
        mark("settled" if _settled(services, cycles) else "deadline passed")
        frame = Publisher.of(store, services).step()
        mark("verdict's frame built")
        if recorder is not None:  # the flight recorder (probes.record): this run's frame
            if hasattr(recorder, "evidence"):
                # lazy: the evidence fetcher only for a recorded run
                from probes.record.evidence import for_run

                recorder.evidence = for_run(source, services.snat)
            recorder.offer(frame)
            settle = getattr(recorder, "settle", None)
            if settle is not None:  # the raw bodies behind its findings, while the sources still run
                settle(EVIDENCE_WAIT)
        findings = list(frame.findings or ())
        # a kind that was not live for the whole run: the topology the findings stand on is not trusted
        errors = _status_errors(store.status_log(after=t_live), frame.kube.statuses)
        code = Exit.COULD_NOT_RUN if errors else exit_for(findings)
        for e in errors[:1]:
            _log.error(f"the topology could not be trusted: {e}")
        return CheckResult(
            code, findings, _report(frame.kube, frame, services, findings, errors, cycles, longest, code)
        )
    finally:
        # the verdict is in: a source still inside a call (the Azure source mid-way through a
        # metrics answer, at 1,000 nodes ~2 s) ends on its own, its thread is a daemon
        services.stop(STOP_WAIT)
        mark("services stopped")
        source.stop(STOP_WAIT)
        mark("kube source stopped")
        if running is not None:
            running.stop(wait=False)  # the lab ends itself on EOF; the verdict need not wait


class _Progress:
    """The --debug log's marks while a run waits: each vantage's first result, each
    cycle's results in, the agents read, and every change of what is waited for."""

    def __init__(self, services: Any, cycles: int, mark: Callable[[str], None]) -> None:
        self.services = services
        self.cycles = cycles
        self.mark = mark
        self.cycle = 0
        self.waiting = ""

    def step(self) -> None:
        s = self.services
        for what, hist in (("DNS", s.dns.history), ("egress", s.egress.history)):
            for k in hist.keys():
                self.mark(f"first {what} result from {'an agent' if k.vantage.startswith('node/') else k.vantage}")
        while self.cycle < self.cycles and not _waiting_for(s, self.cycle + 1, probes_only=True):
            self.cycle += 1
            self.mark(f"cycle {self.cycle}'s probe rows in")
        if s.agents is not None and s.agents.read_once():
            self.mark("every agent read once")
        # lazy: the Azure source's states, loaded with it by now
        from probes.azure.service import AzureState

        if s.snat.report().state not in (AzureState.WAITING, AzureState.CONNECTING):
            self.mark("ARM and Azure Monitor in")
        waiting = _waiting_for(s, self.cycles)
        if waiting and waiting.split(":")[0] != self.waiting.split(":")[0]:
            self.mark(f"waiting for {waiting}")
        self.waiting = waiting


def _egress_json(stats: dict[Any, Any]) -> list[dict[str, Any]]:
    return [
        {
            "vantage": k.vantage,
            "target": k.target,
            "attempts": st.attempts,
            "success_pct": round(100 - st.loss_pct, 1) if st.attempts else None,
            "handshake_p50_ms": None if st.p50 is None else round(st.p50, 3),
            "handshake_p95_ms": None if st.p95 is None else round(st.p95, 3),
            "last_outcome": st.last_outcome,
            "health": judge(st, EgressOutcome).value,
            "last_error": st.last_error,
            **({"proxy": st.last.proxy} if getattr(st.last, "proxy", "") else {}),
        }
        for k, st in sorted(stats.items(), key=lambda kv: tuple(kv[0]))
    ]


def _snat_json(report: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"state": report.state.value, "message": report.message, "nodes": []}
    if report.allocation is not None:
        a = report.allocation
        out["allocation"] = {
            "tier": a.tier,
            "nodes": a.nodes,
            "surge": a.surge,
            "ports_per_node": a.expected,
            "ports_during_surge": a.during_surge,
            "outbound_ips": a.outbound_ips,
            "idle_timeout_min": a.idle_timeout,
        }
    if report.table is not None:
        out["nodes"] = [
            {
                "node": n.node,
                "backend_ip": n.ip,
                "allocated": n.allocated,
                "used": None if n.used is None else round(n.used),
                "pct": None if n.pct is None else round(n.pct, 1),
                "failed_connections": round(n.failed),
            }
            for n in report.table.nodes
        ]
    return out


def _routes_json(frame: Frame | None, topo: Topology) -> dict[str, Any]:
    data = frame.routes.data if frame is not None and frame.routes is not None else None
    return routes_json(data, topo.nodes, kubenet=topo.plugin == NetworkPlugin.KUBENET)


def _agents_json(frame: Frame | None, services: Any, topo: Topology) -> dict[str, Any]:
    view = frame.agents if frame is not None else None
    reader = getattr(services, "agents", None) if services is not None else None
    if view is None or reader is None:
        return {"enabled": False, "nodes": []}
    st = view.statuses()
    rows = []
    for n in topo.nodes:
        a = st.get(n.name)
        if a is None and n.os == "windows":  # the DaemonSet selects Linux nodes: not a failure
            rows.append(
                {"node": n.name, "agent": None, "read_age_s": None, "error": None, "not_probed": "Windows node"}
            )
            continue
        if a is None:
            rows.append({"node": n.name, "agent": None, "read_age_s": None, "error": "no agent on this node"})
            continue
        age = a.age()
        rows.append(
            {
                "node": n.name,
                "agent": a.pod,
                "read_age_s": None if age is None else round(age, 1),
                "results": a.results,
                "missed": a.missed,
                "mode": a.mode or None,
                "error": a.error or None,
            }
        )
    return {
        "enabled": True,
        "discovered": view.discovered,
        "error": view.error or None,
        "with_agent": sum(1 for r in rows if r["agent"]),
        "requests": reader.requests,
        "nodes": rows,
    }


def _report(
    snap: Any,
    frame: Frame | None,
    services: Any,
    findings: list[Finding],
    errors: list[str],
    cycles: int,
    interval: float,
    code: Exit,
) -> dict[str, Any]:
    now = time.time()
    topo, target = snap.topology, snap.target
    return {
        "schema": SCHEMA,
        "generated_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "target": target,
        "cluster": cluster_name(
            getattr(getattr(getattr(frame, "snat", None), "target", None), "cluster_name", "") or "", topo.cluster
        ),
        "cycles": cycles,
        "interval_s": interval,
        "status": {Exit.HEALTHY: "healthy", Exit.WARNINGS: "warning", Exit.CRITICAL: "critical"}.get(code, "error"),
        "exit_code": int(code),
        "errors": errors,
        "findings": [f.to_json() for f in findings],
        "observations": {
            "topology": _topology_json(topo, now),
            "dns": _dns_json(dict(frame.dns.stats)) if frame and frame.dns else [],
            "egress": _egress_json(dict(frame.egress.stats)) if frame and frame.egress else [],
            "snat": _snat_json(frame.snat) if frame and frame.snat is not None else {},
            "routes": _routes_json(frame, topo),
            "ingress": ingress_json(
                frame.ingress if frame is not None else None,
                frame.https.stats if frame is not None and frame.https is not None else None,
                frame.https.plan if frame is not None and frame.https is not None else None,
            ),
            "agents": _agents_json(frame, services, topo),
            "not_probed": [
                {"vantage": v, "subject": subject, "why": why}
                for v, subject, why in not_probed(
                    frame.dns.plan if frame and frame.dns else None,
                    frame.egress.plan if frame and frame.egress else None,
                )
            ],
        },
    }


_NODE_RG = re.compile(r"^MC_(?P<rg>.+)_(?P<name>[^_]+)_(?P<region>[a-z0-9]+)$", re.IGNORECASE)


def cluster_name(azure_name: str, node_rg: str) -> str:
    """The cluster's own name: as ARM reports it, else read from the node resource group
    AKS names MC_<resource group>_<cluster>_<region>; "" when neither says it."""
    if azure_name:
        return azure_name
    m = _NODE_RG.match(node_rg or "")
    return m.group("name") if m else ""


def render_table(result: CheckResult, out: IO[str] = sys.stdout) -> None:
    """Plain text for a terminal or a CI log: status, then one block per finding."""
    r = result.report
    topo = r["observations"]["topology"]
    print(
        f"aksnet-top check: {r['status'].upper()} — {r.get('cluster') or topo['cluster'] or r['target']} · {topo['plugin']} · "
        f"{topo['nodes_ready']}/{topo['nodes']} nodes ready · {len(r['observations']['dns'])} DNS and "
        f"{len(r['observations']['egress'])} egress probes × {r['cycles']} cycles",
        file=out,
    )
    skipped = r["observations"].get("not_probed", [])
    if skipped:
        print(f"  {len(skipped)} not reachable from here, not probed (never a failure)", file=out)
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
