"""Rich Text builders for the topology views.

Every external string (node names, reasons, messages) goes into Text as plain text,
never through markup, so a node called `[red]x` renders as exactly that.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from rich.cells import cell_len
from rich.text import Text

from probes.kube.model import NetworkPlugin, NodeInfo, PodState, PoolInfo, SourceState, SourceStatus, Topology
from tui.columns import elide_middle

OK, WARN, BAD, DIM = "green", "yellow", "bold red", "dim"

PLUGIN_NAMES = {
    NetworkPlugin.KUBENET: "kubenet",
    NetworkPlugin.AZURE_CNI: "Azure CNI",
    NetworkPlugin.AZURE_CNI_OVERLAY: "Azure CNI overlay",
    NetworkPlugin.UNKNOWN: "plugin unknown",
}


def plugin_label(topo: Topology) -> str:
    name = PLUGIN_NAMES[topo.plugin]
    if topo.dataplane == "cilium":
        name += " + Cilium"
    return name


def node_state(node: NodeInfo) -> tuple[str, str]:
    """(short word, style) for a node, the way `kubectl get nodes` says it."""
    if node.ready is None:
        word, style = "Unknown", WARN
    elif node.ready:
        word, style = "Ready", OK
    else:
        word, style = "NotReady", BAD
    if node.cordoned:
        word += ",SchedulingDisabled"
        if style == OK:
            style = WARN
    if node.network_unavailable:
        word += ",NoRoute"
        style = BAD
    return word, style


def route_line(topo: Topology, node: NodeInfo, route: Any = None) -> Text:
    """What carries this node's pod traffic, and whether it is in place: from the route table
    (`route`, a probes.azure.routes.NodeRoute) when known, else from the node's condition."""
    if topo.plugin is NetworkPlugin.AZURE_CNI:
        return Text.assemble(("pods ", DIM), ("VNet IPs", ""), (" · routed by the VNet, no UDR", DIM))
    if topo.plugin is NetworkPlugin.AZURE_CNI_OVERLAY or node.overlay:
        if node.pod_cidrs:
            return Text.assemble(("pods ", DIM), (", ".join(node.pod_cidrs), "cyan"), (" · overlay, no UDR", DIM))
        # real overlay nodes carry no podCIDR: the cluster's range (managed cluster networkProfile)
        cidr = ", ".join(topo.pod_cidrs) or "—"
        return Text.assemble(("pods ", DIM), (cidr, "cyan"), (" (cluster) · overlay, no UDR", DIM))
    cidr = ", ".join(node.pod_cidrs) or "no pod CIDR"
    via = node.internal_ip or "?"
    if route is not None and route.state in ("present", "missing", "stale"):
        r = route.route
        status = {
            "present": ("route table: present", OK),
            "missing": (f"route table: missing (expected {route.prefix} → {route.expected_next_hop})", BAD),
            "stale": (
                f"route table: stale (is {r.prefix if r else '?'} → {(r.next_hop_ip or r.next_hop_type) if r else '?'})",
                BAD,
            ),
        }[route.state]
    elif node.network_unavailable is True:
        status = (f"route missing ({node.network_reason or 'NetworkUnavailable'})", BAD)
    elif node.network_unavailable is False:
        status = (f"route ok ({node.network_reason or 'RouteCreated'})", OK)
    else:
        status = ("route state not reported", WARN)
    return Text.assemble(("route ", DIM), (cidr, "cyan"), (" → ", DIM), (via, ""), ("  ", ""), status)


def nodelocal_line(topo: Topology, node: NodeInfo, prefix: str = "DNS  ") -> Text | None:
    if node.localdns:
        return Text.assemble((prefix, DIM), ("AKS LocalDNS 169.254.10.10/.11", ""), (" (node label)", DIM))
    if not topo.nodelocal_enabled:
        return None
    pod = topo.nodelocal.get(node.name)
    if pod is None:
        return Text.assemble((prefix, DIM), ("NodeLocal DNS: no pod on this node", BAD))
    return Text.assemble((prefix, DIM), ("NodeLocal 169.254.20.10 ", ""), *pod_state(pod))


