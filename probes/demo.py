"""The demo behind one door: the only product module (outside probes/lab/) that reaches the lab.

:func:`launch` starts the simulated AKS (API server, ARM endpoint and the per-node agent
farm) in a process of its own (``python -m probes.lab.serve``), so the app's memory and
GIL hold only what a real cluster would cost them; :meth:`Launch.ready` waits for its
first JSON line and returns a :class:`Demo`: plain data the engine uses without knowing
it is a lab — the kubeconfig, the ARM endpoint and its credential, the `local` vantage's
DNS and egress maps and the extra egress targets (:class:`probes.engine.services.Endpoints`)
— and ``stop()``. The agent farm's line comes second: `check` waits for it, the app opens
on the cluster meanwhile and its `local` vantage appears when the maps are filled (their
``version`` changes, as the VantageMap protocol allows).

The lab process lives exactly as long as the pipe to its stdin: ``stop()`` closes it (then
waits, then signals), and if the app exits, crashes or is killed the kernel closes it, the
lab sees EOF and shuts down with its agent farm. It runs in a session of its own, so a
Ctrl-C meant for the app does not reach it first. :func:`serve_lab` is the ``aksnet-top lab``
command. Never imports textual.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from probes.engine.nudge import Nudges
from probes.kube.model import LOCAL_VANTAGE

if TYPE_CHECKING:
    from probes.engine.services import Endpoints

READY_TIMEOUT = 60.0  # 5,000 nodes on a busy 2-core machine take a few seconds
STOP_TIMEOUT = 3.0


class DemoError(Exception):
    """The demo did not start; one line for the user. `usage`: the user's input was wrong
    (unknown scenario, bad scenario file), not the machine."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass
class Demo:
    """A running demo. `kubeconfig` reaches its API server; `endpoints` go to
    probes.engine.services.build; `pids` are the lab process and, once it runs, its agent
    farm (:meth:`agents_ready`)."""

    kubeconfig: str
    endpoints: Endpoints
    scenario: str = ""
    nodes: int = 0
    notes: tuple[str, ...] = ()
    _launch: Any = field(default=None, repr=False)

    @property
    def pids(self) -> tuple[int, ...]:
        return self._launch.pids() if self._launch is not None else ()

    def agents_ready(self, timeout: float = READY_TIMEOUT) -> bool:
        """Wait until the agent farm runs and the `local` maps are filled (or it failed)."""
        return self._launch.local.wait(timeout) if self._launch is not None else True

    @property
    def agents_error(self) -> str:
        return self._launch.local.error if self._launch is not None else ""

    def stop(self, timeout: float = STOP_TIMEOUT, wait: bool = True) -> None:
        """End the demo. `wait=False` (a `check` about to exit): close the lab's stdin and
        return; the lab sees EOF and tears itself and its farm down (~0.3 s) on its own."""
        if self._launch is not None:
            self._launch.stop(timeout, wait=wait)


class _Local:
    """What the `local` vantage needs from the agent farm; it comes after the cluster (the
    app opens meanwhile), so both maps read it here and bump `version` when it lands."""

    def __init__(self) -> None:
        self.version = 0
        self.nudges = Nudges()  # fired when `version` bumps: the services re-plan at once
        self.dns: dict[str, tuple[str, int]] | None = None  # None: not yet
        self.egress_dns: tuple[str, int] | None = None
        self.dial: dict[str, int] = {}
        self.farm_pids: tuple[int, ...] = ()
        self.error = ""
        self._done = threading.Event()

    def fill(self, doc: dict[str, Any]) -> None:
        if "local" in doc:
            local = doc["local"] or {}
            self.egress_dns = _pair(local["egress_dns"]) if local.get("egress_dns") else None
            self.dial = {str(k): int(v) for k, v in (local.get("dial") or {}).items()}
            self.farm_pids = tuple(int(p) for p in doc.get("pids") or ())
            self.dns = {str(k): _pair(v) for k, v in (local.get("dns_overrides") or {}).items()}
        else:
            self.error = str(doc.get("agents_error") or doc.get("error") or "the demo's agents did not start")
        self.version += 1
        self.nudges.fire()
        self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)


