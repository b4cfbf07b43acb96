"""A Windows pool and an availability-set (VMAS) cluster through the real code paths.

mixed-os: the lab's Windows nodes (real AKS Windows shapes) through the kube source into
the topology; no agent, no node vantage, no node-local-dns pod there, and the views say
"not probed" rather than failing. vmas: standalone VMs through the topology, discovery,
and the SNAT join (by the VM's NIC address) through the azure-mgmt clients against the
lab's ARM endpoint; the path view says the VM's NIC NSG is not joined.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from probes.azure.nsg import Nsg
from probes.azure.path import PathData, steps
from probes.azure.service import AzureSettings, AzureState, identify
from probes.config import KubeConfig
from probes.engine.store import Store
from probes.kube.source import KubeSource
from probes.lab.demoagents import farm_request
from probes.lab.dnsdemo import DnsDemo
from probes.lab.egressdemo import EgressDemo
from probes.lab.scenario import load_scenario
from probes.lab.serve import start_embedded
from tests.snat.snat_helpers import lab_store, service, start_lab
from tests.support.leaks import guard_threads
from tui.format import agent_note


@pytest.fixture(autouse=True)
def _no_leaks():
    yield from guard_threads()


def _topology(scenario: str):  # type: ignore[no-untyped-def]
    lab, kubeconfig = start_embedded(scenario)
    store = Store()
    source = KubeSource(store, KubeConfig(kubeconfig=kubeconfig))
    try:
        source.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            snap = store.snapshot()
            if {"nodes", "pods"} <= {str(s).split("/")[0] for s in snap.synced} or (
                len(snap.topology.nodes) == len(lab.state.nodes) and snap.topology.coredns
            ):
                break
            time.sleep(0.05)
        return lab, store.snapshot().topology
    finally:
        source.stop(3.0)


def test_windows_nodes_come_through_as_windows_and_run_no_agent():
    lab, topo = _topology("mixed-os")
    try:
        win = [n for n in topo.nodes if n.pool == "npw22"]
        lin = [n for n in topo.nodes if n.pool == "nodepool1"]
        assert [n.name for n in win] == ["aksnpw22000000", "aksnpw22000001"]
        assert all(n.os == "windows" and n.vmss == "aksnpw22" for n in win)
        assert [n.instance_id for n in win] == ["0", "1"]
        assert len(lin) == 3 and all(n.os == "linux" for n in lin)
        # the kube-system DaemonSets select Linux: NodeLocal runs on the Linux nodes only
        assert set(topo.nodelocal) == {n.name for n in lin}
        assert all(p.node in {n.name for n in lin} for p in topo.coredns)
        assert identify(list(topo.nodes), AzureSettings()) == (
            "6d2e8a41-3c5b-4f7a-9e1d-2b3c4d5e6f70",
            "MC_rg-aks-mixed_aks-mixed_japaneast",
        )
        # no agent on Windows nodes: the demo's agents and node vantages are Linux only
        dns = DnsDemo(lab.scenario).start()
        egress = EgressDemo(lab.scenario).start()
        try:
            probed = {v.node for v in dns.vantages(topo) if v.node} | {v.node for v in egress.vantages(topo) if v.node}
        finally:
            dns.stop()
            egress.stop()
        assert probed == {n.name for n in lin}
        req = farm_request(
            lab,
            SimpleNamespace(interval=5.0, timeout=2.0, names=()),
            SimpleNamespace(interval=10.0, timeout=2.0, targets=()),
        )
        assert sorted(req["agents"]) == sorted(n.name for n in lin)
    finally:
        lab.stop()
    # the views: a Windows node is "not probed", a Linux node without an agent is a warning
    agents = SimpleNamespace(statuses=dict, discovered=True, error="")
    w = agent_note(agents, win[0].name, os="windows")
    assert w.plain == "agent not probed: Windows node (the agent runs on Linux nodes)"
    assert all("red" not in str(s.style) and "yellow" not in str(s.style) for s in w.spans)
    assert "none on this node" in agent_note(agents, lin[0].name, os="linux").plain


def test_the_lab_refuses_windows_where_aks_does(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(
        "cluster: {name: c, resourceGroup: rg, subscriptionId: 6d2e8a41-3c5b-4f7a-9e1d-2b3c4d5e6f70,"
        " location: westeurope, networkPlugin: kubenet}\n"
        "pools:\n  - {name: sys, mode: System, count: 1}\n  - {name: win, mode: User, count: 1, osSku: Windows2022}\n"
    )
    with pytest.raises(ValueError, match="Windows pool"):
        load_scenario(str(p))


def test_availability_set_nodes_through_topology_discovery_and_snat():
    lab, topo = _topology("vmas")
    try:
        names = [n.name for n in topo.nodes]
        assert len(names) == 2 and all(n.startswith("aks-nodepool1-") and n[-2:] in ("-0", "-1") for n in names)
        for n in topo.nodes:
            assert n.vmss == "" and n.instance_id == n.name, "a standalone VM, named by itself"
            assert n.provider_id.endswith(f"/providers/Microsoft.Compute/virtualMachines/{n.name}")
        assert identify(list(topo.nodes), AzureSettings()) == (
            "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
            "MC_rg-aks-legacy_aks-legacy_westus2",
        )
    finally:
        lab.stop()
    # SNAT: the load balancer's backends are the VMs' NIC addresses, joined to the nodes by IP
    with start_lab("vmas") as arm:
        svc = service(arm, lab_store(arm.scenario))
        svc.start()
        try:
            deadline = time.monotonic() + 15
            r = svc.report()
            while time.monotonic() < deadline and r.table is None:
                time.sleep(0.05)
                r = svc.report()
        finally:
            svc.stop(3.0)
    assert r.state is AzureState.LIVE and r.table is not None
    assert sorted(n.node for n in r.table.nodes) == sorted(names) and not r.table.unmatched
    # the path view: NIC NSGs are read per scale set; the VM's own NIC is said not joined
    pid = topo.nodes[0].provider_id
    path = PathData(nic_nsgs=(("aks-other-12345678-vmss", Nsg("/nsg/x", "x")),))
    first = steps(path, topo.nodes[0].internal_ip, pid, "20.0.0.1", 443)[0]
    assert first.what == "NIC NSG" and first.verdict == "unknown" and "not joined" in first.detail


def test_check_on_mixed_os_raises_nothing_for_the_windows_nodes():
    """`check --demo --scenario mixed-os`: healthy; the Windows nodes are not F4 (no node-local-dns
    pod is expected there) and the agents list says they are not probed, not failing."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui.cli",
            "check",
            "--demo",
            "--scenario",
            "mixed-os",
            "--interval",
            "1",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    doc = json.loads(out.stdout)
    assert doc["status"] == "healthy" and doc["findings"] == [], doc["findings"]
    rows = {r["node"]: r for r in doc["observations"]["agents"]["nodes"]}
    assert all(rows[n]["agent"] for n in rows if not n.startswith("aksnpw22")), "the Linux nodes' agents were read"
    assert rows["aksnpw22000000"]["not_probed"] == "Windows node" and rows["aksnpw22000000"]["error"] is None
