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
        userpool/0:
          upstream: {behaviour: drop}           # F17: this node's NodeLocal forwards external names nowhere
      pods:                       # per-CoreDNS-pod overrides (by pod name, or '#N': the Nth pod by name)
        coredns-abc12: {behaviour: refused}
        "#1": {behaviour: drop}                 # F15: the second replica drops everything
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
``loss``
    the share of UDP queries silently dropped, drawn per query from the seeded generator:
    a percentage (``"5%"``, ``5``) or a fraction below 1 (``0.05``). F19's intermittent
    loss; a client retries after 5 s.
``txt_size``
    bytes of TXT data for ``huge-txt`` (default 4000, at most 60000).
``names``
    per query name: a mapping of name patterns (shell-style, ``*`` and ``?``, case-insensitive;
    the first that matches wins) to behaviour keys (``behaviour``, ``delay``, ``loss``,
    ``tcp``, ``txt_size``); keys not listed fall back to the block's. E.g. CoreDNS slow
    for service names only::

        coredns:
          names:
            "*.svc.cluster.local": {delay: {normal: {mean: 150ms, stddev: 30ms}}}
            "*.example.org": {behaviour: servfail}

    On ``upstream`` it matches the external name forwarded.
``changes``
    a list of ``{at: <time>, ...behaviour keys...}``: from ``at`` (seconds after the
    responder started, or a string with a unit: ``"30s"``, ``"2m"``) the responder
    behaves as the listed keys say; keys not listed fall back to the block's base.
    Entries must be in increasing ``at`` order.

Any unknown key or bad value raises ``ValueError`` naming the key path, e.g.
``scenario.yaml: dns.upstream.changes[1].at: must be a duration``.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Annotated, Any, ClassVar

import msgspec

from .schemabase import UNSET, Doc, M, UnsetType, convert


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
    loss: float = 0.0  # share of UDP queries silently dropped (0..1), drawn per query
    # (lower-case name pattern, behaviour for matching names), first match wins
    by_name: tuple[tuple[str, Behaviour], ...] = ()

    def for_name(self, name: str) -> Behaviour:
        """The behaviour for a query of `name` (lower case, no final dot)."""
        for pattern, b in self.by_name:
            if fnmatch.fnmatchcase(name, pattern):
                return b
        return self


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
    def constant(behaviour: Behaviour) -> DnsTimeline:
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
    pods: Mapping[str, DnsTimeline] = field(default_factory=dict)  # coredns pod (name or "#<index>") -> timeline
    # node -> the upstream as that node reaches it: what its NodeLocal/LocalDNS forwards
    # external names to (F17: one node's path to the VNet DNS broken)
    node_upstream: Mapping[str, DnsTimeline] = field(default_factory=dict)
    cluster_names: Mapping[str, str] = field(default_factory=dict)
    external_names: Mapping[str, str] = field(default_factory=dict)
    seed: int = 0
    nxdomain_names: frozenset[str] = frozenset()  # external names answered NXDOMAIN (ingress hosts without a record)

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
            if node is not None and node in self.node_upstream:
                return self.node_upstream[node]
            return self.upstream
        raise ValueError(f"unknown DNS resolver kind {kind!r}; expected one of {', '.join(KINDS)}")


# --- the format (msgspec structs) --------------------------------------------------------

_MODES = ", ".join(m.value for m in DnsFaultMode)
_DURATION = "must be a duration (number or '30s', '250ms'), got {got}"
Ms = Annotated[
    int | float | str, M(error=_DURATION, description="milliseconds, or a string with a unit: 250us, 2ms, 1.5s")
]


_Behaviour = Annotated[
    str,
    M(
        error=f"unknown behaviour {{got}}; expected one of {_MODES}",
        extra_json_schema={"enum": [m.value for m in DnsFaultMode]},
    ),
]
_Behavior = Annotated[
    str,
    M(error=f"unknown behaviour {{got}}; expected one of {_MODES}", description="American spelling of behaviour"),
]


class NormalDelayDoc(Doc, kw_only=True):
    unknown_key: ClassVar[str] = "must be {{mean: ms, stddev: ms}}"
    unknown_key_here: ClassVar[bool] = True
    not_mapping: ClassVar[str] = "must be {{mean: ms, stddev: ms}}"

    mean: Annotated[int | float | str, M(error=_DURATION, missing="must be {mean: ms, stddev: ms}")]
    stddev: Annotated[int | float | str, M(error=_DURATION, missing="must be {mean: ms, stddev: ms}")]


