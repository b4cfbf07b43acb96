"""The Azure network path of one egress flow, for the egress detail screen: NIC NSG →
subnet NSG → route → outbound (proxy, firewall, LB/NAT) → destination, each with its
verdict, from the frame's path (probes.azure.path). ARM's names and the probes'
addresses are external text: Text objects, never markup."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from probes.azure.path import PathData, steps
from probes.engine.frame import Frame
from probes.kube.model import LOCAL_VANTAGE
from tui.format import BAD, DIM

VERDICT_STYLE = {"allow": "green", "deny": BAD, "unknown": "yellow", "info": DIM}
VERDICT_MARK = {"allow": "✔", "deny": "✖", "unknown": "?", "info": "·"}


def path_section(frame: Frame | None, vantage: str, address: str, port: int) -> tuple[RenderableType, str]:
    """(what to show, the same as plain text) for a flow from `vantage` to address:port."""
    heading = Text("Azure path (NSGs, route, outbound)", style="bold")
    data = frame.path.data if frame is not None and frame.path is not None else None

    def note(msg: str) -> tuple[RenderableType, str]:
        return Group(heading, Text(msg, style=DIM)), f"{heading.plain}\n{msg}"

    if not isinstance(data, PathData):
        return note("not read: Azure is off or still connecting (README: Azure roles)")
    if vantage == LOCAL_VANTAGE or not vantage.startswith("node/"):
        return note("from this host: the nodes' NSGs and routes do not apply (pick a node's row)")
    node = frame.topology.node(vantage[len("node/") :]) if frame is not None else None
    if node is None or not node.internal_ip:
        return note("the node is not in the topology")
    if not address:
        return note("no address yet (the name did not resolve)")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, width=1)
    grid.add_column(no_wrap=True, min_width=11, style=DIM)
    grid.add_column(overflow="fold")
    lines = [heading.plain]
    for s in steps(data, node.internal_ip, node.provider_id, address, port):
        grid.add_row(
            Text(VERDICT_MARK.get(s.verdict, "·"), style=VERDICT_STYLE.get(s.verdict, "")),
            Text(s.what),
            Text(s.detail, style=VERDICT_STYLE.get(s.verdict, "") if s.verdict in ("deny", "unknown") else ""),
        )
        lines.append(f"{VERDICT_MARK.get(s.verdict, '·')} {s.what}: {s.detail}")
    extra = [Text(f"  {n}", style=DIM) for n in data.notes[:3]]
    lines += [n.plain for n in extra]
    return Group(heading, grid, *extra), "\n".join(lines)
