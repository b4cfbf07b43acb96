"""The services sleep until a source moves (probes.engine.nudge), not on a 0.1 s poll: a
store change re-plans at once, a quiet store is looked at once per `poll`, and a burst of
writes makes a handful of looks, not one per write."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from probes.azure.service import AzureState
from probes.engine.following import FollowingService, LoopWake
from probes.engine.nudge import Nudges, listen_all
from probes.engine.store import NODES, Store
from probes.lab.scenario import load_scenario
from tests.snat.snat_helpers import lab_store, service, start_lab
from tests.support.wait import wait_for


class _Watched:
    """A store whose `version` reads are counted (each read is one look of the loop)."""

    def __init__(self, store: Store) -> None:
        self.inner = store
        self.nudges = store.nudges
        self.looks = 0

    @property
    def version(self) -> int:
        self.looks += 1
        return self.inner.version


class _Recording(FollowingService):
    name = "test"

    def __init__(self, store: _Watched, poll: float) -> None:
        super().__init__(store, None, poll=poll)
        self.watched = store
        self.planned: list[tuple[float, int]] = []

    def _concurrency_now(self) -> int:
        return 1

    def _replan(self) -> None:
        self.planned.append((time.monotonic(), self.watched.inner.version))

    def _with_error(self, plan: Any, error: str) -> Any:
        return plan


def test_fire_calls_each_listener_until_it_unlistens_and_a_failing_one_does_not_stop_the_rest():
    nudges, calls = Nudges(), []

    def broken() -> None:
        raise RuntimeError("a follower's trouble")

    nudges.listen(broken)
    stop = nudges.listen(lambda: calls.append("a"))
    nudges.listen(lambda: calls.append("b"))
    nudges.fire()
    stop()
    nudges.fire()
    assert calls == ["a", "b", "b"]
    # only sources with nudges are listened to; the others are left to the poll
    assert len(listen_all((object(), Store(), None), lambda: None)) == 1


def test_a_loop_wake_hands_off_once_while_armed():
    async def run() -> tuple[bool, bool, bool]:
        wake = LoopWake(asyncio.get_running_loop())
        wake()  # not armed yet: ignored (the versions are read after arm())
        early = await wake.wait(0.05)
        wake.arm()

        def nudge_often() -> None:
            for _ in range(1000):
                wake()

        burst = threading.Thread(target=nudge_often)
        burst.start()
        woke = await wake.wait(2.0)
        burst.join()
        wake.arm()
        again = await wake.wait(0.05)  # the burst is over: nothing since the arm
        return early, woke, again

    assert asyncio.run(run()) == (False, True, False)


def test_a_store_change_replans_at_once_and_a_quiet_store_is_not_looked_at():
    watched = _Watched(Store())
    svc = _Recording(watched, poll=1.0)
    svc.poll = 60.0  # past the clamp: only a nudge can make it look again within the test
    svc.start()
    try:
        assert wait_for(lambda: svc.planned, 2.0)
        time.sleep(1.0)
        assert watched.looks == 1  # a 0.1 s poll would have made ten more
        watched.inner.upsert(NODES, "aks-nodepool1-1-vmss000000", {"name": "n"})
        assert wait_for(lambda: svc.planned[-1][1] == watched.inner.version, 5.0)
        # a burst of writes (a relist) looks a few times, not once per write
        before = watched.looks
        for i in range(2000):
            watched.inner.upsert(NODES, f"n{i}", {"name": i})
        assert wait_for(lambda: svc.planned[-1][1] == watched.inner.version, 2.0)
        assert watched.looks - before < 40
    finally:
        svc.stop()


def test_the_snat_source_starts_when_the_nodes_arrive_not_at_its_next_poll():
    arm = start_lab()
    try:
        full = lab_store(load_scenario("healthy"))
        store = Store(clock=lambda: 100.0)
        svc = service(arm, store)
        svc.poll = 60.0  # past the clamp: only a nudge can make it look again within the test
        svc.start()
        try:
            # its first look found no nodes (a report published), then it sleeps
            assert wait_for(lambda: svc.report().version > 0, 10.0)
            assert svc.report().state == AzureState.WAITING
            time.sleep(0.3)
            assert len(arm.requests) == 0
            store.replace(NODES, {n.name: n for n in full.snapshot().topology.nodes})
            assert wait_for(lambda: len(arm.requests) > 0, 10.0)
        finally:
            svc.stop()
    finally:
        arm.stop()
