"""The probe against the real production addresses, inside a network namespace.

The namespace's own interface (dummy, or veth where dummy is missing) owns 169.254.20.10 (NodeLocal DNS) and 10.0.0.10 (the
kube-dns ClusterIP); lab responders listen on them inside the namespace and the probe,
also inside, queries the production addresses with no override. Traffic never leaves the
namespace. Needs root and `ip netns`: skipped otherwise, except under CI (env CI set),
where a missing prerequisite is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

HELPER = Path(__file__).with_name("netns_dns_probe.py")


def _require() -> None:
    why = None
    if os.geteuid() != 0:
        why = "needs root (network namespaces)"
    elif shutil.which("ip") is None:
        why = "needs iproute2 (`ip netns`)"
    else:
        probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
        if probe.returncode != 0:
            why = f"`ip netns` does not work here: {probe.stderr.strip()}"
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"netns test cannot run in CI: {why}")
        pytest.skip(why)


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")


def run_in_namespace(mode: str) -> dict[str, str]:
    _require()
    ns = f"aksnet-dns-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", ns)
    try:
        _ip("link", "set", "lo", "up", ns=ns)
        try:  # the node's interface: a dummy where the kernel has it, else a veth pair
            _ip("link", "add", "node0", "type", "dummy", ns=ns)
        except RuntimeError:
            _ip("link", "add", "node0", "type", "veth", "peer", "name", "node0p", ns=ns)
            _ip("link", "set", "node0p", "up", ns=ns)
        _ip("addr", "add", "169.254.20.10/32", "dev", "node0", ns=ns)
        _ip("addr", "add", "10.0.0.10/32", "dev", "node0", ns=ns)
        _ip("link", "set", "node0", "up", ns=ns)
        r = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, str(HELPER), mode], capture_output=True, text=True, timeout=30
        )
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def test_probe_reaches_production_addresses_in_namespace():
    out = run_in_namespace("ok")
    assert len(out) == 4
    assert {k.split("/")[0] for k in out} == {"nodelocal@169.254.20.10:53", "kube-dns@10.0.0.10:53"}
    assert set(out.values()) == {"ok"}, out


def test_nodelocal_dropping_times_out_while_kube_dns_answers():
    out = run_in_namespace("nodelocal-drop")
    for key, outcome in out.items():
        assert outcome == ("timeout" if key.startswith("nodelocal@") else "ok"), out
