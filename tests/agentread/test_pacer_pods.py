"""The reader's pacer and pod parsing, without a cluster."""

from __future__ import annotations

import math

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.agent.reader import AgentPod, Pacer, parse_pods


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_pacer_spaces_requests_by_one_over_rate() -> None:
    clock = FakeClock()
    p = Pacer(5.0, clock, margin=0.0)
    waits = [p.reserve() for _ in range(6)]
    assert waits[0] == 0.0
    assert [round(w, 6) for w in waits[1:]] == [0.2, 0.4, 0.6, 0.8, 1.0]
    q = Pacer(5.0, clock)  # the default margin: 5 requests take 0.88 s, 6 take 1.1 s
    assert round(sum(q.reserve() for _ in range(6)), 6) == round(0.22 * (1 + 2 + 3 + 4 + 5), 6)


def test_pacer_does_not_bank_idle_time_as_a_burst() -> None:
    clock = FakeClock()
    p = Pacer(5.0, clock, margin=0.0)
    p.reserve()
    clock.t += 60.0  # a minute idle
    assert p.reserve() == 0.0
    assert round(p.reserve(), 6) == 0.2  # the second one waits: no burst of 300


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(0.5, 50), gaps=st.lists(st.floats(0, 2), min_size=5, max_size=80))
def test_no_window_of_one_second_holds_more_than_the_budget(rate: float, gaps: list[float]) -> None:
    clock = FakeClock()
    p = Pacer(rate, clock)
    sent: list[float] = []
    for g in gaps:
        clock.t += g
        sent.append(clock.t + p.reserve())
    sent.sort()
    j = 0
    for i, t in enumerate(sent):  # half-open windows [t, t+1)
        while sent[j] < t - 1.0 + 1e-9:
            j += 1
        assert i - j + 1 <= math.ceil(rate - 1e-9)  # 5/s → at most 5 in any second


def _pod(
    name: str,
    node: str | None,
    ip: str | None = "10.244.1.7",
    phase: str = "Running",
    ready: str = "True",
    deleting: bool = False,
) -> dict:
    meta: dict = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-23T10:00:00Z"
    status: dict = {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]}
    if ip:
        status["podIP"] = ip
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": status}


def test_parse_pods_keeps_scheduled_pods_and_their_readiness() -> None:
    body = orjson.dumps(
        {
            "kind": "PodList",
            "items": [
                _pod("a", "n1"),
                _pod("b", "n2", ready="False"),
                _pod("c", None),
                _pod("d", "n4", deleting=True),
                _pod("e", "n5", ip=None, phase="Pending", ready="False"),
                "junk",
                {"metadata": 3},
            ],
        }
    )
    assert parse_pods(body) == [
        AgentPod("a", "n1", "10.244.1.7", True),
        AgentPod("b", "n2", "10.244.1.7", False),
        AgentPod("e", "n5", "", False),
    ]


def test_parse_pods_refuses_what_is_not_a_pod_list() -> None:
    import pytest

    with pytest.raises(ValueError):
        parse_pods(b'{"kind":"Status"}')
    with pytest.raises(ValueError):
        parse_pods(b"<html>")
