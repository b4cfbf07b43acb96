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

from dataclasses import dataclass, field
from typing import Any

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


def parse_azure_section(r: Any) -> AzureLabSpec:
    """`r` is the scenario's _Reader over the section; errors are ScenarioError naming the key."""
    ports = r.int("allocatedOutboundPorts", 0, max=64_000)
    if ports % 8:
        raise r.error(f"must be a multiple of 8, got {ports}", "allocatedOutboundPorts")
    surge = r.str("maxSurge", "10%", pattern=r"\d{1,4}%?")
    nodes: list[NodeTraffic] = []
    raw_nodes = r.raw("nodes", {})
    if not isinstance(raw_nodes, dict):
        raise r.error("expected a mapping of node reference -> traffic", "nodes")
    for ref, body in raw_nodes.items():
        if not isinstance(ref, (int, str)) or isinstance(ref, bool):
            raise r.error(f"bad node reference {ref!r}", "nodes")
        n = type(r)(r.file, f"{r.sub('nodes')}.{ref}", body)
        nodes.append(NodeTraffic(
            ref=ref, used_ports=n.int("usedPorts", None), ramp_to=n.int("rampTo", None),
            ramp_start=n.duration("rampStart", 1500.0), ramp_duration=max(n.duration("rampDuration", 900.0), 1.0),
            failed_per_minute=n.int("failedPerMinute", 0)))
        n.done()
    spec = AzureLabSpec(
        outbound_type=r.enum("outboundType", OUTBOUND_TYPES, "loadBalancer"),
        allocated_outbound_ports=ports,
        outbound_ips=r.int("outboundIPs", 1, min=1, max=16),
        idle_timeout=r.int("idleTimeout", 30, min=4, max=120),
        max_surge=surge,
        used_ports=r.int("usedPorts", 60),
        seed=r.int("seed", 1),
        nodes=tuple(nodes),
    )
    r.done()
    return spec
