"""The tree's problem marks per node, from the findings: the same severity the Findings
tab gives, one short word per source (route, NodeLocal, egress, SNAT, NotReady, agent)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from probes.diagnose import Finding, Severity
from tui.format import BAD, WARN

WORDS = {
    "route-missing": "route",
    "route-stale": "route",
    "nodelocal-down": "NodeLocal",
    "nodelocal-pod-not-ready": "NodeLocal",
    "egress-one-node": "egress",
    "snat-exhausted": "SNAT",
    "snat-pressure": "SNAT",
    "node-not-ready": "NotReady",
}
SEVERITY_STYLE = {Severity.CRITICAL: BAD, Severity.WARNING: WARN}
Mark = tuple[str, str]  # (word with its ✖ or ▲, style)


def node_marks(findings: Iterable[Finding] | None) -> dict[str, tuple[Mark, ...]]:
    """node name -> its marks, critical first; only warnings and worse."""
    worst: dict[str, dict[str, Severity]] = {}
    for f in findings or ():
        kind, _, node = f.subject.partition("/")
        if kind != "node" or f.severity < Severity.WARNING or not node:
            continue
        word = WORDS.get(f.rule, f.rule.split("-")[0])
        words = worst.setdefault(node, {})
        if words.get(word, Severity.INFO) < f.severity:
            words[word] = f.severity
    return {
        node: tuple(
            (word + ("✖" if sev is Severity.CRITICAL else "▲"), SEVERITY_STYLE[sev])
            for word, sev in sorted(words.items(), key=lambda kv: -kv[1])
        )
        for node, words in worst.items()
    }


def agent_mark(agents: Any, node: str, now: float | None = None) -> Mark | None:
    """The node's agent, when it was found and has gone stale or cannot be read (at `now`,
    monotonic: the app's clock)."""
    st = agents.statuses().get(node) if agents is not None else None
    if st is None:
        return None
    a = st.age(now)
    if st.error and (a is None or a > agents.stale_after()):
        return ("agent✖", BAD)
    if a is not None and a > agents.stale_after():
        return ("agent▲", WARN)
    return None


def with_agent(
    marks: Mapping[str, tuple[Mark, ...]], agents: Any, node: str, now: float | None = None
) -> tuple[Mark, ...]:
    """The node's marks from the findings, plus its agent's (at `now`)."""
    mine = marks.get(node, ())
    agent = agent_mark(agents, node, now)
    return mine + ((agent,) if agent else ())
