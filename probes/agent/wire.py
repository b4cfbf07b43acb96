"""The agent's JSON contract, schema ``aksnet-top/agent/v1``: what ``GET /v1/results``
answers and how the app turns it back into probe results.

The reader keeps a cursor: it asks for results with ``seq > since`` and next time passes
the ``seq`` it got. ``oldest`` is the oldest seq the agent still holds: when
``oldest > since + 1`` results were lost between two reads (the ring is ``feed_size``
results). A cursor beyond the agent's newest seq comes from an earlier run of the agent
(it restarted and counts from 1 again; ``started`` changed too): the answer then holds
everything and echoes ``since: 0``.

Compact on purpose (1,000 agents × ~700 results per read): results are positional lists;
resolvers, names and targets are listed once and referred to by index; error, fallback
and raw texts go into one table (``texts``, index 0 is "") so a repeated "no answer
before the deadline" costs two bytes; a raw answer travels only with the newest result
of its key (the app's history keeps only the last one anyway), capped at 1 KB.

Document (every key required)::

    {"schema": "aksnet-top/agent/v1", "node": "aks-…-vmss000001",
     "vantage": "node/aks-…-vmss000001", "version": "0.1.0",
     "started": 1717000000.0, "now": 1717000123.4,          # wall clock, s
     "since": 0, "seq": 812, "oldest": 1,                   # cursor, newest, oldest held
     "dns_interval": 10.0, "egress_interval": 10.0,
     "mode": "connect" | "syn" | null, "mode_requested": "auto", "fallback": "…",
     "qtype": "A",
     "resolvers": [{"key": "nodelocal", "kind": "nodelocal", "address": "169.254.20.10",
                    "port": 53, "target": null | ["127.0.0.1", 40123]}],
     "names": ["kubernetes.default.svc.cluster.local", …],
     "targets": ["mcr.microsoft.com:443", …],
     "texts": ["", "no answer before the deadline", …],
     "dns": [[seq, ts, resolver#, name#, outcome, latency_ms, answers, flags, rcode,
              error#, raw#, size, no_edns], …],            # flags: 1 = TC seen, 2 = via TCP;
                                                           # no_edns: outcome or null
     "egress": [[seq, ts, target#, address, mode, outcome, latency_ms, error#,
                 fallback#, via, raw#, proxy, status], …],
     "errors": [[ts, "message"], …]}

Lists may carry extra trailing items (later v1 agents); readers ignore them.

The shape is declared once, as msgspec structs (:class:`Page`; the result rows are
``array_like`` structs, so they travel as lists): the agent writes the document with the
standard library (:func:`probes.agent.page.encode`, re-exported here as ``encode``: the
agent also runs as a zipapp without msgspec) and the reader decodes straight into them, types and bounds checked by msgspec in one pass. What a
schema cannot say (an index within its table, a seq within the cursor's range, a target
that parses) is checked after. :func:`decode` raises only :class:`AgentDataError`, one
line naming the field (``dns[3] latency_ms``), whatever the bytes.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, NoReturn

import msgspec
from msgspec import Meta

from probes.agent.core import AgentError
from probes.agent.page import CONTENT_TYPE, SCHEMA, TC_SEEN, VIA_TCP, encode  # noqa: F401 - re-exported
from probes.dns.probe import DnsOutcome, DnsResult
from probes.dns.resolvers import Resolver, ResolverKind
from probes.egress.probe import EgressMode, EgressOutcome, EgressResult
from probes.egress.targets import Target, parse_target

MAX_BYTES = 8 * 1024 * 1024

# bounded types: a whole number the reader can store, a time or duration (JSON has no
# NaN/Infinity and msgspec refuses numbers out of range, so a float here is finite)
Count = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Seq = Annotated[int, Meta(ge=1, le=2**63 - 1)]
Index = int  # position in a table of the page: checked against the table after decoding
Port = Annotated[int, Meta(ge=1, le=65535)]
Seconds = Annotated[float, Meta(ge=0)]
Millis = Annotated[float, Meta(ge=0)]


class AgentDataError(ValueError):
    """The agent's answer cannot be used; the message is one line, for the status bar."""


# --- the schema -----------------------------------------------------------------------------


class Dial(msgspec.Struct, array_like=True, frozen=True):
    """Where a resolver is really dialled (``[host, port]``), when not its address."""

    host: str
    port: Port


class WireResolver(msgspec.Struct, frozen=True):
    key: Annotated[str, Meta(min_length=1)]
    kind: ResolverKind
    address: str
    port: Port
    target: Dial | None = None


