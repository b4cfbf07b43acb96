"""The aksnet-top Textual app: header summary, status line, topology tree, filter.

The app owns the sources (it starts and stops them) and one publisher
(`probes.engine.publisher`) that reads them off the UI thread and hands over one
immutable frame per cadence; every view renders from the latest frame and none reads a
source. The publisher's thread never waits for the UI: it leaves the frame in an inbox
and posts one message while none is pending, so a busy UI skips frames instead of
queueing them (the probe panes catch up from the frame's full stats).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Protocol

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static, TabbedContent, TabPane, Tree

from probes.engine import allocator
from probes.engine.frame import Frame
from probes.engine.publisher import Publisher, empty_snapshot
from probes.engine.store import Snapshot, Store, worst_status
from probes.kube.model import SourceState
from tui import format as fmt
from tui.keybar import KeyBar
from tui.screens import HelpScreen, NodeDetailScreen
from tui.topology_pane import NodeRef, PoolRef, TopologyTree


class Source(Protocol):
    def start(self) -> None: ...
    def stop(self, timeout: float = 5.0) -> None: ...


class Pane(Protocol):
    """A widget shown in its own tab. The app hands it every frame; it renders from it."""

    PANE_TITLE: str

    def tick(self, frame: Frame) -> None: ...


class FrameReady(Message):
    """The publisher left a new frame in the app's inbox."""


class ClusterCommands(Provider):
    """Command palette: app actions, plus "go to node" for every node by name or IP."""

    def _actions(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self.app
        assert isinstance(app, AksnetTopApp)
        return [
            ("Filter nodes", "Type part of a node name, IP or pod CIDR", app.action_filter),
            ("Clear filter", "Show every node again", app.action_clear_filter),
            ("Expand all pools", "Load and open every node pool", app.action_expand_all),
            ("Collapse all pools", "Close every node pool", app.action_collapse_all),
            ("Keys", "List every key binding", app.action_help),
        ]

    async def discover(self) -> Hits:
        for name, help_text, cb in self._actions():
            yield DiscoveryHit(name, cb, help=help_text)

    async def search(self, query: str) -> Hits:
        app = self.app
        assert isinstance(app, AksnetTopApp)
        matcher = self.matcher(query)
        for name, help_text, cb in self._actions():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), cb, help=help_text)
        topo = app.snapshot().topology
        for node in topo.nodes[:5000]:
            label = f"Go to node {node.name} {node.internal_ip}"
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), partial(app.goto_node, node.name), help=f"pool {node.pool}")


