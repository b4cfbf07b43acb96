"""Seeking in a recording: wherever the cursor comes from (a step forward, a jump back to
an older keyframe, one kept from earlier, the first or last instant, past the end), the
frame is the one a replay read from the start shows at that moment; the parts a seek
leaves undecoded (SNAT nodes, agents) read as the decoded ones."""

from __future__ import annotations

import dataclasses
import math
import random
import sqlite3
from pathlib import Path
from typing import Any

from probes.agent.reader import AgentStatus
from probes.dns.result import DnsOutcome
from probes.engine.frame import AgentsView, Frame
from probes.engine.history import judge
from probes.record import codec
from probes.record.reader import Recording
from probes.record.replay import ReplayPublisher
from probes.record.schema import unpack
from probes.record.writer import Recorder
from tests.record.test_compact import T0, _frames, _snat

SECONDS = 120


def _write(path: Path, out: list[tuple[float, Any]], stats_every: float, keyframe_rows: int) -> None:
    """Record the frames `out` at their times, on a clock the test holds."""
    clock = [T0]
    rec = Recorder(path, clock=lambda: clock[0], stats_every=stats_every, keyframe_rows=keyframe_rows)
    rec.differ.mono = lambda: 1000.0 + (clock[0] - T0)
    for t, f in out:
        clock[0] = t
        rec._q.put((t, f))
    rec.close(30)


def _start(nodes: int, seconds: int) -> tuple[Any, list[float], dict[str, list[float]], dict[str, AgentStatus]]:
    """A recording's frames, its SNAT minutes (the last 30), each node's used ports and its agent."""
    times = [T0 - 1800 + 60 * j for j in range(30)]
    used = {f"10.1.0.{i}": [float((i * 37 + x * 11) % 700) for x in range(30)] for i in range(nodes)}
    agents = {f"aks-a-{i}": AgentStatus(f"aks-a-{i}", f"agent-{i}") for i in range(nodes)}
    return _frames(nodes, seconds), times, used, agents


def _record(path: Path) -> None:
    """A small cluster's 120 s with its SNAT minutes (a new point every 5 s, a node that
    goes and comes back) and its agents (one read every frame, round robin)."""
    frames, times, used, agents = _start(8, SECONDS)
    out = []
    for i, (t, f) in enumerate(frames):
        if i % 20 == 0:
            times = times[1:] + [times[-1] + 60]
            for k, v in used.items():
                v.append(v[-1] + 5 if i % 60 else math.nan)
                del v[0]
                if k == "10.1.0.3" and i % 80 == 0:
                    v[-1] = 1000.0  # the most pressed now and then: the order moves
        rows = {k: list(v) for k, v in used.items() if not (k == "10.1.0.6" and 150 <= i < 300)}
        name = f"aks-a-{i % 8}"
        a = agents[name]
        agents[name] = dataclasses.replace(a, read_at=1000.0 + t - T0, seq=a.seq + 1, results=a.results + 3)
        view = AgentsView(
            by_node=dict(agents),
            discovered=True,
            error="",
            stale=30.0,
            version=1,
            seq=i + 1,
            since=i,
            changed=frozenset({name}),
        )
        out.append((t, dataclasses.replace(f, snat=_snat(list(times), rows), agents=view)))
    _write(path, out, stats_every=5.0, keyframe_rows=120)


def _plain(n: Any) -> tuple[Any, ...]:
    """A SNAT node as plain values (NaN, which equals nothing, as None)."""
    return (
        n.ip,
        n.node,
        n.used if n.used == n.used else None,
        list(n.times),
        [x if x == x else None for x in n.used_series],
    )


def _content(frame: Frame) -> dict[str, Any]:
    """What the panes read of a frame, as plain values."""
    snat = frame.snat
    assert snat is not None and snat.table is not None and frame.agents is not None and frame.dns is not None
    return {
        "nodes": frame.topology.nodes,
        "statuses": [(s.source, s.state, s.stale_since) for s in frame.kube.statuses],
        "dns": dict(frame.dns.stats),
        "snat": [_plain(n) for n in snat.table.nodes],
        "snat_head": (snat.version, snat.updated, snat.table.start, snat.table.end),
        "agents": {k: (a.read_at, a.seq, a.results) for k, a in frame.agents.by_node.items()},
        "findings": frame.findings,
    }


