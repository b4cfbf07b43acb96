"""The topology tree: cluster → pools → nodes → route / DNS / placement lines.

The tree is kept, not rebuilt: each refresh adds what appeared, removes what left and
relabels only what changed, so expansion and the cursor survive. A pool's nodes are
created only once the pool is expanded, so 5,000 nodes cost nothing until looked at; once
loaded, a node's lines are redrawn only when what they are drawn from changed (the node,
its route verdict, its NodeLocal pod, its agent's status), and the agent's "read 12s ago"
only on the lines on screen (`refresh_visible`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from probes.kube.model import NodeInfo, PoolInfo, Topology
from tui import format as fmt
from tui.marks import with_agent

AUTO_EXPAND_LIMIT = 60  # pools up to this size open by themselves on first sight
# nodes added to the tree per pass: a pass costs ~0.5 ms a node at 5,000 nodes, so the screen is drawn
# again within ~75 ms while a 5,000-node pool loads; the first pass holds what is on screen
LOAD_CHUNK = 150


@dataclass(frozen=True, slots=True)
class PoolRef:
    name: str


@dataclass(frozen=True, slots=True)
class NodeRef:
    name: str


def matches(node: NodeInfo, needle: str) -> bool:
    """The `/` filter: a case-insensitive substring of the name, the IP or a pod CIDR."""
    if not needle:
        return True
    n = needle.lower()
    return n in node.name.lower() or n in node.internal_ip or any(n in c for c in node.pod_cidrs)


class TopologyTree(Tree[object]):
    BINDINGS = [
        Binding("enter", "select_cursor", "Node: open its detail · pool: open or close", show=False),
        Binding("space", "toggle_node", "Show or hide a node's route, DNS and placement lines", show=False),
        Binding("right,l", "expand_cursor", "Expand", show=False),
        Binding("left,h", "collapse_cursor", "Collapse / parent", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(Text("connecting…", style="dim"), data=None, **kwargs)  # type: ignore[arg-type]
        self.auto_expand = False
        self.show_root = True
        self.guide_depth = 2
        self._pool_items: dict[str, TreeNode[object]] = {}
        self._items: dict[str, dict[str, TreeNode[object]]] = {}  # pool -> node name -> tree node
        self._last_label: dict[int, Text] = {}  # tree node id -> last label, to skip no-op relabels
        self._pool_loaded: set[str] = set()  # pools whose node children exist
        self._seen_pools: set[str] = set()
        self._was_expanded: set[str] = set()  # pools hidden by the filter while open
        self.topology: Topology | None = None
        self.target = ""
        self.node_filter = ""
        self.routes: Mapping[str, Any] = {}  # node -> probes.azure.routes.NodeRoute (the frame's route view)
        self.agents: Any = None  # the frame's AgentsView: a line per node says when it was read
        self.marks: Mapping[str, Any] | None = None  # node -> (word, style) from the findings (tui.marks)
        self._drawn_from: dict[str, tuple[Any, ...]] = {}  # node name -> the inputs of its lines
        self._drawn_cluster: tuple[Any, ...] = ()  # the cluster-wide inputs of every node's lines
        # nodes whose detail lines exist: made when a node is first opened, not when its pool
        # loads (5,000 nodes were 25,000 tree nodes, most of them never seen)
        self._lines_made: set[str] = set()
        self._loading: set[str] = set()  # pools with nodes still to add (LOAD_CHUNK per pass)
        self._budget = LOAD_CHUNK  # nodes this pass may still add, across pools
        self._load_timer: Any = None
        self._before_filter: tuple[set[str], set[str]] | None = None  # (expanded, loaded) pools
        self._style_keys: set[tuple[Any, ...]] = set()  # styles the rendered lines were drawn in
        self._last_size: Any = None

    # --- Tree's costs at 25,000 lines ------------------------------------------------
    def notify_style_update(self) -> None:
        """Tree drops its whole line list on every style change (a tab switch, a focus
        change) and rebuilds it, rendering every label to measure it: ~0.5 s with 5,000
        nodes loaded. Styles change how lines look, not which lines exist or how wide
        their labels are: drop only the rendered lines."""
        super(Tree, self).notify_style_update()
        # the rendered lines are keyed by the pseudo-class state (focus) they were drawn
        # in: a state drawn before under the same theme and classes needs no new lines
        # (tui.steadytable does the same for the tables)
        try:
            key = (self.get_pseudo_class_state(), self.app.theme, self.rich_style, frozenset(self.classes))
        except Exception:  # noqa: BLE001 - not mounted yet
            key = None
        if key is not None and key in self._style_keys:
            self.refresh()
            return
        if key is not None:
            self._style_keys.add(key)
        self._clear_rendered()

    def _on_resize(self, event: events.Resize) -> None:
        """Tree drops its line list on every resize, and a tab being shown is resized from
        nothing: keep the list (a size changes no line); the rendered lines are keyed by
        width, so only a new size draws them again."""
        event.prevent_default()
        self._line_cache.grow(event.size.height)
        if event.size != self._last_size:
            self._last_size = event.size
            self._clear_rendered()
        else:
            self.refresh()

    def _clear_rendered(self) -> None:
        self._line_cache.clear()
        self._updates += 1
        self.refresh()

    def get_label_width(self, node: TreeNode[object]) -> int:
        """The label's width without rendering it (Textual invites the override)."""
        label = node.label
        width = cell_len(label.plain if isinstance(label, Text) else str(label))
        return width + (cell_len(self.ICON_NODE) if node.allow_expand else 0)

    # --- helpers ----------------------------------------------------------------------
    def _remove_nodes(self, parent: TreeNode[object], nodes: list[TreeNode[object]]) -> None:
        """Remove `nodes` (children of `parent`) from the tree in one pass over the parent's
        children. TreeNode.remove finds each node by a scan of its siblings, so clearing a
        filter or collapsing 1,700 loaded nodes one by one costs millions of comparisons (a
        pool's own remove_children walks them from the end: the same). Uses the Tree's
        internals as TreeNode._remove does (textual is pinned)."""
        if len(nodes) <= 16:
            for tn in nodes:
                tn.remove()
            return
        doomed = {id(tn) for tn in nodes}
        known = self._tree_nodes

        def forget(tn: TreeNode[object]) -> None:
            for kid in tn._children:  # a node's few lines
                forget(kid)
            tn._children.clear()
            del known[tn.id]

        for tn in nodes:
            forget(tn)
        parent._children[:] = [c for c in parent._children if id(c) not in doomed]
        self._invalidate()

    def _node_route(self, node: NodeInfo, topo: Topology) -> object:
        """The node's route-table verdict, as the publisher compared it (kubenet), or None."""
        return self.routes.get(node.name)

    def _label(self, node: NodeInfo, topo: Topology) -> Text:
        marks = None if self.marks is None else with_agent(self.marks, self.agents, node.name, fmt.now_of(self))
        return fmt.node_label(node, topo, self._node_route(node, topo), marks)

    def _set_label(self, node: TreeNode[object], label: Text) -> None:
        if self._last_label.get(node.id) != label:
            self._last_label[node.id] = label
            node.set_label(label)

    def _node_lines(self, tnode: TreeNode[object], node: NodeInfo, topo: Topology) -> None:
        lines = [fmt.route_line(topo, node, self._node_route(node, topo))]
        dns = fmt.nodelocal_line(topo, node)
        if dns is not None:
            lines.append(dns)
        lines.append(fmt.node_meta_line(node))
        if self.agents is not None:
            lines.append(fmt.agent_note(self.agents, node.name, fmt.now_of(self), prefix="agent ", os=node.os))
        kids = list(tnode.children)
        for i, line in enumerate(lines):
            if i < len(kids):
                self._set_label(kids[i], line)
            else:
                self._last_label[tnode.add_leaf(line, data=NodeRef(node.name)).id] = line
        for extra in kids[len(lines) :]:
            self._last_label.pop(extra.id, None)
            extra.remove()

    def _inputs_of(self, topo: Topology) -> Callable[[NodeInfo], tuple[Any, ...]]:
        """What a node's row is drawn from (it is drawn again when one of these moved; tuples
        compare item by item, identity first, in C), with the lookups bound once: `show` asks it of every loaded node (5,000
        after expand-all), on every frame whose topology, routes or findings moved."""
        route = self.routes.get
        nodelocal = topo.nodelocal.get
        agents = self.agents.statuses().get if self.agents is not None else None
        marks = self.marks.get if self.marks is not None else None

        def inputs(node: NodeInfo) -> tuple[Any, ...]:
            name = node.name
            return (
                node,
                route(name),
                nodelocal(name),
                agents(name) if agents is not None else None,
                marks(name) if marks is not None else None,
            )

        return inputs

    def _sync_pool_nodes(
        self,
        pool: PoolInfo,
        pnode: TreeNode[object],
        members: list[NodeInfo],
        topo: Topology,
        adding_only: bool = False,
    ) -> None:
        """Add, redraw and remove the pool's nodes; at most LOAD_CHUNK new ones per call (the
        rest on a timer, in order, so the first screenful shows first)."""
        have = self._items.setdefault(pool.name, {})
        if not self.is_attached:  # no timer to go on with: all at once
            self._budget = max(self._budget, len(members))
        self._loading.discard(pool.name)
        wanted = {n.name for n in members}
        doomed: list[TreeNode[object]] = []
        for name in [n for n in have if n not in wanted]:
            self._drawn_from.pop(name, None)
            self._lines_made.discard(name)
            tn = have.pop(name)
            for kid in tn.children:
                self._last_label.pop(kid.id, None)
            self._last_label.pop(tn.id, None)
            doomed.append(tn)
        self._remove_nodes(pnode, doomed)
        previous: TreeNode[object] | None = None
        inputs_of = self._inputs_of(topo)
        drawn_from = self._drawn_from
        for node in members:  # members are sorted by name
            tn = have.get(node.name)
            if tn is None:
                if self._budget <= 0:
                    self._loading.add(pool.name)
                    continue
                self._budget -= 1
                label = self._label(node, topo)
                if previous is None:
                    first = next(iter(pnode.children), None)
                    tn = (
                        pnode.add(label, data=NodeRef(node.name), before=first)
                        if first
                        else pnode.add(label, data=NodeRef(node.name))
                    )
                else:
                    tn = pnode.add(label, data=NodeRef(node.name), after=previous)
                self._last_label[tn.id] = label
                have[node.name] = tn
            else:
                if adding_only:  # a later pass of the same topology: drawn when it was added
                    previous = tn
                    continue
                inputs = inputs_of(node)
                if drawn_from.get(node.name) == inputs:
                    previous = tn
                    continue
                self._set_label(tn, self._label(node, topo))
            drawn_from[node.name] = inputs_of(node)
            if node.name in self._lines_made:
                self._node_lines(tn, node, topo)
            previous = tn
        if self._loading and self._load_timer is None and self.is_attached:
            self._load_timer = self.set_timer(0.005, self._load_more)

    def _load_more(self) -> None:
        """The next LOAD_CHUNK nodes of every pool still loading."""
        self._load_timer = None
        self._budget = LOAD_CHUNK
        topo = self.topology
        if topo is None:
            self._loading.clear()
            return
        for name in sorted(self._loading):
            pool = next((p for p in topo.pools if p.name == name), None)
            pn = self._pool_items.get(name)
            if pool is None or pn is None or name not in self._pool_loaded:
                self._loading.discard(name)
                continue
            members = [n for n in topo.nodes if n.pool == name and matches(n, self.node_filter)]
            self._sync_pool_nodes(pool, pn, members, topo, adding_only=True)

    # --- public -----------------------------------------------------------------------
    def show(self, topo: Topology, target: str = "", stale: str = "") -> None:
        """Bring the tree in line with `topo` (and the current filter); `stale`: how old it is, when it is."""
        self._budget = LOAD_CHUNK
        self.topology = topo
        self.target = target
        a = self.agents
        cluster = (
            topo.plugin,
            topo.dataplane,
            topo.nodelocal_enabled,
            None if a is None else (a.discovered, a.error, a.stale_after()),
        )
        if cluster != self._drawn_cluster:
            self._drawn_cluster = cluster
            self._drawn_from.clear()
        self._set_label(self.root, fmt.cluster_label(topo, target, stale))
        by_pool: dict[str, list[NodeInfo]] = {}
        for n in topo.nodes:
            if matches(n, self.node_filter):
                by_pool.setdefault(n.pool, []).append(n)
        pools = {p.name: p for p in topo.pools if not self.node_filter or p.name in by_pool}
        for name in [p for p in self._pool_items if p not in pools]:
            pn = self._pool_items.pop(name)
            if pn.is_expanded:
                self._was_expanded.add(name)
            for gone in self._items.pop(name, {}):
                self._lines_made.discard(gone)
                self._drawn_from.pop(gone, None)
            self._pool_loaded.discard(name)
            self._remove_nodes(pn, list(pn.children))  # its nodes in one pass, then the pool
            pn.remove()
        previous: TreeNode[object] | None = None
        for name in sorted(pools):
            pool = pools[name]
            shown = len(by_pool.get(name, []))
            label = fmt.pool_label(pool, shown if self.node_filter else None)
            pn = self._pool_items.get(name)
            if pn is None:
                if previous is not None:
                    pn = self.root.add(label, data=PoolRef(name), after=previous)
                elif self.root.children:
                    pn = self.root.add(label, data=PoolRef(name), before=0)
                else:
                    pn = self.root.add(label, data=PoolRef(name))
                self._last_label[pn.id] = label
                self._pool_items[name] = pn
                if name in self._was_expanded or (name not in self._seen_pools and pool.nodes <= AUTO_EXPAND_LIMIT):
                    self._was_expanded.discard(name)
                    pn.expand()
                self._seen_pools.add(name)
            else:
                self._set_label(pn, label)
            if pn.is_expanded or name in self._pool_loaded or (self.node_filter and shown <= AUTO_EXPAND_LIMIT):
                if self.node_filter and not pn.is_expanded:
                    pn.expand()
                self._pool_loaded.add(name)
                self._sync_pool_nodes(pool, pn, by_pool.get(name, []), topo)
            elif not pn.children and pool.nodes:
                # a placeholder so the pool shows an expand arrow before its nodes exist
                self._last_label[
                    pn.add_leaf(Text(f"{pool.nodes} nodes (expand to load)", style="dim"), data=None).id
                ] = Text()
            previous = pn
        if not self.root.is_expanded:
            self.root.expand()

    def show_agents(self, agents: Any) -> bool:
        """Only the agents moved: redraw the loaded nodes whose agent status changed.
        False when that cannot be told (a view was skipped): call `show` instead."""
        prev = self.agents
        topo = self.topology
        if (
            topo is None
            or prev is None
            or agents is None
            or agents.since != prev.seq
            or (agents.discovered, agents.error, agents.stale) != (prev.discovered, prev.error, prev.stale)
        ):
            return False
        self.agents = agents
        inputs_of = self._inputs_of(topo)
        for name in agents.changed:
            node = topo.node(name)
            tn = self._items.get(node.pool, {}).get(name) if node is not None else None
            if node is None or tn is None:
                continue
            inputs = inputs_of(node)
            if self._drawn_from.get(name) != inputs:
                self._drawn_from[name] = inputs
                self._set_label(tn, self._label(node, topo))  # its agent mark
                if name in self._lines_made:
                    self._node_lines(tn, node, topo)
        return True

    def refresh_visible(self) -> None:
        """Redraw the lines on screen whose text moves with time (agent read ages)."""
        topo = self.topology
        if topo is None or self.agents is None:
            return
        names: set[str] = set()
        y0 = int(self.scroll_y)
        for y in range(y0, y0 + max(1, self.size.height)):
            tn = self.get_node_at_line(y)
            if tn is not None and isinstance(tn.data, NodeRef):
                names.add(tn.data.name)
        for name in names & self._lines_made:
            node = topo.node(name)
            tn = self._items.get(node.pool, {}).get(name) if node is not None else None
            if node is not None and tn is not None:
                self._node_lines(tn, node, topo)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.refresh_visible()  # lines scrolled into view get their current ages

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[object]) -> None:
        data = event.node.data
        if isinstance(data, NodeRef) and data.name not in self._lines_made and self.topology is not None:
            node = self.topology.node(data.name)
            if node is not None and self._items.get(node.pool, {}).get(data.name) is event.node:
                self._lines_made.add(data.name)
                self._node_lines(event.node, node, self.topology)
            return
        if isinstance(data, PoolRef) and data.name not in self._pool_loaded and self.topology is not None:
            for kid in list(event.node.children):
                if kid.data is None:
                    kid.remove()
            self._pool_loaded.add(data.name)
            self._budget = LOAD_CHUNK
            pool = next((p for p in self.topology.pools if p.name == data.name), None)
            if pool is not None:
                members = [n for n in self.topology.nodes if n.pool == data.name and matches(n, self.node_filter)]
                self._sync_pool_nodes(pool, event.node, members, self.topology)

    def set_filter(self, needle: str) -> None:
        before, self.node_filter = self.node_filter, needle.strip()
        if not before and self.node_filter:
            self._before_filter = (
                {n for n, pn in self._pool_items.items() if pn.is_expanded} | self._was_expanded,
                set(self._pool_loaded),
            )
        elif before and not self.node_filter and self._before_filter is not None:
            # back to how the tree was before the filter: pools the filter opened close and
            # drop their nodes again (reloading them all froze the UI for over a second)
            expanded, loaded = self._before_filter
            self._before_filter = None
            for name, pn in self._pool_items.items():
                if name not in loaded and name in self._pool_loaded:
                    self._unload_pool(name, pn)
                if name not in expanded and pn.is_expanded:
                    pn.collapse()
                elif name in expanded and not pn.is_expanded:
                    pn.expand()
            self._was_expanded &= expanded
        if self.topology is not None:
            self.show(self.topology, self.target)

    def _unload_pool(self, name: str, pn: TreeNode[object]) -> None:
        for gone in self._items.pop(name, {}):
            self._lines_made.discard(gone)
            self._drawn_from.pop(gone, None)
        for kid in list(pn.children):
            self._last_label.pop(kid.id, None)
            for leaf in kid.children:
                self._last_label.pop(leaf.id, None)
        self._remove_nodes(pn, list(pn.children))
        self._pool_loaded.discard(name)
        self._loading.discard(name)

    def select_node_named(self, name: str) -> bool:
        """Move the cursor to a node, loading its pool if needed. False if not shown."""
        if self.topology is None:
            return False
        node = self.topology.node(name)
        if node is None:
            return False
        pn = self._pool_items.get(node.pool)
        if pn is None:
            return False
        if not pn.is_expanded:
            pn.expand()
            self.on_tree_node_expanded(Tree.NodeExpanded(pn))
        tn = self._items.get(node.pool, {}).get(name)
        while tn is None and node.pool in self._loading:  # not loaded yet: load up to it now
            before = len(self._items.get(node.pool, {}))
            self._load_more()
            tn = self._items.get(node.pool, {}).get(name)
            if len(self._items.get(node.pool, {})) == before:
                break
        if tn is None:
            return False
        if tn._line < 0:  # just added: its line number comes with the next build of the lines
            _ = self._tree_lines
        self.move_cursor(tn)
        self.scroll_to_node(tn)
        return True

    def action_expand_cursor(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand and not node.is_expanded:
            node.expand()

    def action_collapse_cursor(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded and node.children:
            node.collapse()
        elif node.parent is not None:
            self.move_cursor(node.parent)

    @property
    def cursor_ref(self) -> object:
        node = self.cursor_node
        return None if node is None else node.data
