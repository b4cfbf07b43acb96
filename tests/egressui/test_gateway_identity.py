"""Egress identity of the static egress gateway: a node's detail says how many of its pods
leave through which gateway with which IPs (and, on a gateway pool's node, which
configurations it carries); the egress header counts the configurations and their
prefixes. Names from the cluster are shown as text, never as markup."""

from __future__ import annotations

from probes.azure.egressid import gateway_lines, gateway_summary
from probes.engine.store import APIS
from probes.kube.gatewaymodel import (
    GATEWAY_CONFIGS,
    GATEWAY_PODS,
    SGC_GROUP_VERSION,
    GatewayConfig,
    GatewayData,
    GatewayPod,
)
from tests.egressui.egressui_helpers import BAD_NODE, FakeSource, fill, small_plan
from tests.ui.test_app import make_store
from tui.app import AksnetTopApp
from tui.egress_pane import EgressPane

HOSTILE = "sgc-[bold red]x[/]"
GOOD = GatewayConfig("shop", "sgc-shop", "userpool", egress_prefix="20.65.41.84/30")
PRIVATE = GatewayConfig("pay", "sgc-pay", "userpool", provision_public_ips=False, egress_prefix="10.0.1.8,10.0.1.9")
PENDING = GatewayConfig("ops", HOSTILE, "userpool")
PODS = (
    *(GatewayPod("shop", f"web-{i}", BAD_NODE, "sgc-shop", "Running") for i in range(3)),
    GatewayPod("pay", "api-0", BAD_NODE, "sgc-pay", "Running"),
    GatewayPod("batch", "report-0", BAD_NODE, "sgc-shop", "Running"),
    GatewayPod("ops", "cron-0", "elsewhere", HOSTILE, "Running"),
)
DATA = GatewayData("present", (GOOD, PRIVATE, PENDING), PODS, True)


def test_lines_per_node_and_summary():
    assert gateway_lines(DATA, BAD_NODE) == (
        "1 pod leaves through static gateway batch/sgc-shop: no such configuration in batch",
        "1 pod leaves through static gateway pay/sgc-pay: 10.0.1.8, 10.0.1.9 (private)",
        "3 pods leave through static gateway shop/sgc-shop: 20.65.41.84/30",
    )
    assert gateway_lines(DATA, "elsewhere") == (
        f"1 pod leaves through static gateway ops/{HOSTILE}: not provisioned (no egress IP prefix)",
    )
    assert gateway_lines(DATA, "gw-0", "userpool")[-1].startswith("gateway node for shop/sgc-shop (20.65.41.84/30)")
    assert gateway_lines(DATA, "nobody", "otherpool") == ()
    assert gateway_summary(DATA) == f"3 static gateways 20.65.41.84/30, 10.0.1.8, 10.0.1.9, {HOSTILE} not provisioned"
    for state in ("absent", "unknown", "forbidden"):
        assert gateway_lines(GatewayData(state, DATA.configs, PODS, True), BAD_NODE) == ()
        assert gateway_summary(GatewayData(state, DATA.configs, PODS, True)) == ""


async def test_node_detail_and_egress_header_show_the_gateway():
    from tui.screens import NodeDetailScreen
    from tui.topology_pane import TopologyTree

    store = make_store()
    store.upsert(APIS, SGC_GROUP_VERSION, True)
    store.replace(GATEWAY_CONFIGS, {c.key: c for c in DATA.configs})
    store.replace(GATEWAY_PODS, {f"{p.namespace}/{p.name}": p for p in PODS})
    plan = small_plan(nodes=2)
    src = FakeSource(plan)
    fill(plan, src.history, bad=None)
    pane = EgressPane()
    app = AksnetTopApp(store, panes=[pane], egress=src, clock=lambda: 100.0, wall_clock=lambda: 1795172400.0)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause(0.3)
        assert app.query_one(TopologyTree).select_node_named(BAD_NODE)
        await pilot.press("enter")
        await pilot.pause(0.4)
        screen = app.screen
        assert isinstance(screen, NodeDetailScreen)
        assert screen.plain_rows["egress gateway"] == "\n".join(gateway_lines(DATA, BAD_NODE))
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause(0.3)
        # the store sorts by namespace/name; the hostile name stays literal text
        want = f"3 static gateways {HOSTILE} not provisioned, 10.0.1.8, 10.0.1.9, 20.65.41.84/30 · "
        assert want in pane._status.plain
