"""Network security groups: parsing ARM's rules and the effective verdict for one flow, the
way Network Watcher's IP flow verify answers it, without calling it.

Pure: plain data in, plain data out, no I/O (the fetch is in probes.azure.pathread).

Azure evaluates an NSG's rules of the flow's direction by priority (lowest number first);
the first rule whose protocol, addresses and ports match decides. Two NSGs can apply to a
node: the one on its NIC (for AKS, the VMSS NIC configuration's) and the one on its
subnet. Outbound traffic meets the NIC's first, then the subnet's; inbound the subnet's
first. A deny at either level drops the flow; a level without an NSG allows.

Service tags resolved offline (:class:`TagSpace`):

- ``VirtualNetwork``: the VNet's address space, the peered VNets' spaces, the prefixes of
  the subnet's user routes and the host's virtual IP 168.63.129.16 (Azure's own
  definition of the tag);
- ``AzureLoadBalancer``: 168.63.129.16 (the health probes' source);
- ``Internet``: any address outside ``VirtualNetwork`` and outside the private ranges
  Azure routes to ``None`` (10/8, 172.16/12, 192.168/16, 100.64/10).

Any other tag (``AzureCloud``, ``Storage``, ``AzureContainerRegistry.WestEurope``, …) and
application security groups depend on lists this module does not have: a rule using one
makes the verdict *unknown* unless every way it could go ends the same (a Deny tag rule
followed by a Deny that matches anyway). It says which rule and which tag; it never guesses.

Evaluation is cached per rule-set version (the NSG's etag): :func:`compile_nsg` keeps the
parsed rules with their prefixes; addresses are classified once per distinct prefix, and a
verdict per (source class, destination class, port, protocol).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

HOST_IP = "168.63.129.16"  # Azure's host virtual IP: health probes, Azure DNS, the wire server
PRIVATE_NONE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")  # system routes to None
RESOLVED_TAGS = ("virtualnetwork", "azureloadbalancer", "internet")
ANY = ("*", "any", "0.0.0.0/0", "::/0")
_CACHE_MAX = 64  # compiled NSGs kept (distinct (id, etag, tag space))
_VERDICTS_MAX = 100_000  # cached verdicts per compiled NSG

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Addr = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class SecurityRule:
    name: str
    priority: int
    direction: str  # Inbound | Outbound
    access: str  # Allow | Deny
    protocol: str = "*"  # * | Tcp | Udp | Icmp | Esp | Ah
    sources: tuple[str, ...] = ("*",)  # prefixes, addresses, service tags
    source_ports: tuple[str, ...] = ("*",)
    destinations: tuple[str, ...] = ("*",)
    destination_ports: tuple[str, ...] = ("*",)
    default: bool = False  # one of Azure's default rules (65000+)


@dataclass(frozen=True, slots=True)
class Nsg:
    id: str
    name: str
    etag: str = ""
    rules: tuple[SecurityRule, ...] = ()  # the user's rules and the default ones
    subnets: tuple[str, ...] = ()  # ids of the subnets it is associated with
    nics: tuple[str, ...] = ()  # ids of the NICs (VMSS instances' NICs) it is associated with


def _rule(name: str, prio: int, direction: str, access: str, src: str, dst: str) -> SecurityRule:
    return SecurityRule(name, prio, direction, access, "*", (src,), ("*",), (dst,), ("*",), True)


DEFAULT_RULES: tuple[SecurityRule, ...] = (
    _rule("AllowVnetInBound", 65000, "Inbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    _rule("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "AzureLoadBalancer", "*"),
    _rule("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*"),
    _rule("AllowVnetOutBound", 65000, "Outbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    _rule("AllowInternetOutBound", 65001, "Outbound", "Allow", "*", "Internet"),
    _rule("DenyAllOutBound", 65500, "Outbound", "Deny", "*", "*"),
)


# --- parsing (REST shapes, as the SDK models' as_dict() gives them) ----------------------
def _props(d: Mapping[str, Any]) -> Mapping[str, Any]:
    p = d.get("properties")
    return p if isinstance(p, Mapping) else d


def _many(p: Mapping[str, Any], one: str, many: str, asgs: str = "") -> tuple[str, ...]:
    """A rule's `xPrefix` / `xPrefixes` (augmented) / application security groups."""
    out = [str(x) for x in p.get(many) or () if str(x)]
    single = p.get(one)
    if single not in (None, ""):
        out.insert(0, str(single))
    for g in p.get(asgs) or () if asgs else ():
        gid = str(g.get("id", "")) if isinstance(g, Mapping) else str(g)
        out.append("asg:" + gid.rstrip("/").rsplit("/", 1)[-1])
    return tuple(out) or ("*",)


