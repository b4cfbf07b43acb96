"""`aksnet-top agent run` on two nodes (network namespaces), read by the app's reader
through the lab API server's pod proxy; a fault staged in one node shows under that node
only. Root and network namespaces needed (skipped off CI without them, fails in CI)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from probes.agent.reader import AgentReader, ReaderSettings
from probes.config import KubeConfig
from probes.dns.probe import ProbeKey
from probes.dns.service import wait_for
from probes.egress.probe import EgressKey
from probes.engine.history import History
from probes.kube.model import node_vantage
from probes.lab.apiserver import LabApiServer
from probes.lab.cluster import LabAgentPod
from probes.lab.dnsserver import DnsResponder
from tests.support.leaks import guard_threads
from tests.support.netns import ROOT, D, NetnsLab, available, cleanup_stale, netns_call

pytestmark = pytest.mark.netns
NAME = "kubernetes.default.svc.cluster.local"
AGENT = "import sys; from probes.agent.main import run; sys.exit(run(sys.argv[1:]))"


@pytest.fixture(autouse=True)
def _no_leaks():
    yield from guard_threads()


@pytest.fixture
def netlab():
    ok, why = available() if os.geteuid() == 0 else (False, "needs root")
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but network namespaces are unavailable: {why}")
        pytest.skip(why)
    cleanup_stale()
    lab = NetnsLab()
    lab.start()
    try:
        lab.link_host()
        yield lab
    finally:
        lab.stop()


def start_agent(lab: NetnsLab, role: str, node: str) -> subprocess.Popen:
    ip = lab.pod_ip(role)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            lab.ns(role),
            sys.executable,
            "-c",
            AGENT,
            "--node",
            node,
            "--bind",
            ip,
            "--port",
            "9102",
            "--interval",
            "0.3",
            "--timeout",
            "0.5",
            "--mode",
            "connect",
            "--kube-dns",
            D,
            "--name",
            NAME,
            "--no-aks-defaults",
            "--target",
            f"{D}:443",
            "--target",
            f"{D}:80",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def listening(ip: str, port: int = 9102) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


def stop_agent(p: subprocess.Popen) -> tuple[int, str]:
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    return p.returncode, err


def test_agents_in_two_nodes_read_through_the_pod_proxy(netlab, tmp_path) -> None:
    # the cluster's DNS server, on the "internet" side behind the router (D, port 53)
    dns = netns_call(netlab.ns("inet"), lambda: DnsResponder(host=D, port=53, name="netns-dns").start())
    srv = LabApiServer("healthy").start()
    agents: list[subprocess.Popen] = []
    reader = None
    try:
        with srv.state.lock:
            n1, n2 = sorted(srv.state.nodes)[:2]
        # the fault: node1 has lost its way to D (a blackhole route in node1 only)
        netlab.route(D, "blackhole", where="node1")
        agents = [start_agent(netlab, "node1", n1), start_agent(netlab, "node2", n2)]
        # like a DaemonSet pod that turns Ready once it listens: register the pods then
        assert wait_for(lambda: all(listening(netlab.pod_ip(r)) for r in ("node1", "node2")), 20)
        # the pods' addresses live in the node namespaces: the lab's proxy dials them directly
        srv.set_agent_pods({n1: LabAgentPod(ip=netlab.pod_ip("node1")), n2: LabAgentPod(ip=netlab.pod_ip("node2"))})
        kube = KubeConfig(kubeconfig=srv.write_kubeconfig(os.path.join(tmp_path, "kubeconfig")))
        dns_hist, egress_hist = History(), History()
        reader = AgentReader(
            kube,
            ReaderSettings(budget=20.0, timeout=2.0, discover_every=0.5),
            dns_history=dns_hist,
            egress_history=egress_hist,
        )
        reader.start()
        d1, d2 = (ProbeKey(node_vantage(n), "kube-dns", NAME, "A") for n in (n1, n2))
        e1, e2 = (EgressKey(node_vantage(n), f"{D}:443") for n in (n1, n2))

        def enough() -> bool:
            return all(
                (s := h.stats(k)) is not None and s.attempts >= 3
                for h, k in ((dns_hist, d1), (dns_hist, d2), (egress_hist, e1), (egress_hist, e2))
            )

        assert wait_for(enough, 30), (reader.statuses(), [stop_agent(a) for a in agents])
        # node2 answers and connects; node1 fails both, and only node1
        assert dns_hist.stats(d2).loss_pct == 0 and dns_hist.stats(d2).last_outcome == "ok"
        assert egress_hist.stats(e2).loss_pct == 0 and egress_hist.stats(e2).last_outcome == "open"
        assert dns_hist.stats(d1).loss_pct == 100
        assert egress_hist.stats(e1).loss_pct == 100 and egress_hist.stats(e1).last_outcome != "open"
        st = reader.statuses()
        assert st[n1].error == "" and st[n2].error == ""  # the agents themselves are fine
        assert {k.vantage for k in dns_hist.keys()} == {node_vantage(n1), node_vantage(n2)}
        # the requests went through the API server's pod proxy, to the namespaces' addresses
        proxied = [r for r in srv.request_log() if r.verb == "proxy"]
        assert proxied and all(r.status == 200 for r in proxied)
        # the fault clears: node1 recovers, read through the same path
        netlab.clear()
        assert wait_for(
            lambda: dns_hist.stats(d1).last_outcome == "ok" and egress_hist.stats(e1).last_outcome == "open", 20
        )
    finally:
        if reader is not None:
            reader.stop()
        results = [stop_agent(a) for a in agents]
        srv.stop()
        dns.stop()
    for rc, err in results:
        assert rc == 0, err
        assert "Traceback" not in err, err