class DnsRow(msgspec.Struct, array_like=True, frozen=True):
    seq: Seq
    timestamp: Seconds
    resolver: Index
    name: Index
    outcome: DnsOutcome
    latency_ms: Millis
    answers: Count
    flags: Annotated[int, Meta(ge=0, le=3)]  # TC_SEEN | VIA_TCP
    rcode: str
    error: Index
    raw: Index
    size: Count = 0  # answer bytes (later v1 agents; absent from older ones)
    no_edns: DnsOutcome | None = None  # a no-EDNS 512-byte client's outcome, when asked


class EgressRow(msgspec.Struct, array_like=True, frozen=True):
    seq: Seq
    timestamp: Seconds
    target: Index
    address: str
    mode: EgressMode
    outcome: EgressOutcome
    latency_ms: Millis
    error: Index
    fallback: Index
    via: str
    raw: Index
    proxy: str = ""  # host:port of the HTTP proxy (mode proxy; later v1 agents)
    status: Annotated[int, Meta(ge=0, le=999)] = 0  # its answer to CONNECT


class ErrorRow(msgspec.Struct, array_like=True, frozen=True):
    timestamp: Seconds
    message: str


class WireEcho(msgspec.Struct, frozen=True):
    ip: str = ""  # "" = no answer yet
    at: Seconds = 0.0
    error: str = ""


def _echo_ip(echo: WireEcho | None) -> str:
    """The echo's address, only when it is one (an agent's text is never trusted)."""
    if echo is None or not echo.ip:
        return ""
    try:
        return str(ipaddress.ip_address(echo.ip))
    except ValueError:
        _fail(f"agent answer: echo ip {echo.ip[:40]!r} is not an IP address")


class Page(msgspec.Struct, frozen=True):
    """One answer of ``GET /v1/results``; the fields in the order they are written."""

    schema: str
    node: str
    vantage: str
    version: str
    started: Seconds
    now: Seconds
    since: Count
    seq: Count
    oldest: Count
    dns_interval: Seconds
    egress_interval: Seconds
    mode: EgressMode | None
    mode_requested: str
    fallback: str
    qtype: str
    resolvers: list[WireResolver]
    names: list[str]
    targets: list[str]
    texts: list[str]
    dns: list[DnsRow]
    egress: list[EgressRow]
    errors: list[ErrorRow]
    echo: WireEcho | None = None  # the egress IP an echo endpoint saw (later v1 agents; null = off)


class _Head(msgspec.Struct):
    """Only the schema, to say "another version" before any field error."""

    schema: Any = None


_DECODER = msgspec.json.Decoder(Page)
_HEAD = msgspec.json.Decoder(_Head)
_ANY = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class AgentReport:
    """One answer of one agent, as real probe results stamped with the reader's vantage."""

    vantage: str  # given by the reader (from the pod's nodeName), stamped on every result
    node: str  # what the agent says its node is (compare, never trust)
    claimed_vantage: str
    version: str
    started: float
    now: float
    since: int  # the cursor the agent answered for (0 after a restart)
    seq: int  # newest seq: the next cursor
    oldest: int  # oldest seq held by the agent
    dns_interval: float
    egress_interval: float
    mode: EgressMode | None  # egress mode in use (None: no check ran yet)
    mode_requested: str
    fallback: str
    qtype: str
    resolvers: tuple[Resolver, ...]
    names: tuple[str, ...]
    targets: tuple[str, ...]
    dns: tuple[DnsResult, ...]  # oldest first
    egress: tuple[EgressResult, ...]  # oldest first
    errors: tuple[AgentError, ...]
    echo_ip: str = ""  # the egress IP the agent's echo endpoint saw ("" = off or none yet)
    echo_error: str = ""

    @property
    def missed(self) -> int:
        """Results the agent dropped from its ring before this read could fetch them."""
        return max(0, self.oldest - self.since - 1)


# --- decode ---------------------------------------------------------------------------------


def _fail(msg: str) -> NoReturn:
    if len(msg.splitlines()) > 1:  # an agent's text quoted in the message: escaped, one line
        msg = repr(msg)[1:-1]
    raise AgentDataError(msg)


def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "…"


_ROWS: dict[str, type[msgspec.Struct]] = {"dns": DnsRow, "egress": EgressRow, "errors": ErrorRow}
_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "array": "a list",
    "object": "an object",
    "null": "null",
    "bool": "true/false",
}
_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")
_CHOICES: dict[tuple[str, str], type[Enum]] = {
    ("dns", "outcome"): DnsOutcome,
    ("egress", "outcome"): EgressOutcome,
    ("egress", "mode"): EgressMode,
    ("", "mode"): EgressMode,
    ("resolvers", "kind"): ResolverKind,
}


