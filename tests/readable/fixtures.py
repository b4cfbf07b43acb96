"""The app with every pane, built from fixtures for the scenarios issue 18 looks at
(healthy, f4, f10, snat-tier-drop): a store filled from API objects, DNS and egress
histories filled with results, a SNAT report from Azure Monitor samples. No network, no
lab; frozen clocks, so the snapshots are stable. The faults are staged the way the lab's
scenarios stage them, and the findings come from the app's own rules."""

from __future__ import annotations

from textual.widgets import Input

from probes.dns.service import DnsSettings, Vantage
from probes.dns.service import build_plan as dns_plan
from probes.egress.service import EgressSettings, EgressVantage
from probes.egress.service import build_plan as egress_plan
from probes.engine.history import History
from probes.engine.store import Store
from probes.kube.model import SourceState, SourceStatus, node_vantage
from tests.dnsui import dnsui_helpers as dnsh
from tests.egressui import egressui_helpers as egh
from tests.snat import snat_pane_helpers as snh
from tests.support.kubejson import fill_store, pod, small_cluster
from tui.app import AksnetTopApp
from tui.dns_pane import DnsPane
from tui.egress_pane import EgressPane
from tui.findings_pane import FindingsPane
from tui.snat_pane import SnatPane

T0 = dnsh.T0
BAD = "aks-nodepool1-12345678-vmss000001"  # nodepool1/1
SCENARIOS = ("healthy", "f4", "f10", "snat-tier-drop")
TABS = {"topology": "1", "dns": "2", "snat": "3", "egress": "4", "findings": "5"}
LONG_NAME = "kubernetes.default.svc.cluster.local"  # 36 characters


def store_for(scenario: str) -> Store:
    objs = small_cluster(3, 47 if scenario == "snat-tier-drop" else 2)
    if scenario == "f4":  # the node-local-dns pod on nodepool1/1 is not ready
        objs["pods"] = [
            pod(p["metadata"]["name"], BAD, "node-local-dns", ready=False, ip="10.224.0.5")
            if p["spec"]["nodeName"] == BAD and p["metadata"]["labels"]["k8s-app"] == "node-local-dns"
            else p
            for p in objs["pods"]
        ]
    store = Store(clock=lambda: 100.0)
    fill_store(store, objs)
    store.set_meta(target="lab @ http://127.0.0.1:6443", server_version="v1.30.6")
    for src in ("kubernetes", "kubernetes/nodes", "kubernetes/pods", "kubernetes/services"):
        store.set_status(SourceStatus(src, SourceState.LIVE, "watching"))
    return store


def dns_source(store: Store, scenario: str) -> dnsh.FakeSource:
    topo = store.snapshot().topology
    vs = [Vantage(node_vantage(n.name), n.name) for n in topo.nodes[:3]]
    plan = dns_plan(topo, DnsSettings(names=(LONG_NAME, "mcr.microsoft.com")), vs, 1)
    src = dnsh.FakeSource(plan)
    dnsh.fill(plan, src.history, bad=BAD if scenario == "f4" else None)
    return src


def egress_source(store: Store, scenario: str) -> egh.FakeSource:
    topo = store.snapshot().topology
    vs = [EgressVantage(node_vantage(n.name), n.name) for n in topo.nodes[:2]]
    plan = egress_plan(EgressSettings(), vs, egh.SERVER, 1)
    src = egh.FakeSource(plan, History())
    egh.fill(plan, src.history, bad=BAD if scenario == "f10" else None)
    return src


def snat_source(scenario: str) -> snh.FakeSource:
    """Azure Monitor's answer: 5 quiet nodes; for f10 nodepool1/1 ramps into exhaustion;
    for snat-tier-drop 50 nodes at the top of the 1,024-port tier, where a surge of one
    node drops every node to 512 (F11)."""
    if scenario == "snat-tier-drop":
        return snh.FakeSource(snh.live_report(50, hot=None))
    return snh.FakeSource(snh.live_report(5, hot=1 if scenario == "f10" else None))


def app_for(scenario: str) -> AksnetTopApp:
    assert scenario in SCENARIOS
    store = store_for(scenario)
    return AksnetTopApp(
        store,
        panes=[DnsPane(), SnatPane(clock=lambda: T0 + 5), EgressPane(), FindingsPane()],
        dns=dns_source(store, scenario),
        egress=egress_source(store, scenario),
        snat=snat_source(scenario),
        refresh_interval=0.05,
        clock=lambda: 100.0,
        wall_clock=lambda: T0 + 100,
    )


async def settle(pilot, seconds: float = 0.4) -> None:  # type: ignore[no-untyped-def]
    """Frames from the publisher's thread, then the UI's work on them."""
    pilot.app.query_one(Input).cursor_blink = False
    await pilot.pause(seconds)