def parse_rule(d: Mapping[str, Any], default: bool = False) -> SecurityRule:
    p = _props(d)
    try:
        prio = int(p.get("priority") or 0)
    except (TypeError, ValueError):
        prio = 0
    return SecurityRule(
        name=str(d.get("name", "")),
        priority=prio,
        direction=str(p.get("direction", "")),
        access=str(p.get("access", "")),
        protocol=str(p.get("protocol") or "*"),
        sources=_many(p, "sourceAddressPrefix", "sourceAddressPrefixes", "sourceApplicationSecurityGroups"),
        source_ports=_many(p, "sourcePortRange", "sourcePortRanges"),
        destinations=_many(
            p, "destinationAddressPrefix", "destinationAddressPrefixes", "destinationApplicationSecurityGroups"
        ),
        destination_ports=_many(p, "destinationPortRange", "destinationPortRanges"),
        default=default,
    )


def parse_nsg(d: Mapping[str, Any]) -> Nsg:
    """One networkSecurityGroups resource. Default rules come from the body when present
    (ARM always sends them), else Azure's fixed set."""
    p = _props(d)
    rules = [parse_rule(r) for r in p.get("securityRules") or () if isinstance(r, Mapping)]
    defaults = [parse_rule(r, True) for r in p.get("defaultSecurityRules") or () if isinstance(r, Mapping)]

    def refs(key: str) -> tuple[str, ...]:
        return tuple(str(x.get("id", "")) for x in p.get(key) or () if isinstance(x, Mapping) and x.get("id"))

    return Nsg(
        id=str(d.get("id", "")),
        name=str(d.get("name", "")),
        etag=str(d.get("etag") or p.get("resourceGuid") or ""),
        rules=tuple(rules) + (tuple(defaults) or DEFAULT_RULES),
        subnets=refs("subnets"),
        nics=refs("networkInterfaces"),
    )


# --- service tags -------------------------------------------------------------------------
def _net(s: str) -> Net | None:
    try:
        return ipaddress.ip_network(s.strip(), strict=False)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class TagSpace:
    """What the resolvable service tags mean for this VNet."""

    vnet: tuple[str, ...] = ()  # the VNet's address space
    peered: tuple[str, ...] = ()  # connected peerings' remote address spaces
    user_routes: tuple[str, ...] = ()  # the subnet's user-defined route prefixes

    @property
    def virtual_network(self) -> tuple[str, ...]:
        return (*self.vnet, *self.peered, *self.user_routes, f"{HOST_IP}/32")

    @property
    def key(self) -> tuple[tuple[str, ...], ...]:
        return (self.vnet, self.peered, self.user_routes)


class _Space:
    """A set of networks with a membership test (IPv4 and IPv6 apart)."""

    __slots__ = ("nets",)

    def __init__(self, prefixes: Iterable[str]) -> None:
        nets = [n for n in (_net(p) for p in prefixes) if n is not None]
        v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
        v6 = [n for n in nets if isinstance(n, ipaddress.IPv6Network)]
        self.nets: tuple[Net, ...] = (*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6))

    def __contains__(self, ip: Addr) -> bool:
        return any(ip.version == n.version and ip in n for n in self.nets)


_PRIVATE = _Space(PRIVATE_NONE)
_HOST = ipaddress.ip_address(HOST_IP)


