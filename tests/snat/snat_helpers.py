"""Shared helpers for the SNAT tests: a store holding a lab scenario's nodes (as the
Kubernetes source would parse them), a lab ARM endpoint, and a service wired to it."""

from __future__ import annotations

from typing import Any

from probes.azure.service import AzureSettings, AzureSnatService
from probes.engine.store import NODES, Store
from probes.kube.topology import parse_node
from probes.lab.arm import LabArmServer, LabCredential
from probes.lab.cluster import ClusterState
from probes.lab.scenario import Scenario, load_scenario

T0 = 1795172400.0  # a fixed wall clock (minute-aligned)


def lab_store(scenario: Scenario) -> Store:
    state = ClusterState(scenario, clock=lambda: T0)
    store = Store(clock=lambda: 100.0)
    nodes = {}
    for key in state.store.sorted_keys("nodes"):
        info = parse_node(state.store.get("nodes", key).obj)
        nodes[info.name] = info
    store.replace(NODES, nodes)
    return store


def start_lab(name: str = "healthy", nodes: int | None = None, clock: Any = lambda: T0) -> LabArmServer:
    sc = load_scenario(name, nodes=nodes)
    return LabArmServer(sc, clock=clock).start()


def service(
    arm: LabArmServer, store: Store, clock: Any = lambda: T0, credential: Any = None, **kw: Any
) -> AzureSnatService:
    settings = AzureSettings(arm_endpoint=arm.url, credential=credential or LabCredential, **kw)
    return AzureSnatService(store, settings, clock=clock, poll=0.02)
