"""Rounds on request: a read that asks the agent to probe every row now.

`check` wants every row probed `cycles` times before its verdict, and the read that hands
an agent the CoreDNS pods (probes.agent.hint) is the first moment the agent can probe
them. Waiting for the agent's cadence would cost its interval per cycle (10 s in a
cluster, the pods' stretched one more), so that read asks::

    GET /v1/results?since=N&coredns=…&rounds=K

and the agent runs every job K times at once, one round after the other, and answers
when they are in, or after :data:`ROUND_WAIT` s with what is (the rest lands in the feed
for the next read). Granted at most once per the agent's slowest job interval
(probes.agent.core.Agent.round_gap): read-only probing at most ``1 + MAX_ROUNDS`` times
the agent's own rate, whoever asks. An agent that does not know the parameter answers at
once, and the reader's next reads collect the cadence's results.

Pure and light: the reader imports it without the probes.
"""

from __future__ import annotations

PARAM = "rounds"
MAX_ROUNDS = 3  # rounds one read may ask for (`check` asks for its cycles)
ROUND_WAIT = 2.0  # s the agent holds such a read for its rounds


def parse_rounds(values: list[str]) -> int:
    """The rounds asked for, from the parameter's values (0: not asked); ValueError in one line."""
    if not values:
        return 0
    if len(values) > 1:
        raise ValueError(f"{PARAM} given more than once")
    v = values[0]
    if not v.isascii() or not v.isdigit() or int(v) > MAX_ROUNDS:
        raise ValueError(f"{PARAM} must be a whole number from 0 to {MAX_ROUNDS}")
    return int(v)
