"""The recording's compact rows and its keyframes: a probe row or a SNAT node's row is
written as the points that are new; whatever moment a seek lands on, the state read back
is the state the writer had at that moment; an older recording is refused in one line."""

from __future__ import annotations

import dataclasses
import math
import random
import sqlite3
from pathlib import Path
from types import MappingProxyType

import msgspec

from probes.azure.service import AzureState, SnatReport
from probes.azure.snat import NodeSnat, SnatTable
from probes.diagnose.model import Finding, Severity
from probes.dns.result import DnsOutcome, DnsResult, ProbeKey
from probes.egress.result import EgressKey, EgressMode, EgressOutcome, EgressResult
from probes.engine.frame import Frame, ProbeView
from probes.engine.history import Stats
from probes.engine.store import Snapshot
from probes.kube.model import NodeInfo, SourceState, SourceStatus
from probes.kube.topology import build_topology
from probes.record import codec
from probes.record.reader import Recording
from probes.record.schema import unpack
from probes.record.writer import Recorder
from tui import cli

T0 = 1.8e9


def _stats(n: int, recent: tuple[float | None, ...], last: object, ts: float) -> Stats:
    ok = sorted(x for x in recent if x is not None)
    return Stats(
        count=n,
        attempts=len(recent),
        successes=len(ok),
        p50=ok[len(ok) // 2] if ok else None,
        p95=ok[-1] if ok else None,
        p99=ok[-1] if ok else None,
        loss_pct=100.0 * (len(recent) - len(ok)) / len(recent),
        last_outcome="ok" if recent[-1] is not None else "timeout",
        last_error="" if recent[-1] is not None else "timed out after 2 s",
        last_raw="",
        last_ts=ts,
        last=last,
        recent=recent,
        version=n,
    )


DK = ProbeKey("node/aks-a-1", "nodelocal", "kubernetes.default.svc.cluster.local")
EK = EgressKey("node/aks-a-1", "mcr.microsoft.com:443")


def _dns(lat: float | None, ts: float) -> DnsResult:
    return DnsResult(
        DK.vantage,
        DK.resolver,
        "169.254.20.10",
        "169.254.20.10:53",
        DK.name,
        "A",
        DnsOutcome.OK if lat is not None else DnsOutcome.TIMEOUT,
        lat if lat is not None else 2000.0,
        answers=1 if lat is not None else 0,
        timestamp=ts,
    )


def test_a_probe_row_travels_as_its_new_points_and_comes_back_whole():
    rng = random.Random(3)
    recent: tuple[float | None, ...] = ()
    state: dict[str, object] = {}
    written: dict[str, object] = {}
    name = codec.DNS + codec.key_text(DK)
    sizes = []
    for i in range(1, 40):
        lat = None if i % 13 == 0 else round(rng.uniform(0.5, 3.0), 2)
        recent = (recent + (lat,))[-20:]
        ts = T0 + 5 * i
        st = _stats(i, recent, _dns(lat, ts), ts)
        if i % 6:  # the recorder writes a row every few results
            continue
        row = codec.stats_row(st, DK, epoch=T0)
        out = codec.patch_row(written.get(name), row)  # type: ignore[arg-type]
        written[name] = row
        codec.apply(state, {name: out})
        sizes.append(len(out[codec.TAIL]))
        back = codec.decode_stats(state[name], DK, epoch=T0)  # type: ignore[arg-type]
        assert back.recent == st.recent and back.count == st.count and back.loss_pct == round(st.loss_pct, 2)
        assert back.last_outcome == st.last_outcome and back.last_error == st.last_error
        assert back.last_ts == ts and back.p50 == st.p50
        assert back.last == st.last, (back.last, st.last)
    # the first row is whole (1 row: 6 points); once the window is full each later one
    # carries only the 6 results since the previous one
    assert sizes[0] == 6 and sizes[-3:] == [6, 6, 6]


def test_an_egress_row_keeps_what_its_key_does_not_say():
    last = EgressResult(
        EK.vantage, EK.target, "20.1.2.3", 443, EgressMode.SYN, EgressOutcome.TIMEOUT, 3000.0, "no answer", T0 + 9
    )
    st = _stats(3, (12.5, None, None), last, T0 + 9)
    row = codec.stats_row(st, EK, epoch=T0)
    # the key gives vantage and target, the row the outcome and the time
    assert set(row[codec.LAST]) == {"address", "port", "mode", "latency_ms", "error", ""}
    assert codec.decode_stats(row, EK, epoch=T0).last == last


def _snat(times: list[float], used: dict[str, list[float]]) -> SnatReport:
    rows = [NodeSnat(ip, f"node-{ip}", "p", 1024, u[-1], u[-1], 0.0, 0.0, times, u, 1024) for ip, u in used.items()]
    return SnatReport(
        version=len(times),
        state=AzureState.LIVE,
        table=SnatTable(tuple(sorted(rows, key=lambda n: n.pressure)), (), (), times[0], times[-1]),
    )


def test_a_snat_refresh_writes_the_new_minute_only():
    differ = codec.Differ(epoch=T0)
    state: dict[str, object] = {}
    used = {"10.0.0.4": [float(x) for x in range(30)], "10.0.0.5": [math.nan] + [500.0 + x for x in range(29)]}
    times = [T0 + 60 * j for j in range(30)]
    snap = Snapshot(1, build_topology({}, cluster="c"), (), frozenset(), "", 0.0)
    for minute in range(3):
        rep = _snat(times, {k: list(v) for k, v in used.items()})
        ch = differ.step(T0 + 60 * minute, Frame(seq=minute + 1, kube=snap, snat=rep))
        codec.apply(state, ch.channels)
        node_rows = {k: v for k, v in ch.channels.items() if k.startswith(codec.SNAT_NODE)}
        assert len(node_rows) == 2
        if minute:
            assert all(len(v[codec.S_TIMES]) == 1 and v[codec.S_KEEP] == [1, 29] for v in node_rows.values())
        thawed = codec.Thawer(epoch=T0).frame(state, T0).snat
        assert thawed is not None and thawed.table is not None
        assert [n.ip for n in thawed.table.nodes] == [n.ip for n in rep.table.nodes]  # most pressed first
        for a, b in zip(thawed.table.nodes, rep.table.nodes):
            assert list(a.times) == list(b.times)
            assert [x if x == x else None for x in a.used_series] == [x if x == x else None for x in b.used_series]
        times = times[1:] + [times[-1] + 60]
        for v in used.values():
            v.append(v[-1] + 7)
            del v[0]


def _frames(n_nodes: int, seconds: int, fps: int = 4) -> list[tuple[float, Frame]]:
    """A small cluster's frames: rows probed every few seconds, a node flapping."""
    rng = random.Random(11)
    nodes = {
        f"aks-a-{i}": NodeInfo(
            f"aks-a-{i}",
            f"10.1.0.{i}",
            (f"10.244.{i}.0/24",),
            "a",
            True,
            "KubeletReady",
            False,
            False,
            "",
            "v1.30.6",
            "1",
            f"azure:///x/{i}",
            "aks-a-vmss",
            str(i),
            T0 - 86400,
        )
        for i in range(n_nodes)
    }
    keys = [ProbeKey(f"node/{n}", r, "kubernetes.default.svc.cluster.local") for n in nodes for r in ("a", "b")]
    stats: dict[object, Stats] = {}
    out = []
    snap = Snapshot(
        1, build_topology(nodes, cluster="c"), (SourceStatus("kubernetes", SourceState.LIVE),), frozenset(), "", 0.0
    )
    findings: tuple[Finding, ...] = ()
    for i in range(seconds * fps):
        t = T0 + i / fps
        changed = keys[i % 7 :: 7]
        for k in changed:
            old = stats.get(k)
            lat = None if rng.random() < 0.05 else round(rng.lognormvariate(0, 0.4), 2)
            recent = ((old.recent if old else ()) + (lat,))[-20:]
            stats[k] = _stats((old.count if old else 0) + 1, recent, _dns(lat, t), t)
        if i % (15 * fps) == 0 and i:
            name = rng.choice(list(nodes))
            nodes[name] = dataclasses.replace(nodes[name], ready=not nodes[name].ready)
            snap = dataclasses.replace(snap, version=snap.version + 1, topology=build_topology(nodes, cluster="c"))
            findings = tuple(
                Finding("node-not-ready", None, Severity.CRITICAL, f"node/{n.name}", "NotReady")
                for n in nodes.values()
                if not n.ready
            )
        view = ProbeView(
            plan=None, stats=MappingProxyType(dict(stats)), changed=frozenset(changed), since=i, version=i + 1
        )
        out.append((t, Frame(seq=i + 1, kube=snap, dns=view, findings=findings, findings_at=t)))
    return out


def test_a_seek_anywhere_reads_the_state_the_writer_had(tmp_path):
    frames = _frames(12, 150)
    clock = [T0]
    rec = Recorder(tmp_path / "r.aksrec", clock=lambda: clock[0], stats_every=10.0, keyframe_rows=150)
    seen: list[tuple[float, dict[str, object]]] = []
    step = rec.differ.step

    def spy(t: float, f: Frame) -> codec.Change:
        ch = step(t, f)
        # as the file holds it (tuples become lists)
        seen.append((t, msgspec.msgpack.decode(msgspec.msgpack.encode(rec.differ.state))))
        return ch

    rec.differ.step = spy  # type: ignore[method-assign]
    for t, f in frames:
        clock[0] = t
        rec._q.put((t, f))  # every frame written (the writer's queue never drops here)
    rec.close(30)
    r = Recording(tmp_path / "r.aksrec")
    assert len(r._kf) >= 4, "keyframes come every keyframe_rows channels"
    rng = random.Random(5)
    moments = sorted(rng.sample(range(len(seen)), 25)) + [0, len(seen) - 1] + sorted(rng.sample(range(len(seen)), 10))
    for i in moments:  # forwards, then backwards and forwards again
        t, want = seen[i]
        got = r.state_at(t)
        assert got == want, t - T0
    # a frame at a flap carries the finding and the node as they were
    t, want = seen[15 * 4 * 3 + 2]
    frame = r.frame_at(t)
    assert [f.subject for f in frame.findings or ()] == [x["subject"] for x in want["findings"]["list"]]  # type: ignore[index]
    # no keyframe interval holds more than keyframe_rows channels (and the batch that crossed it)
    db = sqlite3.connect(tmp_path / "r.aksrec")
    kf = [u for (u,) in db.execute("SELECT upto FROM keyframes ORDER BY rowid")]
    counts = {rowid: sum(len(ch) for _, ch in unpack(b)) for rowid, b in db.execute("SELECT rowid, blob FROM deltas")}
    for a, b in zip(kf, kf[1:]):
        between = [counts[x] for x in counts if a < x <= b]
        assert sum(between) - max(between) < 150
    db.close()


def test_an_older_recording_is_refused_in_one_line(tmp_path, capsys):
    old = tmp_path / "old.aksrec"
    db = sqlite3.connect(old)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('format', 'aksnet-top/recording/v1');"
        "CREATE TABLE keyframes (t REAL NOT NULL, blob BLOB NOT NULL);"
        "CREATE TABLE deltas (t REAL NOT NULL, blob BLOB NOT NULL);"
    )
    db.close()
    assert cli.main(["replay", str(old)]) == 4
    err = capsys.readouterr().err
    assert "format v1" in err and "older aksnet-top" in err and len(err.strip().splitlines()) == 1


