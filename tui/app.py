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
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Static, TabbedContent, TabPane, Tree

from probes.engine import allocator
from probes.engine.frame import Frame
from probes.engine.publisher import Publisher, empty_snapshot
from probes.engine.store import Snapshot, Store, worst_status
from probes.kube.model import SourceState
from probes.share.asks import SNAT_REFRESH, Asks
from tui import format as fmt
from tui.keybar import KeyBar
from tui.marks import node_marks
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


class EngineSaid(Message):
    """The engine's answer to a key that asked it to act (any thread may post it)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ClusterCommands(Provider):
    """Command palette: a command for every tab and app action, and search scoped by a
    prefix: `node:` (a node by name or IP), `dns:` / `egress:` (a probe row), `finding:`.
    Without a prefix, the commands and nodes match."""

    SCOPES = ("node:", "dns:", "egress:", "finding:")

    def _actions(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self.app
        assert isinstance(app, AksnetTopApp)
        tabs = [
            (f"Tab {i}: {title}", f"Show the {title} tab (key {i})", partial(app.action_show_tab, i))
            for i, title in enumerate(app.tab_titles(), start=1)
        ]
        return [
            *tabs,
            ("Filter this tab", "Type part of a name, IP or CIDR to keep matching rows", app.action_filter),
            ("Clear filter", "Show every row of this tab again", app.action_clear_filter),
            ("Expand all pools", "Load and open every node pool", app.action_expand_all),
            ("Collapse all pools", "Close every node pool", app.action_collapse_all),
        ]

    async def discover(self) -> Hits:
        for name, help_text, cb in self._actions():
            yield DiscoveryHit(name, cb, help=help_text)

    async def search(self, query: str) -> Hits:
        app = self.app
        assert isinstance(app, AksnetTopApp)
        scope, _, rest = query.partition(":")
        scope = scope.strip().lower() + ":"
        if scope not in self.SCOPES:
            scope, rest = "", query
        matcher = self.matcher(rest.strip())
        if not scope:
            for name, help_text, cb in self._actions():
                score = matcher.match(name)
                if score > 0:
                    yield Hit(score, matcher.highlight(name), cb, help=help_text)
        if scope in ("", "node:"):
            topo = app.snapshot().topology
            for node in topo.nodes[:5000]:
                label = f"node: {node.name} {node.internal_ip}"
                score = matcher.match(label)
                if score > 0:
                    yield Hit(
                        score, matcher.highlight(label), partial(app.goto_node, node.name), help=f"pool {node.pool}"
                    )
        if scope in ("dns:", "egress:", "finding:"):
            for label, jump, help_text in app.palette_rows(scope[:-1])[:5000]:
                score = matcher.match(label)
                if score > 0:
                    yield Hit(score, matcher.highlight(label), jump, help=help_text)


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
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="interrupt"),
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear_filter"),
        Binding("question_mark,f1", "help", "Keys", id="help"),
        Binding("e", "expand_all", "Expand all", show=False, id="expand_all"),
        Binding("c", "collapse_all", "Collapse all", show=False, id="collapse_all"),
        *[Binding(str(i), f"show_tab({i})", f"Tab {i}", show=False) for i in range(1, 7)],
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
        hosts: object = None,
        https: object = None,
        publisher: Publisher | None = None,
        refresh_interval: float = 0.25,  # `aksnet-top` passes [ui] refresh_interval (0.5)
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        banner: str = "",
        recorder: object = None,
        share: object = None,
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
        # probes.share: the owner's Host (offered every frame) or the viewer's publisher; its
        # `screens` (how many screens show this engine) goes in the status line
        self.share = share
        self.ascii = not fmt.unicode_ok()
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
            hosts=hosts,
            https=https,
            findings=any(getattr(p, "NEEDS_FINDINGS", False) for p in self.panes),
            interval=refresh_interval,
            wall_clock=wall_clock,
        )
        # what keys ask the engine to do: the owner's gate (its viewers' asks go through the
        # same one), or, in a viewer, the owner's over the socket
        self.asks = self.publisher if callable(getattr(self.publisher, "ask", None)) else Asks(self.publisher)
        self.frame: Frame | None = None  # the latest frame shown
        self._inbox: Frame | None = None
        self._posted = False
        self._tree_seen: tuple[object, ...] = ()
        self._age_bucket = -1
        self._status_text: Text | None = None
        self._tab_filters: dict[str, str] = {}  # tab id -> its `/` filter

    def compose(self) -> ComposeResult:
        yield Static(Text("aksnet-top", style="bold"), id="summary")
        yield Static(Text("◌ starting", style="yellow"), id="status")
        with TabbedContent(id="tabs", classes="" if self.panes else "single"):
            with TabPane("1 Topology", id="tab-topology"):
                yield TopologyTree(id="topology")
            for i, pane in enumerate(self.panes, start=2):
                with TabPane(f"{i} {getattr(pane, 'PANE_TITLE', type(pane).__name__)}", id=f"tab-{i}"):
                    yield pane
        yield Input(placeholder=self.filter_placeholder("tab-topology"), id="filter")
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
        deliver = self._deliver
        for sink in (self.share, self.recorder):  # the recorder first, then the viewers, then the screen
            tee = getattr(sink, "tee", None)
            if tee is not None:
                tee(lambda _f: None)(first)
                deliver = tee(deliver)
        self.show_frame(first)
        through = getattr(self.share, "follow_through", None)
        if through is not None:  # the viewers' detail screens follow rows through our publisher
            through(self.publisher)
        asks_through = getattr(self.share, "asks_through", None)
        if asks_through is not None:  # the viewers' keys are asked of our engine, through our gate
            asks_through(self.asks)
        self.publisher.start(deliver)
        self.query_one(TopologyTree).focus()

    def on_resize(self) -> None:
        """The header and the status line are laid out for the width: lay them out again."""
        if self.frame is not None and self.query(TopologyTree):
            if "nodes" in self.frame.kube.synced:
                self.query_one("#summary", Static).update(fmt.summary(self.frame.kube.topology, self.size.width - 2))
            self._status_text = None
            self.show_frame(self.frame)

    def on_unmount(self) -> None:
        self.publisher.stop(2.0)
        close_share = getattr(self.share, "close", None)
        if close_share is not None:
            close_share()
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
            try:
                self.show_frame(frame)
            except NoMatches:  # a frame that lands while the screen is torn down: nothing to draw
                return

    def show_frame(self, frame: Frame) -> None:
        """Render `frame`: the status line, every pane, and the tree where its inputs moved."""
        self.frame = frame
        snap = frame.kube
        status = self._pick_status(snap)
        if frame.error:
            line = Text.assemble(("✖ ", "bold red"), (frame.error, ""))
        else:
            line = fmt.status_line(status, snap.target, self.clock(), self.size.width - 2)
            screens = int(getattr(self.share, "screens", 0) or 0)
            if screens > 1:  # someone else watches this engine: say so before the banner
                line.append(f"  {fmt.screens_badge(screens, self.ascii)}", style="bold")
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
        stale = fmt.stale_note(snap.stale_since(), self.clock())  # on the counts and the tree's root too
        seen = (
            snap.topology,
            frame.routes,
            frame.agents,
            snap.target,
            listed,
            None if listed else status,
            frame.findings,
            stale,
        )
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
        tree.marks = None if frame.findings is None else node_marks(frame.findings)
        topo = snap.topology
        if "nodes" in snap.synced:
            self.query_one("#summary", Static).update(fmt.summary(topo, self.size.width - 2, stale))
            tree.show(topo, snap.target, stale)
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
        """Ask the engine for Azure Monitor now (the SNAT pane's `r`): at most one refresh
        every few seconds whoever asks; the answer in a notification, the same words on
        every screen."""
        self.ask(SNAT_REFRESH)

    def ask(self, action: str) -> None:
        self.asks.ask(action, lambda text: self.post_message(EngineSaid(text)))

    def on_engine_said(self, msg: EngineSaid) -> None:
        self.notify(msg.text, timeout=4)

    def _pick_status(self, snap: Snapshot):  # type: ignore[no-untyped-def]
        return worst_status(snap.statuses)

    # --- actions ------------------------------------------------------------------------
    def tab_titles(self) -> list[str]:
        return ["Topology"] + [getattr(p, "PANE_TITLE", type(p).__name__) for p in self.panes]

    def action_show_tab(self, index: int) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        ids = ["tab-topology"] + [f"tab-{i}" for i in range(2, len(self.panes) + 2)]
        if 1 <= index <= len(ids):
            tabs.active = ids[index - 1]
            self._show_filter_of(ids[index - 1])
            self.active_view().focus()

    # --- the `/` filter: one per tab ------------------------------------------------------
    def active_tab(self) -> str:
        return self.query_one("#tabs", TabbedContent).active or "tab-topology"

    def active_view(self) -> Widget:
        """The tree or the pane of the tab on screen."""
        tab = self.active_tab()
        if tab.startswith("tab-") and tab[4:].isdigit():
            index = int(tab[4:]) - 2
            if 0 <= index < len(self.panes):
                return self.panes[index]
        return self.query_one(TopologyTree)

    def filter_what(self, tab: str | None = None) -> str:
        """What `/` filters on a tab, in the key bar's words."""
        try:
            active = self.active_tab()
            view = self.active_view() if (tab or active) == active else None
        except NoMatches:  # the key bar asks while the screen is being composed
            return "nodes"
        if view is None or isinstance(view, TopologyTree):
            return "nodes"
        return str(getattr(view, "FILTER_WHAT", "rows"))

    def filter_placeholder(self, tab: str) -> str:
        what = self.filter_what(tab) if tab != "tab-topology" else "nodes"
        return f"filter {what}: part of a name or IP — Enter keeps it, Esc clears"

    def key_description(self, action: str, description: str) -> str:
        """The key bar's words for a binding: `/` says what it filters on this tab."""
        if action == "filter":
            return f"Filter {self.filter_what()}"
        return description

    def _apply_filter(self, tab: str, needle: str) -> None:
        self._tab_filters[tab] = needle
        view = self.active_view() if tab == self.active_tab() else None
        if view is None:
            return
        setter = getattr(view, "set_filter", None)
        if setter is not None:
            setter(needle)

    def _show_filter_of(self, tab: str) -> None:
        box = self.query_one("#filter", Input)
        needle = self._tab_filters.get(tab, "")
        box.placeholder = self.filter_placeholder(tab)
        if box.value != needle:
            with box.prevent(Input.Changed):
                box.value = needle
        box.set_class(bool(needle), "visible")

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.placeholder = self.filter_placeholder(self.active_tab())
        box.add_class("visible")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        with box.prevent(Input.Changed):
            box.value = ""
        box.remove_class("visible")
        self._apply_filter(self.active_tab(), "")
        self.active_view().focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self._apply_filter(self.active_tab(), event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            if not event.value.strip():
                event.input.remove_class("visible")
            self.active_view().focus()  # the filter stays; so does the tab

    def on_tree_node_selected(self, event: Tree.NodeSelected[object]) -> None:
        data = event.node.data
        if isinstance(data, NodeRef):
            self.push_screen(NodeDetailScreen(data.name, self.snapshot, self.wall_clock, lambda: self.frame))
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

    def show_evidence(self, subject: str, evidence: object = None) -> None:
        """Jump from a finding to where its evidence is shown: `evidence` (a tui.evidence
        Evidence: the tab and row) when the finding names one, else by its subject."""
        titles = self.tab_titles()
        tab = getattr(evidence, "tab", None)
        if tab not in titles:
            kind = subject.partition("/")[0]
            tab = self.EVIDENCE_PANE.get(kind, "Topology")
        index = titles.index(tab) + 1 if tab in titles else 1
        self.action_show_tab(index)
        view = self.active_view()
        if isinstance(view, TopologyTree):
            kind, _, rest = subject.partition("/")
            node = getattr(evidence, "node", "") or (rest if kind == "node" else "")
            if node:
                self.goto_node(node)
            return
        tick = getattr(view, "tick", None)
        if tick is not None:
            tick()  # the tab was hidden: draw the latest frame before choosing a row
        select = getattr(view, "select_key", None)
        if select is not None and evidence is not None:
            select(evidence)

    def goto_node(self, name: str) -> None:
        if self.active_tab() != "tab-topology":
            self.action_show_tab(1)
        tree = self.query_one(TopologyTree)
        if not tree.select_node_named(name):
            self.action_clear_filter()
            tree.select_node_named(name)
        tree.focus()

    def palette_rows(self, scope: str) -> list[tuple[str, Callable[[], object], str]]:
        """(label, jump, help) for the palette's `dns:`, `egress:` and `finding:` scopes."""
        titles = self.tab_titles()
        for pane in self.panes:
            rows = getattr(pane, "palette_rows", None)
            if rows is not None and getattr(pane, "PALETTE_SCOPE", "") == scope:
                title = getattr(pane, "PANE_TITLE", "")

                def jump(key: object, t: str = title) -> None:
                    self.action_show_tab(titles.index(t) + 1)
                    getattr(self.active_view(), "select_key", lambda _k: None)(key)

                return [(label, partial(jump, key), help_text) for label, key, help_text in rows()]
        return []

    def action_expand_all(self) -> None:
        tree = self.query_one(TopologyTree)
        for child in tree.root.children:
            if not child.is_expanded:
                child.expand()

    def action_collapse_all(self) -> None:
        tree = self.query_one(TopologyTree)
        for child in tree.root.children:
            child.collapse()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's own commands, with one "Keys": ours (the same list as `?`)."""
        for cmd in super().get_system_commands(screen):
            if cmd.title == "Keys":
                yield SystemCommand("Keys", "List every key binding active here (same as ?)", self.action_help)
            else:
                yield cmd

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
                what = "Commands: tabs, filter, theme; node:, dns:, egress:, finding: search"
            if b.action == "filter":
                what = self.key_description("filter", what)
            keys = groups.setdefault(what, [])
            display = self.get_key_display(b)
            if display not in keys:
                keys.append(display)
            owners[what] = owners.get(what, False) or active.node is self
        order = sorted(groups, key=lambda w: (not owners[w],))
        return [(" ".join(groups[w]), w) for w in order]
