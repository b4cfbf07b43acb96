"""The scheduler: independent cadences, no pile-up, bounded stop, live job swaps."""

from __future__ import annotations

import asyncio
import time

from probes.dns.probe import DnsOutcome, DnsProbe, DnsResult, dns_jobs
from probes.dns.resolvers import Resolver, ResolverKind
from probes.engine.history import History
from probes.engine.scheduler import BackgroundLoop, Job, JobFailure, Scheduler
from probes.lab.dnsspec import Behaviour, DnsFaultMode

CLUSTER = "kubernetes.default.svc.cluster.local"


def leftover_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def test_dead_resolver_does_not_delay_the_others(responder):
    """One resolver never answers (each query waits its full 1 s deadline); the healthy
    ones keep their 0.2 s cadence: results arrive on time."""
    dead = responder(Behaviour(mode=DnsFaultMode.DROP))
    ok1, ok2 = responder(), responder()
    rs = [
        Resolver(k, ResolverKind.CUSTOM, f"10.9.0.{i}", 53, r.address)
        for i, (k, r) in enumerate([("dead", dead), ("ok1", ok1), ("ok2", ok2)], 1)
    ]
    arrivals: dict[str, list[float]] = {}
    hist = History()

    def sink(key, result):
        arrivals.setdefault(key.resolver, []).append(time.monotonic())
        hist.add(key, result)

    sched = Scheduler(sink, concurrency=8)
    sched.set_jobs(dns_jobs(rs, [CLUSTER], probe=DnsProbe(timeout=1.0), interval=0.2, jitter=0.1))
    await sched.start()
    await asyncio.sleep(2.5)
    t0 = time.monotonic()
    assert await sched.stop(timeout=2.0)
    assert time.monotonic() - t0 < 1.5  # stop does not wait for the in-flight 1 s query
    assert not leftover_tasks()
    for k in ("ok1", "ok2"):
        times = arrivals[k]
        assert len(times) >= 7, (k, len(times))  # ~12 expected at 0.2 s in 2.5 s
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert max(gaps) < 0.2 * 1.1 + 0.4, gaps  # interval + jitter + a generous margin
    assert 1 <= len(arrivals["dead"]) <= 3  # one 1 s query at a time: no pile-up
    assert dead.queries == len(arrivals["dead"]) or dead.queries == len(arrivals["dead"]) + 1
    dead_key = next(k for k in hist.keys() if k.resolver == "dead")
    assert hist.stats(dead_key).loss_pct == 100.0
    assert sched.stats.skipped_ticks > 0


async def test_no_pile_up_when_a_job_overruns():
    active = 0
    peak = 0
    starts: list[float] = []

    async def slow():
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        starts.append(time.monotonic())
        try:
            await asyncio.sleep(0.3)
        finally:
            active -= 1
        return "done"

    got = []
    sched = Scheduler(lambda k, r: got.append(r))
    sched.add(Job("slow", slow, interval=0.05, deadline=5.0, jitter=0.0))
    async with sched:
        await asyncio.sleep(1.0)
    assert peak == 1
    assert 2 <= len(starts) <= 4
    assert all(b - a >= 0.29 for a, b in zip(starts, starts[1:]))
    assert not leftover_tasks()


async def test_deadline_error_and_sink_failure_become_results():
    async def hang():
        await asyncio.sleep(60)

    async def boom():
        raise RuntimeError("kaput")

    got: dict = {}

    def sink(key, result):
        got.setdefault(key, []).append(result)
        if key == "boom":
            raise ValueError("sink bug")  # must not kill the job loop

    sched = Scheduler(sink)
    sched.set_jobs(
        [
            Job("hang", hang, interval=0.1, deadline=0.1, jitter=0),
            Job("boom", boom, interval=0.1, jitter=0),
            Job("late", hang, interval=0.1, deadline=0.1, jitter=0, on_timeout=lambda w: ("late", w)),
        ]
    )
    async with sched:
        await asyncio.sleep(0.65)
    hang_r = got["hang"][0]
    assert isinstance(hang_r, JobFailure) and hang_r.outcome == "timeout" and hang_r.lost
    assert isinstance(got["boom"][0], JobFailure) and "kaput" in got["boom"][0].error
    assert len(got["boom"]) >= 3 and sched.stats.sink_errors >= 3
    assert got["late"][0][0] == "late" and got["late"][0][1] >= 0.09
    h = History()
    for r in got["hang"]:
        h.add("hang", r)
    assert h.stats("hang").loss_pct == 100.0


