"""Fixtures for the lab tests: servers are always stopped, and nothing may leak."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from probes.lab.apiserver import LabApiServer


@pytest.fixture
def make_lab(tmp_path):
    """make_lab(scenario, **kwargs) -> (started server, kubeconfig path); stopped at teardown."""
    servers: list[LabApiServer] = []

    def make(scenario="healthy", **kwargs):
        srv = LabApiServer(scenario, **kwargs).start()
        servers.append(srv)
        kc = srv.write_kubeconfig(str(tmp_path / f"kubeconfig-{len(servers)}"))
        return srv, kc

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def kube_client():
    """kube_client(kubeconfig) -> CoreV1Api of the real kubernetes client; closed at teardown."""
    from kubernetes import client, config

    made = []

    def make(kubeconfig):
        api = config.new_client_from_config(config_file=kubeconfig)
        made.append(api)
        return client.CoreV1Api(api)

    yield make
    for api in made:
        api.close()


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        leaked = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and (t.name.startswith("lab-") or "process_request" in t.name)
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"


@pytest.fixture
def kubectl(tmp_path):
    """Run kubectl with a private HOME (discovery cache); skip only if it is missing."""
    import subprocess

    exe = shutil.which("kubectl")
    if exe is None:
        print("kubectl not found on PATH: skipping the kubectl contract tests")
        pytest.skip("kubectl is not installed")
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "")}

    def run(kubeconfig, *args, check=True, timeout=30):
        p = subprocess.run(
            [exe, "--kubeconfig", kubeconfig, *args], capture_output=True, text=True, env=env, timeout=timeout
        )
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    return run
