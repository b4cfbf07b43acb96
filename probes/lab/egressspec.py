"""How the lab's egress world behaves: plain data, validated, no sockets.

A scenario may carry an ``egress:`` section. ``parse_egress_section(data, where)`` turns
it into an :class:`EgressLabSpec`; the demo (probes/lab/egressdemo.py) asks
``spec.view(node)`` how each name looks from that node and builds, from that, per-node
DNS answers pointing at loopback targets that really accept, refuse or drop SYNs. Probes
never see this file: they only see DNS answers and packets.

Format (every key optional)::

    egress:
      names:                          # every node's view
        mcr.microsoft.com: {443: drop}        # F8: port 443 dropped, other ports open
        example.org: refused                  # every port answers RST
        gone.example.com: nxdomain            # the name does not exist: dns-nxdomain
        broken.example.com: servfail          # the node's resolver answers SERVFAIL: dns-servfail
        slow.example.com: dns-timeout         # the node's resolver never answers: dns-timeout
        "*": open                             # every other name the lab knows (default)
      nodes:                          # per node: 'pool/N' (VMSS instance N), an index, or a name
        nodepool1/1:
          "*": drop                           # every name times out from this node ...
          login.microsoftonline.com: open     # ... except this one
        userpool/0: refused                   # shorthand for {"*": refused}

A *rule* (the value of a name) is a behaviour for every port — ``open`` (SYN-ACK),
``refused`` (RST), ``drop`` (the name resolves, then no answer to the SYN: timeout) — or
a DNS failure for the name from that view, before any SYN: ``nxdomain`` (the lab's DNS
answers NXDOMAIN), ``servfail`` (it answers SERVFAIL) or ``dns-timeout`` (it never
answers) — or a mapping ``{PORT: behaviour, ..., default: behaviour}`` (ports 1-65535;
``default`` is ``open`` unless given; a DNS failure has no port). The lab knows AKS's required endpoint names (probes.egress.targets.AKS_REQUIRED) and every
name listed here; any other name gets NXDOMAIN. Precedence for a node: its own name
rule, its ``"*"``, the global name rule, the global ``"*"``.

Any unknown key or bad value raises ``ValueError`` naming the key path, e.g.
``x.yaml: egress.names.mcr.microsoft.com.443: unknown behaviour 'explode'; expected
open, refused or drop``.

The DNS failures are answered by the view's own DNS responder (probes/lab/egressdemo.py),
so the probe tells them apart from what comes back on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from .schemabase import Doc, M, convert

BEHAVIOURS = ("open", "refused", "drop")
NXDOMAIN = "nxdomain"
SERVFAIL = "servfail"
DNS_TIMEOUT = "dns-timeout"
DNS_KINDS = (NXDOMAIN, SERVFAIL, DNS_TIMEOUT)  # the name fails to resolve: no port, no SYN
EVERY = "*"


@dataclass(frozen=True, slots=True)
class PortRule:
    """What a name's host does with a SYN, per port."""

    default: str = "open"  # open | refused | drop | nxdomain | servfail | dns-timeout (no port rules then)
    ports: tuple[tuple[int, str], ...] = ()  # (port, behaviour), sorted, differing from default

    def at(self, port: int) -> str:
        for p, b in self.ports:
            if p == port:
                return b
        return self.default

    @property
    def nxdomain(self) -> bool:
        return self.default == NXDOMAIN

    @property
    def dns(self) -> bool:
        """The name does not resolve from this view (nxdomain, servfail, dns-timeout)."""
        return self.default in DNS_KINDS

    @property
    def uniform(self) -> bool:
        return not self.ports


OPEN = PortRule()


@dataclass(frozen=True, slots=True)
class EgressLabSpec:
    names: Mapping[str, PortRule] = field(default_factory=dict)  # name or "*" -> rule
    nodes: Mapping[str, Mapping[str, PortRule]] = field(default_factory=dict)  # node -> name/"*" -> rule

    def known(self, defaults: Iterable[str] = ()) -> list[str]:
        """Names the lab's DNS knows (answered unless a rule says a DNS failure), sorted."""
        out = {n for n in defaults}
        out |= {n for n in self.names if n != EVERY}
        for rules in self.nodes.values():
            out |= {n for n in rules if n != EVERY}
        return sorted(out)

    def view(self, node: str | None, names: Iterable[str]) -> dict[str, PortRule]:
        """How each of `names` looks from `node` (None: the view of every other node)."""
        base = self.names.get(EVERY, OPEN)
        own = self.nodes.get(node, {}) if node is not None else {}
        out = {}
        for n in names:
            if n in own:
                out[n] = own[n]
            elif EVERY in own:
                out[n] = own[EVERY]
            else:
                out[n] = self.names.get(n, base)
        return out


