"""Enter on an egress row: the Azure path from that node (NIC NSG → subnet NSG → route →
outbound → destination), each with its verdict, from the frame's path; ARM's names escaped."""

from __future__ import annotations

from probes.azure.nsg import DEFAULT_RULES, Nsg, SecurityRule
from probes.azure.path import PathData
from probes.azure.routes import Route
from probes.azure.service import SnatReport
from probes.egress.probe import EgressKey, EgressOutcome
from probes.kube.model import LOCAL_VANTAGE, node_vantage
from tests.egressui.egressui_helpers import BAD_NODE, FakeSource, fill, result, small_plan
from tests.ui.test_app import make_store
from tui.app import AksnetTopApp
from tui.egress_detail import EgressDetailScreen
from tui.egress_pane import EgressPane, EgressTable

HOSTILE = "deny-[bold red]x[/]"


class FakeAzure:
    """What the publisher reads from the Azure source: report() and path()."""

    def __init__(self, path: PathData) -> None:
        self._path = path
        self._report = SnatReport()

    def report(self) -> SnatReport:
        return self._report

    def path(self) -> PathData:
        return self._path


def path_with(rule: SecurityRule) -> PathData:
    topo = make_store().snapshot().topology
    nsg = Nsg("/x/aks-agentpool-1-nsg", "aks-agentpool-1-nsg", f"etag-{rule.name}", (rule, *DEFAULT_RULES))
    return PathData(
        vnet_id="/x/vnet",
        vnet_prefixes=("10.224.0.0/12",),
        nic_nsgs=tuple(sorted({(n.vmss.lower(), nsg) for n in topo.nodes}, key=lambda x: x[0])),
        routes=(Route("to-fw", "0.0.0.0/0", "VirtualAppliance", "10.50.1.4"),),
        https_proxy="http://10.50.2.4:3128",
    )


async def open_detail(app: AksnetTopApp, pane: EgressPane, key: EgressKey, pilot) -> EgressDetailScreen:  # type: ignore[no-untyped-def]
    await pilot.press("2")
    await pilot.pause(0.3)
    table = pane.query_one(EgressTable)
    table.move_cursor(row=table.get_row_index(f"r|{key.vantage}|{key.target}"))
    await pilot.press("enter")
    await pilot.pause(0.4)
    screen = app.screen
    assert isinstance(screen, EgressDetailScreen)
    return screen


async def test_enter_shows_the_path_with_the_denying_rule():
    plan = small_plan(nodes=2)
    src = FakeSource(plan)
    fill(plan, src.history)
    key = EgressKey(node_vantage(BAD_NODE), "mcr.microsoft.com:443")
    res = result(key.vantage, key.target, EgressOutcome.TIMEOUT, i=20)
    src.history.add(res.key, res)
    rule = SecurityRule(HOSTILE, 200, "Outbound", "Deny", "Tcp", ("*",), ("*",), ("203.0.113.10",), ("443",))
    pane = EgressPane()
    app = AksnetTopApp(
        make_store(),
        panes=[pane],
        egress=src,
        snat=FakeAzure(path_with(rule)),
        clock=lambda: 100.0,
        wall_clock=lambda: 1795172400.0,
    )
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_detail(app, pane, key, pilot)
        text = screen.plain
        assert f"✖ NIC NSG: NSG aks-agentpool-1-nsg (nic) rule {HOSTILE} (priority 200) denies" in text
        assert "route:" not in text  # the flow ends at the NIC


async def test_path_steps_after_an_allow_and_from_the_jumpbox():
    plan = small_plan(nodes=2)
    src = FakeSource(plan)
    fill(plan, src.history)
    rule = SecurityRule("deny-other", 200, "Outbound", "Deny", "Tcp", ("*",), ("*",), ("198.51.100.1",), ("443",))
    pane = EgressPane()
    app = AksnetTopApp(
        make_store(),
        panes=[pane],
        egress=src,
        snat=FakeAzure(path_with(rule)),
        clock=lambda: 100.0,
        wall_clock=lambda: 1795172400.0,
    )
    async with app.run_test(size=(80, 24)) as pilot:
        key = EgressKey(node_vantage(BAD_NODE), "mcr.microsoft.com:443")
        screen = await open_detail(app, pane, key, pilot)
        text = screen.plain
        assert "✔ NIC NSG: NSG aks-agentpool-1-nsg (nic) rule AllowVnetOutBound (priority 65000) allows" in text
        assert "✔ subnet NSG: no NSG on the subnet: allowed" in text
        assert "✔ route: VirtualAppliance 10.50.1.4 (user route to-fw 0.0.0.0/0)" in text
        assert "proxy: httpProxyConfig: http://10.50.2.4:3128" in text
        assert "outbound: firewall/appliance 10.50.1.4" in text
        assert "destination: 203.0.113.10:443/tcp" in text
        await pilot.press("escape")
        await pilot.pause(0.2)
        screen = await open_detail(app, pane, EgressKey(LOCAL_VANTAGE, "mcr.microsoft.com:443"), pilot)
        assert "from this host: the nodes' NSGs and routes do not apply" in screen.plain