class AksnetTopApp(App[None]):
    TITLE = "aksnet-top"
    COMMANDS = App.COMMANDS | {ClusterCommands}
    CSS = """
    Screen { layout: vertical; }
    #summary { height: auto; max-height: 2; background: $boost; padding: 0 1; }
    #status { height: 1; padding: 0 1; }
    TabbedContent { height: 1fr; }
    TabbedContent.single > ContentTabs { display: none; }
    TopologyTree { height: 1fr; }
    #filter { dock: bottom; height: 3; display: none; }
    #filter.visible { display: block; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear_filter"),
        Binding("question_mark,f1", "help", "Keys", id="help"),
        Binding("e", "expand_all", "Expand all", show=False, id="expand_all"),
        Binding("c", "collapse_all", "Collapse all", show=False, id="collapse_all"),
        *[Binding(str(i), f"show_tab({i})", f"Tab {i}", show=False) for i in range(1, 6)],
    ]

    def __init__(
        self,
        store: Store,
        sources: Iterable[Source] = (),
        *,
        panes: Iterable[Widget] = (),
        dns: object = None,
        egress: object = None,
        snat: object = None,
        route_source: Callable[[], object] | None = None,
        agents: object = None,
        publisher: Publisher | None = None,
        refresh_interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        banner: str = "",
        recorder: object = None,
    ) -> None:
        super().__init__()
        allocator.limit_arenas()  # before the engine's threads start: see probes.engine.allocator
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            # no sliding tab underline or smooth scrolls: over SSH every animation frame is a
            # screen update, and a tab switch repaints once instead of ~20 times
            self.animation_level = "none"
        self.store = store
        self.sources = list(sources)
        self.refresh_interval = refresh_interval
        self.clock = clock
        self.wall_clock = wall_clock
        self.banner = banner
        self.recorder = recorder  # probes.record.writer.Recorder: offered every frame
        self.panes = list(panes)
        # dns / egress: plan(), history, error; snat: report() (and routes()); route_source: the
        # route table as ARM reports it; agents: the agent reader. Only the publisher reads them.
        self.publisher = publisher or Publisher(
            store,
            dns=dns,
            egress=egress,
            snat=snat,
            agents=agents,
            routes=route_source,
            findings=any(getattr(p, "NEEDS_FINDINGS", False) for p in self.panes),
            interval=refresh_interval,
            wall_clock=wall_clock,
        )
        self.frame: Frame | None = None  # the latest frame shown
        self._inbox: Frame | None = None
        self._posted = False
        self._tree_seen: tuple[object, ...] = ()
        self._age_bucket = -1
        self._status_text: Text | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("aksnet-top", style="bold"), id="summary")
        yield Static(Text("◌ starting", style="yellow"), id="status")
        with TabbedContent(id="tabs", classes="" if self.panes else "single"):
            with TabPane("1 Topology", id="tab-topology"):
                yield TopologyTree(id="topology")
            for i, pane in enumerate(self.panes, start=2):
                with TabPane(f"{i} {getattr(pane, 'PANE_TITLE', type(pane).__name__)}", id=f"tab-{i}"):
                    yield pane
        yield Input(placeholder="filter: part of a node name, IP or pod CIDR — Enter keeps it, Esc clears", id="filter")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        # Everything imported and built so far lives as long as the app: keep it out of the
        # cyclic GC's full passes, which otherwise stall frames under a steady result flow.
        gc.freeze()
        # fewer young collections under a steady result flow, and a small middle generation:
        # a generation-1 pass stops every thread, and at (20_000, 20) it held up to 400k
        # objects (a 100 ms stall at 5,000 nodes); at 4 it holds 80k
        gc.set_threshold(20_000, 4, 20)
        self.title = "aksnet-top" + (f" — {self.banner}" if self.banner else "")
        for s in self.sources:
            s.start()
        first = self.publisher.publish()  # the first frame before the first paint
        tee = getattr(self.recorder, "tee", None)
        if tee is not None:
            tee(lambda _f: None)(first)
        self.show_frame(first)
        self.publisher.start(tee(self._deliver) if tee is not None else self._deliver)
        self.query_one(TopologyTree).focus()

    def on_unmount(self) -> None:
        self.publisher.stop(2.0)
        close = getattr(self.recorder, "close", None)
        if close is not None:
            close()
        for s in self.sources:
            try:
                s.stop(2.0)
            except Exception:
                pass

    def snapshot(self) -> Snapshot:
        """The kube part of the latest frame."""
        return self.frame.kube if self.frame is not None else empty_snapshot()

    # --- frames ---------------------------------------------------------------------------
    def _deliver(self, frame: Frame) -> None:
        """On the publisher's thread: never blocks, never queues more than one message."""
        self._inbox = frame
        if not self._posted:
            self._posted = True
            self.post_message(FrameReady())

    def on_frame_ready(self, _: FrameReady) -> None:
        self._posted = False
        frame = self._inbox
        if frame is not None:
            self.show_frame(frame)

    def show_frame(self, frame: Frame) -> None:
        """Render `frame`: the status line, every pane, and the tree where its inputs moved."""
        self.frame = frame
        snap = frame.kube
        status = self._pick_status(snap)
        if frame.error:
            line = Text.assemble(("✖ ", "bold red"), (frame.error, ""))
        else:
            line = fmt.status_line(status, snap.target, self.clock())
            if self.banner and status is not None and status.state is SourceState.LIVE:
                line.append(f"  {self.banner}", style="dim")
        if line != self._status_text:
            self._status_text = line
            self.query_one("#status", Static).update(line, layout=False)  # one fixed row: a repaint, no layout
        for pane in self.panes:
            tick = getattr(pane, "tick", None)
            if tick is not None:
                tick(frame)
        # the tree moves with the topology (a status change keeps the same one), the route
        # verdicts and the agents; before the nodes are listed, with the status
        listed = "nodes" in snap.synced
        seen = (snap.topology, frame.routes, frame.agents, snap.target, listed, None if listed else status)
        old = self._tree_seen
        if old and all(a is b for a, b in zip(seen[:3], old[:3])) and seen[3:] == old[3:]:
            # agent lines say "read 12s ago": every 5 s, redraw the ones on screen
            bucket = int(self.clock() // 5)
            if frame.agents is not None and bucket != self._age_bucket:
                self._age_bucket = bucket
                self.query_one(TopologyTree).refresh_visible()
            return
        self._tree_seen = seen
        tree = self.query_one(TopologyTree)
        if (
            old
            and old[0] is snap.topology
            and old[1] is frame.routes
            and old[3:] == seen[3:]
            and tree.show_agents(frame.agents)
        ):
            return
        tree.routes = frame.routes.by_node if frame.routes is not None else {}
        tree.agents = frame.agents
        topo = snap.topology
        if "nodes" in snap.synced:
            self.query_one("#summary", Static).update(fmt.summary(topo))
            tree.show(topo, snap.target)
        else:
            if status is not None and status.state not in (
                SourceState.LIVE,
                SourceState.SYNCING,
                SourceState.CONNECTING,
            ):
                tree.root.set_label(Text.assemble(("no topology: ", "bold red"), (status.message, "")))
            else:
                tree.root.set_label(Text("loading nodes…", style="dim"))

    # --- what views ask of the engine -----------------------------------------------------
    def follow(self, kind: str, key: object) -> None:
        """A detail screen wants this row's last results in the frames."""
        self.publisher.follow(kind, key)

    def unfollow(self, kind: str, key: object) -> None:
        self.publisher.unfollow(kind, key)

    def refresh_snat(self) -> None:
        """Ask the SNAT service for Azure Monitor now (the SNAT pane's `r`)."""
        fn = getattr(self.publisher.snat, "refresh_now", None)
        if fn is not None:
            fn()

    def _pick_status(self, snap: Snapshot):  # type: ignore[no-untyped-def]
        return worst_status(snap.statuses)

    # --- actions ------------------------------------------------------------------------
    def action_show_tab(self, index: int) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        ids = ["tab-topology"] + [f"tab-{i}" for i in range(2, len(self.panes) + 2)]
        if 1 <= index <= len(ids):
            tabs.active = ids[index - 1]
            if index == 1:
                self.query_one(TopologyTree).focus()
            else:
                self.panes[index - 2].focus()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("visible")
        tree = self.query_one(TopologyTree)
        tree.set_filter("")
        tree.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.query_one(TopologyTree).set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            if not event.value.strip():
                event.input.remove_class("visible")
            self.query_one(TopologyTree).focus()

    def on_tree_node_selected(self, event: Tree.NodeSelected[object]) -> None:
        data = event.node.data
        if isinstance(data, NodeRef):
            self.push_screen(NodeDetailScreen(data.name, self.snapshot, self.wall_clock))
        elif isinstance(data, PoolRef) or event.node.is_root:
            event.node.toggle()

    EVIDENCE_PANE = {
        "node": "Topology",
        "service": "Topology",
        "route": "Topology",
        "resolver": "DNS",
        "target": "Egress",
        "snat": "SNAT",
        "cluster": "Topology",
    }

    def show_evidence(self, subject: str) -> None:
        """Jump from a finding to where its evidence is shown."""
        kind, _, rest = subject.partition("/")
        title = self.EVIDENCE_PANE.get(kind, "Topology")
        titles = ["Topology"] + [getattr(p, "PANE_TITLE", "") for p in self.panes]
        self.action_show_tab(titles.index(title) + 1 if title in titles else 1)
        if kind == "node":
            self.goto_node(rest)

    def goto_node(self, name: str) -> None:
        tree = self.query_one(TopologyTree)
        if not tree.select_node_named(name):
            self.action_clear_filter()
            tree.select_node_named(name)
        tree.focus()

    def action_expand_all(self) -> None:
        tree = self.query_one(TopologyTree)
        for child in tree.root.children:
            if not child.is_expanded:
                child.expand()

    def action_collapse_all(self) -> None:
        tree = self.query_one(TopologyTree)
        for child in tree.root.children:
            child.collapse()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.binding_rows()))

    def binding_rows(self) -> list[tuple[str, str]]:
        """(keys, what) for every active binding, the app's own first, keys of one action joined."""
        groups: dict[str, list[str]] = {}
        owners: dict[str, bool] = {}
        for active in self.active_bindings.values():
            b = active.binding
            what = b.description or b.action
            if b.action.startswith("show_tab("):
                index = int(b.action[len("show_tab(") : -1])
                titles = ["Topology"] + [getattr(p, "PANE_TITLE", type(p).__name__) for p in self.panes]
                if index > len(titles):
                    continue  # no such tab in this run
                what = f"{titles[index - 1]} tab"
            if b.action == "command_palette":
                what = "Commands: go to a node, filter, theme…"
            keys = groups.setdefault(what, [])
            display = self.get_key_display(b)
            if display not in keys:
                keys.append(display)
            owners[what] = owners.get(what, False) or active.node is self
        order = sorted(groups, key=lambda w: (not owners[w],))
        return [(" ".join(groups[w]), w) for w in order]
