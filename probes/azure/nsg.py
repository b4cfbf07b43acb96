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
from typing import Any

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
@dataclass(frozen=True, slots=True)
class Flow:
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


@dataclass(slots=True)
class _Compiled:
    """One NSG's rules parsed once (per etag and tag space), with its caches."""

    nsg: Nsg
    rules: dict[str, list[_CRule]]
    specs: list[str]  # distinct address specs; a rule's (src bits, dst bits) index into it
    matchers: list[Any]  # per spec: _Space, True (any), "internet", or a str (why unknown)
    unknown_bits: int
    vnet: _Space
    ip_masks: dict[str, int] = field(default_factory=dict)
    verdicts: dict[tuple[str, int, int, int, str, int], tuple[int, str]] = field(default_factory=dict)


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
    specs: list[str] = []
    index: dict[str, int] = {}
    matchers: list[Any] = []
    unknown = 0
    vnet = _Space(tags.virtual_network)

    def bits(items: Sequence[str]) -> int:
        nonlocal unknown
        b = 0
        for s in items:
            key = s.strip().lower()
            if key not in index:
                index[key] = len(specs)
                specs.append(s)
                if key in ANY:
                    m: Any = True
                elif key == "virtualnetwork":
                    m = vnet
                elif key == "azureloadbalancer":
                    m = _Space([f"{HOST_IP}/32"])
                elif key == "internet":
                    m = "internet"
                elif key.startswith("asg:"):
                    m = f"application security group {s[4:]} (membership is not read)"
                    unknown |= 1 << index[key]
                elif (n := _net(s)) is not None:
                    m = _Space([str(n)])
                else:
                    m = f"service tag {s}"
                    unknown |= 1 << index[key]
                matchers.append(m)
            b |= 1 << index[key]
        return b

    rules: dict[str, list[_CRule]] = {}
    for r in sorted(nsg.rules, key=lambda r: (r.priority, r.default)):
        proto = r.protocol.strip().lower()
        rules.setdefault(r.direction.strip().lower(), []).append(
            (r, bits(r.sources), bits(r.destinations), _ports(r.source_ports), _ports(r.destination_ports), proto)
        )
    return _Compiled(nsg, rules, specs, matchers, unknown, vnet)


def _mask(c: _Compiled, ip_text: str) -> int:
    m = c.ip_masks.get(ip_text)
    if m is not None:
        return m
    try:
        ip = ipaddress.ip_address(ip_text.strip())
    except ValueError:
        ip = None
    m = 0
    vnet = c.vnet
    for i, matcher in enumerate(c.matchers):
        if matcher is True:
            hit = True
        elif ip is None:
            hit = False
        elif isinstance(matcher, _Space):
            hit = ip in matcher
        elif matcher == "internet":
            hit = ip not in vnet and ip not in _PRIVATE
        else:
            hit = False  # unknown specs live in unknown_bits
        if hit:
            m |= 1 << i
    if len(c.ip_masks) < _VERDICTS_MAX:
        c.ip_masks[ip_text] = m
    return m


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
    c = compile_nsg(nsg, tags)
    src, dst = _mask(c, flow.source), _mask(c, flow.destination)
    proto = flow.protocol.strip().lower()
    direction = flow.direction.strip().lower()
    key = (direction, src, dst, flow.port, proto, flow.source_port)
    hit = c.verdicts.get(key)
    if hit is None:
        hit = _scan(c, direction, src, dst, flow.port, proto, flow.source_port)
        if len(c.verdicts) < _VERDICTS_MAX:
            c.verdicts[key] = hit
    idx, note = hit
    rules = c.rules.get(direction, [])
    if idx < 0:  # no rule matched (an NSG body without default rules and no match): Azure's default deny
        return NsgVerdict("Deny", nsg.name, "DenyAll" + flow.direction, 65500, level, True, note)
    r = rules[idx][0]
    if note:
        return NsgVerdict("Unknown", nsg.name, r.name, r.priority, level, r.default, note)
    return NsgVerdict(r.access, nsg.name, r.name, r.priority, level, r.default)


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
        s_unknown, d_unknown = sbits & c.unknown_bits, dbits & c.unknown_bits
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
        doubt_bits = (0 if s_known else s_unknown) | (0 if d_known else d_unknown)
        spec = sport_doubt or next(
            (str(c.matchers[b]) for b in range(len(c.specs)) if doubt_bits >> b & 1), "an unresolvable prefix"
        )
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
]
