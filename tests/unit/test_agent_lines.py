"""How the views speak of a node's agent: read how long ago, stale, failing, or none."""

from __future__ import annotations

from probes.agent.reader import AgentStatus
from tui.format import agent_brief, agent_note


class Reader:
    """The reader's read side (statuses, discovered, error, stale_after), as views use it."""

    def __init__(
        self, statuses: dict[str, AgentStatus], discovered: bool = True, error: str = "", stale: float = 30.0
    ) -> None:
        self._st, self.discovered, self.error, self._stale = statuses, discovered, error, stale

    def statuses(self) -> dict[str, AgentStatus]:
        return dict(self._st)

    def stale_after(self) -> float:
        return self._stale


def test_fresh_stale_failing_and_missing_agents() -> None:
    now = 1000.0
    r = Reader(
        {
            "fresh": AgentStatus("fresh", "aksnet-top-agent-a", read_at=now - 12),
            "stale": AgentStatus("stale", "aksnet-top-agent-b", read_at=now - 300),
            "down": AgentStatus("down", "aksnet-top-agent-c", error="agent not reachable: 503 [bold]x[/]"),
            "flaky": AgentStatus("flaky", "aksnet-top-agent-d", read_at=now - 5, error="no answer in time"),
        }
    )
    assert agent_note(r, "fresh", now).plain == "agent read 12s ago"
    assert agent_note(r, "stale", now).plain == "agent read 5m ago (stale)"
    # external text is shown as text, never as markup
    assert agent_note(r, "down", now).plain == "agent agent not reachable: 503 [bold]x[/]"
    assert "last read failed: no answer in time" in agent_note(r, "flaky", now).plain
    assert agent_note(r, "nowhere", now).plain.startswith("agent none on this node")
    assert agent_brief(r, "fresh", now)[0] == "agent 12s ago"
    assert agent_brief(r, "stale", now)[0] == "agent stale 5m"
    assert agent_brief(r, "down", now)[0] == "agent unreachable"
    assert agent_brief(r, "flaky", now)[0] == "agent 5s ago"  # one failed read, data still fresh


def test_before_the_first_listing_and_when_listing_fails() -> None:
    assert agent_note(Reader({}, discovered=False), "n1").plain == "agent looking for agents…"
    forbidden = Reader({}, error="cannot list the agent pods in aksnet-top: 403 forbidden")
    assert agent_note(forbidden, "n1").plain == "agent cannot list the agent pods in aksnet-top: 403 forbidden"
    assert "agents.enabled = false" in agent_note(None, "n1").plain
