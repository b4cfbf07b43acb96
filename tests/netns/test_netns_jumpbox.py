"""The honest jumpbox view and the 512-byte client profile, in a network namespace.

The namespace is a jumpbox: one interface in 10.1.0.0/24 with a default route, no route
to 169.254.20.10, to the service network 10.0.0.0/16 or to the overlay pod network.
Classification reads the namespace's own routing table; adding a route (or the address)
makes the row reachable. A lab responder on 10.1.0.53 answers with 734 bytes: whole with
EDNS, truncated for a client without it. Traffic never leaves the namespace. Root and
`ip netns` are needed: skipped otherwise, except under CI (env CI), where it fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.engine.reach import CLUSTER_IP_WHY, LINK_LOCAL_WHY
from tests.netns.test_netns_dns import _ip, _require

pytestmark = pytest.mark.netns

HELPER = Path(__file__).with_name("netns_jumpbox.py")


@pytest.fixture
def jumpbox() -> Iterator[str]:
    _require()
    ns = f"aksnet-jump-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", ns)
    try:
        _ip("link", "set", "lo", "up", ns=ns)
        try:
            _ip("link", "add", "eth0", "type", "dummy", ns=ns)
        except RuntimeError:
            _ip("link", "add", "eth0", "type", "veth", "peer", "name", "eth0p", ns=ns)
            _ip("link", "set", "eth0p", "up", ns=ns)
        _ip("addr", "add", "10.1.0.4/24", "dev", "eth0", ns=ns)
        _ip("addr", "add", "10.1.0.53/32", "dev", "eth0", ns=ns)
        _ip("link", "set", "eth0", "up", ns=ns)
        _ip("route", "add", "default", "via", "10.1.0.1", "dev", "eth0", ns=ns)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def run(ns: str, mode: str) -> dict:
    r = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, str(HELPER), mode], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_jumpbox_classifies_from_its_own_routing_table(jumpbox):
    got = run(jumpbox, "classify")
    assert got["nodelocal"] == LINK_LOCAL_WHY
    assert got["kube-dns"] == CLUSTER_IP_WHY
    assert got["coredns/coredns-a"].startswith("overlay pod IP") and "10.244.0.0/16" in got["coredns/coredns-a"]
    assert got["custom/10.1.0.53"] == ""  # an ordinary address: probed
    assert got["jobs"] == "2"  # the custom resolver × 2 names, nothing else
    # a deliberate route to the service network, an address this host owns: reachable
    _ip("route", "add", "10.0.0.0/16", "dev", "eth0", ns=jumpbox)
    _ip("addr", "add", "169.254.20.10/32", "dev", "eth0", ns=jumpbox)
    got = run(jumpbox, "classify")
    assert (got["kube-dns"], got["nodelocal"]) == ("", "")
    assert got["coredns/coredns-a"] != ""  # the overlay is still not routed


def test_734_byte_answer_is_ok_with_edns_and_truncated_for_no_edns_clients(jumpbox):
    got = run(jumpbox, "truncation")
    assert got["target"] == "10.1.0.53:53"  # the real address, no override
    assert (got["outcome"], got["size"], got["no_edns"]) == ("ok", 734, "truncated-tcp-ok")
    (f7,) = got["f7"]
    assert f7["rule"] == "dns-truncated-no-edns" and f7["severity"] == "info"
    assert "734 bytes" in f7["cause"] and "glibc without `options edns0`" in f7["cause"]