async def test_stop_is_bounded_even_if_a_job_ignores_cancellation():
    release = asyncio.Event()

    async def stubborn():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await release.wait()  # ignores the cancellation until released

    sched = Scheduler(lambda k, r: None)
    sched.add(Job("s", stubborn, interval=1.0, deadline=60.0, jitter=0))
    await sched.start()
    await asyncio.sleep(0.1)
    t0 = time.monotonic()
    assert await sched.stop(timeout=0.2) is False
    assert time.monotonic() - t0 < 0.6
    release.set()  # let the straggler end so the test leaves nothing behind
    for t in leftover_tasks():
        await asyncio.wait_for(t, 1.0) if not t.done() else None
    assert not leftover_tasks()


async def test_jobs_can_be_swapped_while_running():
    calls: list[str] = []

    def job(tag: str, key: str = "k", interval: float = 0.05):
        async def run():
            calls.append(tag)
            return tag

        return Job(key, run, interval=interval, jitter=0)

    sched = Scheduler(lambda k, r: None)
    sched.set_jobs([job("v1"), job("x", key="other")])
    async with sched:
        await asyncio.sleep(0.2)
        sched.set_jobs([job("v2")])  # same key, new definition; "other" goes away
        n_other = calls.count("x")
        await asyncio.sleep(0.2)
        assert calls.count("x") == n_other
        assert sched.keys() == ["k"]
        sched.add(job("y", key="new"))
        await asyncio.sleep(0.15)
    assert "v2" in calls and "y" in calls
    assert calls.index("v2") > calls.index("v1")
    assert not leftover_tasks()


async def test_fake_clock_cadence_and_skipped_ticks():
    """With an injected clock and sleep the cadence is exact: an overrunning job skips
    the ticks it missed instead of running back to back."""
    now = [1000.0]
    starts: list[float] = []

    async def fake_sleep(d: float) -> None:
        now[0] += d
        await asyncio.sleep(0)

    async def run():
        starts.append(now[0])
        if len(starts) == 3:
            now[0] += 2.5  # this run overran two and a half intervals
        return None

    sched = Scheduler(lambda k, r: None, clock=lambda: now[0], sleep=fake_sleep)
    sched.add(Job("j", run, interval=1.0, jitter=0.0, deadline=10))
    await sched.start()
    for _ in range(200):
        if len(starts) >= 6:
            break
        await asyncio.sleep(0)
    await sched.stop()
    rel = [round(s - 1000.0, 6) for s in starts[:6]]
    assert rel == [0.0, 1.0, 2.0, 5.0, 6.0, 7.0]
    assert sched.stats.skipped_ticks == 2


def test_background_loop_runs_scheduler_and_history_from_another_thread(responder):
    r = responder()
    hist = History()
    bg = BackgroundLoop()
    try:
        sched = Scheduler(hist.add)
        res = Resolver("kube-dns", ResolverKind.KUBE_DNS, "10.0.0.10", 53, r.address)

        async def setup():
            sched.set_jobs(dns_jobs([res], [CLUSTER], probe=DnsProbe("local", timeout=1.0), interval=0.1))
            await sched.start()

        bg.call(setup()).result(2)
        end = time.monotonic() + 3
        while time.monotonic() < end and not hist.keys():
            time.sleep(0.02)
        st = hist.stats(hist.keys()[0])
        assert isinstance(st.last, DnsResult) and st.last_outcome == DnsOutcome.OK.value
        assert bg.call(sched.stop()).result(3)
    finally:
        assert bg.close()
