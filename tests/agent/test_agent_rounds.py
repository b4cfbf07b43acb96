"""Rounds on request (`&rounds=K`): the read that hands over the CoreDNS pods gets every
row, the pods' included, probed K times in its own answer instead of at the agent's
cadence; granted once per the agent's slowest interval; bad values refused."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from probes.agent import rounds as roundsmod
from probes.agent.hint import format_hint
from probes.agent.http import AgentServer
from probes.agent.wire import decode
from tests.agent.agent_helpers import DROP
from tests.agent.test_agent_coredns import KUBE_DNS, NAMES, NODE, PODS, agent_for
from tests.agent.test_agent_http import get, request

SLOW = 30.0  # s: the agent's own cadence; nothing in these tests may wait for it


def _rows(body: bytes) -> Counter[tuple[str, str]]:
    doc = decode(body, f"node/{NODE}")
    return Counter((r.resolver, r.qname) for r in doc.dns)


async def test_the_hinting_read_is_answered_with_every_row_probed_k_times(responder):
    ok = responder()
    agent = agent_for(
        {KUBE_DNS: ok.address, **{f"coredns/{p.name}": ok.address for p in PODS}}, dns_interval=SLOW, jitter=0.0
    )
    await agent.start()
    server = await AgentServer(agent, "127.0.0.1", 0).start()
    try:
        t0 = time.monotonic()
        status, _, body = await request(server.port, get(f"/v1/results?since=0&coredns={format_hint(PODS)}&rounds=2"))
        took = time.monotonic() - t0
        assert status == 200
        rows = _rows(body)
        want = {(r, n) for r in ("kube-dns", *(f"coredns/{p.name}" for p in PODS)) for n in NAMES}
        assert set(rows) == want
        # each row: its first tick (the cadence starts a new job at once) and/or the 2 rounds,
        # but at least the 2 asked for, within this one answer; never the 30 s cadence
        assert min(rows.values()) >= 2, rows
        assert took < roundsmod.ROUND_WAIT + 1.0 and agent.rounds_granted == 1
        # asked again within the gap: answered at once with what is held, no new rounds
        seq = agent.seq
        status, _, body = await request(server.port, get(f"/v1/results?since={seq}&rounds=2"))
        assert status == 200 and agent.rounds_granted == 1 and agent.round_gap() >= SLOW
    finally:
        await server.stop()
        assert await agent.stop(1.0)


async def test_rounds_that_cannot_finish_are_answered_after_the_wait_and_land_later(responder, monkeypatch):
    ok, drop = responder(), responder(DROP)
    monkeypatch.setattr("probes.agent.http.ROUND_WAIT", 0.2)
    agent = agent_for({KUBE_DNS: ok.address, f"coredns/{PODS[0].name}": drop.address}, dns_interval=SLOW)
    await agent.start()
    server = await AgentServer(agent, "127.0.0.1", 0).start()
    try:
        t0 = time.monotonic()
        status, _, body = await request(
            server.port, get(f"/v1/results?since=0&coredns={format_hint(PODS[:1])}&rounds=1")
        )
        assert status == 200 and time.monotonic() - t0 < 0.2 + 0.25  # the dropped pod (0.3 s timeout) not waited for
        assert not any(r.startswith("coredns/") for r, _ in _rows(body))
        # the round goes on: its timeout lands in the feed for the next read
        t_end = time.monotonic() + 3.0
        while not any(getattr(r, "resolver", "").startswith("coredns/") for _, r in agent.results_since(0)):
            assert time.monotonic() < t_end, "the round's timeout never landed"
            await asyncio.sleep(0.02)
    finally:
        await server.stop()
        assert await agent.stop(1.0)


async def test_bad_rounds_get_400_and_start_nothing(responder):
    ok = responder()
    agent = agent_for({KUBE_DNS: ok.address}, dns_interval=SLOW)
    await agent.start()
    server = await AgentServer(agent, "127.0.0.1", 0).start()
    try:
        for bad in ("x", "-1", str(roundsmod.MAX_ROUNDS + 1), "1&rounds=1", "²"):
            status, _, body = await request(server.port, get(f"/v1/results?since=0&rounds={bad}"))
            assert status == 400 and b"rounds" in body, bad
        assert agent.rounds_granted == 0
        assert agent.probe_now(0) is None  # nothing asked, nothing run
    finally:
        await server.stop()
        assert await agent.stop(1.0)


async def test_rows_that_have_their_results_run_nothing_more(responder):
    ok = responder()
    agent = agent_for({KUBE_DNS: ok.address}, dns_interval=0.1, jitter=0.0)
    await agent.start()
    server = await AgentServer(agent, "127.0.0.1", 0).start()
    try:
        t_end = time.monotonic() + 5.0
        while agent.short_of(2):  # the cadence gives every row its 2 results
            assert time.monotonic() < t_end, "the cadence never ran twice"
            await asyncio.sleep(0.02)
        status, _, _ = await request(server.port, get("/v1/results?since=0&rounds=2"))
        assert status == 200 and agent.rounds_granted == 0  # a long-running agent: no extra probe
    finally:
        await server.stop()
        assert await agent.stop(1.0)