def _where(path: str) -> tuple[str, str, str]:
    """msgspec's ``.dns[3][5]`` -> ("dns[3] latency_ms", table "dns", field "latency_ms")."""
    out, table, name = "", "", ""
    steps = list(_STEP.finditer(path))
    for n, m in enumerate(steps):
        key, idx = m.group(1), m.group(2)
        if key is not None:
            out += ("." if out else "") + key
            name = key
            if n == 0:
                table = key
        elif n == 2 and table in _ROWS:  # a column of a row: its name, not its position
            fields = _ROWS[table].__struct_fields__
            name = fields[int(idx)] if int(idx) < len(fields) else idx
            out += " " + name
        else:
            out += f"[{idx}]"
    return out, (table if len(steps) > 1 else ""), name


_NOTHING = object()


def _value_at(data: bytes, path: str) -> Any:
    """The value msgspec complained about, for the message (error path only)."""
    try:
        node: Any = _ANY.decode(data)
        for m in _STEP.finditer(path):
            node = node[m.group(1)] if m.group(1) is not None else node[int(m.group(2))]
        return node
    except Exception:  # noqa: BLE001 - only a nicer message is at stake
        return _NOTHING


def _explain(e: msgspec.ValidationError, data: bytes) -> str:
    """msgspec's "Expected `int` >= 1 - at `$.dns[3][0]`" in the reader's words."""
    m = _AT.match(str(e).splitlines()[0] if str(e) else "")
    what, path = (m.group("what"), m.group("path") or "") if m else (str(e), "")
    where, table, name = _where(path)
    if what.startswith("Expected `") and "`array` of" not in what:
        value = _value_at(data, path) if path else _NOTHING
        if value is not _NOTHING:
            what = what.split(", got ")[0] + f", got {_show(value)}"
    if what == "Number out of range":
        return f"agent answer: {where} is a number out of range"
    missing = re.match(r"Object missing required field `(\w+)`", what)
    if missing:
        return f"agent answer lacks {where + '.' if where else ''}{missing.group(1)}"
    if not where and what.startswith("Expected `object`"):
        return f"agent answered JSON that is not an object ({what})"
    short = re.match(r"Expected `array` of at least length (\d+), got (\d+)", what)
    if short:
        return f"agent answer: {where} has {short.group(2)} items, expected at least {short.group(1)}"
    bad = re.match(r"Invalid enum value (.*)", what)
    if bad:
        choices = _CHOICES.get((table, name))
        known = ", ".join(c.value for c in choices) if choices else "the known values"
        return f"agent answer: {where} {bad.group(1)[:40]} is not one of {known}"
    if what.startswith("Expected "):
        said = re.sub(r"`(\w+)`", lambda w: _WORDS.get(w.group(1), w.group(1)), what[len("Expected ") :])
        said = re.sub(r"(\d)\.0\b", r"\1", said)  # ">= 0.0" -> ">= 0"
        return f"agent answer: {where or 'the answer'} should be {said}"
    return f"agent answer: {where or 'the answer'}: {what}"


