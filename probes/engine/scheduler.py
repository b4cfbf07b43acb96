"""Run probe jobs on their own cadence, forever, without one slow job hurting the others.

Each job key owns one asyncio task that loops: wait for its tick (interval ± jitter),
run the job under a deadline and a shared concurrency limit, hand the result to the
sink. A job that overruns its interval is not started again until it finishes: its next
tick is simply the first one after it returns (missed ticks are counted, never queued).
Jobs can be swapped at any time (the resolver set follows the topology): a key that
stays keeps its cadence and picks up the new definition on its next run.

Used by the DNS probe, and meant for the TCP egress probe and the per-node agent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Sink = Callable[[Hashable, Any], None]


@dataclass(frozen=True, slots=True)
class Job:
    key: Hashable
    run: Callable[[], Awaitable[Any]]
    interval: float = 5.0  # seconds between starts
    deadline: float | None = None  # seconds; None: the interval
    jitter: float = 0.1  # fraction of the interval, spread both ways
    # result to deliver when the deadline cuts a run short (gets seconds waited);
    # None: a JobFailure is delivered
    on_timeout: Callable[[float], Any] | None = None


@dataclass(frozen=True, slots=True)
class JobFailure:
    """Delivered to the sink when a job raised or overran its deadline. Quacks like a
    probe result for probes.engine.history (a lost attempt)."""

    key: Hashable
    outcome: str  # "timeout" | "error"
    error: str
    latency_ms: float
    timestamp: float
    success: bool = False
    lost: bool = True
    raw: str = ""


@dataclass(slots=True)
class SchedulerStats:
    runs: int = 0
    timeouts: int = 0
    errors: int = 0
    skipped_ticks: int = 0  # ticks missed because the job was still running
    sink_errors: int = 0
    running: int = 0
    per_key_runs: dict[Hashable, int] = field(default_factory=dict)


class Scheduler:
    """Must be started and stopped from the event loop it runs on."""

    def __init__(
        self,
        sink: Sink,
        *,
        concurrency: int = 64,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._sink = sink
        self._limit = concurrency
        self._clock = clock
        self._sleep = sleep
        self._wall = wall
        self._rng = rng or random.Random()
        self._jobs: dict[Hashable, Job] = {}
        self._tasks: dict[Hashable, asyncio.Task[None]] = {}
        self._sem: asyncio.Semaphore | None = None
        self._running = False
        self._busy: set[Hashable] = set()  # keys with a run under way (a tick's or a round's)
        self.stats = SchedulerStats()

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        if self._running:
            return
        self._sem = asyncio.Semaphore(self._limit)
        self._running = True
        for key in self._jobs:
            self._spawn(key)

    async def stop(self, timeout: float = 2.0) -> bool:
        """Cancel every job and wait at most `timeout` s; False if some job ignored the
        cancellation (it is abandoned, never awaited again)."""
        self._running = False
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for t in tasks:
            t.cancel()
        if not tasks:
            return True
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            log.debug("scheduler: %d job(s) did not stop within %.1fs", len(pending), timeout)
        return not pending

    async def __aenter__(self) -> Scheduler:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._running

    def keys(self) -> list[Hashable]:
        return list(self._jobs)

    # --- jobs --------------------------------------------------------------------------
    def set_jobs(self, jobs: Iterable[Job]) -> None:
        """Make the job set exactly `jobs`: new keys start, missing keys stop, kept keys
        keep their cadence and use the new definition from their next run."""
        new = {j.key: j for j in jobs}
        for key in [k for k in self._jobs if k not in new]:
            self.remove(key)
        for job in new.values():
            self.add(job)

    def add(self, job: Job) -> None:
        if job.interval <= 0:
            raise ValueError(f"job {job.key!r}: interval must be > 0")
        fresh = job.key not in self._jobs
        self._jobs[job.key] = job
        if fresh and self._running:
            self._spawn(job.key)

    def remove(self, key: Hashable) -> None:
        self._jobs.pop(key, None)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()

    async def run_round(self, keys: Iterable[Hashable] | None = None, parallel: int = 0, idle: bool = False) -> None:
        """Run every job (or those of `keys`) once now, beside its cadence (which it
        keeps), each under its deadline and the shared concurrency limit, its result to
        the sink; returns when all have delivered. `parallel`: at most that many of them
        at once (0: the shared limit only), so a round does not measure its own queueing
        as latency. A job's own tick may run alongside (both results count); `idle`: not
        the jobs with a run under way."""
        if not self._running:
            return
        jobs = list(self._jobs.values()) if keys is None else [j for k in keys if (j := self._jobs.get(k)) is not None]
        if idle:
            jobs = [j for j in jobs if j.key not in self._busy]
        if parallel <= 0:
            await asyncio.gather(*(self._run_once(job) for job in jobs))
            return
        gate = asyncio.Semaphore(parallel)

        async def one(job: Job) -> None:
            async with gate:
                await self._run_once(job)

        await asyncio.gather(*(one(job) for job in jobs))

    # --- the loop ----------------------------------------------------------------------
    def _spawn(self, key: Hashable) -> None:
        self._tasks[key] = asyncio.get_running_loop().create_task(self._loop(key), name=f"job:{key!r}")

    def _jitter(self, job: Job) -> float:
        return self._rng.uniform(-job.jitter, job.jitter) * job.interval if job.jitter else 0.0

    async def _loop(self, key: Hashable) -> None:
        job = self._jobs.get(key)
        if job is None:
            return
        # `grid` is the un-jittered cadence; jitter moves each start, never the grid.
        # The first run comes soon, spread a little so a batch of jobs does not burst.
        grid = self._clock()
        start = grid + self._rng.uniform(0, max(job.jitter, 0.0)) * min(job.interval, 1.0)
        while True:
            delay = start - self._clock()
            if delay > 0:
                await self._sleep(delay)
            job = self._jobs.get(key)
            if job is None:
                return
            await self._run_once(job)
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # stop/remove raced with the result
                return
            now = self._clock()
            grid += job.interval
            if grid <= now:  # overran: skip the missed ticks, never queue them
                missed = int((now - grid) // job.interval) + 1
                self.stats.skipped_ticks += missed
                grid += missed * job.interval
            start = grid + self._jitter(job)

    async def _run_once(self, job: Job) -> None:
        assert self._sem is not None
        deadline = job.deadline if job.deadline is not None else job.interval
        async with self._sem:
            started = self._clock()
            self.stats.running += 1
            self._busy.add(job.key)
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
                # that lands as the job finishes, and stop() would then wait in vain
                async with asyncio.timeout(deadline):
                    result = await job.run()
            except TimeoutError:
                waited = self._clock() - started
                self.stats.timeouts += 1
                result = (
                    job.on_timeout(waited)
                    if job.on_timeout is not None
                    else JobFailure(
                        job.key, "timeout", f"no result within {deadline:g}s", waited * 1000.0, self._wall()
                    )
                )
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a job's bug becomes a visible failure
                self.stats.errors += 1
                result = JobFailure(
                    job.key, "error", f"{type(e).__name__}: {e}"[:200], (self._clock() - started) * 1000.0, self._wall()
                )
            finally:
                self.stats.running -= 1
                self._busy.discard(job.key)
        self.stats.runs += 1
        self.stats.per_key_runs[job.key] = self.stats.per_key_runs.get(job.key, 0) + 1
        try:
            self._sink(job.key, result)
        except Exception:  # noqa: BLE001
            self.stats.sink_errors += 1
            log.warning("scheduler: sink failed for %r", job.key, exc_info=log.isEnabledFor(logging.DEBUG))


class BackgroundLoop:
    """An asyncio loop in a daemon thread, for callers that live on another loop or none
    (the TUI, `check`). Submit coroutines with `call`; `close` stops it within a bound."""

    def __init__(self, name: str = "probes") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def call(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self._loop.call_soon_threadsafe(fn, *args)

    def close(self, timeout: float = 3.0) -> bool:
        """Cancel what still runs, stop the loop, join the thread. False if it hung."""
        if not self._thread.is_alive():
            return True

        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=timeout / 2)

        try:
            self.call(_cancel_all()).result(timeout)
        except Exception:  # noqa: BLE001
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        self._loop.close()
        return True
