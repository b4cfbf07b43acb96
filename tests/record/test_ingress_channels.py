"""The ingress path in a recording: the Ingress tab's objects, the hosts' answers and the
HTTPS probe's rows go into the file and replay rebuilds the same IngressView and rows
(the certificate chain included), with a server's strings kept as text."""

from __future__ import annotations

import asyncio
import time

from probes.engine.publisher import Publisher
from probes.ingress.served import results_for
from probes.record.reader import Recording
from probes.record.writer import Recorder
from tests.ingress.helpers import FakeHttps, served, store_of
from tests.ingressui.test_ingressui_snapshots import ANSWERS, T0, FakeHosts

LB = "20.31.150.10"


def record(tmp_path):  # type: ignore[no-untyped-def]
    """A recording of two frames of f23's ingress path (answers and HTTPS rows by hand)."""
    store, _ = store_of("f23", clock=lambda: T0)
    results = [
        served("api.contoso.com", LB, "expiring", days=5.0, at=T0),
        served("www.contoso.com", LB, "expired", days=-2.0, at=T0, issuer="[b]R11[/b]"),
        served("shop.contoso.com", LB, "timeout", at=T0, error="no TLS answer within 3s"),
    ]
    https = FakeHttps(results)
    pub = Publisher(store, hosts=FakeHosts(ANSWERS["f23"]), https=https, findings=False)
    path = tmp_path / "run.sqlite"
    rec = Recorder(path, command="test", keyframe_every=5.0)
    try:
        first = pub.step()
        rec.offer(first)
        time.sleep(1.2)  # the next second's row
        https.history.add(results[0].key, served("api.contoso.com", LB, "valid", days=89.0, at=T0 + 1))
        second = pub.step()
        assert second.https is not first.https
        rec.offer(second)
        time.sleep(0.3)
    finally:
        rec.close()
    return path, first, second


def test_ingress_and_https_rows_are_recorded_and_replayed(tmp_path):
    path, first, second = record(tmp_path)
    recording = Recording(path)
    frame = recording.frame_at(recording.end)
    view = frame.ingress
    assert view is not None and view.hosts == first.ingress.hosts == 5
    assert [r.host for r in view.host_rows()] == [r.host for r in first.ingress.host_rows()]
    assert [r.dns for r in view.host_rows()] == [r.dns for r in second.ingress.host_rows()]
    assert view.data == second.ingress.data
    rows = {k.host: st for k, st in frame.https.stats.items()}
    assert rows["api.contoso.com"].last_outcome == "valid" and rows["api.contoso.com"].attempts == 2
    www = next(r for r in view.host_rows() if r.host == "www.contoso.com")
    ((key, st),) = results_for(frame.https.stats, www)
    assert key.address == LB and st.last.outcome.value == "expired"
    assert [c.subject_cn for c in st.last.chain] == ["www.contoso.com", "[b]R11[/b]"]
    assert round(st.last.days_left) == -2
    assert rows["shop.contoso.com"].last_error == "no TLS answer within 3s"
    assert len(rows["api.contoso.com"].recent) == 2  # both results, in the order they came


def test_the_replay_app_shows_the_ingress_tab(tmp_path):
    # lazy: textual only for this test
    from tui.ingress_pane import IngressPane
    from tui.replay import build

    path, _, _ = record(tmp_path)
    rec = Recording(path)
    app = build(rec, at=rec.end)

    async def go() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("6")
            await pilot.pause(0.4)
            pane = app.query_one(IngressPane)
            assert pane.display and pane.view is not None and pane.view.hosts == 5
            shown = pane.row_texts("ingress-hosts")
            cells = {k.split("|")[2]: v for k, v in shown.items() if k.startswith("h|")}
            assert cells["www.contoso.com"][2].startswith("✗ expired")
            assert cells["api.contoso.com"][2].startswith("✓ 89d")
            assert cells["shop.contoso.com"][2] == "✗ timeout"
            assert cells["portal.contoso.com"][2] == "—"  # not probed in this recording

    asyncio.run(go())


def test_an_https_row_written_as_a_patch_reads_back_whole(tmp_path):
    """A row's later results travel as a patch on its previous row; a moment between the
    keyframes reads the row whole (its earlier results and its last one)."""
    store, _ = store_of("f23", clock=lambda: T0)
    results = [served("api.contoso.com", LB, "valid", days=80.0, at=T0)]
    https = FakeHttps(results)
    pub = Publisher(store, hosts=FakeHosts(ANSWERS["f23"]), https=https, findings=False)
    path = tmp_path / "run.sqlite"
    now = [T0]
    rec = Recorder(path, command="test", keyframe_every=600.0, stats_every=0.0, clock=lambda: now[0])
    try:
        for i in range(4):
            if i:
                https.history.add(results[0].key, served("api.contoso.com", LB, "valid", days=80.0 - i, at=T0 + i))
            now[0] = T0 + 2 * i
            rec.offer(pub.step())
            time.sleep(1.1)  # a batch each
    finally:
        rec.close()
    recording = Recording(path)
    frame = recording.frame_at(T0 + 4.5)  # the first keyframe and the batches after it
    rows = {k.host: st for k, st in frame.https.stats.items()}
    api = rows["api.contoso.com"]
    assert api.attempts == 3 and len(api.recent) == 3 and round(api.last.days_left) == 78
