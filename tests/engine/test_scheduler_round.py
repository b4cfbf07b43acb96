"""Scheduler.run_round: the jobs asked for, once each now, at most `parallel` at once,
beside a cadence that is not waited for."""

from __future__ import annotations

import asyncio

from probes.engine.scheduler import Job, Scheduler


async def test_a_round_runs_the_keys_asked_once_each_at_most_parallel_at_once():
    running, peak, done = 0, 0, []

    def job(key: str) -> Job:
        async def run() -> str:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.02)
            running -= 1
            return key

        return Job(key, run, interval=60.0, jitter=0.0)  # the cadence: one run at start, then a minute

    sched = Scheduler(lambda k, r: done.append(r), concurrency=32)
    sched.set_jobs([job(k) for k in "abcdef"])
    await sched.start()
    try:
        async with asyncio.timeout(5.0):
            while len(done) < 6:  # each job's first tick
                await asyncio.sleep(0.01)
        done.clear()
        peak = 0
        async with asyncio.timeout(5.0):
            await sched.run_round(["a", "b", "c", "d", "gone"], parallel=2)
        assert sorted(done) == ["a", "b", "c", "d"] and peak == 2  # a key without a job is skipped
        done.clear()
        peak = 0
        async with asyncio.timeout(5.0):
            await sched.run_round()  # every job, the shared limit only
        assert sorted(done) == list("abcdef") and peak == 6
    finally:
        assert await sched.stop(1.0)


async def test_a_stopped_scheduler_runs_no_round():
    done: list[object] = []
    sched = Scheduler(lambda k, r: done.append(r))
    sched.set_jobs([Job("a", lambda: asyncio.sleep(0, result="a"), interval=60.0)])
    await sched.run_round()
    assert done == []


async def test_an_idle_round_leaves_a_job_under_way_alone():
    release = asyncio.Event()
    done: list[object] = []

    async def slow() -> str:
        await release.wait()
        return "slow"

    async def quick() -> str:
        return "quick"

    sched = Scheduler(lambda k, r: done.append(r))
    sched.set_jobs([Job("slow", slow, interval=60.0, deadline=10.0, jitter=0.0), Job("quick", quick, interval=60.0)])
    await sched.start()
    try:
        async with asyncio.timeout(5.0):
            while done != ["quick"]:  # the quick tick is in, the slow one under way
                await asyncio.sleep(0.01)
            await sched.run_round(["slow", "quick"], idle=True)
        assert done == ["quick", "quick"]  # the slow job was not started a second time
        release.set()
        async with asyncio.timeout(5.0):
            while done.count("slow") < 1:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert done.count("slow") == 1
    finally:
        assert await sched.stop(1.0)
