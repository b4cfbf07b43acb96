"""The flight recorder on a demo whose NodeLocal DNS fails on one node from 6 s to 14 s:
the recording holds the critical finding's start and end, replay rebuilds the frames at
those times, the first-critical jump lands on it, and no credential is in the file."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import zlib

import pytest
import yaml

from probes.lab.arm import LAB_TOKEN
from probes.record.reader import Recording, RecordingError
from probes.record.replay import ReplayPublisher


def _critical(rec: Recording):  # type: ignore[no-untyped-def]
    crit = [f for f in rec.findings if f.severity == "critical"]
    assert len(crit) == 1, rec.findings
    return crit[0]


def test_the_fault_starts_and_clears_in_the_recording(recorded):
    rec = Recording(recorded[0])
    f = _critical(rec)
    assert f.rule == "nodelocal-down" and f.subject.endswith("vmss000001")
    # the lab drops from 6 s to 14 s after it started (the recording starts a moment later)
    assert 3.0 <= f.start - rec.start <= 11.0
    assert f.end is not None and 3.0 <= f.end - f.start <= 14.0
    assert rec.end - rec.start >= 20.0
    assert {m.kind for m in rec.marks} >= {"finding", "node", "source"}


def test_replay_shows_each_moment_as_it_was(recorded):
    rec = Recording(recorded[0])
    f = _critical(rec)

    def crit_at(t: float) -> list[str]:
        frame = rec.frame_at(t)
        return [x.subject for x in frame.findings or () if str(x.severity) == "critical"]

    before, during, after = f.start - 1.0, (f.start + f.end) / 2, f.end + 1.0
    assert crit_at(before) == []
    assert crit_at(during) == [f.subject]
    assert crit_at(after) == []
    frame = rec.frame_at(during)
    assert len(frame.topology.nodes) == 3 and frame.topology.pools[0].name == "nodepool1"
    assert frame.dns is not None and frame.dns.stats, "the DNS rows are in the frame"
    bad = [k for k, st in frame.dns.stats.items() if k.resolver == "nodelocal" and k.vantage.endswith("vmss000001")]
    assert bad and all(frame.dns.stats[k].last_outcome != "ok" for k in bad)
    # backwards: a seek before the fault rebuilds the state from the keyframe
    assert crit_at(before) == []
    assert rec.frame_at(f.start).findings and crit_at(f.start) == [f.subject]


def test_first_critical_and_next_change_jump(recorded):
    rec = Recording(recorded[0])
    f = _critical(rec)
    seen = []
    rp = ReplayPublisher(rec)
    rp.start(seen.append)
    try:
        frame = rp.first_critical()
        assert frame is not None and rp.cursor == f.start
        assert [x.rule for x in frame.findings or () if str(x.severity) == "critical"] == ["nodelocal-down"]
        assert seen and seen[-1] is frame
        t = rp.cursor
        assert rp.next_change() is not None and rp.cursor > t
        assert rp.prev_change() is not None and rp.cursor <= t
        rp.speed = 64.0
        rp.toggle()
        deadline = time.monotonic() + 5
        while rp.playing and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rp.cursor == rec.end and not rp.playing
    finally:
        rp.stop()


def test_the_recording_holds_no_credential(recorded):
    path, info = recorded
    raw = path.read_bytes()
    texts = [raw]
    db = sqlite3.connect(path)
    for table in ("keyframes", "deltas"):
        texts += [zlib.decompress(b) for (b,) in db.execute(f"SELECT blob FROM {table}")]  # noqa: S608
    texts += [
        str(r).encode()
        for r in db.execute("SELECT * FROM findings UNION ALL SELECT t, kind, text, 0, 0, 0, 0, 0, 0, 0 FROM marks")
    ]
    texts += [str(r).encode() for r in db.execute("SELECT * FROM channels")]
    evidence = [zlib.decompress(b) for (b,) in db.execute("SELECT body FROM evidence")]
    assert evidence, "the raw objects behind the findings are in the recording"
    texts += evidence
    db.close()
    secrets = [LAB_TOKEN.encode(), b"Bearer", b"bearer "]
    kubeconfig = yaml.safe_load(str(info["kubeconfig"]))
    for u in kubeconfig.get("users", []):
        for k in ("token", "client-key-data", "client-certificate-data", "password"):
            if u.get("user", {}).get(k):
                secrets.append(str(u["user"][k]).encode())
    assert len(texts) > 10
    for s in secrets:
        assert not any(s in t for t in texts), s
    assert (path.stat().st_mode & 0o777) == 0o600


def test_the_replay_app_jumps_to_the_first_critical(recorded):
    # lazy: textual only for this test
    from tui.findings_pane import FindingsPane
    from tui.replay import build
    from tui.timeline import Timeline

    rec = Recording(recorded[0])
    f = _critical(rec)
    app = build(rec)

    async def go() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("c")
            await pilot.pause(0.3)
            assert app.replay.cursor == f.start
            assert app.frame is not None and any(x.rule == "nodelocal-down" for x in app.frame.findings or ())
            await pilot.press("5")
            await pilot.pause(0.3)
            pane = app.query_one(FindingsPane)
            assert pane.display
            bar = str(app.query_one(Timeline).render())
            assert "▲" in bar and "▽" in bar and "●" in bar
            await pilot.press("right")
            await pilot.pause(0.2)
            assert app.replay.cursor == min(rec.end, f.start + 10)

    asyncio.run(go())


def test_not_a_recording_is_one_line(tmp_path):
    bad = tmp_path / "x.aksrec"
    bad.write_text("hello")
    with pytest.raises(RecordingError, match="not a readable recording"):
        Recording(bad)
    with pytest.raises(RecordingError, match="no such recording"):
        Recording(tmp_path / "none")