# --- one flow -----------------------------------------------------------------------------
class Flow(NamedTuple):
    """One flow, as IP flow verify takes it (a tuple: 50,000 of them are built per diagnosis
    at scale, and a frozen dataclass costs three times as much to build)."""

    direction: str  # Inbound | Outbound
    source: str  # IP address
    destination: str  # IP address
    port: int  # destination port
    protocol: str = "Tcp"  # Tcp | Udp | Icmp
    source_port: int = 0  # 0: any ephemeral port (rules with a source port range don't match then)


@dataclass(frozen=True, slots=True)
class NsgVerdict:
    """One NSG's answer for a flow."""

    access: str  # Allow | Deny | Unknown
    nsg: str = ""  # the NSG's name ("" when there is none at this level: allowed)
    rule: str = ""  # the deciding rule
    priority: int = 0
    level: str = ""  # nic | subnet
    default: bool = False  # the deciding rule is one of Azure's defaults
    note: str = ""  # why it is unknown (which rule, which tag)

    @property
    def allowed(self) -> bool | None:
        return None if self.access == "Unknown" else self.access == "Allow"

    def describe(self) -> str:
        if not self.nsg:
            return f"no NSG on the {self.level or 'level'}: allowed"
        if self.access == "Unknown":
            return f"NSG {self.nsg} ({self.level}): unknown: {self.note}"
        verb = {"Allow": "allows", "Deny": "denies"}.get(self.access, self.access.lower())
        return f"NSG {self.nsg} ({self.level}) rule {self.rule} (priority {self.priority}) {verb}"


@dataclass(frozen=True, slots=True)
class NsgPath:
    """Both levels, in the order the flow meets them; `deciding` is the first deny (or unknown)."""

    steps: tuple[NsgVerdict, ...]

    @property
    def access(self) -> str:
        for v in self.steps:
            if v.access != "Allow":
                return v.access
        return "Allow"

    @property
    def deciding(self) -> NsgVerdict | None:
        return next((v for v in self.steps if v.access != "Allow"), None)


EPHEMERAL = (32768, 60999)  # Linux's ephemeral source ports: what a node's outbound flow uses

# a compiled rule: (rule, source bits, destination bits, source ports, destination ports, protocol)
_CRule = tuple[SecurityRule, int, int, tuple[tuple[int, int], ...], tuple[tuple[int, int], ...], str]


class _Table:
    """The distinct address specs of one side (sources or destinations) of an NSG's rules,
    and each address's bit mask over them (which specs cover it), cached. Prefixes are
    kept per length (network → bits), so an address costs one lookup per distinct prefix
    length, not one test per spec."""

    __slots__ = ("specs", "index", "why_unknown", "unknown", "any_bits", "internet_bits", "by_len", "masks", "vnet")

    def __init__(self, vnet: _Space) -> None:
        self.specs: list[str] = []
        self.index: dict[str, int] = {}
        self.why_unknown: dict[int, str] = {}  # bit -> why it cannot be resolved offline
        self.unknown = 0  # bits of the specs that cannot be resolved offline
        self.any_bits = 0  # "*", Any, 0.0.0.0/0
        self.internet_bits = 0
        self.by_len: dict[tuple[int, int], dict[int, int]] = {}  # (IP version, prefix length) -> network -> bits
        self.masks: dict[str, int] = {}
        self.vnet = vnet

    def _add_nets(self, nets: Iterable[Net], bit: int) -> None:
        for n in nets:
            shift = n.max_prefixlen - n.prefixlen
            table = self.by_len.setdefault((n.version, n.prefixlen), {})
            key = int(n.network_address) >> shift
            table[key] = table.get(key, 0) | bit

    def bits(self, items: Sequence[str]) -> int:
        b = 0
        for s in items:
            key = s.strip().lower()
            i = self.index.get(key)
            if i is None:
                i = self.index[key] = len(self.specs)
                self.specs.append(s)
                bit = 1 << i
                if key in ANY:
                    self.any_bits |= bit
                elif key == "virtualnetwork":
                    self._add_nets(self.vnet.nets, bit)
                elif key == "azureloadbalancer":
                    self._add_nets(_Space([f"{HOST_IP}/32"]).nets, bit)
                elif key == "internet":
                    self.internet_bits |= bit
                elif key.startswith("asg:"):
                    self.why_unknown[i] = f"application security group {s[4:]} (membership is not read)"
                    self.unknown |= bit
                elif (n := _net(s)) is not None:
                    self._add_nets((n,), bit)
                else:
                    self.why_unknown[i] = f"service tag {s}"
                    self.unknown |= bit
            b |= 1 << i
        return b

    def mask(self, ip_text: str) -> int:
        m = self.masks.get(ip_text)
        if m is not None:
            return m
        m = self.any_bits
        try:
            ip: Addr | None = ipaddress.ip_address(ip_text.strip())
        except ValueError:
            ip = None
        if ip is not None:
            value, version, width = int(ip), ip.version, ip.max_prefixlen
            for (v, length), table in self.by_len.items():
                if v == version:
                    m |= table.get(value >> (width - length), 0)
            if self.internet_bits and ip not in self.vnet and ip not in _PRIVATE:
                m |= self.internet_bits
        if len(self.masks) < _VERDICTS_MAX:
            self.masks[ip_text] = m
        return m

    def why(self, bits: int) -> str:
        return next((w for b, w in sorted(self.why_unknown.items()) if bits >> b & 1), "an unresolvable prefix")