class DelayDistributionDoc(Doc, kw_only=True):
    unknown_key: ClassVar[str] = "unknown delay distribution; use 'uniform' or 'normal'"

    uniform: (
        Annotated[list[int | float | str], M(error="must be [low_ms, high_ms]", description="[low_ms, high_ms]")]
        | UnsetType
    ) = UNSET
    normal: NormalDelayDoc | UnsetType = UNSET


Delay_ = Annotated[
    float | str | DelayDistributionDoc,
    M(
        error=_DURATION,
        description="added before every answer: ms, '2ms', {uniform: [lo, hi]} or {normal: {mean, stddev}}",
    ),
]


Loss = Annotated[
    int | float | str,
    M(error="must be a percentage like '5%' or 5, got {got}", description="share of UDP queries dropped: '5%', 5"),
]


class DnsNameRuleDoc(Doc, kw_only=True):
    """The behaviour for query names matching a pattern; keys not listed: the block's."""

    unknown_key: ClassVar[str] = "unknown key; expected one of behaviour, delay, loss, tcp, txt_size"
    not_mapping: ClassVar[str] = "must be a mapping of behaviour keys, got {type}"

    behaviour: _Behaviour | UnsetType = UNSET
    behavior: _Behavior | UnsetType = UNSET
    delay: Delay_ | UnsetType = UNSET
    tcp: Annotated[bool, M(error="must be true or false, got {got}")] | UnsetType = UNSET
    loss: Loss | UnsetType = UNSET
    txt_size: Annotated[int, M(error="must be an integer from 1 to 60000, got {got}", ge=1, le=60000)] | UnsetType = (
        UNSET
    )


NameRules = Annotated[
    dict[str, str | DnsNameRuleDoc],
    M(
        error="must be a mapping of name pattern: behaviour keys",
        description="per query name pattern ('*.svc.cluster.local'), first match wins",
    ),
]


class DnsChangeDoc(Doc, kw_only=True):
    """From ``at`` the responder behaves as the listed keys say; others fall back to the block's."""

    unknown_key: ClassVar[str] = "unknown key"
    not_mapping: ClassVar[str] = "must be a mapping with 'at' and behaviour keys"

    at: Annotated[
        int | float | str,
        M(
            error="must be a duration (number or '30s', '250ms'), got {got}",
            missing="missing; say when the change happens, e.g. '30s'",
            description="seconds after the start",
        ),
    ]
    behaviour: _Behaviour | UnsetType = UNSET
    behavior: _Behavior | UnsetType = UNSET
    delay: Delay_ | UnsetType = UNSET
    tcp: Annotated[bool, M(error="must be true or false, got {got}")] | UnsetType = UNSET
    loss: Loss | UnsetType = UNSET
    txt_size: Annotated[int, M(error="must be an integer from 1 to 60000, got {got}", ge=1, le=60000)] | UnsetType = (
        UNSET
    )
    names: NameRules | UnsetType = UNSET


class DnsBlockDoc(Doc, kw_only=True):
    """How one responder behaves (docstring of probes/lab/dnsspec.py)."""

    unknown_key: ClassVar[str] = "unknown key; expected one of behaviour, changes, delay, loss, names, tcp, txt_size"
    not_mapping: ClassVar[str] = "must be a mapping of behaviour keys, got {type}"

    behaviour: _Behaviour | UnsetType = UNSET
    behavior: _Behavior | UnsetType = UNSET
    delay: Delay_ | UnsetType = UNSET
    tcp: (
        Annotated[bool, M(error="must be true or false, got {got}", description="false: the TCP retry is refused")]
        | UnsetType
    ) = UNSET
    loss: Loss | UnsetType = UNSET
    txt_size: Annotated[int, M(error="must be an integer from 1 to 60000, got {got}", ge=1, le=60000)] | UnsetType = (
        UNSET
    )
    names: NameRules | UnsetType = UNSET
    changes: Annotated[
        list[DnsChangeDoc],
        M(error="must be a list of {{at: ..., behaviour: ...}}", description="in increasing at order"),
    ] = []


Block = Annotated[
    str | DnsBlockDoc,
    M(
        error="must be a mapping of behaviour keys, got {type}",
        description="a behaviour name (shorthand for {behaviour: NAME}) or a behaviour block",
    ),
]


