"""The CoreDNS pods the app hands each agent with its read, so the agent probes every
replica as well as the kube-dns ClusterIP.

The agent has no Kubernetes API access (probes/agent/manifest.py: no Role, no token), so
it cannot list the CoreDNS pods itself, and kube-dns is not a headless service: no DNS
query enumerates its endpoints. The app knows them (it watches kube-system's DNS pods),
so its reader adds them to the read it makes anyway::

    GET /v1/results?since=N&coredns=<pod>@<ip>@<node>,<pod>@<ip>@<node>

The agent keeps the last list it was given (``coredns=`` empty: none; no ``coredns``
parameter: unchanged, what an older reader sends) and probes each pod from its next
cycle. Pod names are DNS-1123 subdomains and node names too, so neither holds ``@`` or
``,``; an IPv6 address holds neither. At most :data:`MAX_PODS` pods per agent: with more
replicas (coredns-autoscaler gives large clusters hundreds), each agent gets its own
:data:`MAX_PODS` of them, chosen by rendezvous hashing on (node, pod), so every replica
is still probed from about ``nodes × MAX_PODS / replicas`` nodes and a replica's set of
prober nodes does not move when another replica comes or goes.

Pure and light: the reader imports it without the probes.
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PARAM = "coredns"
MAX_PODS = 16  # pods one agent probes; 16 × ~60 characters keeps the request head ~1 KB
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class CorednsPod:
    name: str
    ip: str
    node: str = ""


def format_hint(pods: Iterable[CorednsPod]) -> str:
    """The ``coredns`` parameter's value (not yet URL-encoded; it needs no escaping)."""
    return ",".join(f"{p.name}@{p.ip}@{p.node}" for p in pods)


def parse_hint(text: str) -> tuple[CorednsPod, ...]:
    """The pods in a ``coredns`` value, sorted by name; ValueError in one line naming the
    bad entry. Addresses must be unicast and routable in a pod network: loopback,
    link-local, multicast and unspecified addresses are refused (a read must not turn the
    agent's DNS queries at the node itself or at 169.254.x)."""
    text = text.strip()
    if not text:
        return ()
    entries = text.split(",")
    if len(entries) > MAX_PODS:
        raise ValueError(f"coredns: {len(entries)} pods given, at most {MAX_PODS}")
    out: dict[str, CorednsPod] = {}
    for i, entry in enumerate(entries):
        parts = entry.split("@")
        if len(parts) != 3:
            raise ValueError(f"coredns[{i}]: expected pod@ip@node, got {entry[:80]!r}")
        name, ip, node = parts
        if not _NAME.match(name):
            raise ValueError(f"coredns[{i}]: {name[:80]!r} is not a pod name")
        if node and not _NAME.match(node):
            raise ValueError(f"coredns[{i}]: {node[:80]!r} is not a node name")
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"coredns[{i}]: {ip[:60]!r} is not an IP address") from None
        if addr.is_loopback or addr.is_link_local or addr.is_multicast or addr.is_unspecified:
            raise ValueError(f"coredns[{i}]: {addr} is not a pod address")
        out[name] = CorednsPod(name, str(addr), node)
    return tuple(out[k] for k in sorted(out))


def choose(pods: Sequence[CorednsPod], node: str, limit: int = MAX_PODS) -> list[CorednsPod]:
    """The pods `node`'s agent probes: all of them up to `limit`, else the `limit` with the
    highest rendezvous weight for (node, pod); in name order."""
    usable = [p for p in pods if p.ip]
    if len(usable) > limit:
        usable = sorted(usable, key=lambda p: zlib.crc32(f"{node}/{p.name}".encode()), reverse=True)[:limit]
    return sorted(usable, key=lambda p: p.name)
