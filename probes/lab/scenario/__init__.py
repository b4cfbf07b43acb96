"""Scenario files: a simulated AKS cluster described as data (docs/scenarios.md).

A scenario is YAML with a few top-level sections (``cluster``, ``pools``, ``nodes``,
``coredns``, ``services``, ``timeline``, ``dns``, ``egress``, ``azure``, ``routes``).
:mod:`.schema` declares every key as a typed struct (msgspec); :mod:`.loader` finds and
reads the file, decodes it and builds the frozen records of :mod:`.model`; :mod:`.scaling`
rescales a document to ``--nodes N``. Unknown keys are errors everywhere and every error
reads like ``healthy.yaml: pools[1].count: expected a non-negative integer, got 'x'``:
a typo must never silently produce a healthy cluster.
"""

from .loader import SECTIONS, builtin_names, load_scenario, parse_scenario, read_document
from .model import (
    ALL_ACTIONS,
    NODE_ACTIONS,
    ClusterSpec,
    CoreDNSSpec,
    EventSpec,
    NodeOverride,
    NodeSpec,
    PoolSpec,
    PortSpec,
    Scenario,
    ScenarioError,
    ServiceSpec,
    TimedEvent,
    parse_duration,
    resolve_node_ref,
)

__all__ = [
    "ScenarioError",
    "Scenario",
    "ClusterSpec",
    "PoolSpec",
    "NodeOverride",
    "CoreDNSSpec",
    "ServiceSpec",
    "PortSpec",
    "EventSpec",
    "TimedEvent",
    "NodeSpec",
    "load_scenario",
    "parse_scenario",
    "read_document",
    "builtin_names",
    "SECTIONS",
    "parse_duration",
    "NODE_ACTIONS",
    "ALL_ACTIONS",
    "resolve_node_ref",
]
