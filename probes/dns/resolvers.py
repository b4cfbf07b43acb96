"""Which DNS servers to probe, derived from the cluster's topology.

A :class:`Resolver` names a server by the address the cluster gives it (169.254.20.10,
the kube-dns ClusterIP, a CoreDNS pod IP) and, optionally, a *target*: the address and
port actually dialled. The demo and tests map production addresses to loopback
responders that way, so what the UI shows stays the production address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from probes.kube.model import DEFAULT_NODELOCAL_IP, Topology

NODELOCAL_IP = DEFAULT_NODELOCAL_IP  # the default; a cluster's is its pods' -localip
LOCALDNS_IPS = ("169.254.10.10", "169.254.10.11")
AZURE_DNS_IP = "168.63.129.16"
CLUSTER_NAME = "kubernetes.default.svc.cluster.local"
# a second cluster name: CoreDNS answers it from the same cache of the API, so it is as
# cheap, and the slow-resolver and replica rules (probes/diagnose/dnsslow.py, replicas.py)
# get two cluster-name samples per resolver and cycle instead of one: their binomial
# tests (probes/diagnose/stats.py: at least 3 samples, 1e-3) can decide within 2 cycles
KUBE_DNS_NAME = "kube-dns.kube-system.svc.cluster.local"
EXTERNAL_NAME = "mcr.microsoft.com"
DEFAULT_NAMES = (CLUSTER_NAME, EXTERNAL_NAME)  # the settings' default when code builds them
# what the product probes unless told otherwise: the app's `dns.names` (probes.config)
# and the agent's `--name` (probes.agent.main)
PROBE_NAMES = (CLUSTER_NAME, KUBE_DNS_NAME, EXTERNAL_NAME)


class ResolverKind(str, Enum):
    NODELOCAL = "nodelocal"
    LOCALDNS = "localdns"
    KUBE_DNS = "kube-dns"
    COREDNS = "coredns"
    AZURE_DNS = "azure-dns"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class Resolver:
    key: str  # stable id: nodelocal, localdns-1, kube-dns, coredns/<pod>, azure-dns, custom/<addr>
    kind: ResolverKind
    address: str  # the production address, shown to the user
    port: int = 53
    target: tuple[str, int] | None = None  # what is actually dialled, when not address:port
    detail: str = ""  # e.g. the CoreDNS pod's node
    # why its vantage cannot reach it (probes.engine.reach), "" when it can: such a row
    # is shown grey with this reason and never probed from there
    unreachable: str = ""

    @property
    def reachable(self) -> bool:
        return not self.unreachable

    @property
    def dest(self) -> tuple[str, int]:
        return self.target if self.target is not None else (self.address, self.port)

    @property
    def label(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.key} {host}" + (f":{self.port}" if self.port != 53 else "")


@dataclass(frozen=True, slots=True)
class ResolverOptions:
    azure_dns: bool = False
    custom: tuple[str, ...] = ()  # "10.1.0.4", "10.1.0.4:5353", "[fd00::1]:53"
    # key ("kube-dns", "coredns/<pod>") or production address ("169.254.20.10",
    # "169.254.20.10:53") -> (host, port) actually dialled
    overrides: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    node: str | None = None  # the vantage's node: its LocalDNS flag decides; None: any node
    coredns_pods: bool = True
    names: tuple[str, ...] = DEFAULT_NAMES


def parse_address(text: str, default_port: int = 53) -> tuple[str, int]:
    """'10.0.0.10', '10.0.0.10:5353', '::1', '[::1]:5353' -> (address, port); ValueError."""
    s = text.strip()
    port = default_port
    if s.startswith("["):
        host, sep, rest = s[1:].partition("]")
        if not sep:
            raise ValueError(f"DNS server {text!r}: missing ']' after an IPv6 address")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"DNS server {text!r}: expected ':port' after ']'")
            port = _port(rest[1:], text)
    elif s.count(":") == 1:
        host, p = s.split(":")
        port = _port(p, text)
    else:
        host = s
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"DNS server {text!r}: {host!r} is not an IP address") from None
    return str(addr), port


def parse_override(text: str) -> tuple[str, tuple[str, int]]:
    """'kube-dns=127.0.0.1:5353' or '169.254.20.10=[::1]:53' -> (resolver, (host, port)).
    RESOLVER is a resolver key (nodelocal, kube-dns, coredns/<pod>, azure-dns) or the
    production address it has; ValueError says what is wrong."""
    who, sep, where = text.partition("=")
    who, where = who.strip(), where.strip()
    if not sep or not who or not where:
        raise ValueError(f"{text!r} must look like RESOLVER=HOST[:PORT], e.g. kube-dns=127.0.0.1:5353")
    return who, parse_address(where)


def _port(p: str, text: str) -> int:
    if not p.isdigit() or not 0 < int(p) < 65536:
        raise ValueError(f"DNS server {text!r}: port must be 1-65535")
    return int(p)


def resolvers_for(topology: Topology, options: ResolverOptions | None = None) -> list[Resolver]:
    """The servers a pod's DNS path goes through, in path order (cache → service → pods →
    upstream → user's own). Duplicate addresses keep their first entry."""
    opts = options or ResolverOptions()
    out: list[Resolver] = []
    if topology.nodelocal_enabled:
        out.append(Resolver("nodelocal", ResolverKind.NODELOCAL, topology.nodelocal_address(opts.node)))
    if opts.node is not None:
        n = topology.node(opts.node)
        localdns = bool(n and n.localdns)
    else:
        localdns = any(n.localdns for n in topology.nodes)
    if localdns:
        for i, ip in enumerate(LOCALDNS_IPS, 1):
            out.append(Resolver(f"localdns-{i}", ResolverKind.LOCALDNS, ip))
    if topology.dns_service_ip:
        out.append(Resolver("kube-dns", ResolverKind.KUBE_DNS, topology.dns_service_ip))
    if opts.coredns_pods:
        for pod in sorted(topology.coredns, key=lambda p: p.name):
            if pod.ip:
                out.append(Resolver(f"coredns/{pod.name}", ResolverKind.COREDNS, pod.ip, detail=pod.node))
    if opts.azure_dns:
        out.append(Resolver("azure-dns", ResolverKind.AZURE_DNS, AZURE_DNS_IP))
    for text in opts.custom:
        addr, port = parse_address(text)
        host = f"[{addr}]" if ":" in addr else addr
        key = f"custom/{host}" + (f":{port}" if port != 53 else "")
        out.append(Resolver(key, ResolverKind.CUSTOM, addr, port))
    seen: set[tuple[str, int]] = set()
    result = []
    for r in out:
        if (r.address, r.port) in seen:
            continue
        seen.add((r.address, r.port))
        result.append(with_override(r, opts.overrides))
    return result


