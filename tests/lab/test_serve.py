"""The `aksnet-top lab` entry point and the embedded demo lab."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from probes.lab.serve import serve_forever, start_embedded

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_serve_forever_writes_kubeconfig_and_stops(tmp_path):
    kc = tmp_path / "lab.kubeconfig"
    err = io.StringIO()
    stop = threading.Event()
    rc = []
    t = threading.Thread(
        target=lambda: rc.append(serve_forever("healthy", kubeconfig_out=str(kc), stderr=err, stop_event=stop))
    )
    t.start()
    deadline = time.monotonic() + 5
    while not err.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    line = err.getvalue()
    assert f"export KUBECONFIG={kc}" in line and "kubectl get nodes -o wide" in line
    import yaml

    server = yaml.safe_load(kc.read_text())["clusters"][0]["cluster"]["server"]
    with urllib.request.urlopen(server + "/api/v1/nodes", timeout=5) as r:
        assert len(json.loads(r.read())["items"]) == 5
    stop.set()
    t.join(5)
    assert rc == [0]
    assert len(err.getvalue().strip().splitlines()) == 1


def test_serve_forever_errors_are_one_line_exit_4_or_3(tmp_path):
    err = io.StringIO()
    assert serve_forever("nosuch", kubeconfig_out=str(tmp_path / "k"), stderr=err) == 4  # the user's input
    assert err.getvalue().count("\n") == 1 and "unknown scenario 'nosuch'" in err.getvalue()
    assert "Traceback" not in err.getvalue()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        err = io.StringIO()
        assert serve_forever("healthy", port=port, kubeconfig_out=str(tmp_path / "k"), stderr=err) == 3  # the machine
    assert err.getvalue().count("\n") == 1 and "port already in use" in err.getvalue()


def test_start_embedded_cleans_up():
    srv, kc = start_embedded("upgrade", time_scale=0.001)
    assert os.path.exists(kc)
    with urllib.request.urlopen(srv.url + "/version", timeout=5) as r:
        assert r.status == 200
    srv.stop()
    assert not os.path.exists(os.path.dirname(kc))


def test_lab_starts_light():
    """No kubernetes, textual or cryptography imports (its start-up time is measured by
    bench/lab_start_bench.py: speed goals live in benchmarks, not in timed tests)."""
    code = (
        "import sys\n"
        "from probes.lab.serve import start_embedded\n"
        "srv, kc = start_embedded('healthy')\n"
        "bad = [m for m in ('kubernetes', 'textual', 'cryptography') if m in sys.modules]\n"
        "srv.stop(); print(bad)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_cli_sigint_stops_cleanly(tmp_path):
    kc = tmp_path / "k"
    code = f"import sys; from probes.lab.serve import serve_forever; sys.exit(serve_forever('healthy', kubeconfig_out={str(kc)!r}))"
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
        assert "export KUBECONFIG=" in line
        p.send_signal(2)
        assert p.wait(10) == 0
        assert "Traceback" not in p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stderr.close()


def test_the_arm_endpoint_follows_the_labs_own_nodes():
    """LabArmServer.for_cluster reads the lab API server's live state (inside the lab):
    a node the cluster gains shows up as a load balancer backend and in the route table."""
    from probes.lab.arm import LabArmServer

    srv, _kc = start_embedded("healthy", run_timeline=False)
    try:
        arm = LabArmServer.for_cluster(srv.state, srv.scenario)
        before = {b.name for b in arm.backends()}
        name = srv.state.add_node("userpool")
        assert {b.name for b in arm.backends()} == before | {name}
        assert name in {n[0] for n in arm.route_nodes()}
        srv.state.remove_node(name)
        assert {b.name for b in arm.backends()} == before
    finally:
        srv.stop()
