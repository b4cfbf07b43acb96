"""How the lab's DNS responders behave: plain data, validated, no sockets.

A lab scenario file may carry a ``dns:`` section. ``parse_dns_section(data, where)`` turns
it into a :class:`DnsLabSpec`; the lab builds one loopback responder per resolver the
cluster advertises and asks ``spec.timeline_for(kind, node=..., pod=...)`` what that
responder does and when that changes. Probes never see this file: they only see packets.

Format (every key optional)::

    dns:
      seed: 7                     # seeds delay distributions and garbage bytes
      nodelocal:                  # every node's NodeLocal DNS / LocalDNS responder
        behaviour: answer
      kube-dns:                   # the kube-dns ClusterIP
        delay: 2ms
      coredns:                    # every CoreDNS pod
        behaviour: answer
      upstream:                   # what CoreDNS forwards to: applies to external names only
        behaviour: servfail       #   (F6: cluster names work, external names fail)
        changes:
          - {at: 30s, behaviour: drop}
          - {at: 90s, behaviour: answer}
      nodes:                      # per-node overrides (by node name or pool/N)
        aks-nodepool1-0:
          nodelocal: {behaviour: drop}          # F4: this node's NodeLocal DNS
        userpool/1:
          kube-dns: {behaviour: drop}           # F1: kube-dns as this node reaches it
      pods:                       # per-CoreDNS-pod overrides (by pod name)
        coredns-abc12: {behaviour: refused}
      names:                      # extra records the responders know (A records)
        cluster: {my-svc.default.svc.cluster.local: 10.0.12.7}
        external: {example.org: 203.0.113.10}

A *behaviour block* (the value of nodelocal, kube-dns, coredns, upstream, a node's
nodelocal, a pod) has these keys:

``behaviour``
    one of ``answer`` (default), ``drop`` (never answers), ``servfail``, ``nxdomain``,
    ``refused``, ``truncate`` (UDP answer has TC set and no records), ``garbage``
    (random bytes after the query id), ``wrong-id`` (a good answer with another query
    id), ``huge-txt`` (a TXT answer of ``txt_size`` bytes: TC over UDP when it does not
    fit the client's payload size, full over TCP).
``tcp``
    ``true`` (default) or ``false``: whether the TCP listener answers. With ``truncate``
    and ``tcp: false`` a client's TCP retry gets its connection closed (F7, TCP failing).
``delay``
    added before every answer: a number (milliseconds), a string with a unit (``"250us"``,
    ``"2ms"``, ``"1.5s"``), or ``{uniform: [low_ms, high_ms]}``, or
    ``{normal: {mean: ms, stddev: ms}}`` (clamped at 0). Drawn from a generator seeded
    with ``seed``.
``txt_size``
    bytes of TXT data for ``huge-txt`` (default 4000, at most 60000).
``changes``
    a list of ``{at: <time>, ...behaviour keys...}``: from ``at`` (seconds after the
    responder started, or a string with a unit: ``"30s"``, ``"2m"``) the responder
    behaves as the listed keys say; keys not listed fall back to the block's base.
    Entries must be in increasing ``at`` order.

Any unknown key or bad value raises ``ValueError`` naming the key path, e.g.
``scenario.yaml: dns.upstream.changes[1].at: must be a duration``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Mapping


class DnsFaultMode(str, Enum):
    ANSWER = "answer"
    DROP = "drop"
    SERVFAIL = "servfail"
    NXDOMAIN = "nxdomain"
    REFUSED = "refused"
    TRUNCATE = "truncate"
    GARBAGE = "garbage"
    WRONG_ID = "wrong-id"
    HUGE_TXT = "huge-txt"


@dataclass(frozen=True, slots=True)
class Delay:
    """Milliseconds added before an answer: fixed, uniform(low, high) or normal(mean, sd)."""

    kind: str = "fixed"  # fixed | uniform | normal
    a: float = 0.0  # fixed ms, uniform low, normal mean
    b: float = 0.0  # uniform high, normal stddev

    def draw(self, rng: Any) -> float:
        """A delay in milliseconds (never negative) from `rng` (a random.Random)."""
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "normal":
            return max(0.0, rng.gauss(self.a, self.b))
        return self.a

    @property
    def zero(self) -> bool:
        return self.kind == "fixed" and self.a <= 0.0


NO_DELAY = Delay()


@dataclass(frozen=True, slots=True)
class Behaviour:
    mode: DnsFaultMode = DnsFaultMode.ANSWER
    delay: Delay = NO_DELAY
    tcp: bool = True
    txt_size: int = 4000


ANSWER = Behaviour()


@dataclass(frozen=True, slots=True)
class DnsTimeline:
    """A base behaviour and timed changes, in seconds after the responder started."""

    base: Behaviour = ANSWER
    changes: tuple[tuple[float, Behaviour], ...] = ()

    def at(self, elapsed: float) -> Behaviour:
        current = self.base
        for when, behaviour in self.changes:
            if elapsed >= when:
                current = behaviour
            else:
                break
        return current

    @staticmethod
    def constant(behaviour: Behaviour) -> "DnsTimeline":
        return DnsTimeline(base=behaviour)


STEADY = DnsTimeline()

KINDS = ("nodelocal", "kube-dns", "coredns", "upstream")


@dataclass(frozen=True, slots=True)
class DnsLabSpec:
    nodelocal: DnsTimeline = STEADY
    kube_dns: DnsTimeline = STEADY
    coredns: DnsTimeline = STEADY
    upstream: DnsTimeline = STEADY
    nodes: Mapping[str, DnsTimeline] = field(default_factory=dict)  # node -> nodelocal timeline
    # node -> kube-dns as that node reaches it (its path to CoreDNS on other nodes: F1)
    node_kube_dns: Mapping[str, DnsTimeline] = field(default_factory=dict)
    pods: Mapping[str, DnsTimeline] = field(default_factory=dict)  # coredns pod -> timeline
    cluster_names: Mapping[str, str] = field(default_factory=dict)
    external_names: Mapping[str, str] = field(default_factory=dict)
    seed: int = 0

    def timeline_for(self, kind: str, *, node: str | None = None, pod: str | None = None) -> DnsTimeline:
        """The timeline of one responder. `kind` is nodelocal, localdns, kube-dns, coredns
        or upstream; a node's override wins for nodelocal/localdns, a pod's for coredns."""
        if kind in ("nodelocal", "localdns"):
            if node is not None and node in self.nodes:
                return self.nodes[node]
            return self.nodelocal
        if kind == "kube-dns":
            if node is not None and node in self.node_kube_dns:
                return self.node_kube_dns[node]
            return self.kube_dns
        if kind == "coredns":
            if pod is not None and pod in self.pods:
                return self.pods[pod]
            return self.coredns
        if kind == "upstream":
            return self.upstream
        raise ValueError(f"unknown DNS resolver kind {kind!r}; expected one of {', '.join(KINDS)}")


# --- parsing -----------------------------------------------------------------------------

_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DUR = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(us|µs|ms|s|m|h)\s*$")
_BLOCK_KEYS = {"behaviour", "behavior", "delay", "tcp", "txt_size", "changes"}
_TOP_KEYS = {"seed", "nodelocal", "kube-dns", "coredns", "upstream", "nodes", "pods", "names"}


def _err(where: str, path: str, msg: str) -> ValueError:
    return ValueError(f"{where}: {path}: {msg}")


def _seconds(value: Any, *, default_unit: float, where: str, path: str) -> float:
    """A duration in seconds; bare numbers are in `default_unit` seconds."""
    if isinstance(value, bool):
        raise _err(where, path, f"must be a duration (number or '30s', '250ms'), got {value!r}")
    if isinstance(value, (int, float)):
        out = float(value) * default_unit
    elif isinstance(value, str):
        m = _DUR.match(value)
        if not m:
            raise _err(where, path, f"must be a duration like '30s', '2ms' or '1.5m', got {value!r}")
        out = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise _err(where, path, f"must be a duration (number or '30s', '250ms'), got {value!r}")
    if not math.isfinite(out) or out < 0:
        raise _err(where, path, f"must be a finite duration >= 0, got {value!r}")
    return out


def _ms(value: Any, where: str, path: str) -> float:
    return _seconds(value, default_unit=1e-3, where=where, path=path) * 1000.0


def _delay(value: Any, where: str, path: str) -> Delay:
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise _err(where, path, "must have exactly one of 'uniform' or 'normal'")
        (kind, params), = value.items()
        if kind == "uniform":
            if not isinstance(params, (list, tuple)) or len(params) != 2:
                raise _err(where, f"{path}.uniform", "must be [low_ms, high_ms]")
            lo, hi = (_ms(p, where, f"{path}.uniform[{i}]") for i, p in enumerate(params))
            if hi < lo:
                raise _err(where, f"{path}.uniform", f"high ({hi} ms) is below low ({lo} ms)")
            return Delay("uniform", lo, hi)
        if kind == "normal":
            if not isinstance(params, Mapping) or set(params) != {"mean", "stddev"}:
                raise _err(where, f"{path}.normal", "must be {mean: ms, stddev: ms}")
            return Delay("normal", _ms(params["mean"], where, f"{path}.normal.mean"),
                         _ms(params["stddev"], where, f"{path}.normal.stddev"))
        raise _err(where, f"{path}.{kind}", "unknown delay distribution; use 'uniform' or 'normal'")
    return Delay("fixed", _ms(value, where, path))


def _behaviour(data: Mapping[str, Any], base: Behaviour, where: str, path: str) -> Behaviour:
    out = base
    for key, value in data.items():
        kpath = f"{path}.{key}"
        if key in ("behaviour", "behavior"):
            try:
                out = replace(out, mode=DnsFaultMode(value))
            except ValueError:
                raise _err(where, kpath, f"unknown behaviour {value!r}; expected one of "
                           + ", ".join(m.value for m in DnsFaultMode)) from None
        elif key == "delay":
            out = replace(out, delay=_delay(value, where, kpath))
        elif key == "tcp":
            if not isinstance(value, bool):
                raise _err(where, kpath, f"must be true or false, got {value!r}")
            out = replace(out, tcp=value)
        elif key == "txt_size":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 60000:
                raise _err(where, kpath, f"must be an integer from 1 to 60000, got {value!r}")
            out = replace(out, txt_size=value)
    return out


def _block(data: Any, where: str, path: str) -> DnsTimeline:
    if data is None:
        return STEADY
    if isinstance(data, str):  # shorthand: `nodelocal: drop`
        data = {"behaviour": data}
    if not isinstance(data, Mapping):
        raise _err(where, path, f"must be a mapping of behaviour keys, got {type(data).__name__}")
    unknown = set(data) - _BLOCK_KEYS
    if unknown:
        raise _err(where, f"{path}.{sorted(unknown)[0]}",
                   f"unknown key; expected one of {', '.join(sorted(_BLOCK_KEYS - {'behavior'}))}")
    base = _behaviour({k: v for k, v in data.items() if k != "changes"}, ANSWER, where, path)
    changes: list[tuple[float, Behaviour]] = []
    raw = data.get("changes") or []
    if not isinstance(raw, list):
        raise _err(where, f"{path}.changes", "must be a list of {at: ..., behaviour: ...}")
    last = -1.0
    for i, entry in enumerate(raw):
        epath = f"{path}.changes[{i}]"
        if not isinstance(entry, Mapping):
            raise _err(where, epath, "must be a mapping with 'at' and behaviour keys")
        if "at" not in entry:
            raise _err(where, f"{epath}.at", "missing; say when the change happens, e.g. '30s'")
        unknown = set(entry) - (_BLOCK_KEYS - {"changes"}) - {"at"}
        if unknown:
            raise _err(where, f"{epath}.{sorted(unknown)[0]}", "unknown key")
        at = _seconds(entry["at"], default_unit=1.0, where=where, path=f"{epath}.at")
        if at <= last:
            raise _err(where, f"{epath}.at", "changes must be in increasing 'at' order")
        last = at
        changes.append((at, _behaviour({k: v for k, v in entry.items() if k != "at"}, base, where, epath)))
    return DnsTimeline(base, tuple(changes))


def _names(data: Any, where: str, path: str) -> dict[str, str]:
    import ipaddress

    from probes.dns.resolvers import validate_name

    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise _err(where, path, "must be a mapping of name: IPv4 address")
    out: dict[str, str] = {}
    for name, ip in data.items():
        npath = f"{path}.{name}"
        try:
            validate_name(str(name))
            ipaddress.IPv4Address(str(ip))
        except ValueError as e:
            raise _err(where, npath, str(e)) from None
        out[str(name).rstrip(".").lower()] = str(ip)
    return out


def parse_dns_section(data: dict, where: str) -> DnsLabSpec:
    """Validate a scenario's ``dns:`` section; `where` prefixes error messages (a file name)."""
    if data is None:
        return DnsLabSpec()
    if not isinstance(data, Mapping):
        raise _err(where, "dns", f"must be a mapping, got {type(data).__name__}")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise _err(where, f"dns.{sorted(unknown)[0]}",
                   f"unknown key; expected one of {', '.join(sorted(_TOP_KEYS))}")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _err(where, "dns.seed", f"must be an integer, got {seed!r}")

    def per(key: str, inner: str | None) -> dict[str, DnsTimeline]:
        raw = data.get(key) or {}
        if not isinstance(raw, Mapping):
            raise _err(where, f"dns.{key}", "must be a mapping by name")
        out = {}
        for name, block in raw.items():
            p = f"dns.{key}.{name}"
            if inner is not None:
                if not isinstance(block, Mapping) or set(block) - {inner}:
                    raise _err(where, p, f"must be a mapping with only '{inner}'")
                block, p = block.get(inner), f"{p}.{inner}"
            out[str(name)] = _block(block, where, p)
        return out

    raw_nodes = data.get("nodes") or {}
    if not isinstance(raw_nodes, Mapping):
        raise _err(where, "dns.nodes", "must be a mapping by name")
    nodes: dict[str, DnsTimeline] = {}
    node_kube_dns: dict[str, DnsTimeline] = {}
    for name, block in raw_nodes.items():
        p = f"dns.nodes.{name}"
        if not isinstance(block, Mapping) or not block or set(block) - {"nodelocal", "kube-dns"}:
            raise _err(where, p, "must be a mapping with 'nodelocal' and/or 'kube-dns'")
        if "nodelocal" in block:
            nodes[str(name)] = _block(block["nodelocal"], where, f"{p}.nodelocal")
        if "kube-dns" in block:
            node_kube_dns[str(name)] = _block(block["kube-dns"], where, f"{p}.kube-dns")

    names = data.get("names") or {}
    if not isinstance(names, Mapping) or set(names) - {"cluster", "external"}:
        raise _err(where, "dns.names", "must be a mapping with 'cluster' and/or 'external'")
    return DnsLabSpec(
        nodelocal=_block(data.get("nodelocal"), where, "dns.nodelocal"),
        kube_dns=_block(data.get("kube-dns"), where, "dns.kube-dns"),
        coredns=_block(data.get("coredns"), where, "dns.coredns"),
        upstream=_block(data.get("upstream"), where, "dns.upstream"),
        nodes=nodes,
        node_kube_dns=node_kube_dns,
        pods=per("pods", None),
        cluster_names=_names(names.get("cluster"), where, "dns.names.cluster"),
        external_names=_names(names.get("external"), where, "dns.names.external"),
        seed=seed,
    )
