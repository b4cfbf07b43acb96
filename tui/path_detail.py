"""The Azure network path of one egress flow, for the egress detail screen: NIC NSG →
subnet NSG → route → outbound (proxy, firewall, LB/NAT) → destination, each with its
verdict, from the frame's path (probes.azure.path). ARM's names and the probes'
addresses are external text: Text objects, never markup."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from probes.azure.nexthop import default_route
from probes.azure.path import PathData, Step, outbound, steps
from probes.egress.result import EgressKey
from probes.engine.frame import Frame
from probes.kube.model import LOCAL_VANTAGE, NodeInfo, node_vantage
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


MAX_TARGETS = 12  # targets listed in a node's path summary


def _verdict(ss: tuple[Step, ...]) -> tuple[str, str]:
    """(verdict, the step that says it) of one flow's steps: the first deny, else the first
    unknown, else allowed through the route."""
    for want in ("deny", "unknown"):
        hit = next((s for s in ss if s.verdict == want), None)
        if hit is not None:
            return want, f"{hit.what}: {hit.detail}"
    route = next((s for s in ss if s.what == "route"), None)
    return "allow", f"route {route.detail}" if route is not None else "allowed"


def node_path_section(frame: Frame | None, node: NodeInfo) -> tuple[RenderableType, str]:
    """A node's Azure path in short, for the node detail: the hops every flow crosses (NIC
    NSG, subnet NSG, route table, outbound and its public IPs, the proxy) and, for each
    configured egress target, the verdict of the flow from this node (the path view's
    steps, probes.azure.path.steps, condensed to the deciding one)."""
    heading = Text("Azure path (NIC NSG → subnet NSG → route → outbound)", style="bold")
    data = frame.path.data if frame is not None and frame.path is not None else None
    if not isinstance(data, PathData) or data.error:
        msg = data.error if isinstance(data, PathData) else "not read: Azure is off or still connecting"
        return Group(heading, Text(msg, style=DIM)), f"{heading.plain}\n{msg}"
    hops = Table.grid(padding=(0, 1))
    hops.add_column(no_wrap=True, min_width=11, style=DIM)
    hops.add_column(overflow="fold")
    nic = data.nic_nsg(node.provider_id)
    default = default_route(data.route_space())
    rows = [
        ("NIC NSG", nic.name if nic is not None else "none on the scale set's NIC configuration"),
        ("subnet NSG", data.subnet_nsg.name if data.subnet_nsg is not None else "none"),
        ("route", f"{data.route_table or 'no route table'}: 0.0.0.0/0 → {default.describe()}"),
        ("outbound", outbound(data)),
        ("egress IP", data.egress_identity().detail),
    ]
    ident = data.egress_identity()
    agents = frame.agents.by_node if frame is not None and frame.agents is not None else {}
    st = agents.get(node.name)
    seen = str(getattr(st, "echo_ip", "") or "")
    if seen:
        agree = (
            "as ARM says"
            if seen in ident.ips
            else f"ARM says {', '.join(ident.ips)}"
            if ident.ips
            else "ARM does not say"
        )
        rows.append(("echo", f"the echo endpoint saw {seen} ({agree})"))
    elif getattr(st, "echo_error", ""):
        rows.append(("echo", str(st.echo_error)))
    if data.proxy:
        rows.append(("proxy", f"httpProxyConfig {data.proxy} (noProxy: {', '.join(data.no_proxy) or 'none'})"))
    lines = [heading.plain]
    for what, detail in rows:
        hops.add_row(Text(what), Text(detail))
        lines.append(f"{what}: {detail}")
    flows = Table.grid(padding=(0, 1))
    flows.add_column(no_wrap=True, width=1)
    flows.add_column(no_wrap=True, max_width=34, overflow="ellipsis")
    flows.add_column(overflow="fold")
    view = frame.egress if frame is not None else None
    targets = tuple(view.plan.targets) if view is not None and view.plan is not None else ()
    vantage = node_vantage(node.name)
    for t in targets[:MAX_TARGETS]:
        st = view.stats.get(EgressKey(vantage, t.text)) if view is not None else None
        last = st.last if st is not None else None
        proxy = str(getattr(last, "proxy", "") or "")
        address = str(getattr(last, "address", "") or "") or (t.host if t.is_ip else "")
        if not address:
            verdict, why = "info", "not resolved from this node yet"
        else:
            port = t.port
            if proxy:
                port = int(proxy.rpartition(":")[2] or 0) if proxy.rpartition(":")[2].isdigit() else t.port
            verdict, why = _verdict(steps(data, node.internal_ip, node.provider_id, address, port))
            if proxy:
                why = f"via proxy {proxy} ({address}): {why}"
        flows.add_row(
            Text(VERDICT_MARK.get(verdict, "·"), style=VERDICT_STYLE.get(verdict, "")),
            Text(t.text),
            Text(why, style=VERDICT_STYLE.get(verdict, "") if verdict in ("deny", "unknown") else ""),
        )
        lines.append(f"{VERDICT_MARK.get(verdict, '·')} {t.text}: {why}")
    more = len(targets) - MAX_TARGETS
    parts: list[RenderableType] = [heading, hops]
    if targets:
        parts.append(flows)
    if more > 0:
        parts.append(Text(f"  … and {more} more targets", style=DIM))
        lines.append(f"… and {more} more targets")
    extra = [Text(f"  {n}", style=DIM) for n in data.notes[:3]]
    lines += [n.plain for n in extra]
    return Group(*parts, *extra), "\n".join(lines)
