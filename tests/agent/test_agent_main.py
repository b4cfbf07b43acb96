"""`aksnet-top agent run` as a process: serves, exits 0 on SIGTERM, says what is wrong with
bad flags (exit 2) and a taken port (exit 3), and never loads the UI or cloud clients."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from probes.agent.main import build_settings, default_kube_dns, run, run_parser
from probes.agent.wire import decode
from probes.dns.probe import DnsOutcome as Outcome
from probes.egress.probe import EgressMode
from probes.egress.probe import EgressOutcome as EOut
from tests.agent.agent_helpers import DROP, EGRESS_ZONE, wait_sync

NODE = "aks-nodepool1-12345678-vmss000003"
CODE = (
    "import json, sys\n"
    "from probes.agent.main import run\n"
    "rc = run(sys.argv[1:])\n"
    "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui', 'kubernetes', 'azure', 'scapy'))\n"
    "print(json.dumps({'rc': rc, 'modules': bad}))\n"
    "sys.exit(rc)\n"
)


def _read_until(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    """stderr lines until one contains `needle` (bounded)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    seen = ""
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            if not sel.select(max(0.0, end - time.monotonic())):
                break
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
            if needle in line:
                return line
    finally:
        sel.close()
    pytest.fail(f"agent did not log {needle!r} within {timeout}s; stderr so far:\n{seen}")


def _fetch(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=3) as r:
        return r.status, r.read()


def test_agent_process_serves_and_exits_0_on_sigterm(responder, targets):
    ok, drop, edns = responder(), responder(DROP), responder(zone=EGRESS_ZONE)
    args = [
        "--node",
        NODE,
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--interval",
        "0.2",
        "--timeout",
        "0.3",
        "--mode",
        "connect",
        "--kube-dns",
        "10.0.0.10",
        "--nodelocal",
        "--no-aks-defaults",
        "--dns-override",
        "169.254.20.10=%s:%d" % drop.address,
        "--dns-override",
        "kube-dns=%s:%d" % ok.address,
        "--egress-dns",
        "%s:%d" % edns.address,
        "--confine",
        "--target",
        "open.example:443",
        "--target",
        "drop.example:443",
        *sum((["--dial", f"{a}={p}"] for a, p in targets.dial_map().items()), []),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKSNET_AGENT_") and k != "NODE_NAME"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CODE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=os.getcwd(),
    )
    try:
        line = _read_until(proc, "listening on", 20)
        port = int(line.split("listening on 127.0.0.1:")[1].split(":")[0])
        base = f"http://127.0.0.1:{port}"
        assert _fetch(base + "/healthz") == (200, b"ok\n")
        reports = []

        def enough() -> bool:
            reports.append(decode(_fetch(base + "/v1/results?since=0")[1], f"node/{NODE}"))
            r = reports[-1]
            return (
                len({d.resolver for d in r.dns}) == 2
                and len(r.dns) >= 6
                and {e.target for e in r.egress} == {"open.example:443", "drop.example:443"}
            )

        wait_sync(enough, 10, "results from both resolvers and both targets")
        rep = reports[-1]
        assert {d.outcome for d in rep.dns if d.resolver == "nodelocal"} == {Outcome.TIMEOUT}
        assert {d.outcome for d in rep.dns if d.resolver == "kube-dns"} == {Outcome.OK}
        assert {e.target: e.outcome for e in rep.egress} == {
            "open.example:443": EOut.OPEN,
            "drop.example:443": EOut.TIMEOUT,
        }
        assert rep.mode is EgressMode.CONNECT and rep.node == NODE
        status, metrics = _fetch(base + "/metrics")
        fams = {f.name: f for f in text_string_to_metric_families(metrics.decode())}
        assert {
            s.labels["address"] for s in fams["aksnet_agent_dns_queries"].samples if s.labels["resolver"] == "nodelocal"
        } == {"169.254.20.10"}
        assert fams["process_resident_memory_bytes"].samples[0].value > 1e6
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"rc": 0, "modules": []}
    assert "Traceback" not in err