# --- the format (msgspec structs) --------------------------------------------------------

Rule = Annotated[
    str | dict[str | int, Any],
    M(
        error=(
            "must be a behaviour (open, refused, drop, nxdomain, servfail, dns-timeout) "
            "or a mapping of port: behaviour, e.g. {{443: drop}}"
        ),
        description=(
            "open | refused | drop | nxdomain | servfail | dns-timeout, or {PORT: behaviour, ..., default: behaviour}"
        ),
    ),
]


class EgressDoc(Doc, kw_only=True):
    """How each node sees the names it checks (docs/scenarios.md, the egress: section)."""

    unknown_key: ClassVar[str] = "unknown key; expected one of {allowed}"

    names: Annotated[
        dict[str | int, Rule],
        M(error="must be a mapping of name: rule", description='every node\'s view; "*" = every other name'),
    ] = {}
    nodes: Annotated[
        dict[str | int, Annotated[str | dict[str | int, Rule], M(error="must be a mapping of name: rule")]],
        M(
            error="must be a mapping of node: {{name: rule}}",
            description="per node ('pool/N', an index or a name): a rule for every name, or name: rule",
        ),
    ] = {}


# --- building ----------------------------------------------------------------------------


def _err(where: str, path: str, msg: str) -> ValueError:
    return ValueError(f"{where}: {path}: {msg}")


def _behaviour(value: Any, where: str, path: str, *, allow_dns: bool) -> str:
    allowed = BEHAVIOURS + (DNS_KINDS if allow_dns else ())
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        listed = ", ".join(allowed[:-1]) + " or " + allowed[-1]
        raise _err(where, path, f"unknown behaviour {value!r}; expected {listed}")
    return value.strip().lower()


def _rule(value: Any, where: str, path: str) -> PortRule:
    if isinstance(value, str):
        return PortRule(_behaviour(value, where, path, allow_dns=True))
    if not isinstance(value, Mapping) or not value:
        raise _err(
            where,
            path,
            "must be a behaviour (open, refused, drop, nxdomain, servfail, dns-timeout) "
            "or a mapping of port: behaviour, e.g. {443: drop}",
        )
    default = "open"
    ports: dict[int, str] = {}
    for k, v in value.items():
        kpath = f"{path}.{k}"
        if k == "default":
            default = _behaviour(v, where, kpath, allow_dns=False)
            continue
        if isinstance(k, bool) or not isinstance(k, int):
            if isinstance(k, str) and k.isdigit():
                k = int(k)
            else:
                raise _err(where, kpath, "must be a port number from 1 to 65535 or 'default'")
        if not 1 <= k <= 65535:
            raise _err(where, kpath, "must be a port number from 1 to 65535 or 'default'")
        ports[k] = _behaviour(v, where, kpath, allow_dns=False)
    return PortRule(default, tuple(sorted((p, b) for p, b in ports.items() if b != default)))


def _rules(data: Any, where: str, path: str) -> dict[str, PortRule]:
    # lazy: probes.dns.resolvers pulls in probes.kube.model (~35 ms), and only
    # scenarios that list names need it
    from probes.dns.resolvers import validate_name

    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise _err(where, path, "must be a mapping of name: rule")
    out: dict[str, PortRule] = {}
    for name, value in data.items():
        npath = f"{path}.{name}"
        key = str(name).strip().rstrip(".").lower()
        if key != EVERY:
            try:
                validate_name(key)
            except ValueError as e:
                raise _err(where, npath, str(e)) from None
            if key.endswith(".cluster.local") or key == "cluster.local":
                raise _err(where, npath, "cluster names are not egress targets")
        out[key] = _rule(value, where, npath)
    return out


def parse_egress_section(data: Any, where: str) -> EgressLabSpec:
    """Validate a scenario's ``egress:`` section (the YAML data, or already an
    :class:`EgressDoc`); `where` prefixes messages (a file name)."""
    if data is None:
        return EgressLabSpec()
    doc = data if isinstance(data, EgressDoc) else convert(data, EgressDoc, where, "egress")
    names = _rules(doc.names, where, "egress.names")
    nodes = {}
    for ref, rules in doc.nodes.items():
        if isinstance(rules, str):  # shorthand: `nodepool1/1: drop` = every name from that node
            nodes[str(ref)] = {EVERY: _rule(rules, where, f"egress.nodes.{ref}")}
            continue
        nodes[str(ref)] = _rules(rules, where, f"egress.nodes.{ref}")
    return EgressLabSpec(names, nodes)