def pod_state(pod: PodState) -> list[tuple[str, str]]:
    if pod.ready:
        parts = [(pod.name, ""), (" Ready", OK)]
    else:
        parts = [(pod.name, ""), (f" {pod.reason or pod.phase or 'NotReady'}", BAD)]
    if pod.restarts:
        parts.append((f" ({pod.restarts} restarts)", WARN))
    return parts


def node_meta_line(node: NodeInfo) -> Text:
    bits = [node.zone or "no zone", node.kubelet_version or "?", node.instance_type or "?"]
    if node.vmss:
        bits.append(f"{node.vmss} #{node.instance_id}")
    return Text("  ·  ".join(bits), style=DIM)


def node_problems(node: NodeInfo, topo: Topology, route: Any = None) -> list[tuple[str, str]]:
    """Short words for what is wrong with a node, most serious first; empty when healthy.
    `route` is the route table's verdict for the node (probes.azure.routes.NodeRoute) when known."""
    out: list[tuple[str, str]] = []
    if node.ready is None:
        out.append(("Unknown", WARN))
    elif not node.ready:
        out.append(("NotReady", BAD))
    route_state = getattr(route, "state", None)
    if route_state in ("missing", "stale"):
        out.append((f"route {route_state}", BAD))
    elif node.network_unavailable:
        out.append(("no route", BAD))
    if topo.nodelocal_enabled and not node.localdns:
        pod = topo.nodelocal.get(node.name)
        if pod is None or not pod.ready:
            out.append(("NodeLocal✖", BAD))
    if node.cordoned:
        out.append(("draining" if node.draining else "cordoned", WARN))
    return out


def node_label(node: NodeInfo, topo: Topology, route: Any = None, marks: Any = None) -> Text:
    """One tree row: the worst state's bullet, then what is wrong (before the name, so a
    narrow terminal cuts the CIDR, not the problem), name, IP, pod CIDR. `marks`: the
    node's (word, style) from the findings (tui.marks), which then replace the words read
    off the node itself (cordoned stays); None without findings."""
    if marks is None:
        problems = node_problems(node, topo, route)
    else:
        problems = list(marks)
        if node.cordoned:
            problems.append(("draining" if node.draining else "cordoned", WARN))
    worst = BAD if any(s == BAD for _, s in problems) else WARN if problems else OK
    bullet = "●" if worst == OK else "▲" if worst == WARN else "✖"
    text = Text.assemble((bullet + " ", worst))
    for word, style in problems:
        text.append(word, style=style)
        text.append(" ")
    text.append(node.name, style="bold" if worst != OK else "")
    text.append(" ")
    text.append(node.internal_ip or "no IP")
    if node.pod_cidrs:
        text.append(" ")
        text.append(node.pod_cidrs[0], style="cyan")
    return text


def pool_label(pool: PoolInfo, shown: int | None = None) -> Text:
    style = OK if pool.ready == pool.nodes else (BAD if pool.ready == 0 else WARN)
    text = Text.assemble((pool.name, "bold"))
    if pool.mode:
        text.append(f" ({pool.mode})", style=DIM)
    text.append("  ")
    text.append(f"{pool.ready}/{pool.nodes} ready", style=style)
    if shown is not None and shown != pool.nodes:
        text.append(f"  {shown} match", style="magenta")
    if pool.instance_type:
        text.append(f"  {pool.instance_type}", style=DIM)
    if pool.kubelet_versions:
        text.append("  " + ",".join(pool.kubelet_versions), style=DIM if len(pool.kubelet_versions) == 1 else WARN)
    return text


def stale_note(stale_since: float | None, now: float) -> str:
    """ "stale 14s" for data last known current at `stale_since` (monotonic), "" when current."""
    return "" if stale_since is None else f"stale {age(now - stale_since)}"


