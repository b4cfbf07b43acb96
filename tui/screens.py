"""Modal screens: a node's detail, and the help list of every binding."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from probes.azure.egressid import gateway_lines
from probes.engine.frame import Frame
from probes.engine.store import Snapshot
from tui import format as fmt
from tui.path_detail import node_path_section


class NodeDetailScreen(ModalScreen[None]):
    """Everything we know about one node; follows the live snapshot until closed."""

    DEFAULT_CSS = """
    NodeDetailScreen { align: center middle; }
    NodeDetailScreen > VerticalScroll { width: 100%; max-width: 110; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape,q,enter", "dismiss", "Back"),
    ]

    def __init__(
        self,
        node_name: str,
        snapshot: Callable[[], Snapshot],
        wall_clock: Callable[[], float] = time.time,
        frame: Callable[[], Frame | None] | None = None,
    ) -> None:
        super().__init__()
        self.node_name = node_name
        self._snapshot = snapshot
        self._wall = wall_clock
        self._frame = frame  # the latest frame: the Azure path and the egress targets
        self._version: tuple[object, ...] = ()
        self.plain_rows: dict[str, str] = {}  # what is on screen, as text (tests and copy)
        self.path_plain = ""  # the path summary, as text

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = Text(f"node {self.node_name}")
            box.border_subtitle = "Esc back"
            yield Static(id="detail")

    def on_mount(self) -> None:
        self.refresh_detail()
        self.set_interval(0.5, self.refresh_detail)

    def refresh_detail(self) -> None:
        snap = self._snapshot()
        frame = self._frame() if self._frame is not None else None
        path = frame.path if frame is not None else None
        egress = frame.egress if frame is not None else None
        key = (snap.version, id(path), egress.version if egress is not None else -1)
        if key == self._version:
            return
        self._version = key
        node = snap.topology.node(self.node_name)
        if node is None:
            self.query_one("#detail", Static).update(
                Text(f"{self.node_name} is no longer in the cluster.", style="bold red")
            )
            return
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        rows = fmt.node_details(node, snap.topology, self._wall())
        gateway = gateway_lines(snap.gateways, node.name, node.pool)
        if gateway:  # a Text: the configurations' names are never read as markup
            rows.append(("egress gateway", Text("\n".join(gateway))))
        self.plain_rows = {key: value.plain for key, value in rows}
        for name, value in rows:
            table.add_row(name, value)
        if self._frame is None:
            self.query_one("#detail", Static).update(table)
            return
        path_view, self.path_plain = node_path_section(frame, node)
        self.query_one("#detail", Static).update(Group(table, Text(""), path_view))


class HelpScreen(ModalScreen[None]):
    """Every key binding that is active where help was asked for, with what it does."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100%; max-width: 80; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for keys, what in self.rows:
            table.add_row(Text(keys), Text(what))
        with VerticalScroll() as box:
            box.border_title = "keys"
            box.border_subtitle = "Esc close"
            yield Static(table)
