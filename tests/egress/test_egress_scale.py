"""Many targets: bounded in-flight handshakes under a small descriptor limit, no leaked
descriptors; scheduler jobs feeding History."""

from __future__ import annotations

import asyncio
import resource

import pytest

from probes.egress.probe import (
    EgressKey,
    EgressOutcome,
    EgressProbe,
    default_concurrency,
    egress_jobs,
    open_fds,
    overrun_result,
)
from probes.egress.targets import parse_target
from probes.engine.history import History
from probes.engine.scheduler import Scheduler


@pytest.fixture
def low_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        yield 256
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_concurrency_stays_below_the_descriptor_limit(low_nofile):
    cap = default_concurrency()
    assert 1 <= cap <= (low_nofile - open_fds()) // 2
    assert default_concurrency(10_000) == cap
    assert default_concurrency(3) == 3


async def _many(lab, mode: str, n: int):
    """n targets: every 15th silently dropped (holds its socket for the whole timeout, so
    the in-flight bound is really hit), the rest alternately open and refused."""
    targets = [lab.dropped.text if i % 15 == 0 else lab.open.text if i % 2 else lab.refused.text for i in range(n)]
    p = EgressProbe(mode=mode, timeout=0.3, retransmit=None)
    try:
        rs = await p.probe_all(targets)
    finally:
        await p.close()
    want = {
        EgressOutcome.TIMEOUT: sum(t == lab.dropped.text for t in targets),
        EgressOutcome.OPEN: sum(t == lab.open.text for t in targets),
        EgressOutcome.REFUSED: sum(t == lab.refused.text for t in targets),
    }
    got = {o: sum(r.outcome is o for r in rs) for o in want}
    assert got == want and len(rs) == n
    return p, rs


async def test_thousands_of_targets_connect_mode(lab, low_nofile):
    fds = open_fds()
    p, rs = await _many(lab, "connect", 3000)
    assert p.peak_inflight == p.concurrency < low_nofile // 2  # saturated, never above
    assert open_fds() <= fds


async def test_thousands_of_targets_syn_mode(lab, low_nofile, root):
    fds = open_fds()
    p, rs = await _many(lab, "syn", 2000)
    assert p.peak_inflight == p.concurrency < low_nofile // 2
    assert open_fds() <= fds


async def test_jobs_feed_history_and_stop_cleanly(lab):
    hist = History()
    p = EgressProbe(mode="connect", timeout=0.5)
    targets = [
        parse_target(lab.open.text),
        parse_target(lab.refused.text),
        parse_target(lab.dropped.text),
        lab.open.text,
    ]  # duplicate: one job
    jobs = egress_jobs(targets, p, interval=0.2, jitter=0.1)
    assert len(jobs) == 3
    assert {j.key for j in jobs} == {EgressKey("local", t) for t in (lab.open.text, lab.refused.text, lab.dropped.text)}
    sched = Scheduler(hist.add, concurrency=8)
    sched.set_jobs(jobs)
    await sched.start()
    await asyncio.sleep(1.3)
    assert await sched.stop(timeout=2.0)
    await p.close()
    st = {k.target: hist.stats(k) for k in hist.keys()}
    assert st[lab.open.text].last_outcome == "open" and st[lab.open.text].p50 is not None
    assert st[lab.open.text].loss_pct == 0.0
    assert st[lab.refused.text].last_outcome == "refused" and st[lab.refused.text].loss_pct == 100.0
    assert st[lab.dropped.text].last_outcome == "timeout"
    assert st[lab.open.text].attempts >= 3
    assert 1 <= st[lab.dropped.text].attempts <= 3  # one 0.5 s check at a time: no pile-up


def test_overrun_is_a_local_error_not_a_network_verdict():
    r = overrun_result(parse_target("a.example:443"), "local", None, 7.0)
    assert r.outcome is EgressOutcome.LOCAL_ERROR and not r.lost and r.latency_ms == 7000.0