def cluster_label(topo: Topology, target: str, stale: str = "") -> Text:
    name = topo.cluster or target or "cluster"
    text = Text.assemble((name, "bold"), ("  ", ""), (plugin_label(topo), "cyan"))
    if stale:
        text.append(f"  {stale}", style=BAD)
    return text


def summary(topo: Topology, width: int = 0, stale: str = "") -> Text:
    """The header: what an operator checks first, in at most two lines of `width` cells
    (0: one line, as long as it gets). Items never break in the middle; when two lines
    are not enough, the least telling ones (server version, LB services, the pod CIDRs)
    are left out first. `stale`: how old the counts are, when they are (always first)."""
    nodes = len(topo.nodes)
    ready = topo.ready_nodes
    items: list[tuple[int, Text]] = [(10, Text(stale, style=BAD))] if stale else []  # (priority, item)
    items.append((9, Text(plugin_label(topo), style="bold cyan")))
    if topo.pod_cidrs:
        t = Text.assemble(("pods ", DIM), ", ".join(topo.pod_cidrs[:2]))
        if len(topo.pod_cidrs) > 2:
            t.append(f" +{len(topo.pod_cidrs) - 2} more", style=DIM)
        items.append((3, t))
    if topo.dns_service_ip:
        items.append((4, Text.assemble(("dns ", DIM), topo.dns_service_ip)))
    items.append(
        (
            9,
            Text.assemble(
                ("nodes ", DIM),
                (f"{ready}/{nodes}", OK if ready == nodes else BAD),
                (f" ({len(topo.pools)} pools)", DIM),
            ),
        )
    )
    cordoned = sum(1 for n in topo.nodes if n.cordoned)
    if cordoned:
        items.append((7, Text(f"{cordoned} cordoned", style=WARN)))
    if topo.nodelocal_enabled:
        nl_ready = sum(1 for p in topo.nodelocal.values() if p.ready)
        items.append((8, Text.assemble(("NodeLocal ", DIM), (f"{nl_ready}/{nodes}", OK if nl_ready >= nodes else BAD))))
    if topo.coredns:
        cd_ready = sum(1 for p in topo.coredns if p.ready)
        cd_ok = cd_ready == len(topo.coredns)
        items.append((8, Text.assemble(("CoreDNS ", DIM), (f"{cd_ready}/{len(topo.coredns)}", OK if cd_ok else BAD))))
    pending = sum(1 for s in topo.services if s.pending)
    if topo.services:
        t = Text.assemble(("LB svc ", DIM), str(len(topo.services)))
        if pending:
            t.append(f" ({pending} pending)", style=WARN)
        items.append((6 if pending else 2, t))
    if topo.server_version:
        items.append((1, Text(topo.server_version, style=DIM)))
    keep = list(items)
    while width > 0 and len(keep) > 1 and len(_lines(keep, width)) > 2:
        keep.remove(min(keep, key=lambda it: it[0]))  # the least telling; the first of equals
    out = Text()
    for i, line in enumerate(_lines(keep, width) if width > 0 else [keep]):
        if i:
            out.append("\n")
        for j, (_, item) in enumerate(line):
            if j:
                out.append(" · ", style=DIM)
            out.append_text(item)
    return out


def _lines(items: list[tuple[int, Text]], width: int) -> list[list[tuple[int, Text]]]:
    """Items laid out in lines of `width` cells, " · " between them, never split."""
    lines: list[list[tuple[int, Text]]] = [[]]
    used = 0
    for it in items:
        w = it[1].cell_len
        if lines[-1] and used + 3 + w > width:
            lines.append([])
            used = 0
        used += w + (3 if lines[-1] else 0)
        lines[-1].append(it)
    return lines


