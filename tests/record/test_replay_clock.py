"""A replay measures every age on its own clock, the cursor: a source's "stale 30s" and an
agent's "read 35s ago" are what they were at that moment of the recording, wherever the
cursor came from, and they stand still while the replay is paused (the wall clock moves on)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from probes.agent.reader import AgentStatus
from probes.engine.frame import AgentsView, Frame
from probes.engine.store import Snapshot
from probes.kube.model import NodeInfo, SourceState, SourceStatus
from probes.kube.topology import build_topology
from probes.record.reader import Recording
from probes.record.replay import ReplayPublisher
from probes.record.writer import Recorder
from tui import format as fmt

T0 = 1.8e9  # wall clock at the recording's start
M0 = 5000.0  # the recording process's monotonic clock then
NODES = ("aks-a-0", "aks-a-1")


def _node(name: str) -> NodeInfo:
    return NodeInfo(
        name,
        "10.1.0.4",
        ("10.244.0.0/24",),
        "a",
        True,
        "KubeletReady",
        False,
        False,
        "",
        "v1.30.6",
        "1",
        "x",
        "v",
        "0",
        T0,
    )


def _record(path: Path) -> None:
    """60 s, a frame a second: the API source goes stale at 10 s; aks-a-0's agent is read
    at 5 s and never again, aks-a-1's every second."""
    topo = build_topology({n: _node(n) for n in NODES}, cluster="c")
    clock = [T0]
    rec = Recorder(path, clock=lambda: clock[0])
    # the recording process's monotonic clock, as it read when the writer's thread takes a frame
    taken = [T0]
    rec.differ.mono = lambda: M0 + (taken[0] - T0)
    step = rec.differ.step
    rec.differ.step = lambda t, f: (taken.__setitem__(0, t), step(t, f))[1]  # type: ignore[method-assign]
    for i in range(61):
        clock[0] = T0 + i
        stale = i >= 10
        status = SourceStatus(
            "kubernetes",
            SourceState.UNREACHABLE if stale else SourceState.LIVE,
            message="watch failed" if stale else "",
            stale_since=M0 + 10 if stale else None,
        )
        snap = Snapshot(1, topo, (status,), frozenset({"nodes"}), "ctx", 0.0)
        by_node = {
            "aks-a-0": AgentStatus("aks-a-0", "agent-0", read_at=M0 + 5 if i >= 5 else None),
            "aks-a-1": AgentStatus("aks-a-1", "agent-1", read_at=M0 + i, seq=i),
        }
        agents = AgentsView(by_node=by_node, discovered=True, error="", stale=30.0, version=1, seq=i + 1)
        rec._q.put((clock[0], Frame(seq=i + 1, kube=snap, agents=agents)))
    rec.close(30)


def _ages(replay: ReplayPublisher, frame: Frame) -> tuple[float, float, float]:
    """(stale age of the API source, aks-a-0's agent age, aks-a-1's) on the replay's clock."""
    now = replay.clock()
    (status,) = frame.kube.statuses
    assert status.stale_since is not None and frame.agents is not None
    a0 = frame.agents.by_node["aks-a-0"].age(now)
    a1 = frame.agents.by_node["aks-a-1"].age(now)
    return now - status.stale_since, a0, a1


def test_ages_are_the_cursors_wherever_it_came_from(tmp_path):
    _record(tmp_path / "r.aksrec")
    rec = Recording(tmp_path / "r.aksrec")
    replay = ReplayPublisher(rec)
    # forwards, a step, backwards, and forwards again far: each moment's own ages (the
    # agent rows decoded at one moment are reused at another: their read time holds)
    for s in (40, 50, 20, 55, 12, 60):
        stale, a0, a1 = _ages(replay, replay.seek(T0 + s))
        assert abs(stale - (s - 10)) < 0.05, s
        assert abs(a0 - (s - 5)) < 0.05, s
        assert abs(a1 - 0.0) < 0.05, s
    rec.close()


def test_a_paused_replay_shows_the_same_ages_as_time_goes_by(tmp_path):
    _record(tmp_path / "r.aksrec")
    rec = Recording(tmp_path / "r.aksrec")
    # lazy: textual only for this test
    from tui.replay import build

    app = build(rec, at=40.0)

    def texts() -> tuple[str, str]:
        assert app.frame is not None and app.frame.agents is not None
        status = fmt.status_line(app.frame.kube.statuses[0], "ctx", app.clock())
        agent = fmt.agent_note(app.frame.agents, "aks-a-0", app.clock())
        return status.plain, agent.plain

    async def go() -> tuple[tuple[str, str], tuple[str, str], str]:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert not app.replay.playing and app.replay.cursor == T0 + 40
            before = texts()
            await asyncio.sleep(2.2)  # the wall clock moves on; the replay stays paused
            app.show_frame(app.frame)  # as a repaint would
            await pilot.pause()
            after = texts()
            line = str(app.query_one("#status").render())
            return before, after, line

    before, after, line = asyncio.run(go())
    assert "stale 30s" in before[0] and "read 35s ago" in before[1], before
    assert after == before
    assert "stale 30s" in line
    rec.close()


def test_a_recording_of_agent_ages_reads_them_as_of_the_row(tmp_path):
    """A file written before rows carried the read's moment holds an age (`read_at`): it is
    read as the age at the frame the row is decoded at, as it always was."""
    # lazy: the codec's reader side only here
    from probes.record.codec import Thawer

    state = {
        "agents": {"discovered": True, "error": "", "stale": 30.0},
        "a\taks-a-0": {"node": "aks-a-0", "pod": "agent-0", "read_at": 7.5},
    }
    frame = Thawer(epoch=T0, replay_clock=True).frame(state, T0 + 100)
    assert frame.agents is not None
    st = frame.agents.by_node["aks-a-0"]
    assert abs(st.age(T0 + 100) - 7.5) < 1e-6
    # and a live viewer's rows (wall-clock read moments) land on this process's clock
    live = Thawer(epoch=0.0).frame(
        {**state, "a\taks-a-0": {"node": "aks-a-0", "pod": "agent-0", "read_t": round((time.time() - 3.0) * 1000)}},
        time.time(),
    )
    assert live.agents is not None
    age = live.agents.by_node["aks-a-0"].age()
    assert age is not None and 2.5 < age < 10.0
    assert dataclasses.is_dataclass(st)
