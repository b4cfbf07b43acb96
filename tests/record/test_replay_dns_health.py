"""A replay's DNS pane judges its rows from their bytes (`RowStats.healths`) and decodes
only the rows it draws: wherever a seek or a step lands, every row's health is the one its
decoded stats give, and the pane shows what it shows when it decodes every row (the
vantages' summaries, the status line's counts, the rows). The recording has failing and
degraded rows, and rows whose last result names a second client's outcome (a truncation
for 512-byte clients): those are judged from the decoded row."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest

from probes.dns.result import DnsOutcome
from probes.engine.history import judge
from probes.record import codec
from probes.record.reader import Recording
from tests.record.test_compact import T0, _frames
from tests.record.test_replay_unreadable_plan import _plan
from tests.record.test_seek import _write

NODES = 30
SECONDS = 80
TRUNCATED = "aks-a-2"  # its rows' last results name a truncation for 512-byte clients from 20 s to 45 s


def _record(path: Path) -> None:
    frames = _frames(NODES, SECONDS)
    plan = _plan([n.name for n in frames[0][1].topology.nodes])
    synced: dict[int, Any] = {}
    out = []
    for t, f in frames:
        stats = dict(f.dns.stats)
        if T0 + 20 <= t < T0 + 45:
            for k, st in stats.items():
                if TRUNCATED in k.vantage and st.last is not None:
                    last = dataclasses.replace(st.last, no_edns=DnsOutcome.TRUNCATED_TCP_FAILED.value, size=900)
                    stats[k] = dataclasses.replace(st, last=last)
        kube = synced.setdefault(id(f.kube), dataclasses.replace(f.kube, synced=frozenset({"nodes"})))
        out.append((t, dataclasses.replace(f, kube=kube, dns=dataclasses.replace(f.dns, plan=plan, stats=stats))))
    _write(path, out, stats_every=5.0, keyframe_rows=150)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("health") / "r.aksrec"
    _record(path)
    return path


def test_each_rows_health_read_from_its_bytes_is_its_decoded_stats_health(recorded, monkeypatch):
    rec = Recording(recorded)
    assert len(rec._kf) >= 4
    decoded = [0]
    real = codec.decode_stats

    def counting(*a: Any, **k: Any) -> Any:
        decoded[0] += 1
        return real(*a, **k)

    monkeypatch.setattr(codec, "decode_stats", counting)
    rng = random.Random(5)
    moments = [T0 + rng.uniform(0, SECONDS) for _ in range(30)]
    moments += [m + d for m in moments[:6] for d in (0.25, 0.5, 1.0)]  # steps forward: rows left Pending
    seen = {"failing": 0, "degraded": 0, "profile": 0}
    fast = 0
    for t in moments:
        frame = rec.frame_at(t)
        view = frame.dns
        assert view is not None
        keys = list(view.stats)
        decoded[0] = 0
        got = view.stats.healths(keys, DnsOutcome)
        read = decoded[0]
        want = [judge(view.stats[k], DnsOutcome) for k in keys]
        assert got == want, t - T0
        names = {k: st.last for k, st in ((k, view.stats[k]) for k in keys)}
        profiled = sum(1 for last in names.values() if getattr(last, "profile_outcome", None) is not None)
        seen["profile"] += profiled
        seen["failing"] += sum(h.value == "failing" for h in got)
        seen["degraded"] += sum(h.value == "degraded" for h in got)
        if t < T0 + 19:  # no batch read so far (a second each) names a second client's outcome
            fast += 1
            assert read == 0, "no row decoded"
        elif profiled:
            assert read < len(keys), "the rows that cannot name one are not decoded"
    assert seen["profile"] and seen["failing"] and seen["degraded"], seen
    assert fast >= 5


async def _seeks(path: Path, decode_all: bool) -> list[tuple[str, list[str], int]]:
    """The replay app at 80x24 on its DNS tab, at random moments and a few steps: each time
    the status line, the table as text, and how many rows the seek's tick decoded.
    `decode_all`: the pane takes every changed row's stats, as for a live view."""
    # lazy: textual only for this test
    from tui.dns_pane import DnsPane
    from tui.replay import build

    rec = Recording(path)
    app = build(rec)
    out = []
    reads = [0]
    real = codec.RowStats.__getitem__

    def counting(self: Any, key: Any) -> Any:
        reads[0] += 1
        return real(self, key)

    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(DnsPane)
        if decode_all:
            pane.OUTCOMES = None
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        rng = random.Random(9)
        moments = [T0 + rng.uniform(0, SECONDS) for _ in range(10)]
        moments += [T0 + 30, T0 + 30.25, T0 + 31, T0 + 33]  # steps forward, a truncation on screen
        codec.RowStats.__getitem__ = counting  # type: ignore[method-assign]
        try:
            for t in moments:
                frame = app.replay.seek(t)
                reads[0] = 0
                app.show_frame(frame)
                n = reads[0]
                await pilot.pause()
                status = str(pane.query_one("#dns-status").render())
                out.append((status, pane.plain_rows(), n))
        finally:
            codec.RowStats.__getitem__ = real  # type: ignore[method-assign]
    rec.close()
    return out


def test_the_pane_shows_what_decoding_every_row_shows_and_decodes_the_rows_it_draws(recorded):
    lazy = asyncio.run(_seeks(recorded, decode_all=False))
    every = asyncio.run(_seeks(recorded, decode_all=True))
    assert [(s, rows) for s, rows, _ in lazy] == [(s, rows) for s, rows, _ in every]
    assert any("failing" in s for s, _, _ in lazy) and any("degraded" in s for s, _, _ in lazy)
    assert any("fail" in row and TRUNCATED[-1] in row.split("|")[0] for _, rows, _ in lazy for row in rows)
    rows = NODES * 2
    assert max(n for _, _, n in lazy) <= 24, "a seek decodes the rows on screen (and the truncated ones)"
    assert min(n for _, _, n in every[:10]) >= rows // 2, "decoding every changed row reads most of them"
