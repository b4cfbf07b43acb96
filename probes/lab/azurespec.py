"""The scenario's ``azure:`` section: what the lab ARM endpoint says about outbound SNAT.

Plain data, validated, no sockets. :mod:`probes.lab.arm` serves it as the managed
cluster, the ``kubernetes`` load balancer and Azure Monitor metrics; the probes only see
those ARM answers. Format (every key optional; docs/scenarios.md)::

    azure:
      outboundType: loadBalancer        # | managedNATGateway | userAssignedNATGateway | userDefinedRouting
      allocatedOutboundPorts: 0         # 0 = the default tier table by backend pool size
      outboundIPs: 1                    # managed outbound public IPs
      idleTimeout: 30                   # minutes (4..120)
      maxSurge: 10%                     # every pool's upgradeSettings.maxSurge
      usedPorts: 60                     # SNAT ports a node uses (the lab adds a slow wave)
      seed: 1                           # varies each node's level and wave
      nodes:                            # per-node traffic, by 'pool/N', index or node name
        nodepool1/1:
          usedPorts: 200                # level before the ramp
          rampTo: 1400                  # demand the ramp reaches (used is capped at the allocation)
          rampStart: 25m                # the ramp began this long before the lab started
          rampDuration: 15m             # … and reached rampTo after this long
          failedPerMinute: 40           # failed SNAT connections per minute while demand >= allocation
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from .schemabase import UNSET, Doc, M, ScenarioError, UnsetType, parse_duration, show

OUTBOUND_TYPES = ("loadBalancer", "managedNATGateway", "userAssignedNATGateway", "userDefinedRouting")


@dataclass(frozen=True, slots=True)
class NodeTraffic:
    ref: int | str
    used_ports: int | None = None
    ramp_to: int | None = None
    ramp_start: float = 1500.0  # seconds before lab start
    ramp_duration: float = 900.0
    failed_per_minute: int = 0


@dataclass(frozen=True, slots=True)
class AzureLabSpec:
    outbound_type: str = "loadBalancer"
    allocated_outbound_ports: int = 0
    outbound_ips: int = 1
    idle_timeout: int = 30
    max_surge: str = "10%"
    used_ports: int = 60
    seed: int = 1
    nodes: tuple[NodeTraffic, ...] = field(default_factory=tuple)


DEFAULT = AzureLabSpec()


class NodeTrafficDoc(Doc, rename="camel", kw_only=True):
    used_ports: Annotated[int, M("a non-negative integer", ge=0, description="level before the ramp")] | UnsetType = (
        UNSET
    )
    ramp_to: Annotated[int, M("a non-negative integer", ge=0, description="demand the ramp reaches")] | UnsetType = (
        UNSET
    )
    ramp_start: Annotated[
        str | int | float,
        M("a duration like 30s, 5m, 2h or 3d", description="the ramp began this long before the lab started"),
    ] = "25m"
    ramp_duration: Annotated[str | int | float, M("a duration like 30s, 5m, 2h or 3d")] = "15m"
    failed_per_minute: Annotated[int, M("a non-negative integer", ge=0)] = 0


class AzureDoc(Doc, rename="camel", kw_only=True):
    """What the lab ARM endpoint serves: outbound type, SNAT ports, metrics."""

    outbound_type: Annotated[
        str, M(f"one of {', '.join(OUTBOUND_TYPES)}", extra_json_schema={"enum": list(OUTBOUND_TYPES)})
    ] = "loadBalancer"
    allocated_outbound_ports: Annotated[
        int,
        M(
            "a non-negative integer <= 64000",
            ge=0,
            le=64000,
            description="0 = the default tier table; else a multiple of 8",
        ),
    ] = 0
    outbound_ips: Annotated[int, M("a positive integer <= 16", ge=1, le=16)] = msgspec.field(
        default=1, name="outboundIPs"
    )
    idle_timeout: Annotated[int, M("an integer >= 4 <= 120", ge=4, le=120, description="minutes")] = 30
    max_surge: Annotated[
        str | int, M("a string", description='every pool\'s upgradeSettings.maxSurge ("1", "33%")')
    ] = "10%"
    used_ports: Annotated[int, M("a non-negative integer", ge=0)] = 60
    seed: Annotated[int, M("a non-negative integer", ge=0)] = 1
    nodes: Annotated[
        dict[str | int, NodeTrafficDoc],
        M("a mapping of node reference -> traffic", error="expected a mapping of node reference -> traffic"),
    ] = {}


def _duration(v: Any, file: str, path: str) -> float:
    try:
        return parse_duration(v)
    except ValueError:
        raise ScenarioError(
            f"{file}: {path}: expected a duration like 30s, 5m, 2h or 3d (at most 3650d), got {show(v)}"
        ) from None


def build_azure_section(doc: AzureDoc, file: str) -> AzureLabSpec:
    """The ``azure:`` section of ``file`` (decoded as :class:`AzureDoc`); errors name the key."""
    if doc.allocated_outbound_ports % 8:
        raise ScenarioError(
            f"{file}: azure.allocatedOutboundPorts: must be a multiple of 8, got {doc.allocated_outbound_ports}"
        )
    surge = str(doc.max_surge)
    if not re.fullmatch(r"\d{1,4}%?", surge):
        raise ScenarioError(f"{file}: azure.maxSurge: invalid value {surge!r} (expected \\d{{1,4}}%?)")
    outbound = next((c for c in OUTBOUND_TYPES if c.lower() == doc.outbound_type.lower()), None)
    if outbound is None:
        raise ScenarioError(
            f"{file}: azure.outboundType: expected one of {', '.join(OUTBOUND_TYPES)}, got {show(doc.outbound_type)}"
        )
    nodes = []
    for ref, n in doc.nodes.items():
        path = f"azure.nodes.{ref}"
        nodes.append(
            NodeTraffic(
                ref=ref,
                used_ports=None if n.used_ports is UNSET else n.used_ports,
                ramp_to=None if n.ramp_to is UNSET else n.ramp_to,
                ramp_start=_duration(n.ramp_start, file, f"{path}.rampStart"),
                ramp_duration=max(_duration(n.ramp_duration, file, f"{path}.rampDuration"), 1.0),
                failed_per_minute=n.failed_per_minute,
            )
        )
    return AzureLabSpec(
        outbound_type=outbound,
        allocated_outbound_ports=doc.allocated_outbound_ports,
        outbound_ips=doc.outbound_ips,
        idle_timeout=doc.idle_timeout,
        max_surge=surge,
        used_ports=doc.used_ports,
        seed=doc.seed,
        nodes=tuple(nodes),
    )
