"""kubectl apply -f of `aksnet-top agent manifest` against WritableObjects: discovery is enough for kubectl."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from probes.agent.manifest import render, to_yaml

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def _kubectl(kc: str, home: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["kubectl", "--kubeconfig", kc, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": home, "PATH": "/usr/local/bin:/usr/bin:/bin"},
    )


def test_kubectl_apply_creates_everything(write_server, tmp_path):
    srv = write_server(token=None)  # kubectl sends no bearer token over plain http
    kc = srv.kubeconfig(tmp_path / "kubeconfig")
    objs = render("myacr.azurecr.io/aksnet-top:0.1.0", reader_groups=["sre"])
    out = _kubectl(kc, str(tmp_path), "apply", "--validate=false", "-f", "-", stdin=to_yaml(objs))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "namespace/aksnet-top created",
        "serviceaccount/aksnet-top-agent created",
        "role.rbac.authorization.k8s.io/aksnet-top-agent-reader created",
        "rolebinding.rbac.authorization.k8s.io/aksnet-top-agent-reader created",
        "networkpolicy.networking.k8s.io/aksnet-top-agent created",
        "daemonset.apps/aksnet-top-agent created",
    ]
    out = _kubectl(kc, str(tmp_path), "-n", "aksnet-top", "get", "daemonsets", "-o", "name")
    assert out.returncode == 0 and out.stdout.strip() == "daemonset.apps/aksnet-top-agent", out.stderr
    assert {r.method for r in srv.requests} == {"GET", "POST"}
