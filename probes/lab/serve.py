"""Run the lab API server from the command line, or embedded for the demo.

``aksnet-top lab --scenario S [--nodes N] --kubeconfig-out PATH`` calls
:func:`serve_forever`. Imports stay light: kubernetes, textual and cryptography are
not loaded (cryptography only with ``tls=True``).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .apiserver import LabApiServer

EXIT_OK = 0
EXIT_LAB_ERROR = 3


def serve_forever(scenario_arg: str, nodes: int | None = None, kubeconfig_out: str | None = None,
                  host: str = "127.0.0.1", port: int = 0, tls: bool = False, token: str | None = None,
                  stderr: TextIO | None = None, stop_event: threading.Event | None = None) -> int:
    """Serve until SIGINT/SIGTERM (or ``stop_event``). Returns 0, or 3 with a one-line error."""
    err = stderr or sys.stderr
    stop = stop_event or threading.Event()
    old: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        # before anything is printed: whoever reads the ready line may signal at once
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        return _serve(scenario_arg, nodes, kubeconfig_out, host, port, tls, token, err, stop)
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)  # type: ignore[arg-type]


def _serve(scenario_arg: str, nodes: int | None, kubeconfig_out: str | None, host: str, port: int, tls: bool,
           token: str | None, err: TextIO, stop: threading.Event) -> int:
    from .apiserver import LabApiServer
    from .scenario import ScenarioError
    try:
        srv = LabApiServer(scenario_arg, host=host, port=port, tls=tls, token=token, nodes=nodes)
        writable(srv)
        srv.start()
    except ScenarioError as e:
        print(f"aksnet-top lab: {e}", file=err)
        return EXIT_LAB_ERROR
    except OSError as e:
        why = "port already in use" if e.errno in (98, 48, 10048) else (e.strerror or str(e))
        print(f"aksnet-top lab: cannot listen on {host}:{port}: {why}", file=err)
        return EXIT_LAB_ERROR
    try:
        path = kubeconfig_out or os.path.join(tempfile.gettempdir(), f"aksnet-lab-{srv.port}.kubeconfig")
        try:
            srv.write_kubeconfig(path)
        except OSError as e:
            print(f"aksnet-top lab: cannot write kubeconfig {path}: {e.strerror or e}", file=err)
            return EXIT_LAB_ERROR
        n = len(srv.state.nodes)
        print(f"lab '{srv.scenario.name}' ({n} nodes) at {srv.url} — export KUBECONFIG={path}; "
              f"kubectl get nodes -o wide", file=err, flush=True)
        for note in srv.scenario.notes:
            print(f"note: {note}", file=err, flush=True)
        while not stop.wait(0.5):
            pass
        return EXIT_OK
    finally:
        srv.stop()


def writable(srv: "LabApiServer") -> None:
    """Let clients create what `aksnet-top agent install` creates (namespaces,
    serviceaccounts, roles, rolebindings, daemonsets): try the installer on the lab."""
    from .writable import WritableObjects

    srv.writable = WritableObjects(lab_store=srv.state.store)


def start_embedded(scenario_arg: str, nodes: int | None = None, **kwargs) -> tuple["LabApiServer", str]:
    """Start a lab for the demo: returns (server, kubeconfig path). The temp dir goes at stop()."""
    from .apiserver import LabApiServer
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