STATE_STYLE = {
    SourceState.LIVE: ("●", OK),
    SourceState.STALE: ("✖", BAD),
    SourceState.SYNCING: ("◌", WARN),
    SourceState.CONNECTING: ("◌", WARN),
    SourceState.FORBIDDEN: ("✖", BAD),
    SourceState.UNAUTHORIZED: ("✖", BAD),
    SourceState.UNREACHABLE: ("✖", BAD),
    SourceState.ERROR: ("✖", BAD),
}


def status_line(status: SourceStatus | None, target: str, now: float | None = None, width: int = 0) -> Text:
    """The source's state in one line. At `width` (0: any) the words that matter stay, in
    this order: the state and its error, then the next retry; the detail is cut first,
    then the middle of the error."""
    if status is None:
        return Text("◌ starting", style=WARN)
    now = time.monotonic() if now is None else now
    mark, style = STATE_STYLE[status.state]
    if status.state is SourceState.LIVE:
        text = Text.assemble((f"{mark} live", style), ("  ", ""), (target, DIM), no_wrap=True, overflow="ellipsis")
        if status.detail:  # e.g. "2 objects ignored: node[3]: metadata is not an object"
            text.append(f"  {status.detail}", style=WARN)
        return text
    stale = f"{stale_note(status.stale_since, now)} · " if status.stale_since is not None else ""
    retry = f" · next try in {max(0, round(status.retry_at - now))}s" if status.retry_at is not None else ""
    message = status.message
    if width > 0 and cell_len(f"{mark} {stale}{message}{retry}") > width:
        message = elide_middle(message, max(width - cell_len(f"{mark} {stale}{retry}"), 8))
    text = Text.assemble((f"{mark} ", style), no_wrap=True, overflow="ellipsis")
    if stale:
        text.append(stale, style=BAD)
    text.append(message, style=style)
    if retry:
        text.append(retry, style=DIM)
    if status.detail:
        text.append(f" — {status.detail}", style="")
    return text


