"""What the DNS and egress services share: a scheduler on a background loop that follows
the store's topology (and the demo's vantage map, and the agents) and re-plans its jobs.

A subclass gives its loop a name, its concurrency, ``_replan()`` (build a plan, call
:meth:`FollowingService._commit` with it and its jobs) and ``_with_error(plan, text)``
(the same plan carrying an error line for the views); ``_halt()`` closes whatever else it
holds on the loop at stop.

The loop sleeps until a source nudges it (:mod:`probes.engine.nudge`) and looks every
`poll` seconds besides, for a source that cannot nudge.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from typing import Any

from probes.engine.history import History
from probes.engine.nudge import LOOK_GAP, listen_all
from probes.engine.scheduler import BackgroundLoop, Job, Scheduler
from probes.kube.model import node_vantage

log = logging.getLogger(__name__)


class LoopWake:
    """A nudge into an asyncio loop from any thread, at most one hand-off in flight.

    `arm()` before reading the sources' versions; a nudge after it ends the next `wait`.
    Nudges while disarmed cost a flag check: a burst of store writes (a relist) makes one
    loop wake-up, not thousands."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()
        self._armed = False

    def __call__(self) -> None:
        if self._armed:
            self._armed = False
            try:
                self._loop.call_soon_threadsafe(self._event.set)
            except RuntimeError:  # the loop closed under us: nobody waits any more
                pass

    def arm(self) -> None:
        self._event.clear()
        self._armed = True

    async def wait(self, timeout: float) -> bool:
        """True when nudged, False when `timeout` passed first."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True


class FollowingService:
    """Source for the app: start() returns at once; stop(timeout) joins the loop thread."""

    name = "probes"
    what = "probes"  # for the error line: "<what> could not follow the cluster: …"

    def __init__(
        self,
        store: object,
        empty_plan: Any,
        *,
        vantage_map: Any = None,
        history: History | None = None,
        poll: float = 0.5,  # seconds between looks when no source nudges (probes.engine.nudge)
        agents: Any = None,
    ) -> None:
        self.store = store  # a probes.engine.store.Store (version, snapshot())
        self.vantage_map = vantage_map
        self.agents = agents  # probes.agent.reader.AgentReader (version, statuses()) or None
        self.history = history or History()
        self.poll = min(max(poll, 0.05), 1.0)
        self._plan = empty_plan
        self._lock = threading.Lock()
        self._bg: BackgroundLoop | None = None
        self._scheduler: Scheduler | None = None
        self._follow: Any = None
        self._error = ""

    # --- reads (views) -------------------------------------------------------------------
    def plan(self) -> Any:
        with self._lock:
            return self._plan

    @property
    def error(self) -> str:
        return self._error

    # --- lifecycle -----------------------------------------------------------------------
    def _concurrency_now(self) -> int:
        raise NotImplementedError

    def start(self) -> None:
        if self._bg is not None:
            return
        concurrency = self._concurrency_now()
        self._bg = BackgroundLoop(name=f"{self.name}-probes")
        self._scheduler = Scheduler(self.history.add, concurrency=concurrency)
        self._follow = self._bg.call(self._run())

    def stop(self, timeout: float = 3.0) -> None:
        bg, self._bg = self._bg, None
        if bg is None:
            return
        sched = self._scheduler
        if self._follow is not None:
            self._follow.cancel()

        async def halt() -> None:
            if sched is not None:
                await sched.stop(timeout / 2)
            await self._halt()

        try:
            bg.call(halt()).result(timeout / 2 + 0.5)
        except Exception:  # noqa: BLE001 - stopping must never raise
            pass
        bg.close(timeout / 2)

    def run_now(self, keys: Iterable[Any]) -> None:
        """Run these jobs once now, beside their cadence, unless a run of theirs is under
        way (`check`: a row's next cycle as soon as its last result is in); returns at
        once, the results land in the history."""
        bg, sched = self._bg, self._scheduler
        keys = list(keys)
        if bg is not None and sched is not None and keys:
            bg.call(sched.run_round(keys, idle=True))

    async def _halt(self) -> None:
        """Close what the subclass holds on the loop (after the scheduler stopped)."""

    # --- the loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._scheduler is not None
        await self._scheduler.start()
        loop = asyncio.get_running_loop()
        wake = LoopWake(loop)
        unlisten = listen_all((self.store, self.vantage_map, self.agents), wake)
        gap = min(LOOK_GAP, self.poll)
        seen: tuple[int, int, int] | None = None
        try:
            while True:
                wake.arm()  # before the versions are read: a move after this ends the wait below
                looked = loop.time()
                try:
                    key = (
                        getattr(self.store, "version", 0),
                        getattr(self.vantage_map, "version", 0),
                        getattr(self.agents, "version", 0),
                    )
                    if key != seen:
                        seen = key
                        self._replan()
                    self._error = ""
                except Exception as e:  # noqa: BLE001 - shown in the pane, the loop goes on
                    self._error = f"{self.what} could not follow the cluster: {type(e).__name__}: {e}"[:300]
                    log.debug("%s service: replan failed", self.name, exc_info=True)  # the pane shows it
                    with self._lock:
                        self._plan = self._with_error(self._plan, self._error)
                if await wake.wait(self.poll):
                    # a burst of writes (a relist, a rollout) looks at most once per gap
                    rest = gap - (loop.time() - looked)
                    if rest > 0:
                        await asyncio.sleep(rest)
        finally:
            for u in unlisten:
                u()

    def _replan(self) -> None:
        raise NotImplementedError

    def _with_error(self, plan: Any, error: str) -> Any:
        raise NotImplementedError

    def _commit(self, plan: Any, jobs: Iterable[Job]) -> None:
        """Run `jobs`, forget history no plan row shows (an agent's rows arrive from the
        agent reader, not from a job), and publish `plan`."""
        jobs = list(jobs)
        assert self._scheduler is not None
        self._scheduler.set_jobs(jobs)
        remote = {vp.vantage.name for vp in plan.vantages if vp.vantage.agent}
        # and every agent the reader knows now: one read's results are replayed before its
        # status says what the agent probes, and a plan made in between must not drop them
        # (check reads each agent once: they would not come again)
        statuses = getattr(self.agents, "statuses", None)
        if statuses is not None:
            remote |= {node_vantage(node) for node in statuses()}
        self.history.retain((j.key for j in jobs), also=lambda k: getattr(k, "vantage", None) in remote)
        with self._lock:
            self._plan = plan
