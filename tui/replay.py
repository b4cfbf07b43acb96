"""`aksnet-top replay FILE`: the app, read-only, on a recording. The replay source
(`probes.record.replay.ReplayPublisher`) stands in for the publisher, so every pane renders
the recorded frames by the app's own frame path; a timeline bar and keys move the cursor."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding

from probes.engine.frame import Frame
from probes.engine.store import Store
from probes.record.reader import Recording
from probes.record.replay import ReplayPublisher
from tui.app import AksnetTopApp
from tui.dns_pane import DnsPane
from tui.egress_pane import EgressPane
from tui.findings_pane import FindingsPane
from tui.ingress_pane import IngressPane
from tui.snat_pane import SnatPane
from tui.timeline import Timeline


class ReplayApp(AksnetTopApp):
    CSS = AksnetTopApp.CSS + "\n#timeline { dock: bottom; height: 1; padding: 0 1; }\n"
    BINDINGS = [
        *AksnetTopApp.BINDINGS,
        Binding("left", "step(-10)", "-10 s", priority=True),
        Binding("right", "step(10)", "+10 s", priority=True),
        Binding("left_square_bracket", "change(-1)", "Prev change", priority=True),
        Binding("right_square_bracket,n", "change(1)", "Next change", priority=True),
        Binding("space", "play", "Play/pause", priority=True),
        Binding("plus,equals_sign", "speed(1)", "Faster", show=False, priority=True),
        Binding("minus", "speed(-1)", "Slower", show=False, priority=True),
        Binding("c", "first_critical", "First critical", priority=True),
    ]

    def __init__(self, rec: Recording, replay: ReplayPublisher, **kw: Any) -> None:
        # every age on screen is measured on the replay's clock (the cursor), not the wall's:
        # paused, "read 12s ago" stays 12 s
        kw.setdefault("clock", replay.clock)
        kw.setdefault("wall_clock", replay.clock)
        super().__init__(Store(), (), publisher=replay, **kw)  # type: ignore[arg-type]
        self.rec = rec
        self.replay = replay

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Timeline(id="timeline")

    def show_frame(self, frame: Frame) -> None:
        super().show_frame(frame)
        self._timeline()

    def _timeline(self) -> None:
        try:
            bar = self.query_one(Timeline)
        except Exception:  # before compose
            return
        bar.show(self.rec, self.replay.cursor, self.replay.playing, self.replay.speed)

    def action_step(self, seconds: int) -> None:
        self.replay.playing = False
        self.replay.step(float(seconds))

    def action_change(self, direction: int) -> None:
        self.replay.playing = False
        found = self.replay.next_change() if direction > 0 else self.replay.prev_change()
        if found is None:
            self.notify("no change " + ("after" if direction > 0 else "before") + " this moment", timeout=2)

    def action_play(self) -> None:
        self.replay.toggle()
        self._timeline()

    def action_speed(self, up: int) -> None:
        self.replay.faster(up > 0)
        self._timeline()

    def action_first_critical(self) -> None:
        self.replay.playing = False
        if self.replay.first_critical() is None:
            self.notify("no critical finding in this recording", timeout=2)


def build(rec: Recording, *, at: float | None = None, speed: float = 1.0) -> ReplayApp:
    replay = ReplayPublisher(rec, at=at, speed=speed)
    name = rec.path.name
    return ReplayApp(
        rec,
        replay,
        panes=[DnsPane(), SnatPane(clock=replay.clock), EgressPane(), FindingsPane(), IngressPane()],
        banner=f"replay: {name} (read-only)",
    )


def run(rec: Recording, cfg: Any, *, at: float | None = None, speed: float = 1.0) -> int:
    app = build(rec, at=at, speed=speed)
    try:
        app.theme = cfg.ui.theme
    except Exception:
        pass
    try:
        app.run()
    finally:
        rec.close()
    return int(app.return_code or 0)
