"""The demo's per-node agents: the real agent code, run for the simulated nodes, reached
through the lab API server's pod proxy — the production path.

:func:`start` launches ``python -m probes.lab.agentfarm`` (its own process: the agents,
the scenario's DNS responders and egress targets must not share the app's GIL), tells it
which nodes get an agent, waits for its ready line, and registers one agent pod per node
with the lab API server, whose pod proxy then dials each agent's loopback port. The app
finds and reads them like on a real cluster (probes.agent.reader). What the farm also
returns (:meth:`DemoAgents.local`) is how the app's own `local` vantage reaches the same
responders and targets. The demo's lab process (probes.lab.serve) starts it.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from probes.lab.cluster import LabAgentPod

MAX_AGENTS = 50  # simulated nodes that run an agent; the others show "no agent"
READY_TIMEOUT = 20.0


class DemoAgentsError(Exception):
    """The agent farm did not start (one line for the user)."""


@dataclass
class DemoAgents:
    """A running farm: stop() ends it; local() is what the app's `local` vantage needs."""

    proc: subprocess.Popen
    agents: dict[str, tuple[str, int]]  # node -> loopback endpoint of its agent
    dns_overrides: dict[str, tuple[str, int]] = field(default_factory=dict)
    egress_dns: tuple[str, int] | None = None
    dial: dict[str, int] = field(default_factory=dict)
    extra_targets: list[str] = field(default_factory=list)
    lab: Any = None

    def local(self) -> dict[str, Any]:
        """How the app's own `local` vantage reaches the same responders and targets, as
        plain data (the farm's ``local`` line; :mod:`probes.demo` makes VantageMaps of it)."""
        return {
            "dns_overrides": {k: list(v) for k, v in self.dns_overrides.items()},
            "egress_dns": list(self.egress_dns) if self.egress_dns else None,
            "dial": dict(self.dial),
            "extra_targets": list(self.extra_targets),
        }

    def stop(self, timeout: float = 2.0, wait: bool = False) -> None:
        """End the farm; `wait`: return only once it has exited (else a thread reaps it)."""
        if self.lab is not None:
            try:
                self.lab.set_agent_pods({})
            except Exception:  # noqa: BLE001 - the lab may be stopping too
                pass
        _end(self.proc, timeout, wait)


def farm_request(lab: Any, dns: Any, egress: Any, max_agents: int = MAX_AGENTS) -> dict[str, Any]:
    """What the farm needs, from the lab's scenario and state and the app's settings."""
    c = lab.scenario.cluster
    with lab.state.lock:
        # the agent DaemonSet selects kubernetes.io/os: linux: no agent on a Windows node
        nodes = sorted(n for n, s in lab.state.nodes.items() if not lab.scenario.pool(s.pool).windows)
        coredns = sorted((p.name, p.ready) for p in lab.state.pods.values() if p.app == "coredns")
    return {
        "scenario": getattr(lab, "scenario_arg", None) or lab.scenario.name,
        "nodes": getattr(lab, "nodes_arg", None),
        "agents": nodes[:max_agents],
        "dns_service_ip": str(c.dns_service_ip),
        "nodelocal": bool(c.node_local_dns),
        "localdns_nodes": nodes[:max_agents] if c.local_dns else [],
        "interval": dns.interval,
        "timeout": dns.timeout,
        "egress_interval": egress.interval,
        "egress_timeout": egress.timeout,
        "mode": "connect",
        "names": list(dns.names),
        "targets": list(egress.targets),
        "apiserver": f"127.0.0.1:{lab.port}",  # the agents check the API server too
        # the pods behind kube-dns (its balancing) and what the agents are told to probe
        "coredns": [{"name": n, "ready": r} for n, r in coredns],
        "echo": bool(getattr(egress, "echo", False)),  # agents.echo_url set: the lab's echo endpoint
    }


def spawn() -> subprocess.Popen:
    """The farm's process, started before its request exists: it imports its modules while
    the lab builds the cluster. Hand it to :func:`start`, or to :func:`discard`."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "probes.lab.agentfarm"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    except OSError as e:
        raise DemoAgentsError(f"cannot start the demo agents: {e.strerror or e}") from None


def discard(proc: subprocess.Popen) -> None:
    """A spawned farm that gets no request: EOF on its stdin ends it."""
    _end(proc, 1.0)


def start(
    lab: Any,
    dns: Any,
    egress: Any,
    max_agents: int = MAX_AGENTS,
    timeout: float = READY_TIMEOUT,
    proc: subprocess.Popen | None = None,
) -> DemoAgents:
    """Start the farm (or use the one :func:`spawn` started) and register its agents as
    pods; DemoAgentsError on any failure."""
    request = farm_request(lab, dns, egress, max_agents)
    if proc is None:
        proc = spawn()
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(orjson.dumps(request) + b"\n")
        proc.stdin.flush()
        line = _read_line(proc, timeout)
        try:
            ready = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise DemoAgentsError(f"the demo agents answered something unexpected: {line[:120]!r}") from None
        if not isinstance(ready, dict) or "error" in ready or not isinstance(ready.get("agents"), dict):
            why = ready.get("error") if isinstance(ready, dict) else ready
            raise DemoAgentsError(f"the demo agents did not start: {why}")
        agents = {str(n): _hostport(v) for n, v in ready["agents"].items()}
        local = ready.get("local") or {}
        farm = DemoAgents(
            proc,
            agents,
            dns_overrides={str(k): _pair(v) for k, v in (local.get("dns_overrides") or {}).items()},
            egress_dns=_pair(local["egress_dns"]) if local.get("egress_dns") else None,
            dial={str(k): int(v) for k, v in (local.get("dial") or {}).items()},
            extra_targets=[str(t) for t in local.get("extra_targets") or []],
        )
    except BaseException:
        _end(proc, 1.0)
        raise

    lab.set_agent_pods({node: LabAgentPod(endpoint=ep) for node, ep in agents.items()})
    farm.lab = lab
    return farm


def _read_line(proc: subprocess.Popen, timeout: float) -> bytes:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    end = time.monotonic() + timeout
    while b"\n" not in buf:
        left = end - time.monotonic()
        if left <= 0:
            raise DemoAgentsError(f"the demo agents did not start within {timeout:g} s")
        r, _, _ = select.select([fd], [], [], min(left, 0.5))
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise DemoAgentsError(f"the demo agents exited at start (exit status {proc.wait(1)})")
            buf += chunk
    return buf.split(b"\n", 1)[0]


def _hostport(v: Any) -> tuple[str, int]:
    host, _, port = str(v).rpartition(":")
    return host.strip("[]"), int(port)


def _pair(v: Any) -> tuple[str, int]:
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return str(v[0]), int(v[1])
    return _hostport(v)


def _end(proc: subprocess.Popen, timeout: float, wait: bool = False) -> None:
    """Close its stdin (the farm's signal to stop), then wait; kill if it lingers."""

    def run() -> None:
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(2)
        for f in (proc.stdout,):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass

    # the farm shuts down by itself once its stdin closes (about 0.3 s); nothing here
    # needs to wait for that, so a daemon thread reaps it (and kills it if it lingers)
    if wait:
        run()
        return
    threading.Thread(target=run, name="agent-farm-stop", daemon=True).start()