class DnsNodeDoc(Doc, kw_only=True):
    unknown_key: ClassVar[str] = "must be a mapping with 'nodelocal', 'kube-dns' and/or 'upstream'"
    unknown_key_here: ClassVar[bool] = True
    not_mapping: ClassVar[str] = "must be a mapping with 'nodelocal', 'kube-dns' and/or 'upstream'"

    nodelocal: Block | UnsetType = UNSET
    kube_dns: Block | UnsetType = msgspec.field(default=UNSET, name="kube-dns")
    upstream: Block | UnsetType = UNSET


class DnsNamesDoc(Doc, kw_only=True):
    unknown_key: ClassVar[str] = "must be a mapping with 'cluster' and/or 'external'"
    unknown_key_here: ClassVar[bool] = True
    not_mapping: ClassVar[str] = "must be a mapping with 'cluster' and/or 'external'"

    cluster: Annotated[
        dict[str, Annotated[str | int, M(error="must be an IPv4 address, got {got}")]],
        M(error="must be a mapping of name: IPv4 address"),
    ] = {}
    external: Annotated[
        dict[str, Annotated[str | int, M(error="must be an IPv4 address, got {got}")]],
        M(error="must be a mapping of name: IPv4 address"),
    ] = {}


class DnsDoc(Doc, kw_only=True):
    """How the lab's DNS responders behave (docs/scenarios.md, the dns: section)."""

    unknown_key: ClassVar[str] = "unknown key; expected one of {allowed}"

    seed: Annotated[int, M(error="must be an integer, got {got}", description="seeds delays and garbage bytes")] = 0
    nodelocal: Block | UnsetType = UNSET
    kube_dns: Block | UnsetType = msgspec.field(default=UNSET, name="kube-dns")
    coredns: Block | UnsetType = UNSET
    upstream: Block | UnsetType = UNSET
    nodes: Annotated[
        dict[str | int, DnsNodeDoc],
        M(error="must be a mapping by name", description="per node: 'pool/N', an index or a name"),
    ] = {}
    pods: Annotated[
        dict[str | int, Block], M(error="must be a mapping by name", description="per CoreDNS pod, by pod name")
    ] = {}
    names: DnsNamesDoc | UnsetType = UNSET


# --- building ----------------------------------------------------------------------------

_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DUR = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(us|µs|ms|s|m|h)\s*$")


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
    if isinstance(value, DelayDistributionDoc):
        if (value.uniform is UNSET) == (value.normal is UNSET):
            raise _err(where, path, "must have exactly one of 'uniform' or 'normal'")
        if value.uniform is not UNSET:
            params = value.uniform
            if len(params) != 2:
                raise _err(where, f"{path}.uniform", "must be [low_ms, high_ms]")
            lo, hi = (_ms(p, where, f"{path}.uniform[{i}]") for i, p in enumerate(params))
            if hi < lo:
                raise _err(where, f"{path}.uniform", f"high ({hi} ms) is below low ({lo} ms)")
            return Delay("uniform", lo, hi)
        n = value.normal
        assert isinstance(n, NormalDelayDoc)
        return Delay("normal", _ms(n.mean, where, f"{path}.normal.mean"), _ms(n.stddev, where, f"{path}.normal.stddev"))
    return Delay("fixed", _ms(value, where, path))


def _behaviour(doc: DnsBlockDoc | DnsChangeDoc | DnsNameRuleDoc, base: Behaviour, where: str, path: str) -> Behaviour:
    out = replace(base, by_name=()) if isinstance(doc, DnsNameRuleDoc) else base
    for key in ("behaviour", "behavior"):
        value = getattr(doc, key)
        if value is not UNSET:
            try:
                out = replace(out, mode=DnsFaultMode(value))
            except ValueError:
                raise _err(where, f"{path}.{key}", f"unknown behaviour {value!r}; expected one of {_MODES}") from None
    if doc.delay is not UNSET:
        out = replace(out, delay=_delay(doc.delay, where, f"{path}.delay"))
    if doc.tcp is not UNSET:
        out = replace(out, tcp=doc.tcp)
    if doc.loss is not UNSET:
        out = replace(out, loss=_loss(doc.loss, where, f"{path}.loss"))
    if doc.txt_size is not UNSET:
        out = replace(out, txt_size=doc.txt_size)
    names = getattr(doc, "names", UNSET)
    if names is not UNSET:
        rules = []
        for pattern, rule in names.items():
            rpath = f"{path}.names.{pattern}"
            text = str(pattern).strip().lower().rstrip(".")
            if not text or not re.fullmatch(r"[a-z0-9_.*?\-]+", text):
                raise _err(where, rpath, "must be a name pattern of letters, digits, '-', '.', '*' and '?'")
            if isinstance(rule, str):
                rule = DnsNameRuleDoc(behaviour=rule)
            rules.append((text, _behaviour(rule, out, where, rpath)))
        out = replace(out, by_name=tuple(rules))
    return out