def test_the_bundle_of_a_recording_opens_from_its_keyframe(tmp_path):
    # the cut keeps the keyframe at or before the window and the batches after it only
    frames = _frames(6, 80)
    clock = [T0]
    rec = Recorder(tmp_path / "r.aksrec", clock=lambda: clock[0], stats_every=10.0, keyframe_rows=60)
    for t, f in frames:
        clock[0] = t
        rec._q.put((t, f))
    rec.close(30)
    # lazy: the bundle module only for this test
    from probes.record import bundle

    full = Recording(tmp_path / "r.aksrec")
    end_state = dict(full.state_at(full.end))
    out = tmp_path / "b.tar.gz"
    bundle.make([tmp_path / "r.aksrec"], out, since=30, now=lambda: T0 + 80)
    # lazy: tarfile only here
    import tarfile

    with tarfile.open(out) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    cut = Recording(next(Path(tmp_path / "x").rglob("*.aksrec")))
    assert T0 < cut._kf_t[0] <= T0 + 50 and len(cut._dl) < len(full._dl)
    assert min(cut._dl_t0) > cut._kf_t[0] - 1.0  # only the batches after the keyframe
    assert cut.state_at(cut.end) == end_state


def _snat_rows(rep: SnatReport | None) -> list[tuple[object, ...]]:
    assert rep is not None and rep.table is not None
    return [
        (n.ip, n.used if n.used == n.used else None, list(n.times), [x if x == x else None for x in n.used_series])
        for n in rep.table.nodes
    ]