def test_a_seek_lands_on_the_frame_a_replay_from_the_start_shows(tmp_path):
    _record(tmp_path / "r.aksrec")
    start = Recording(tmp_path / "r.aksrec")
    assert len(start._kf) >= 4, "several keyframes: seeks start from different ones"
    moments = [start.start] + [T0 + x * 0.25 for x in range(1, SECONDS * 4, 7)] + [start.end]
    reference = {t: _content(start.frame_at(t)) for t in moments}  # forwards only, from the start
    rec = Recording(tmp_path / "r.aksrec")
    rng = random.Random(7)
    order = moments[:]
    rng.shuffle(order)
    # at random, then backwards, then stepping forwards from where the last seek left off
    for t in order + sorted(moments, reverse=True) + sorted(moments):
        assert _content(rec.frame_at(t)) == reference[t], t - T0
    # the first instant, the last, and past either end through the replay's cursor
    replay = ReplayPublisher(rec)
    assert _content(replay.seek(rec.start - 100)) == reference[start.start] and replay.cursor == rec.start
    assert _content(replay.seek(rec.end + 100)) == reference[start.end] and replay.cursor == rec.end
    assert _content(replay.step(10.0)) == reference[start.end] and replay.cursor == rec.end
    assert _content(replay.step(-1e9)) == reference[start.start] and replay.cursor == rec.start


def test_the_parts_a_seek_leaves_undecoded_read_as_the_decoded_ones(tmp_path):
    _record(tmp_path / "r.aksrec")
    rec = Recording(tmp_path / "r.aksrec")
    rng = random.Random(3)
    prev = None
    for t in [T0 + rng.uniform(0, SECONDS) for _ in range(20)]:
        frame = rec.frame_at(t)
        whole = rec.state_at(t)  # every channel decoded
        # SNAT: the nodes, most pressed first, as a report built from the decoded rows
        rows = [
            codec.snat_node(n[len(codec.SNAT_NODE) :], v) for n, v in whole.items() if n.startswith(codec.SNAT_NODE)
        ]
        want = sorted(rows, key=lambda n: n.pressure)
        assert frame.snat is not None and frame.snat.table is not None
        nodes = frame.snat.table.nodes
        assert isinstance(nodes, codec.SnatNodes) and len(nodes) == len(want)
        assert [n.ip for n in nodes] == [n.ip for n in want]
        assert [_plain(n) for n in nodes] == [_plain(n) for n in want]
        assert [_plain(n) for n in nodes[:3]] == [_plain(n) for n in want[:3]] and _plain(nodes[-1]) == _plain(want[-1])
        assert nodes[1] is nodes[1], "a row is decoded once"
        # agents: each as decoded from its row, on the recording's clock
        agents = frame.agents
        assert agents is not None
        assert sorted(agents.by_node) == sorted(n[2:] for n in whole if n.startswith(codec.AGENT))
        for node, a in agents.by_node.items():
            row = whole[codec.AGENT + node]
            assert a.seq == row.get("seq", 0)
            if row["read_t"] is None:  # not read yet
                assert a.read_at is None
            else:
                assert a.read_at is not None and abs(a.read_at - (rec.thawer.epoch + row["read_t"] / 1000.0)) < 1e-6
        if prev is not None and agents.since == prev.agents.seq:
            moved = {k for k in agents.by_node if prev.agents.by_node.get(k) != agents.by_node[k]}
            assert moved <= agents.changed
        prev = frame


