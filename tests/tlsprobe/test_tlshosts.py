"""The lab's TLS endpoints: specs checked, endpoints shared by SNI, run alone for benchmarks."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from probes.ingress.tlsprobe import TlsProbe
from probes.ingress.tlsresult import TlsOutcome
from probes.lab.tlshosts import TlsHostSpec, start_tls_hosts

ROOT = Path(__file__).resolve().parents[2]


def test_unknown_kind_is_one_clear_line():
    with pytest.raises(ValueError, match="kind 'bogus' is not one of valid, expiring"):
        TlsHostSpec("x.lab.test", "bogus")


def test_listeners_are_shared_by_endpoint_and_stop_removes_the_certificates():
    specs = [
        TlsHostSpec("a.lab.test", "valid", endpoint="one"),
        TlsHostSpec("b.lab.test", "expired", endpoint="one"),
        TlsHostSpec("c.lab.test", "valid", endpoint="two"),
        TlsHostSpec("d.lab.test", "hang", "127.0.0.31"),
        TlsHostSpec("e.lab.test", "hang", "127.0.0.31"),
    ]
    lab = start_tls_hosts(specs)
    try:
        h = lab.hosts
        assert h["a.lab.test"][:2] == h["b.lab.test"][:2] != h["c.lab.test"][:2]
        assert h["d.lab.test"][:2] == h["e.lab.test"][:2] and h["d.lab.test"][0] == "127.0.0.31"
        assert {k for _, _, k in h.values()} == {"valid", "expired", "hang"}
        assert os.path.isfile(lab.ca_path)
    finally:
        lab.stop()
    assert not os.path.exists(lab.dir)


def test_run_alone_serves_until_stdin_closes(tmp_path):
    spec = tmp_path / "specs.json"
    spec.write_text(json.dumps([["a.lab.test", "valid"], ["b.lab.test", "refused", "127.0.0.32"]]))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen(
        [sys.executable, "-m", "probes.lab.tlshosts", str(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert p.stdout is not None and p.stdin is not None
        info = json.loads(p.stdout.readline())
        hosts = {h: tuple(v) for h, v in info["hosts"].items()}
        assert hosts["b.lab.test"][2] == "refused"

        async def both():
            pr = TlsProbe(ca_bundle=info["ca"], timeout=2.0)
            return await pr.probe_all([(h, ip, port) for h, (ip, port, _) in hosts.items()])

        a, b = asyncio.run(both())
        assert (a.outcome, b.outcome) == (TlsOutcome.VALID, TlsOutcome.REFUSED)
        p.stdin.close()
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        if p.stdout is not None:
            p.stdout.close()
    assert not os.path.exists(info["ca"])
