"""A recording whose DNS probe plan cannot be read: the replay's DNS pane says so in one
line and shows no rows; the rest of the app (the tree, the cursor, the other panes) keeps
working. The same recording with its plan intact shows the rows."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from probes.dns.resolvers import Resolver, ResolverKind
from probes.dns.service import DnsPlan, Vantage, VantagePlan
from probes.record.reader import Recording
from probes.record.schema import pack
from tests.record.test_compact import _frames
from tests.record.test_seek import _write

NAME = "kubernetes.default.svc.cluster.local"
UNREADABLE = "the recording's DNS probe plan cannot be read"


def _plan(nodes: list[str]) -> DnsPlan:
    """The plan of `_frames`' rows: every node a vantage, resolvers a and b, one name."""
    resolvers = (
        Resolver("a", ResolverKind.NODELOCAL, "169.254.20.10"),
        Resolver("b", ResolverKind.KUBE_DNS, "10.0.0.10"),
    )
    return DnsPlan(1, tuple(VantagePlan(Vantage(f"node/{n}", n), resolvers) for n in nodes), (NAME,))


def _record(path: Path) -> None:
    frames = _frames(4, 20)
    plan = _plan([n.name for n in frames[0][1].topology.nodes])
    synced: dict[int, Any] = {}  # one snapshot object per snapshot of `_frames`, its nodes listed
    out = [
        (
            t,
            dataclasses.replace(
                f,
                kube=synced.setdefault(id(f.kube), dataclasses.replace(f.kube, synced=frozenset({"nodes"}))),
                dns=dataclasses.replace(f.dns, plan=plan),
            ),
        )
        for t, f in frames
    ]
    _write(path, out, stats_every=5.0, keyframe_rows=60)


def _corrupt(src: Path, dst: Path, edit: Any) -> int:
    """A copy of `src` whose every `dns.plan` value went through `edit` (its msgpack bytes
    in, bytes out); the number of values edited."""
    shutil.copyfile(src, dst)
    db = sqlite3.connect(dst)
    (cid,) = db.execute("SELECT id FROM channels WHERE name = 'dns.plan'").fetchone()
    edited = 0
    for table in ("keyframes", "deltas"):
        for rowid, blob in db.execute(f"SELECT rowid, blob FROM {table}").fetchall():  # noqa: S608
            body = msgspec.msgpack.decode(zlib.decompress(blob), type=Any)
            chans = [body] if table == "keyframes" else [ch for _, ch in body]
            hit = [ch for ch in chans if ch.get(cid) is not None]
            for ch in hit:
                ch[cid] = msgspec.msgpack.Decoder().decode(edit(msgspec.msgpack.encode(ch[cid])))
            if hit:
                edited += len(hit)
                db.execute(f"UPDATE {table} SET blob = ? WHERE rowid = ?", (pack(body), rowid))  # noqa: S608
    db.commit()
    db.close()
    return edited


EDITS = {
    # a byte of a field's name flipped: the bytes read as msgpack, not as a plan
    "a field's name": lambda b: b.replace(b"vantages", b"vantagez"),
    "a field's type": lambda b: b.replace(b"\xa5qtype\xa1A", b"\xa5qtype\x01", 1),  # qtype: 1
    "not a mapping": lambda b: msgspec.msgpack.encode("garbage"),
    "no plan in it": lambda b: msgspec.msgpack.encode({"error": ""}),
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "r.aksrec"
    _record(path)
    return path


async def _dns_tab(path: Path) -> tuple[str, int, list[str], str]:
    """The replay app on `path`, its DNS tab open, after a seek and a step: the DNS pane's
    status line, its rows, the tree's lines and the timeline (the rest of the app)."""
    # lazy: textual only for these tests
    from tui.dns_pane import DnsPane
    from tui.replay import build
    from tui.timeline import Timeline
    from tui.topology_pane import TopologyTree

    rec = Recording(path)
    app = build(rec)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        app.replay.seek(rec.start + 12)
        await pilot.pause()
        await pilot.press("right")
        await pilot.pause(0.2)
        pane = app.query_one(DnsPane)
        status = str(pane.query_one("#dns-status").render())
        rows = pane.table.row_count
        await pilot.press("1")
        await pilot.pause()
        tree = app.query_one(TopologyTree)
        lines = [tree.root.label.plain] + [n.label.plain for n in tree.root.children]
        lines += sorted(name for pool in tree._items.values() for name in pool)
        bar = str(app.query_one(Timeline).render())
        assert app.replay.cursor == min(rec.end, rec.start + 22)
    rec.close()
    return status, rows, lines, bar


def test_the_dns_pane_shows_the_recorded_plan(recorded):
    status, rows, lines, _ = asyncio.run(_dns_tab(recorded))
    assert UNREADABLE not in status and "4 vantages" in status, status
    assert rows == 4 * 3, "each node's header and its two rows"
    assert "aks-a-3" in lines, "the tree shows the nodes"


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_a_plan_that_cannot_be_read_is_one_line_and_the_replay_goes_on(recorded, tmp_path, edit):
    bad = tmp_path / "bad.aksrec"
    assert _corrupt(recorded, bad, EDITS[edit]) >= 2, "the keyframes' plans and the deltas'"
    status, rows, lines, bar = asyncio.run(_dns_tab(bad))
    assert status.startswith("✖ " + UNREADABLE), status
    assert "\n" not in status and "Traceback" not in status
    assert rows == 0
    good = asyncio.run(_dns_tab(recorded))
    assert lines == good[2], "the tree is the same as with the plan intact"
    assert bar == good[3], "so is the timeline (the cursor moved the same)"


def test_a_plan_recorded_as_none_reads_as_no_plan_yet(recorded, tmp_path):
    none = tmp_path / "none.aksrec"
    _corrupt(recorded, none, lambda b: msgspec.msgpack.encode({"plan": None, "error": ""}))
    status, rows, _, _ = asyncio.run(_dns_tab(none))
    assert status == "DNS: waiting for the cluster's resolvers…" and rows == 0