def with_override(r: Resolver, overrides: Mapping[str, tuple[str, int]]) -> Resolver:
    for k in (r.key, f"{r.address}:{r.port}", f"[{r.address}]:{r.port}", r.address):
        if k in overrides:
            host, port = overrides[k]
            return Resolver(r.key, r.kind, r.address, r.port, (host, int(port)), r.detail)
    return r


_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$")


def validate_name(name: str) -> str:
    """Return `name` without a trailing dot, or raise ValueError saying what is wrong."""
    if not isinstance(name, str):
        raise ValueError(f"DNS name must be text, got {type(name).__name__}")
    s = name.strip()
    if s.endswith("."):
        s = s[:-1]
    if not s:
        raise ValueError("DNS name is empty")
    if len(s) > 253:
        raise ValueError(f"DNS name {s[:40]!r}… is {len(s)} characters; the limit is 253")
    for label in s.split("."):
        if not label:
            raise ValueError(f"DNS name {s!r} has an empty label (two dots in a row, or a leading dot)")
        if len(label) > 63:
            raise ValueError(f"DNS name {s!r}: label {label[:20]!r}… is {len(label)} characters; the limit is 63")
        if not _LABEL.match(label):
            raise ValueError(
                f"DNS name {s!r}: label {label!r} may hold only letters, digits, '-' "
                "and '_', and may not start or end with '-'"
            )
    return s


def validate_names(names: Iterable[str]) -> tuple[str, ...]:
    """Validate and de-duplicate (case-insensitively), keeping order."""
    out: list[str] = []
    seen: set[str] = set()
    for n in names:
        v = validate_name(n)
        if v.lower() not in seen:
            seen.add(v.lower())
            out.append(v)
    if not out:
        raise ValueError("no DNS names to probe; add at least one (e.g. kubernetes.default.svc.cluster.local)")
    return tuple(out)
