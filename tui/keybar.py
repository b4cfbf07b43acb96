"""The key bar: one line at the bottom naming the keys that work where the focus is.

Textual's Footer rebuilds itself (unmounts and mounts a widget per key, then lays out the
screen) every time the focus or the bindings change, which made a tab switch at 5,000
nodes cost several layouts. This bar is one line of text: when the bindings change it
rebuilds a `Text` and repaints its own row, never a layout. It shows the same keys the
Footer did (bindings with ``show=True``, one entry per action, disabled ones dimmed).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual.screen import Screen
from textual.widget import Widget


class KeyBar(Widget):
    """The keys of the focused widget, its screen and the app, on one line."""

    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; width: 1fr; background: $footer-background; color: $footer-foreground; }
    """
    COMPONENT_CLASSES = {"keybar--key", "keybar--description"}

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's keyword
        super().__init__(id=id)
        self._items: tuple[tuple[str, str, bool], ...] = ()
        self._text = Text()

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    @property
    def items(self) -> tuple[tuple[str, str, bool], ...]:
        """(key as shown, what it does, enabled) in the order the bar shows them."""
        return self._items

    def _bindings_changed(self, screen: Screen) -> None:
        if not self.is_attached or screen is not self.screen:
            return
        seen: set[str] = set()
        items: list[tuple[str, str, bool]] = []
        bindings = screen.active_bindings
        for active in bindings.values():
            b = active.binding
            if not b.show or b.action in seen:
                continue
            seen.add(b.action)
            items.append((self.app.get_key_display(b), self._describe(b.action, b.description), active.enabled))
        palette = bindings.get(self.app.COMMAND_PALETTE_BINDING) if self.app.ENABLE_COMMAND_PALETTE else None
        if palette is not None:  # shown last, as Textual's Footer does
            items.append((self.app.get_key_display(palette.binding), palette.binding.description, palette.enabled))
        new = tuple(items)
        if new != self._items:
            self._items = new
            self._text = Text()
            self.refresh()  # its own row only: the bar's size never changes

    def _describe(self, action: str, description: str) -> str:
        """The app may word a key for where the user is (`/` says what it filters)."""
        describe = getattr(self.app, "key_description", None)
        return str(describe(action, description)) if describe is not None else description

    def render(self) -> RenderResult:
        key_style = self.get_component_rich_style("keybar--key", partial=True)
        desc_style = self.get_component_rich_style("keybar--description", partial=True)
        out = Text(no_wrap=True, overflow="ellipsis", end="")
        for key, desc, enabled in self._items:
            start = len(out)
            out.append(f" {key} ", style=key_style)
            out.append(f"{desc} ", style=desc_style)
            if not enabled:
                out.stylize("dim", start)
        return out
