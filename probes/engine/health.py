"""What a probe row's state means, judged once for every view and rule.

The outcome enums (`probes.dns.probe.DnsOutcome`, `probes.egress.result.EgressOutcome`)
say what one result means (`.health`) and whether the far end is silent (`.down`);
`probes.engine.history.judge` turns a row's window of results into one `Health`. The
panes colour rows from it, the rules ask the same questions through
`probes.diagnose.model`'s helpers. Imports nothing: every layer may use it.
"""

from __future__ import annotations

from enum import Enum


class Health(Enum):
    GOOD = "good"
    DEGRADED = "degraded"  # answers, but not all of them, or not the ones wanted
    FAILING = "failing"
    UNREACHABLE = "unreachable"  # not reachable from this vantage (shown grey with the reason, never as failure)
    PENDING = "pending"  # nothing measured yet

    @property
    def rank(self) -> int:
        """Worst first: a vantage takes the lowest rank of its rows."""
        return _RANK[self]

    @property
    def problem(self) -> bool:
        return self in (Health.FAILING, Health.DEGRADED)


_RANK = {Health.FAILING: 0, Health.DEGRADED: 1, Health.PENDING: 2, Health.UNREACHABLE: 3, Health.GOOD: 4}


def worst(healths: list[Health] | tuple[Health, ...], default: Health = Health.GOOD) -> Health:
    return min(healths, key=lambda h: _RANK[h], default=default)


__all__ = ["Health", "worst"]