class Launch:
    """The lab process, starting. ready() → Demo; stop() at any time."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.kubeconfig_dir = ""
        self.local = _Local()
        self._lines = _Lines(proc)
        self._reader: threading.Thread | None = None

    def pids(self) -> tuple[int, ...]:
        return (self.proc.pid, *self.local.farm_pids)

    def ready(self, timeout: float = READY_TIMEOUT, agents: bool = True) -> Demo:
        """Wait for the cluster (API server and ARM endpoint); with `agents` also for the
        agent farm (DemoError if it failed), else it lands in the maps later."""
        try:
            doc = self._lines.read(timeout, "the demo cluster")
            if "error" in doc:
                raise DemoError(str(doc["error"]), usage=bool(doc.get("usage")))
            if "kubeconfig" not in doc:
                raise DemoError(f"the demo cluster answered something unexpected: {str(doc)[:120]}")
            # lazy: the engine's settings record, once the lab answers (`launch` is the first
            # thing `check --demo` does: the engine imports while the lab starts)
            from probes.engine.services import Endpoints

            kubeconfig = str(doc["kubeconfig"])
            self.kubeconfig_dir = os.path.dirname(kubeconfig)
            arm = doc.get("arm") or {}
            endpoints = Endpoints(
                # the same setting as azure.arm_endpoint: a loopback endpoint gets the placeholder token
                arm_url=str(arm.get("url") or ""),
                arm_discover=True,  # the lab's subscription and cluster, not the user's configured ones
                dns_map=LocalDnsMap(self.local),
                egress_map=LocalEgressMap(self.local),
                extra_targets=tuple(str(t) for t in doc.get("extra_targets") or ()),
                # the ingress hosts' HTTPS endpoints: the lab's loopback listeners (always a
                # map, even empty: the probe then dials nothing beyond loopback)
                https_dial=_https_dial(doc.get("https")),
                https_ca=str((doc.get("https") or {}).get("ca") or ""),
            )
            demo = Demo(
                kubeconfig,
                endpoints,
                scenario=str(doc.get("scenario") or ""),
                nodes=int(doc.get("nodes") or 0),
                notes=tuple(str(n) for n in doc.get("notes") or ())
                + tuple(str(e) for e in [(doc.get("https") or {}).get("error")] if e),
                _launch=self,
            )
            if agents:
                self._read_local(timeout)
                if self.local.error:
                    raise DemoError(self.local.error)
            else:
                self._reader = threading.Thread(
                    target=self._read_local, args=(READY_TIMEOUT,), name="demo-agents", daemon=True
                )
                self._reader.start()
            return demo
        except BaseException:
            self.stop(1.0)
            raise

    def _read_local(self, timeout: float) -> None:
        try:
            self.local.fill(self._lines.read(timeout, "the demo's agents"))
        except DemoError as e:
            self.local.fill({"agents_error": str(e)})

    def stop(self, timeout: float = STOP_TIMEOUT, wait: bool = True) -> None:
        """Close the lab's stdin (its signal to stop), wait; SIGTERM, then SIGKILL if it
        lingers. `wait=False`: close it and return (the lab removes its kubeconfig itself)."""
        proc = self.proc
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        if not wait:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            for sig, grace in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 2.0)):
                try:
                    os.killpg(proc.pid, sig)  # its own session: the lab and its farm
                except OSError:
                    pass
                try:
                    proc.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._reader is not None:  # it sees EOF now; close the pipe only after it left
            self._reader.join(1.0)
        if self._reader is None or not self._reader.is_alive():
            try:
                if proc.stdout is not None:
                    proc.stdout.close()
            except OSError:
                pass
        if self.kubeconfig_dir:  # the lab removes it; not if it had to be killed
            shutil.rmtree(self.kubeconfig_dir, ignore_errors=True)


def launch(scenario: str, nodes: int | None = None, dns: Any = None, egress: Any = None, echo_url: str = "") -> Launch:
    """Start the lab process and hand it the request; returns at once (the app imports its
    own modules while the lab starts). `dns`/`egress`: the config sections the agents and
    responders follow (interval, timeout, names / targets). `echo_url` (agents.echo_url):
    when set, the agents ask the lab's loopback echo endpoint instead (the lab is the Internet)."""
    request: dict[str, Any] = {"scenario": scenario, "nodes": nodes or None}
    if dns is not None:
        request["dns"] = {"interval": dns.interval, "timeout": dns.timeout, "names": list(dns.names)}
    if egress is not None:
        request["egress"] = {"interval": egress.interval, "timeout": egress.timeout, "targets": list(egress.targets)}
    if echo_url:
        request.setdefault("egress", {})["echo"] = True
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "probes.lab.serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    except OSError as e:
        raise DemoError(f"cannot start the demo's lab process: {e.strerror or e}") from None
    try:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        proc.stdin.flush()
    except OSError:
        pass  # it died at once: ready() says why
    return Launch(proc)


