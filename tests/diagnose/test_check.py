"""`aksnet-top check` end to end on the demo: exit codes, JSON schema, table, no textual."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def check(args: list[str], tmp_path: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKSNET_", "KUBECONFIG"))}
    env.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PYTHONPATH": str(ROOT)})
    env.update(env_extra or {})
    code = (
        "import sys; from tui.cli import main; rc = main(sys.argv[1:]); "
        "print('TEXTUAL-LOADED' if 'textual' in sys.modules else '', file=sys.stderr); sys.exit(rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "check", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in out.stderr, out.stderr
    assert "TEXTUAL-LOADED" not in out.stderr
    return out


def test_healthy_demo_exits_0_with_the_documented_json(tmp_path):
    out = check(["--demo", "--scenario", "healthy", "--output", "json"], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema"] == "aksnet-top/check/v1" and doc["status"] == "healthy" and doc["exit_code"] == 0
    assert doc["interval_s"] == 1.0 and doc["cycles"] == 2  # the default: cycles back to back
    assert set(doc) >= {"generated_at", "target", "cycles", "interval_s", "errors", "findings", "observations"}
    obs = doc["observations"]
    assert set(obs) == {"topology", "dns", "egress", "snat", "routes", "agents", "ingress", "not_probed"}
    # no Ingress in `healthy`: nothing to probe over HTTPS, the LoadBalancer services still listed
    assert obs["ingress"]["hosts"] == [] and obs["ingress"]["https"]["probed"] == 0
    assert [lb["service"] for lb in obs["ingress"]["load_balancers"]] == ["default/web"]
    # the demo's `local` (the laptop) cannot reach NodeLocal's link-local address: listed, never probed
    assert {"vantage": "local", "subject": "resolver/nodelocal"}.items() <= next(
        (x for x in obs["not_probed"] if x["subject"] == "resolver/nodelocal"), {}
    ).items()
    assert not any(r["vantage"] == "local" and r["resolver"] == "nodelocal" for r in obs["dns"])
    # the nodes' vantages come from their agents, read through the API server's pod proxy
    agents = obs["agents"]
    assert agents["enabled"] and agents["discovered"] and agents["with_agent"] == 5
    assert all(
        r["agent"].startswith("aksnet-top-agent-") and r["results"] > 0 and r["error"] is None for r in agents["nodes"]
    )
    topo = obs["topology"]
    assert topo["plugin"] == "kubenet" and topo["nodes"] == topo["nodes_ready"] == 5
    assert topo["node_list"][0]["internal_ip"] == "10.224.0.4" and topo["node_list"][0]["pod_cidrs"] == [
        "10.244.0.0/24"
    ]
    assert obs["dns"] and all(r["attempts"] >= 2 for r in obs["dns"])
    assert {r["vantage"] for r in obs["dns"]} >= {"local"} | {f"node/{n['name']}" for n in topo["node_list"]}
    assert all(f["severity"] == "info" for f in doc["findings"])


def test_nodelocal_down_names_f4_on_the_right_node_within_2_cycles(tmp_path):
    out = check(
        ["--demo", "--scenario", "dns-nodelocal-down", "--interval", "1", "--cycles", "2", "--output", "json"], tmp_path
    )
    assert out.returncode == 2
    doc = json.loads(out.stdout)
    crit = [f for f in doc["findings"] if f["severity"] == "critical"]
    assert [f["fault"] for f in crit] == ["F4"]
    node = crit[0]["subject"].removeprefix("node/")
    assert node.startswith("aks-nodepool1-") and node.endswith("vmss000001")  # the scenario's nodepool1/1
    bad_rows = [
        r for r in doc["observations"]["dns"] if r["vantage"] == f"node/{node}" and r["resolver"] == "nodelocal"
    ]
    assert bad_rows and all(r["last_outcome"] == "timeout" for r in bad_rows)


def test_table_output(tmp_path):
    out = check(["--demo", "--scenario", "dns-nodelocal-down", "--interval", "1"], tmp_path)
    assert out.returncode == 2
    assert out.stdout.startswith("aksnet-top check: CRITICAL")
    assert "[CRITICAL] F4 node/" in out.stdout and "next: " in out.stdout


def test_no_kubeconfig_exits_3(tmp_path):
    out = check([], tmp_path)
    assert out.returncode == 3 and "no kubeconfig found" in out.stderr


def test_unreachable_cluster_exits_3_with_the_reason(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    kc = tmp_path / "kc"
    kc.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:%d'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n" % port
    )
    out = check(["--kubeconfig", str(kc), "--output", "json"], tmp_path, {"AKSNET_KUBE_REQUEST_TIMEOUT": "1"})
    assert out.returncode == 3
    doc = json.loads(out.stdout)
    assert doc["status"] == "error" and any("unreachable" in e for e in doc["errors"])


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--cycles", "0"], "--cycles"),
        (["--output", "xml"], "invalid choice"),
        (["--scenario", "healthy"], "go with --demo"),
        (["--demo", "--scenario", "no-such-scenario"], "no-such-scenario"),
    ],
)
def test_bad_flags(tmp_path, args, needle):
    out = check(args, tmp_path)
    assert out.returncode == 4 and needle in out.stderr


def test_f12_carries_the_cloud_providers_event(tmp_path):
    out = check(["--demo", "--scenario", "f12", "--interval", "1", "--output", "json"], tmp_path)
    assert out.returncode == 1
    f12 = [f for f in json.loads(out.stdout)["findings"] if f["fault"] == "F12"]
    assert len(f12) == 1 and "Error syncing load balancer" in f12[0]["cause"]
    assert "PublicIPCountLimitReached" in f12[0]["evidence"]["events"]
