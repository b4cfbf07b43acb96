"""Run the lab: from the command line, as the demo's own process, or embedded in tests.

``aksnet-top lab --scenario S [--nodes N] --kubeconfig-out PATH`` calls
:func:`serve_forever`. ``python -m probes.lab.serve`` is the demo's lab process
(:func:`demo_main`, started by probes.demo): the API server, the ARM endpoint and the
agent farm, out of the app's memory and GIL. :func:`start_embedded` runs the API server
in the caller's process (tests). Imports stay light: kubernetes, textual and cryptography
are not loaded (cryptography only with ``tls=True``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from types import FrameType, SimpleNamespace
from typing import Any, TextIO

from probes.exitcodes import ExitCode

from .apiserver import LabApiServer
from .scenario import ScenarioError
from .writable import WritableObjects

# what signal.signal takes and returns (SIG_DFL/SIG_IGN are ints; None: not set from Python)
_SignalHandler = Callable[[int, FrameType | None], Any] | int | None

EXIT_OK = ExitCode.HEALTHY
EXIT_LAB_ERROR = ExitCode.COULD_NOT_RUN  # no port, cannot write the kubeconfig
EXIT_SCENARIO = ExitCode.USAGE  # unknown scenario, bad scenario file


def serve_forever(
    scenario_arg: str,
    nodes: int | None = None,
    kubeconfig_out: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: bool = False,
    token: str | None = None,
    stderr: TextIO | None = None,
    stop_event: threading.Event | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM (or ``stop_event``). Returns 0, or 3 (cannot listen or
    write) / 4 (bad scenario) with a one-line error."""
    err = stderr or sys.stderr
    stop = stop_event or threading.Event()
    old: dict[signal.Signals, _SignalHandler] = {}
    if threading.current_thread() is threading.main_thread():
        # before anything is printed: whoever reads the ready line may signal at once
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        return _serve(scenario_arg, nodes, kubeconfig_out, host, port, tls, token, err, stop)
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _serve(
    scenario_arg: str,
    nodes: int | None,
    kubeconfig_out: str | None,
    host: str,
    port: int,
    tls: bool,
    token: str | None,
    err: TextIO,
    stop: threading.Event,
) -> int:
    try:
        srv = LabApiServer(scenario_arg, host=host, port=port, tls=tls, token=token, nodes=nodes)
        writable(srv)
        srv.start()
    except ScenarioError as e:
        print(f"aksnet-top lab: {e}", file=err)
        return EXIT_SCENARIO
    except OSError as e:
        why = "port already in use" if e.errno in (98, 48, 10048) else (e.strerror or str(e))
        print(f"aksnet-top lab: cannot listen on {host}:{port}: {why}", file=err)
        return EXIT_LAB_ERROR
    except (OverflowError, ValueError, UnicodeError) as e:  # port out of range, a NUL in the host
        print(f"aksnet-top lab: cannot listen on {host!r}:{port}: {e}", file=err)
        return EXIT_SCENARIO
    try:
        path = kubeconfig_out or os.path.join(tempfile.gettempdir(), f"aksnet-lab-{srv.port}.kubeconfig")
        try:
            srv.write_kubeconfig(path)
        except OSError as e:
            print(f"aksnet-top lab: cannot write kubeconfig {path}: {e.strerror or e}", file=err)
            return EXIT_LAB_ERROR
        n = len(srv.state.nodes)
        print(
            f"lab '{srv.scenario.name}' ({n} nodes) at {srv.url} — export KUBECONFIG={path}; kubectl get nodes -o wide",
            file=err,
            flush=True,
        )
        for note in srv.scenario.notes:
            print(f"note: {note}", file=err, flush=True)
        while not stop.wait(0.5):
            pass
        return EXIT_OK
    finally:
        srv.stop()


def writable(srv: LabApiServer) -> None:
    """Let clients create what `aksnet-top agent install` creates (namespaces,
    serviceaccounts, roles, rolebindings, daemonsets): try the installer on the lab."""
    srv.writable = WritableObjects(lab_store=srv.state.store)


def start_embedded(scenario_arg: str, nodes: int | None = None, **kwargs) -> tuple[LabApiServer, str]:
    """Start a lab for the demo: returns (server, kubeconfig path). The temp dir goes at stop()."""
    srv = LabApiServer(scenario_arg, nodes=nodes, **kwargs)
    srv.scenario_arg, srv.nodes_arg = scenario_arg, nodes  # the demo's agent farm loads the same
    writable(srv)
    d = tempfile.mkdtemp(prefix="aksnet-lab-")
    try:
        srv.start()
        path = srv.write_kubeconfig(os.path.join(d, "kubeconfig"))
    except BaseException:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)
        raise
    srv.add_stop_callback(lambda: shutil.rmtree(d, ignore_errors=True))
    return srv, path


# ---------------------------------------------------------------------- the demo's lab process
READY_TIMEOUT = 30.0