def launch_for(cfg: Any) -> Launch:
    """launch() for a probes.config.Config: its demo section, and the probes' cadence the
    agents follow (the configured one, as a cluster's DaemonSet runs it)."""
    return launch(
        cfg.demo.scenario, nodes=cfg.demo.nodes or None, dns=cfg.dns, egress=cfg.egress, echo_url=cfg.agents.echo_url
    )


def start(
    scenario: str, nodes: int | None = None, dns: Any = None, egress: Any = None, timeout: float = READY_TIMEOUT
) -> Demo:
    """launch() and wait until the cluster and its agents run; DemoError (one line) if not."""
    return launch(scenario, nodes, dns, egress).ready(timeout)


def serve_lab(scenario: str, nodes: int | None = None, **kwargs: Any) -> int:
    """`aksnet-top lab`: the lab API server in the foreground until Ctrl-C."""
    # lazy: the lab server loads only for `aksnet-top lab`
    from probes.lab.serve import serve_forever

    return serve_forever(scenario, nodes=nodes, **kwargs)


class _Lines:
    """The lab's JSON lines on its stdout, each read within a deadline."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.buf = b""

    def read(self, timeout: float, what: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise DemoError(f"{what} did not start within {timeout:g} s")
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    try:
                        code: Any = self.proc.wait(1)
                    except subprocess.TimeoutExpired:
                        code = "unknown"
                    raise DemoError(f"{what} exited at start (exit status {code})")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise DemoError(f"{what} answered something unexpected: {line[:120]!r}")
        return doc


def _https_dial(doc: Any) -> dict[str, tuple[str, int]]:
    """The lab's {"<ip>:443": [loopback, port]} as the HTTPS probe's dial map."""
    dial = (doc or {}).get("dial") if isinstance(doc, dict) else None
    out: dict[str, tuple[str, int]] = {}
    for k, v in (dial or {}).items():
        try:
            out[str(k)] = _pair(v)
        except (TypeError, ValueError):
            continue
    return out


def _pair(v: Any) -> tuple[str, int]:
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return str(v[0]), int(v[1])
    host, _, port = str(v).rpartition(":")
    return host.strip("[]"), int(port)


class LocalDnsMap:
    """DNS VantageMap for the demo's `local` vantage: confined to the lab's responders
    (none until the agent farm that serves them runs). Never the default unconfined
    `local` vantage: the demo must not send a packet beyond loopback."""

    def __init__(self, local: _Local) -> None:
        self.local = local

    @property
    def version(self) -> int:
        return self.local.version

    @property
    def nudges(self) -> Nudges:
        return self.local.nudges

    def vantages(self, topology: Any) -> list[Any]:
        # pure: the farm's format, expanded for the topology's CoreDNS pods
        # lazy: the probe engine (asyncio, dnspython) and the farm's module load when the demo runs
        from probes.dns.service import Vantage
        from probes.lab.agentfarm import local_dns_overrides

        overrides = self.local.dns
        if overrides is None:  # confined with no responder yet: nothing probed, never the host's resolvers
            return [Vantage(LOCAL_VANTAGE, None, {}, confine=True)]
        return [Vantage(LOCAL_VANTAGE, None, local_dns_overrides(overrides, topology), confine=True)]


class LocalEgressMap:
    """Egress VantageMap for the demo's `local` vantage (the laptop sees what nodes see)."""

    def __init__(self, local: _Local) -> None:
        self.local = local

    @property
    def version(self) -> int:
        return self.local.version

    @property
    def nudges(self) -> Nudges:
        return self.local.nudges

    def vantages(self, topology: Any) -> list[Any]:
        # lazy: the egress probe engine (asyncio) loads when the demo runs
        from probes.egress.service import EgressVantage

        if self.local.dns is None:  # confined with no DNS server yet: only loopback IP targets
            return [EgressVantage(LOCAL_VANTAGE, None, None, {}, confine=True)]
        return [EgressVantage(LOCAL_VANTAGE, None, self.local.egress_dns, dict(self.local.dial), confine=True)]


__all__ = ["Demo", "DemoError", "Launch", "launch", "launch_for", "serve_lab", "start"]