def _loss(value: Any, where: str, path: str) -> float:
    """'5%', 5 or 0.05 -> 0.05 (a bare number of 1 or more is a percentage)."""
    text = str(value).strip()
    pct = text.endswith("%")
    try:
        if isinstance(value, bool):
            raise ValueError
        v = float(text.rstrip("%").strip())
    except ValueError:
        raise _err(where, path, f"must be a percentage like '5%' or 5, got {value!r}") from None
    share = v / 100.0 if pct or v >= 1 else v
    if not math.isfinite(share) or not 0.0 <= share <= 1.0:
        raise _err(where, path, f"must be from 0% to 100%, got {value!r}")
    return share


def _block(doc: Any, where: str, path: str) -> DnsTimeline:
    if doc is UNSET or doc is None:
        return STEADY
    if isinstance(doc, str):  # shorthand: `nodelocal: drop`
        doc = DnsBlockDoc(behaviour=doc)
    base = _behaviour(doc, ANSWER, where, path)
    changes: list[tuple[float, Behaviour]] = []
    last = -1.0
    for i, entry in enumerate(doc.changes):
        epath = f"{path}.changes[{i}]"
        at = _seconds(entry.at, default_unit=1.0, where=where, path=f"{epath}.at")
        if at <= last:
            raise _err(where, f"{epath}.at", "changes must be in increasing 'at' order")
        last = at
        changes.append((at, _behaviour(entry, base, where, epath)))
    return DnsTimeline(base, tuple(changes))


def _names(data: Mapping[str, Any], where: str, path: str) -> dict[str, str]:
    # lazy: probes.dns.resolvers pulls in probes.kube.model (~35 ms), and only
    # scenarios that list names need it
    from probes.dns.resolvers import validate_name

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


def parse_dns_section(data: Any, where: str) -> DnsLabSpec:
    """Validate a scenario's ``dns:`` section (the YAML data, or already a :class:`DnsDoc`);
    `where` prefixes error messages (a file name)."""
    if data is None:
        return DnsLabSpec()
    doc = data if isinstance(data, DnsDoc) else convert(data, DnsDoc, where, "dns")
    nodes: dict[str, DnsTimeline] = {}
    node_kube_dns: dict[str, DnsTimeline] = {}
    node_upstream: dict[str, DnsTimeline] = {}
    for name, node in doc.nodes.items():
        p = f"dns.nodes.{name}"
        if node.nodelocal is UNSET and node.kube_dns is UNSET and node.upstream is UNSET:
            raise _err(where, p, "must be a mapping with 'nodelocal', 'kube-dns' and/or 'upstream'")
        if node.upstream is not UNSET:
            node_upstream[str(name)] = _block(node.upstream, where, f"{p}.upstream")
        if node.nodelocal is not UNSET:
            nodes[str(name)] = _block(node.nodelocal, where, f"{p}.nodelocal")
        if node.kube_dns is not UNSET:
            node_kube_dns[str(name)] = _block(node.kube_dns, where, f"{p}.kube-dns")
    names = doc.names if doc.names is not UNSET else DnsNamesDoc()
    return DnsLabSpec(
        nodelocal=_block(doc.nodelocal, where, "dns.nodelocal"),
        kube_dns=_block(doc.kube_dns, where, "dns.kube-dns"),
        coredns=_block(doc.coredns, where, "dns.coredns"),
        upstream=_block(doc.upstream, where, "dns.upstream"),
        nodes=nodes,
        node_kube_dns=node_kube_dns,
        node_upstream=node_upstream,
        pods={str(name): _block(b, where, f"dns.pods.{name}") for name, b in doc.pods.items()},
        cluster_names=_names(names.cluster, where, "dns.names.cluster"),
        external_names=_names(names.external, where, "dns.names.external"),
        seed=doc.seed,
    )