def test_bad_flags_exit_2_with_a_clear_message(capsys, monkeypatch):
    monkeypatch.delenv("NODE_NAME", raising=False)
    monkeypatch.delenv("AKSNET_AGENT_NODE", raising=False)
    assert run(["--node", "n", "--mode", "icmp"]) == 4
    assert "invalid choice: 'icmp'" in capsys.readouterr().err
    assert run(["--kube-dns", "10.0.0.10"]) == 4
    assert "no node name: pass --node, or set NODE_NAME" in capsys.readouterr().err
    assert run(["--node", "n", "--target", "mcr.microsoft.com"]) == 4
    assert "no port" in capsys.readouterr().err
    assert run(["--node", "n", "--dial", "127.0.0.2=http"]) == 4
    assert "--dial" in capsys.readouterr().err
    monkeypatch.setenv("AKSNET_AGENT_NODELOCAL", "maybe")
    assert run(["--node", "n"]) == 4
    assert "$AKSNET_AGENT_NODELOCAL: expected true or false" in capsys.readouterr().err
    assert run(["--help"]) == 0


def test_port_in_use_exits_3_in_one_line(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        t0 = time.monotonic()
        rc = run(
            ["--node", "n", "--bind", "127.0.0.1", "--port", str(port), "--kube-dns", "10.0.0.10", "--no-aks-defaults"]
        )
    assert rc == 3 and time.monotonic() - t0 < 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot listen on 127.0.0.1:{port}" in err[0] and "--port" in err[0]


def test_flags_win_over_env_and_env_over_defaults(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text(
        "search default.svc.cluster.local\nnameserver 169.254.20.10\nnameserver 127.0.0.53\n"
        "nameserver 10.0.0.10\noptions ndots:5\n"
    )
    env = {
        "NODE_NAME": "from-env",
        "AKSNET_AGENT_NAMES": "a.example, b.example",
        "AKSNET_AGENT_NODELOCAL": "true",
        "AKSNET_AGENT_INTERVAL": "30",
        "AKSNET_AGENT_PORT": "9200",
        "AKSNET_AGENT_TARGETS": "x.example:443",
        "AKSNET_AGENT_AKS_DEFAULTS": "0",
    }
    p = run_parser()
    s, bind, port, level = build_settings(p.parse_args([]), env, str(conf))
    assert (s.node, s.names, s.dns_interval, s.egress_interval, port, bind, level) == (
        "from-env",
        ("a.example", "b.example"),
        30.0,
        30.0,
        9200,
        "0.0.0.0",
        "info",
    )
    assert [r.key for r in s.resolvers] == ["nodelocal", "kube-dns"]
    assert [r.address for r in s.resolvers] == ["169.254.20.10", "10.0.0.10"]
    assert [t.text for t in s.targets] == ["x.example:443"]
    assert s.mode == "auto" and s.feed_size == 2048 and s.egress_dns is None and not s.confine
    s, _, port, _ = build_settings(
        p.parse_args(["--node", "flag", "--no-nodelocal", "--interval", "5", "--egress-interval", "20", "--port", "1"]),
        env,
        str(conf),
    )
    assert (s.node, s.dns_interval, s.egress_interval, port) == ("flag", 5.0, 20.0, 1)
    assert [r.key for r in s.resolvers] == ["kube-dns"]


def test_default_kube_dns_skips_what_cannot_be_kube_dns(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 168.63.129.16\nnameserver fe80::1%eth0\nnameserver 127.0.0.53\n")
    assert default_kube_dns(str(conf)) is None
    conf.write_text("# comment\nnameserver 169.254.10.10\nnameserver 10.2.0.10\nnameserver 10.2.0.11\n")
    assert default_kube_dns(str(conf)) == "10.2.0.10"
    assert default_kube_dns(str(tmp_path / "missing")) is None