def test_a_seeks_frame_is_the_frame_of_the_whole_state(tmp_path):
    """Replay leaves rows undecoded until read (bytes, or patches on the previous value):
    a frame read that way is the frame of the state decoded whole, at any moment, forwards
    (one keyframe, so a row's unresolved patches grow past `Pending.MAX_DEPTH`) and back."""
    frames = _frames(6, 150)
    times = [T0 - 1800 + 60 * j for j in range(30)]
    used = {f"10.1.0.{i}": [float(i * 10 + x % 5) for x in range(30)] for i in range(6)}
    with_snat = []
    for i, (t, f) in enumerate(frames):
        if i % 20 == 0:  # a SNAT minute every 5 s: the rows travel as patches
            times = times[1:] + [times[-1] + 60]
            for v in used.values():
                v.append(v[-1] + 3 if i % 40 else math.nan)
                del v[0]
        rows = {
            k: list(v) for k, v in used.items() if not (k == "10.1.0.5" and 200 <= i < 400)
        }  # a node goes, comes back
        with_snat.append((t, dataclasses.replace(f, snat=_snat(list(times), rows))))
    clock = [T0]
    rec = Recorder(tmp_path / "r.aksrec", clock=lambda: clock[0], stats_every=3.0, keyframe_rows=10**6)
    for t, f in with_snat:
        clock[0] = t
        rec._q.put((t, f))
    rec.close(30)
    r = Recording(tmp_path / "r.aksrec")
    assert len(r._kf) <= 2  # the first and the last: patches pile up between
    rng = random.Random(3)
    moments = [T0 + s for s in range(0, 150, 2)] + [T0 + rng.uniform(0, 150) for _ in range(12)]
    deep = 0
    for t in moments:
        lazy = r.frame_at(t)
        deep = max(deep, max((v.depth for v in r._state.values() if type(v) is codec.Pending), default=0))
        groups: dict[str, list[str]] = {}  # the reader's groups are the state's channels by kind, in order
        for ch in r._state:
            if ch[1:2] == "\t":
                groups.setdefault(ch[:2], []).append(ch)
        assert {k: g for k, g in r._groups.items() if g} == groups
        whole = codec.Thawer(epoch=r.thawer.epoch).frame(r.state_at(t), t)
        assert lazy.dns is not None and whole.dns is not None
        assert dict(lazy.dns.stats) == dict(whole.dns.stats), t - T0
        assert lazy.kube.topology.nodes == whole.kube.topology.nodes
        assert _snat_rows(lazy.snat) == _snat_rows(whole.snat), t - T0
        assert lazy.findings == whole.findings
    assert deep == codec.Pending.MAX_DEPTH, "no row's patches piled up: the test reads nothing deep"