def age(seconds: float) -> str:
    """kubectl-style age: 45s, 12m, 5h, 3d."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def _no_node_cidr(node: NodeInfo, topo: Topology) -> str:
    if topo.plugin is NetworkPlugin.AZURE_CNI_OVERLAY or node.overlay:
        return f"— (overlay: pods from the cluster's {', '.join(topo.pod_cidrs) or 'pod CIDR'})"
    return "— (pods take VNet IPs)"


def node_details(node: NodeInfo, topo: Topology, now_epoch: float) -> list[tuple[str, Text]]:
    """Rows for the node detail screen: (field, value)."""
    word, style = node_state(node)
    rows: list[tuple[str, Text]] = [
        ("name", Text(node.name, style="bold")),
        ("state", Text(word, style=style) + Text(f"  ({node.ready_reason})" if node.ready_reason else "", style=DIM)),
        ("internal IP", Text(node.internal_ip or "—")),
        ("pod CIDR(s)", Text(", ".join(node.pod_cidrs) or _no_node_cidr(node, topo))),
        ("route / pod network", route_line(topo, node)),
        (
            "NetworkUnavailable",
            Text(
                "not reported"
                if node.network_unavailable is None
                else f"{node.network_unavailable} ({node.network_reason})",
                style=BAD if node.network_unavailable else "",
            ),
        ),
        ("pool", Text(f"{node.pool} ({node.mode or '?'})")),
        ("zone", Text(node.zone or "—")),
        ("kubelet", Text(node.kubelet_version or "—")),
        ("OS image", Text(node.os_image or "—")),
        ("VM size", Text(node.instance_type or "—")),
        ("scale set", Text(f"{node.vmss} instance {node.instance_id}" if node.vmss else "—")),
        ("provider ID", Text(node.provider_id or "—", style=DIM)),
        ("resource group", Text(node.resource_group or "—")),
        ("age", Text(age(now_epoch - node.created) if node.created else "—")),
        (
            "cordoned",
            Text("yes" + (" (draining)" if node.draining else ""), style=WARN) if node.cordoned else Text("no"),
        ),
        ("taints", Text(", ".join(node.taints) or "none")),
    ]
    dns = nodelocal_line(topo, node, prefix="")
    if dns is not None:
        rows.append(("node DNS", dns))
    return rows


def now_of(widget: Any) -> float:
    """The monotonic clock a widget's ages are measured on: its app's (`AksnetTopApp.clock`:
    the replay's cursor in a replay, so a paused replay's ages stand still)."""
    try:
        clock = widget.app.clock
    except Exception:  # not mounted in an app (a test's bare widget)
        return time.monotonic()
    return float(clock())


def agent_note(agents: Any, node: str | None, now: float | None = None, prefix: str = "agent ", os: str = "") -> Text:
    """One node's agent as the views show it: when it was last read (stale ones in amber),
    its last error, or that the node has none (a Windows node: none by design, grey).
    `agents`: a probes.agent.reader.AgentReader."""
    if agents is None:
        return Text.assemble((prefix, DIM), ("not read (agents.enabled = false)", DIM))
    if node is None:
        return Text("")
    st = agents.statuses().get(node)
    if st is None and os == "windows":
        return Text.assemble((prefix, DIM), ("not probed: Windows node (the agent runs on Linux nodes)", DIM))
    if st is None:
        if not agents.discovered:
            return Text.assemble((prefix, DIM), ("looking for agents…", DIM))
        if agents.error:
            return Text.assemble((prefix, DIM), (agents.error, WARN))
        return Text.assemble(
            (prefix, DIM), ("none on this node", WARN), (" · `aksnet-top agent install` probes from every node", DIM)
        )
    a = st.age(now)
    if a is None:
        if st.error:
            return Text.assemble((prefix, DIM), (st.error, BAD))
        return Text.assemble((prefix, DIM), (f"{st.pod} · not read yet", DIM))
    stale = a > agents.stale_after()
    when = f"read {age(a)} ago" + (" (stale)" if stale else "")
    out = Text.assemble((prefix, DIM), (when, WARN if stale else OK))
    if st.error:
        out.append(f" · last read failed: {st.error}", style=BAD)
    if st.missed:
        out.append(f" · {st.missed} results missed", style=DIM)
    return out


def agent_brief(agents: Any, node: str, now: float | None = None) -> tuple[str, str]:
    """A few words for a vantage header: ("agent 12s ago", style); stale or failing in colour."""
    st = agents.statuses().get(node) if agents is not None else None
    if st is None:
        return ("agent gone", WARN)
    a = st.age(now)
    if st.error and (a is None or a > agents.stale_after()):
        return ("agent unreachable", BAD)
    if a is None:
        return ("agent", DIM)
    if a > agents.stale_after():
        return (f"agent stale {age(a)}", WARN)
    return (f"agent {age(a)} ago", DIM)


# a row its vantage cannot reach (probes.engine.reach), in a detail screen
NOT_HERE = "not probed from here: `aksnet-top agent install` runs the probes on every node"


def unicode_ok(env: Mapping[str, str] | None = None, encoding: str | None = None) -> bool:
    """Can the terminal take a wide symbol (👥)? Not on a Linux console, a vt100 or a
    dumb terminal, nor without a UTF-8 locale (then plain words)."""
    env = os.environ if env is None else env
    term = env.get("TERM", "")
    if term in ("linux", "dumb") or term.startswith("vt"):
        return False
    locale = env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or ""
    enc = (encoding if encoding is not None else getattr(sys.stdout, "encoding", "") or "").lower()
    return "utf-8" in locale.lower() or "utf8" in locale.lower() or (not locale and enc in ("utf-8", "utf8"))


def screens_badge(screens: int, ascii_only: bool = False) -> str:
    """How many screens show this engine (the owner's and the attached viewers'), for the
    status line: "👥 2", or "2 viewers" where wide symbols are not safe."""
    return f"{screens} viewers" if ascii_only else f"👥 {screens}"