def _busy(path: Path, seconds: int = 60) -> list[float]:
    """A recording whose every batch changes many channels: 24 nodes' DNS rows written at
    every probe (a row patched twice in one batch), SNAT minutes each 2 s, agents read
    every frame, nodes (with their agents and SNAT rows) leaving and coming back; a
    keyframe every 400 channels. Returns the frames' times."""
    frames, times, used, agents = _start(24, seconds)
    out = []
    for i, (t, f) in enumerate(frames):
        if i % 8 == 0:
            times = times[1:] + [times[-1] + 60]
            for v in used.values():
                v.append(v[-1] + (i % 17) if i % 24 else math.nan)
                del v[0]
        gone = {(i // 10 + j) % 24 for j in range(3)} if (i // 10) % 3 == 0 else set()  # 3 nodes away now and then
        rows = {k: list(v) for k, v in used.items() if int(k.rsplit(".", 1)[1]) not in gone}
        for j in range(3):
            name = f"aks-a-{(i * 3 + j) % 24}"
            a = agents[name]
            agents[name] = dataclasses.replace(a, read_at=1000.0 + t - T0, seq=a.seq + 1, results=a.results + 3)
        nodes = tuple(n for n in f.kube.topology.nodes if int(n.name.rsplit("-", 1)[1]) not in gone)
        kube = dataclasses.replace(f.kube, topology=dataclasses.replace(f.kube.topology, nodes=nodes))
        view = AgentsView(
            by_node={k: a for k, a in agents.items() if int(k.rsplit("-", 1)[1]) not in gone},
            discovered=True,
            error="",
            stale=30.0,
            version=1,
            seq=i + 1,
            since=-1,
            changed=frozenset(),
        )
        out.append((t, dataclasses.replace(f, kube=kube, snat=_snat(list(times), rows), agents=view)))
    _write(path, out, stats_every=0.0, keyframe_rows=400)
    return [t for t, _ in out]


def _nan(v: Any) -> Any:
    """`v` with NaN (which equals nothing) as a string."""
    if isinstance(v, float) and v != v:
        return "nan"
    if isinstance(v, dict):
        return {k: _nan(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_nan(x) for x in v]
    return v


def test_a_seek_is_the_state_a_step_by_step_replay_reaches(tmp_path):
    """Random seeks (a keyframe and the batches after it applied at once, each row folded
    from its values when read) against one replay stepping every frame from the start
    (one frame's rows at a time): the same channels, values and order, the same frame;
    then stepping on from a seek (rows patched again on top of the stretch's)."""
    times = _busy(tmp_path / "r.aksrec")
    steps = Recording(tmp_path / "r.aksrec")
    assert len(steps._kf) >= 8, "keyframes every 400 channels"
    db = sqlite3.connect(tmp_path / "r.aksrec")
    per_batch = [sum(len(ch) for _, ch in unpack(b)) for (b,) in db.execute("SELECT blob FROM deltas")]
    db.close()
    assert sorted(per_batch)[len(per_batch) // 2] >= 60, "a batch changes many channels"
    rng = random.Random(17)
    cursors = sorted(rng.sample(times, 40) + [t + 0.1 for t in rng.sample(times, 10)] + [steps._kf_t[3]])
    reference = {}
    every = {}
    for t in sorted(set(times) | set(cursors)):  # every frame, in order
        frame = steps.frame_at(t)
        every[t] = _nan(steps.state_at(t))
        if t in cursors:
            state = steps._state
            reference[t] = (list(state), _nan(steps.state_at(t)), {k: list(g) for k, g in steps._groups.items() if g})
            reference[t] += (_content(frame),)
    assert steps._stretch is None, "the reference stepped frame by frame"
    seeker = Recording(tmp_path / "r.aksrec")
    folded = 0
    order = cursors[:]
    rng.shuffle(order)
    for t in order + cursors[::-1]:  # at random, then backwards: each seek starts from a keyframe
        frame = seeker.frame_at(t)
        stretch = seeker._stretch
        folded += 0 if stretch is None else sum(stretch.owns(n, v) is not None for n, v in seeker._state.items())
        names, whole, groups, content = reference[t]
        assert list(seeker._state) == names, t - T0
        assert _nan(seeker.state_at(t)) == whole, t - T0
        assert {k: list(g) for k, g in seeker._groups.items() if g} == groups, t - T0
        # every row's health read from its bytes (a DNS pane's), as its decoded stats say
        rows = frame.dns.stats if frame.dns is not None else {}
        assert isinstance(rows, codec.RowStats)
        assert rows.healths(None, DnsOutcome) == [judge(rows[k], DnsOutcome) for k in rows], t - T0
        assert _content(frame) == content, t - T0
    assert folded > 1000, "the seeks applied their batches at once (rows folded when read)"
    stepped = 0
    for t in cursors[::-1][:12]:  # a seek back, then frame by frame for 3 s: the stretch's rows patched again
        seeker.frame_at(t)
        stepped += seeker._stretch is not None
        for u in [x for x in times if t < x <= t + 3]:
            seeker.frame_at(u)
            assert _nan(seeker.state_at(u)) == every[u], u - T0
    assert stepped >= 8