async def test_node_detail_shows_its_path_summary_and_egress_ip():
    """Enter on a node in the topology: besides the node's fields, the hops every flow from
    it crosses, the public IP it leaves with, and each configured target's verdict."""
    from probes.azure.egressid import PublicIp
    from tui.screens import NodeDetailScreen
    from tui.topology_pane import TopologyTree

    plan = small_plan(nodes=2, extra=("example.org:80",))
    src = FakeSource(plan)
    fill(plan, src.history, bad=None)
    rule = SecurityRule(HOSTILE, 200, "Outbound", "Deny", "Tcp", ("*",), ("*",), ("203.0.113.10",), ("443",))
    pip = "/s/rg/providers/Microsoft.Network/publicIPAddresses/out-1"
    path = path_with(rule)
    path = type(path)(
        **{
            **{f: getattr(path, f) for f in path.__dataclass_fields__},
            "routes": (),
            "lb_ip_ids": (pip,),
            "public_ips": (PublicIp(pip, "out-1", "20.93.1.2"),),
            "public_ips_read": True,
        }
    )
    pane = EgressPane()
    app = AksnetTopApp(
        make_store(),
        panes=[pane],
        egress=src,
        snat=FakeAzure(path),
        clock=lambda: 100.0,
        wall_clock=lambda: 1795172400.0,
    )
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause(0.3)
        tree = app.query_one(TopologyTree)
        assert tree.select_node_named(BAD_NODE)
        await pilot.press("enter")
        await pilot.pause(0.4)
        screen = app.screen
        assert isinstance(screen, NodeDetailScreen)
        text = screen.path_plain
        assert screen.plain_rows["internal IP"] == "10.224.0.5"  # what it showed before stays
        assert "NIC NSG: aks-agentpool-1-nsg" in text
        assert "subnet NSG: none" in text
        assert "route: no route table: 0.0.0.0/0 → Internet (system route 0.0.0.0/0)" in text
        assert "egress IP: via the load balancer's outbound rule: 20.93.1.2" in text
        assert "proxy: httpProxyConfig http://10.50.2.4:3128" in text
        assert (
            f"✖ mcr.microsoft.com:443: NIC NSG: NSG aks-agentpool-1-nsg (nic) rule {HOSTILE} (priority 200) denies"
            in text
        )
        assert "✔ example.org:80: route Internet (system route 0.0.0.0/0)" in text
        await pilot.press("escape")
        await pilot.pause()
        # the egress pane's header says which IP the nodes leave with
        await pilot.press("2")
        await pilot.pause(0.3)
        assert "leaves via LB 20.93.1.2 · " in pane._status.plain


def test_node_path_section_holds_the_echo_against_arm():
    from probes.agent.reader import AgentStatus
    from probes.azure.egressid import PublicIp
    from probes.engine.frame import AgentsView, Frame, PathView
    from tui.path_detail import node_path_section

    snap = make_store().snapshot()
    node = snap.topology.nodes[0]
    pip = "/s/rg/providers/Microsoft.Network/publicIPAddresses/out-1"
    data = PathData(
        vnet_id="/x/vnet", lb_ip_ids=(pip,), public_ips=(PublicIp(pip, "out-1", "20.93.1.2"),), public_ips_read=True
    )

    def plain(echo_ip: str = "", error: str = "") -> str:
        agents = AgentsView(
            {node.name: AgentStatus(node.name, "pod", echo_ip=echo_ip, echo_error=error)}, True, "", 60, 1
        )
        return node_path_section(Frame(1, snap, path=PathView(data), agents=agents), node)[1]

    assert "echo: the echo endpoint saw 20.93.1.2 (as ARM says)" in plain("20.93.1.2")
    assert "echo: the echo endpoint saw 198.51.100.7 (ARM says 20.93.1.2)" in plain("198.51.100.7")
    assert "echo: echo api.example: no answer within 2s" in plain(error="echo api.example: no answer within 2s")
    assert "echo:" not in plain()
    # without ARM's path: said, never a traceback
    assert "not read" in node_path_section(Frame(1, snap), node)[1]