def _index(v: int, table: list | tuple, where: str) -> int:
    if not 0 <= v < len(table):
        _fail(f"agent answer: {where} refers to entry {v} of a list of {len(table)}")
    return v


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def decode(data: bytes, vantage: str) -> AgentReport:
    """Validate an agent's answer and rebuild its results, stamped with `vantage`.
    Raises AgentDataError (one line) for anything malformed, never another exception."""
    try:
        return _decode(data, vantage)
    except AgentDataError:
        raise
    except RecursionError:
        raise AgentDataError("agent answer is nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - a reader of hostile bytes must not crash
        _fail(f"agent answer could not be read ({type(e).__name__}: {e})"[:200])


def _parse(data: bytes) -> Page:
    try:
        return _DECODER.decode(data)
    except msgspec.ValidationError as e:
        try:
            schema = _HEAD.decode(data).schema
        except (msgspec.ValidationError, RecursionError):  # not an object at all
            schema = SCHEMA
        if schema != SCHEMA:
            _fail(
                f"agent speaks schema {_show(schema)}, expected {SCHEMA} "
                "(an agent of another aksnet-top version: reinstall it with `aksnet-top agent install`)"
            )
        _fail(_explain(e, data)[:300])
    except msgspec.DecodeError as e:
        head = bytes(data[:40]).decode("utf-8", "replace").replace("\n", " ")
        _fail(f"agent answered something that is not JSON: {head!r} ({str(e).split(' (')[0]})")


def _decode(data: bytes, vantage: str) -> AgentReport:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        _fail(f"agent answer should be bytes, got {type(data).__name__}")
    if len(data) > MAX_BYTES:
        _fail(
            f"agent answered {len(data) / 1048576:.1f} MB, more than the {MAX_BYTES // 1048576} MB "
            "limit; lower its --results"
        )
    page = _parse(data)
    if page.schema != SCHEMA:
        _fail(
            f"agent speaks schema {_show(page.schema)}, expected {SCHEMA} "
            "(an agent of another aksnet-top version: reinstall it with `aksnet-top agent install`)"
        )
    since, seq, oldest = page.since, page.seq, page.oldest
    if since > seq:
        _fail(f"agent answer: since ({since}) is beyond seq ({seq})")
    if oldest > seq + 1:
        _fail(f"agent answer: oldest ({oldest}) is beyond seq ({seq}) + 1")
    # every text a result holds is interned: the same resolver, address, name and rcode
    # strings from one read to the next, so the history keeps each result without copying
    # it to share them (probes.engine.history._lean; an agent's read carries ~40 results)
    intern = sys.intern
    vantage = intern(vantage)
    resolvers = tuple(
        Resolver(
            intern(r.key),
            r.kind,
            intern(r.address),
            r.port,
            (r.target.host, r.target.port) if r.target is not None else None,
        )
        for r in page.resolvers
    )
    names = [intern(n) for n in page.names]
    targets: list[Target] = []
    for i, t in enumerate(page.targets):
        try:
            targets.append(parse_target(t))
        except ValueError as e:
            _fail(f"agent answer: targets[{i}]: {e}")
    texts = [intern(t) for t in page.texts]
    if not texts or texts[0] != "":
        _fail("agent answer: texts[0] should be the empty text")
    dialled = [intern(_hostport(*r.dest)) for r in resolvers]
    qtype = intern(page.qtype)

    dns: list[DnsResult] = []
    for i, d in enumerate(page.dns):
        w = f"dns[{i}]"
        if not since < d.seq <= seq:
            _fail(f"agent answer: {w} has seq {d.seq}, outside {since + 1}..{seq}")
        ri = _index(d.resolver, resolvers, w + " resolver")
        r = resolvers[ri]
        dns.append(
            DnsResult(
                vantage=vantage,
                resolver=r.key,
                address=r.address,
                target=dialled[ri],
                qname=names[_index(d.name, names, w + " name")],
                qtype=qtype,
                outcome=d.outcome,
                latency_ms=d.latency_ms,
                answers=d.answers,
                tc_seen=bool(d.flags & TC_SEEN),
                via_tcp=bool(d.flags & VIA_TCP),
                rcode=intern(d.rcode),
                error=texts[_index(d.error, texts, w + " error")],
                raw=texts[_index(d.raw, texts, w + " raw")],
                timestamp=d.timestamp,
                size=d.size,
                no_edns=d.no_edns.value if d.no_edns is not None else "",
            )
        )
    egress: list[EgressResult] = []
    for i, eg in enumerate(page.egress):
        w = f"egress[{i}]"
        if not since < eg.seq <= seq:
            _fail(f"agent answer: {w} has seq {eg.seq}, outside {since + 1}..{seq}")
        tgt = targets[_index(eg.target, targets, w + " target")]
        egress.append(
            EgressResult(
                vantage=vantage,
                target=intern(tgt.text),
                address=intern(eg.address),
                port=tgt.port,
                mode=eg.mode,
                outcome=eg.outcome,
                latency_ms=eg.latency_ms,
                error=texts[_index(eg.error, texts, w + " error")],
                timestamp=eg.timestamp,
                fallback=texts[_index(eg.fallback, texts, w + " fallback")],
                via=intern(eg.via),
                raw=texts[_index(eg.raw, texts, w + " raw")],
                proxy=intern(eg.proxy),
                status=eg.status,
            )
        )
    return AgentReport(
        vantage=vantage,
        node=page.node,
        claimed_vantage=page.vantage,
        version=page.version,
        started=page.started,
        now=page.now,
        since=since,
        seq=seq,
        oldest=oldest,
        dns_interval=page.dns_interval,
        egress_interval=page.egress_interval,
        mode=page.mode,
        mode_requested=page.mode_requested,
        fallback=page.fallback,
        qtype=qtype,
        resolvers=resolvers,
        names=tuple(names),
        targets=tuple(t.text for t in targets),
        dns=tuple(dns),
        egress=tuple(egress),
        errors=tuple(AgentError(x.timestamp, x.message) for x in page.errors),
        echo_ip=_echo_ip(page.echo),
        echo_error=page.echo.error[:300] if page.echo is not None else "",
    )
