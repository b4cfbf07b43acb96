"""The ConfigMap agent: the zipapp runs under a bare interpreter, as in the stock image.

``python -I -S``: no site-packages, no PYTHONPATH, no current directory, no user site:
only the standard library and the zip. The agent must start, answer /healthz, /metrics
and /v1/results on loopback, and probe a loopback DNS server, and the app's reader
(msgspec) must decode what the zip's agent (json) writes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from probes.agent import pyz, wire
from probes.dns.result import DnsOutcome
from probes.lab.dnsserver import DnsResponder
from probes.lab.dnsspec import ANSWER


def test_zip_is_small_deterministic_and_pure():
    a, b = pyz.build("9.9.9"), pyz.build("9.9.9")
    assert a.data == b.data and a.sha256 == b.sha256, "same installation, same bytes"
    assert len(a.data) < pyz.LIMIT
    names = zipfile.ZipFile(BytesIO(a.data)).namelist()
    assert "__main__.py" in names and "PYZ-INFO" in names
    assert not [n for n in names if n.endswith((".so", ".pyd", ".pyc"))]
    tops = {n.split("/")[0] for n in names if "/" in n}
    assert tops == {"probes", *pyz.PURE_PACKAGES}, "only our code and the pure-Python dependencies"
    assert "probes/agent/wire.py" not in names and "probes/config.py" not in names, "msgspec users stay out"
    info = zipfile.ZipFile(BytesIO(a.data)).read("PYZ-INFO").decode()
    assert info.startswith("aksnet-top 9.9.9\n") and "dnspython " in info


def test_the_module_list_is_what_agent_run_imports():
    """A new import in the agent shows here (and the bare run below fails without it)."""
    code = (
        "import sys\n"
        "import probes.agent.main, probes.agent.http\n"
        "print(' '.join(sorted(m for m in sys.modules if m == 'probes' or m.startswith('probes.'))))\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & {'msgspec', 'orjson', 'yaml', 'scapy'})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2]
    )
    assert out.returncode == 0, out.stderr
    ours, compiled = out.stdout.splitlines()
    assert set(ours.split()) == set(pyz.AGENT_MODULES)
    assert compiled == "", f"agent run loaded {compiled}: not in the zip"


def _get(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
        return r.status, r.read()


@pytest.fixture
def bare_agent(tmp_path):
    """start(*args) -> (process, port): the zip under `python -I -S` in an empty dir."""
    procs: list[subprocess.Popen] = []
    path = tmp_path / pyz.PYZ_NAME
    path.write_bytes(pyz.build().data)
    work = tmp_path / "cwd"
    work.mkdir()

    def start(*args: str) -> tuple[subprocess.Popen, int]:
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": "", "NODE_NAME": "aks-nodepool1-12345678-vmss000000"}
        p = subprocess.Popen(
            [sys.executable, "-I", "-S", str(path), "--bind=127.0.0.1", "--port=0", "--mode=connect", *args],
            cwd=work,
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        procs.append(p)
        deadline = time.monotonic() + 20
        lines = []
        assert p.stderr is not None
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                return p, int(m.group(1))
        p.kill()
        pytest.fail("the zipapp did not start:\n" + "".join(lines) + (p.stderr.read() or ""))

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        if p.stderr:
            p.stderr.close()


def test_bare_interpreter_runs_the_agent_and_probes_loopback_dns(bare_agent):
    dns = DnsResponder(ANSWER).start()
    try:
        host, port = dns.address
        proc, http = bare_agent(
            "--kube-dns=10.0.0.10",
            "--nodelocal",
            "--nodelocal-ip=169.254.20.11",  # not the default: the probes follow the pods' -localip
            f"--dns-override=10.0.0.10={host}:{port}",
            f"--dns-override=169.254.20.11={host}:{port}",
            "--confine",
            "--no-aks-defaults",
            "--interval=0.2",
            "--timeout=1",
        )
        assert _get(http, "/healthz") == (200, b"ok\n")
        deadline = time.monotonic() + 15
        report = None
        while time.monotonic() < deadline:
            report = wire.decode(_get(http, "/v1/results?since=0")[1], "node/aks-nodepool1-12345678-vmss000000")
            keys = {r.resolver for r in report.dns if r.outcome is DnsOutcome.OK}
            if {"nodelocal", "kube-dns"} <= keys:
                break
            time.sleep(0.2)
        assert report is not None
        by_key = {r.key: r for r in report.resolvers}
        assert by_key["nodelocal"].address == "169.254.20.11" and by_key["nodelocal"].target == (host, port)
        ok = {r.resolver for r in report.dns if r.outcome is DnsOutcome.OK}
        assert {"nodelocal", "kube-dns"} <= ok, report.dns[-4:]
        assert report.version.endswith("+pyz")
        status, metrics = _get(http, "/metrics")
        text = metrics.decode()
        assert status == 200 and "aksnet_agent_info{" in text and 'mode="connect"' in text
        assert proc.poll() is None
    finally:
        dns.stop()


def test_bare_interpreter_says_nodelocal_not_probed_when_not_told(bare_agent, tmp_path):
    proc, http = bare_agent("--kube-dns=10.0.0.10", "--confine", "--no-aks-defaults")
    report = wire.decode(_get(http, "/v1/results?since=0")[1], "node/x")
    assert "nodelocal" not in {r.key for r in report.resolvers}
    proc.terminate()
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert "NodeLocal DNS not probed: not told" in err, err
