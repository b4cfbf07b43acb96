"""SVG snapshots at 80×24, 120×40 and 60×20 of every tab on healthy, f4, f10 and
snat-tier-drop (built from fixtures: no lab, frozen clocks). What each one shows is in its
name: the finding's cause whole and its short subject, DNS names whole at 120 columns, the
filter on DNS and Egress, the tree's marks, the empty states, a SNAT chart that does not
wrap at 60 columns. A chosen set, not the full product of sizes × tabs × scenarios: each
costs about a second on two cores."""

from __future__ import annotations

import pytest

from tests.readable.fixtures import SCENARIOS, TABS, app_for, settle

SMALL, LARGE, TINY = (80, 24), (120, 40), (60, 20)


def keys_then_settle(*keys: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        for k in keys:
            await pilot.press(k)
            await pilot.pause(0.05)
        await settle(pilot, 0.3)

    return run_before


@pytest.mark.parametrize("tab", list(TABS))
def test_healthy_every_tab_80x24(snap_compare, tab):
    """Findings: 'No findings' in words."""
    assert snap_compare(app_for("healthy"), terminal_size=SMALL, run_before=keys_then_settle(TABS[tab]))


@pytest.mark.parametrize(
    ("scenario", "tab", "size"),
    [
        ("f4", "topology", SMALL),  # ✖ NodeLocal✖ before the node's name
        ("f4", "findings", SMALL),  # nodepool1/1 and the cause wrapped whole
        ("f4", "dns", LARGE),  # kubernetes.default.svc.cluster.local whole at 120 columns
        ("f4", "findings", LARGE),
        ("f4", "findings", TINY),
        ("f4", "topology", TINY),  # the mark survives a 60-column line
        ("f10", "topology", SMALL),  # ✖ SNAT✖: an exhausted node is not a green bullet
        ("f10", "snat", SMALL),
        ("f10", "findings", SMALL),
        ("f10", "egress", SMALL),
        ("f10", "snat", TINY),  # the chart and its legend do not wrap
        ("snat-tier-drop", "snat", SMALL),  # "tier drop at +1 node": with its unit
        ("snat-tier-drop", "findings", SMALL),
        ("snat-tier-drop", "snat", LARGE),
        ("snat-tier-drop", "topology", LARGE),
        ("healthy", "dns", TINY),
        ("healthy", "egress", LARGE),
    ],
    ids=lambda v: f"{v[0]}x{v[1]}" if isinstance(v, tuple) else str(v),
)
def test_scenario_tab(snap_compare, scenario, tab, size):  # ids: scenario-tab-size
    assert snap_compare(app_for(scenario), terminal_size=size, run_before=keys_then_settle(TABS[tab]))


def test_f4_finding_detail_80x24(snap_compare):
    """Enter on F4: the full node name, the evidence, the commands with the real pod."""
    assert snap_compare(app_for("f4"), terminal_size=SMALL, run_before=keys_then_settle("5", "enter"))


def test_f4_enter_g_lands_on_the_nodelocal_row(snap_compare):
    assert snap_compare(app_for("f4"), terminal_size=SMALL, run_before=keys_then_settle("5", "enter", "g"))


def test_dns_filter_80x24(snap_compare):
    keys = ("2", "slash", *"nodelocal", "enter")
    assert snap_compare(app_for("f4"), terminal_size=SMALL, run_before=keys_then_settle(*keys))


def test_egress_filter_80x24(snap_compare):
    keys = ("4", "slash", *"mcr", "enter")
    assert snap_compare(app_for("f10"), terminal_size=SMALL, run_before=keys_then_settle(*keys))


def test_dns_problems_only_empty_80x24(snap_compare):
    """`p` on a healthy cluster: no problems, in words."""
    assert snap_compare(app_for("healthy"), terminal_size=SMALL, run_before=keys_then_settle("2", "p"))


CHOSEN = {
    ("f4", "topology", SMALL),
    ("f4", "findings", SMALL),
    ("f4", "dns", LARGE),
    ("f4", "findings", LARGE),
    ("f4", "findings", TINY),
    ("f4", "topology", TINY),
    ("f10", "topology", SMALL),
    ("f10", "snat", SMALL),
    ("f10", "findings", SMALL),
    ("f10", "egress", SMALL),
    ("f10", "snat", TINY),
    ("snat-tier-drop", "snat", SMALL),
    ("snat-tier-drop", "findings", SMALL),
    ("snat-tier-drop", "snat", LARGE),
    ("snat-tier-drop", "topology", LARGE),
    ("healthy", "dns", TINY),
    ("healthy", "egress", LARGE),
}
REST = [
    (scenario, tab, size)
    for scenario in SCENARIOS
    for size in (SMALL, LARGE, TINY)
    for tab in TABS
    if (scenario, tab, size) not in CHOSEN and not (scenario == "healthy" and size == SMALL)
]


@pytest.mark.parametrize(
    ("scenario", "tab", "size"), REST, ids=lambda v: f"{v[0]}x{v[1]}" if isinstance(v, tuple) else str(v)
)
def test_every_tab_every_size(snap_compare, scenario, tab, size):
    """The rest of sizes × tabs × scenarios: no pane loses its key words at any of them."""
    assert snap_compare(app_for(scenario), terminal_size=size, run_before=keys_then_settle(TABS[tab]))
