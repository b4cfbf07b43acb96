"""Shared by the agent tests: lab behaviours and bounded polling (never a bare sleep)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import pytest

from probes.lab.dnsserver import Zone
from probes.lab.dnsspec import ANSWER, DnsFaultMode
from probes.lab.tcptargets import DROP_HOST, OPEN_HOST, REFUSED_HOST

DROP = dataclasses.replace(ANSWER, mode=DnsFaultMode.DROP)
# what the lab's egress DNS answers: one name per behaviour of LoopbackTargets, and one
# name that points beyond loopback (a confined agent must never dial it)
EGRESS_ZONE = Zone(
    cluster={},
    external={
        "open.example": OPEN_HOST,
        "refused.example": REFUSED_HOST,
        "drop.example": DROP_HOST,
        "far.example": "192.0.2.7",
    },
    synthesize_external=False,
)


async def until(cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `cond` on the running loop until true; fail after `timeout` s."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.02)


def wait_sync(cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)