class _DemoRequest:
    """The demo's first line on stdin, as the settings demoagents.start reads."""

    def __init__(self, doc: dict) -> None:
        self.scenario = str(doc.get("scenario") or "healthy")
        self.nodes = doc.get("nodes") or None
        d, e = doc.get("dns") or {}, doc.get("egress") or {}
        self.dns = SimpleNamespace(
            interval=float(d.get("interval", 5.0)),
            timeout=float(d.get("timeout", 2.0)),
            names=tuple(d.get("names") or ()),
        )
        self.egress = SimpleNamespace(
            interval=float(e.get("interval", 10.0)),
            timeout=float(e.get("timeout", 2.0)),
            targets=tuple(e.get("targets") or ()),
            echo=bool(e.get("echo")),
        )


def demo_main() -> int:
    """The demo's lab process. Reads one JSON line on stdin::

        {"scenario": "healthy", "nodes": null,
         "dns": {"interval": 5, "timeout": 2, "names": [...]},
         "egress": {"interval": 10, "timeout": 2, "targets": [...]}}

    starts the API server (kubeconfig in a temp dir) and the ARM endpoint over the same
    cluster state, and prints one JSON line::

        {"kubeconfig": PATH, "arm": {"url": URL, "token": T}, "scenario": NAME, "nodes": N,
         "notes": [...], "extra_targets": ["host:port", …],
         "https": {"ca": PATH, "dial": {"<ingress ip>:443": [loopback, port]}}}

    or ``{"error": "…", "usage": true|false}`` (exit 4 for a bad scenario, else 3). Then
    it starts the agent farm (its own process) and prints a second line,
    ``{"local": {…the farm's…}, "pids": [farm pid]}`` or ``{"agents_error": "…"}``. Then
    serves until stdin reaches EOF (the app closed it, exited or died: no orphan) or
    SIGTERM/SIGINT, and tears everything down (the farm goes with it)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def say(doc: dict) -> None:
        sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    try:
        req = _DemoRequest(json.loads(sys.stdin.buffer.readline() or b"{}"))
    except (ValueError, TypeError, AttributeError) as e:
        say({"error": f"bad request to the demo's lab process: {e}", "usage": False})
        return ExitCode.COULD_NOT_RUN

    # lazy: the demo's parts (ARM endpoint, agent farm, egress demo) are not loaded by `aksnet-top lab`
    from . import demoagents

    stops: list = []
    farm_proc = None
    try:
        try:  # the farm's process imports its modules while the cluster is built
            farm_proc = demoagents.spawn()
        except demoagents.DemoAgentsError:
            farm_proc = None  # start() below tries again and says why
        try:
            srv, kubeconfig = start_embedded(req.scenario, nodes=req.nodes)
        except ScenarioError as e:
            say({"error": str(e), "usage": True})
            return EXIT_SCENARIO
        stops.append(srv.stop)
        # lazy: the ARM endpoint (and azure's placeholder token) load after the API server answers
        from .arm import LAB_TOKEN, LabArmServer
        from .egressdemo import EgressDemo

        arm = LabArmServer.for_cluster(srv.state, srv.scenario).start()
        stops.append(arm.stop)
        # lazy: the ingress controllers' TLS endpoints (cryptography) only for the demo
        from .httpsdemo import HttpsDemo

        https_demo = HttpsDemo(srv.scenario)
        try:
            https = https_demo.start()
        except Exception as e:  # noqa: BLE001 - the cluster serves on; the HTTPS probe dials nothing
            https = {"ca": "", "dial": {}, "error": f"the lab's HTTPS endpoints did not start: {e}"[:200]}
        stops.append(https_demo.stop)
        # the cluster first: the app opens on it while the agent farm starts
        say(
            {
                "kubeconfig": kubeconfig,
                "arm": {"url": arm.url, "token": LAB_TOKEN},
                "scenario": srv.scenario.name,
                "nodes": len(srv.state.nodes),
                "notes": list(srv.scenario.notes),
                "extra_targets": EgressDemo(srv.scenario).extra_targets(),
                "https": https or {"ca": "", "dial": {}},
            }
        )
        try:
            proc, farm_proc = farm_proc, None
            farm = demoagents.start(srv, req.dns, req.egress, proc=proc)
        except Exception as e:  # noqa: BLE001 - the cluster serves on; the app shows no agents
            say({"agents_error": str(e) or type(e).__name__})
        else:
            stops.append(lambda: farm.stop(1.0, wait=True))
            say({"local": farm.local(), "pids": [farm.proc.pid]})
        _until_eof_or(stop)
        return EXIT_OK
    except Exception as e:  # noqa: BLE001 - the app reads one line, never a traceback
        say({"error": str(e) or type(e).__name__, "usage": False})
        return EXIT_LAB_ERROR
    finally:
        if farm_proc is not None:  # spawned, never started: the cluster failed first
            demoagents.discard(farm_proc)
        _all_at_once(reversed(stops))


def _until_eof_or(stop: threading.Event) -> None:
    """Wait for EOF on stdin (the app's end of the pipe closed) or `stop`."""

    def read() -> None:
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=read, name="lab-stdin", daemon=True).start()
    while not stop.wait(0.5):
        pass


def _all_at_once(calls, timeout: float = 3.0) -> None:
    threads = [threading.Thread(target=_quietly, args=(fn,), daemon=True) for fn in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - stopping goes on
        pass


if __name__ == "__main__":
    raise SystemExit(demo_main())