@dataclass(slots=True)
class _Compiled:
    """One NSG's rules parsed once (per etag and tag space), with its caches."""

    nsg: Nsg
    rules: dict[str, list[_CRule]]
    src: _Table
    dst: _Table
    verdicts: dict[tuple[str, int, int, int, str, int, str], NsgVerdict] = field(default_factory=dict)


def _ports(ranges: Sequence[str]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for r in ranges:
        r = r.strip()
        if r in ("*", "any", "Any", "0-65535"):
            return ((0, 65535),)
        lo, _, hi = r.partition("-")
        try:
            a = int(lo)
            b = int(hi) if hi else a
        except ValueError:
            continue  # a malformed range matches nothing (ARM would have refused it)
        out.append((min(a, b), max(a, b)))
    return tuple(out)


def _compile(nsg: Nsg, tags: TagSpace) -> _Compiled:
    vnet = _Space(tags.virtual_network)
    src, dst = _Table(vnet), _Table(vnet)
    rules: dict[str, list[_CRule]] = {}
    for r in sorted(nsg.rules, key=lambda r: (r.priority, r.default)):
        proto = r.protocol.strip().lower()
        rules.setdefault(r.direction.strip().lower(), []).append(
            (
                r,
                src.bits(r.sources),
                dst.bits(r.destinations),
                _ports(r.source_ports),
                _ports(r.destination_ports),
                proto,
            )
        )
    return _Compiled(nsg, rules, src, dst)


_COMPILED: dict[tuple[str, str, str, tuple[tuple[str, ...], ...]], _Compiled] = {}


def compile_nsg(nsg: Nsg, tags: TagSpace) -> _Compiled:
    """The NSG parsed for evaluation, cached per (id, etag, tag space): a new etag (ARM's
    rule-set version) compiles anew; an NSG without an etag is keyed on its rules."""
    key = (nsg.id.lower(), nsg.etag or str(hash(nsg.rules)), nsg.name, tags.key)
    c = _COMPILED.get(key)
    if c is None:
        if len(_COMPILED) >= _CACHE_MAX:
            _COMPILED.pop(next(iter(_COMPILED)))
        c = _COMPILED[key] = _compile(nsg, tags)
    return c


def evaluate(nsg: Nsg | None, flow: Flow, tags: TagSpace, level: str = "") -> NsgVerdict:
    """One NSG's verdict for `flow` (None: no NSG at this level, allowed)."""
    if nsg is None:
        return NsgVerdict("Allow", level=level)
    return verdict_of(
        compile_nsg(nsg, tags),
        flow.direction,
        flow.source,
        flow.destination,
        flow.port,
        flow.protocol,
        level,
        flow.source_port,
    )


def verdict_of(
    c: _Compiled, direction: str, source: str, destination: str, port: int, protocol: str, level: str, sport: int = 0
) -> NsgVerdict:
    """The verdict of a compiled NSG, cached per (source class, destination class, port,
    protocol): the same object for every flow of the same class."""
    src, dst = c.src.mask(source), c.dst.mask(destination)
    key = (direction, src, dst, port, protocol, sport, level)
    v = c.verdicts.get(key)
    if v is not None:
        return v
    d, proto = direction.strip().lower(), protocol.strip().lower()
    idx, note = _scan(c, d, src, dst, port, proto, sport)
    name = c.nsg.name
    if idx < 0:  # no rule matched (an NSG body without default rules and no match): Azure's default deny
        v = NsgVerdict("Deny", name, "DenyAll" + direction, 65500, level, True, note)
    else:
        r = c.rules[d][idx][0]
        v = NsgVerdict("Unknown" if note else r.access, name, r.name, r.priority, level, r.default, note)
    if len(c.verdicts) < _VERDICTS_MAX:
        c.verdicts[key] = v
    return v


def _scan(c: _Compiled, direction: str, src: int, dst: int, port: int, proto: str, sport: int) -> tuple[int, str]:
    """(index of the deciding rule, "" or why it cannot be told). Rules that might match
    (an unresolvable tag) are remembered; the first certain match decides, and the verdict
    is certain only if every uncertain rule before it has the same access."""
    uncertain: list[tuple[SecurityRule, str]] = []
    for i, (r, sbits, dbits, sports, ports, rproto) in enumerate(c.rules.get(direction, [])):
        if rproto not in ("*", "any") and rproto != proto:
            continue
        if not any(lo <= port <= hi for lo, hi in ports):
            continue
        sport_doubt = ""
        if sport:
            if not any(lo <= sport <= hi for lo, hi in sports):
                continue
        elif sports != ((0, 65535),):  # the flow's source port is some ephemeral one
            lo_e, hi_e = EPHEMERAL
            if not any(lo <= hi_e and hi >= lo_e for lo, hi in sports):
                continue
            if not any(lo <= lo_e and hi >= hi_e for lo, hi in sports):
                sport_doubt = f"source ports {', '.join(r.source_ports)} (the flow's ephemeral port is not known)"
        s_known, d_known = src & sbits, dst & dbits
        s_unknown, d_unknown = sbits & c.src.unknown, dbits & c.dst.unknown
        if (not s_known and not s_unknown) or (not d_known and not d_unknown):
            continue
        if s_known and d_known and not sport_doubt:
            doubt = [(u, why) for u, why in uncertain if u.access.lower() != r.access.lower()]
            if doubt:
                u, why = doubt[0]
                return i, (
                    f"rule {u.name} (priority {u.priority}, {u.access}) uses {why}, which cannot be resolved "
                    f"offline; if it does not apply, rule {r.name} (priority {r.priority}) {r.access.lower()}s"
                )
            return i, ""
        spec = sport_doubt or (c.src.why(s_unknown) if not s_known else c.dst.why(d_unknown))
        uncertain.append((r, spec))
    return -1, ""


def evaluate_path(nic: Nsg | None, subnet: Nsg | None, flow: Flow, tags: TagSpace) -> NsgPath:
    """Both NSGs in the order the flow meets them (outbound: NIC then subnet; inbound:
    subnet then NIC). A deny at the first level ends the path there."""
    order = (("nic", nic), ("subnet", subnet))
    if flow.direction.strip().lower() == "inbound":
        order = order[::-1]
    steps: list[NsgVerdict] = []
    for level, nsg in order:
        v = evaluate(nsg, flow, tags, level)
        steps.append(v)
        if v.access == "Deny":
            break
    return NsgPath(tuple(steps))


def internet(ip: str, tags: TagSpace) -> bool:
    """Whether the ``Internet`` tag covers `ip` for this tag space."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return a not in _Space(tags.virtual_network) and a not in _PRIVATE


__all__ = [
    "DEFAULT_RULES",
    "HOST_IP",
    "Flow",
    "Nsg",
    "NsgPath",
    "SecurityRule",
    "TagSpace",
    "NsgVerdict",
    "compile_nsg",
    "evaluate",
    "evaluate_path",
    "internet",
    "parse_nsg",
    "parse_rule",
    "verdict_of",
]
