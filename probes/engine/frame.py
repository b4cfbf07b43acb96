"""One frame: everything the views show at one moment, immutable, built off the UI thread.

The publisher (`probes.engine.publisher`) builds a `Frame` at a steady cadence; the views
render it and never talk to a source. A part that did not change since the previous
frame is the very same object in the next one (`frame.kube is previous.kube`), so a view
can skip it with an identity check, and a probe view lists the keys whose stats moved
(`ProbeView.changed`) so a table touches only those rows.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from probes.engine.history import Stats
from probes.engine.store import Snapshot

EMPTY: Mapping[Any, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ProbeView:
    """A probe service (DNS or egress) in one frame: its plan and its history's stats."""

    plan: Any  # DnsPlan / EgressPlan: which rows exist, in which order
    stats: Mapping[Hashable, Stats]  # every key's stats; read-only, never written again
    changed: frozenset[Hashable]  # keys whose stats moved since `since`
    since: int  # the history version `changed` is relative to (the previous frame's `version`)
    version: int  # the history version read
    error: str = ""  # the service's error line (plan.error or the service's own)
    details: Mapping[Hashable, tuple[Any, ...]] = field(
        default_factory=lambda: EMPTY
    )  # last results of the rows a detail screen follows


@dataclass(frozen=True, slots=True)
class AgentsView:
    """The per-node agents as the views show them (the shape of AgentReader's reads)."""

    by_node: Mapping[str, Any]  # node -> probes.agent.reader.AgentStatus
    discovered: bool
    error: str
    stale: float  # seconds after which an agent's read is stale
    version: int  # bumps when agents come or go
    seq: int = 0  # this view's number; a new one whenever any agent's status moved
    since: int = -1  # the view `changed` is relative to (-1: none, everything changed)
    changed: frozenset[str] = frozenset()  # nodes whose status moved since `since`

    def statuses(self) -> Mapping[str, Any]:
        return self.by_node

    def stale_after(self) -> float:
        return self.stale


@dataclass(frozen=True, slots=True)
class RouteView:
    """The route table as ARM reports it, compared with the topology (kubenet)."""

    data: Any  # probes.azure.routes.RouteData
    by_node: Mapping[str, Any] = field(default_factory=lambda: EMPTY)  # node -> NodeRoute; empty when not comparable


@dataclass(frozen=True, slots=True)
class PathView:
    """The nodes' Azure network path as ARM reports it (NSGs, route table, VNet DNS servers,
    peerings, proxy): immutable, the same object while the data did not change."""

    data: Any  # probes.azure.path.PathData
    fetched_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    kube: Snapshot  # topology, statuses, synced collections, target
    dns: ProbeView | None = None
    egress: ProbeView | None = None
    snat: Any = None  # probes.azure.service.SnatReport
    routes: RouteView | None = None
    path: PathView | None = None
    agents: AgentsView | None = None
    ingress: Any = None  # probes.ingress.view.IngressView: hosts by class, LoadBalancer services
    https: ProbeView | None = None  # the HTTPS probe of the ingress hosts (TlsKey -> Stats)
    findings: tuple[Any, ...] | None = None  # probes.diagnose.Finding, most severe first; None: not judged yet
    findings_at: float = 0.0  # wall clock of the judgement
    error: str = ""  # the publisher's own failure, for the status line
    cost_ms: float = 0.0  # what building this frame cost the publisher

    @property
    def topology(self) -> Any:
        return self.kube.topology

    @property
    def version(self) -> int:
        return self.kube.version
