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
              error#, raw#], …],                           # flags: 1 = TC seen, 2 = via TCP
     "egress": [[seq, ts, target#, address, mode, outcome, latency_ms, error#,
                 fallback#, via, raw#], …],
     "errors": [[ts, "message"], …]}

Lists may carry extra trailing items (later v1 agents); readers ignore them.
:func:`decode` validates everything and raises only :class:`AgentDataError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from probes.agent.core import AgentError
from probes.dns.probe import DnsResult
from probes.dns.probe import DnsOutcome
from probes.egress.probe import EgressResult, EgressMode
from probes.egress.probe import EgressOutcome
from probes.dns.resolvers import Resolver, ResolverKind
from probes.egress.targets import Target, parse_target

SCHEMA = "aksnet-top/agent/v1"
MAX_BYTES = 8 * 1024 * 1024
CONTENT_TYPE = "application/json"

_DNS_OUTCOMES = {o.value: o for o in DnsOutcome}
_EGRESS_OUTCOMES = {o.value: o for o in EgressOutcome}
_MODES = {m.value: m for m in EgressMode}
_KINDS = {k.value: k for k in ResolverKind}
TC_SEEN, VIA_TCP = 1, 2


class AgentDataError(ValueError):
    """The agent's answer cannot be used; the message is one line, for the status bar."""


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

    @property
    def missed(self) -> int:
        """Results the agent dropped from its ring before this read could fetch them."""
        return max(0, self.oldest - self.since - 1)


# --- encode ---------------------------------------------------------------------------------

def _r3(x: float) -> float:
    return round(x, 3) if math.isfinite(x) else 0.0


def encode(agent: Any, since: int = 0) -> bytes:
    """The agent's results with seq > `since`, as JSON bytes (see the module docstring)."""
    s = agent.settings
    since = agent.effective_since(since)
    r_index = {r.key: i for i, r in enumerate(s.resolvers)}
    n_index = {n: i for i, n in enumerate(s.names)}
    t_index = {t.text: i for i, t in enumerate(s.targets)}
    texts: list[str] = [""]
    t_of: dict[str, int] = {"": 0}

    def text(v: str) -> int:
        i = t_of.get(v)
        if i is None:
            i = t_of[v] = len(texts)
            texts.append(v)
        return i

    raws = agent.raw_since(since)
    resolvers = list(s.resolvers)
    names = list(s.names)
    targets = [t.text for t in s.targets]
    dns: list[list[Any]] = []
    egress: list[list[Any]] = []
    for seq, r in agent.results_since(since):
        raw = text(raws[seq]) if seq in raws else 0
        if isinstance(r, DnsResult):
            ri = r_index.get(r.resolver)
            if ri is None:  # not planned (cannot happen with settings_for): list it
                ri = r_index[r.resolver] = len(resolvers)
                resolvers.append(Resolver(r.resolver, ResolverKind.CUSTOM, r.address))
            ni = n_index.get(r.qname)
            if ni is None:
                ni = n_index[r.qname] = len(names)
                names.append(r.qname)
            dns.append([seq, _r3(r.timestamp), ri, ni, r.outcome.value, _r3(r.latency_ms), r.answers,
                        (TC_SEEN if r.tc_seen else 0) | (VIA_TCP if r.via_tcp else 0), r.rcode,
                        text(r.error), raw])
        else:
            ti = t_index.get(r.target)
            if ti is None:
                ti = t_index[r.target] = len(targets)
                targets.append(r.target)
            egress.append([seq, _r3(r.timestamp), ti, r.address, r.mode.value, r.outcome.value,
                           _r3(r.latency_ms), text(r.error), text(r.fallback), r.via, raw])
    mode = agent.mode
    doc = {
        "schema": SCHEMA, "node": s.node, "vantage": s.vantage, "version": agent.version,
        "started": _r3(agent.started), "now": _r3(agent.now()),
        "since": since, "seq": agent.seq, "oldest": agent.oldest,
        "dns_interval": s.dns_interval, "egress_interval": s.egress_interval,
        "mode": mode.value if mode is not None else None, "mode_requested": s.mode,
        "fallback": agent.fallback, "qtype": s.qtype,
        "resolvers": [{"key": r.key, "kind": r.kind.value, "address": r.address, "port": r.port,
                       "target": list(r.target) if r.target is not None else None}
                      for r in resolvers],
        "names": names, "targets": targets, "texts": texts, "dns": dns, "egress": egress,
        "errors": [[_r3(e.timestamp), e.message] for e in agent.errors],
    }
    return orjson.dumps(doc)


# --- decode ---------------------------------------------------------------------------------

def _fail(msg: str) -> NoReturn:
    raise AgentDataError(msg)


def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "…"


def _field(d: dict, key: str, where: str) -> Any:
    if key not in d:
        _fail(f"agent answer lacks {where}{key}")
    return d[key]


def _str(v: Any, where: str) -> str:
    if not isinstance(v, str):
        _fail(f"agent answer: {where} should be text, got {_show(v)}")
    return v


def _int(v: Any, where: str, lo: int = 0, hi: int = 2 ** 63 - 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        _fail(f"agent answer: {where} should be a whole number from {lo} to {hi}, got {_show(v)}")
    return v


def _num(v: Any, where: str, lo: float = 0.0) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        _fail(f"agent answer: {where} should be a number, got {_show(v)}")
    f = float(v)
    if not math.isfinite(f) or f < lo:
        _fail(f"agent answer: {where} should be a finite number >= {lo:g}, got {_show(v)}")
    return f


def _list(v: Any, where: str, min_len: int = 0) -> list:
    if not isinstance(v, list):
        _fail(f"agent answer: {where} should be a list, got {_show(v)}")
    if len(v) < min_len:
        _fail(f"agent answer: {where} has {len(v)} items, expected at least {min_len}")
    return v


def _index(v: Any, table: list | tuple, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < len(table):
        _fail(f"agent answer: {where} refers to entry {_show(v)} of a list of {len(table)}")
    return v


def _enum(v: Any, table: dict, where: str) -> Any:
    if not isinstance(v, str) or v not in table:
        _fail(f"agent answer: {where} {_show(v)} is not one of {', '.join(table)}")
    return table[v]


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _resolver(v: Any, i: int) -> Resolver:
    where = f"resolvers[{i}]."
    if not isinstance(v, dict):
        _fail(f"agent answer: resolvers[{i}] should be an object, got {_show(v)}")
    key = _str(_field(v, "key", where), where + "key")
    if not key:
        _fail(f"agent answer: {where}key is empty")
    kind = _enum(_field(v, "kind", where), _KINDS, where + "kind")
    address = _str(_field(v, "address", where), where + "address")
    port = _int(_field(v, "port", where), where + "port", 1, 65535)
    t = v.get("target")
    target = None
    if t is not None:
        tl = _list(t, where + "target", 2)
        target = (_str(tl[0], where + "target[0]"), _int(tl[1], where + "target[1]", 1, 65535))
    return Resolver(key, kind, address, port, target)


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
        raise AgentDataError(f"agent answer could not be read ({type(e).__name__}: {e})"[:200]) from None


def _decode(data: bytes, vantage: str) -> AgentReport:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        _fail(f"agent answer should be bytes, got {type(data).__name__}")
    if len(data) > MAX_BYTES:
        _fail(f"agent answered {len(data) / 1048576:.1f} MB, more than the {MAX_BYTES // 1048576} MB "
              "limit; lower its --results")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        head = bytes(data[:40]).decode("utf-8", "replace").replace("\n", " ")
        _fail(f"agent answered something that is not JSON: {head!r} ({str(e).split(':')[0]})")
    if not isinstance(doc, dict):
        _fail(f"agent answered JSON that is not an object: {_show(doc)}")
    schema = doc.get("schema")
    if schema != SCHEMA:
        _fail(f"agent speaks schema {_show(schema)}, expected {SCHEMA} "
              "(an agent of another aksnet-top version: reinstall it with `aksnet-top agent install`)")
    g = lambda k: _field(doc, k, "")  # noqa: E731
    node = _str(g("node"), "node")
    claimed = _str(g("vantage"), "vantage")
    version = _str(g("version"), "version")
    started = _num(g("started"), "started")
    now = _num(g("now"), "now")
    since = _int(g("since"), "since")
    seq = _int(g("seq"), "seq")
    oldest = _int(g("oldest"), "oldest")
    if since > seq:
        _fail(f"agent answer: since ({since}) is beyond seq ({seq})")
    if oldest > seq + 1:
        _fail(f"agent answer: oldest ({oldest}) is beyond seq ({seq}) + 1")
    dns_interval = _num(g("dns_interval"), "dns_interval")
    egress_interval = _num(g("egress_interval"), "egress_interval")
    m = g("mode")
    mode = None if m is None else _enum(m, _MODES, "mode")
    mode_requested = _str(g("mode_requested"), "mode_requested")
    fallback = _str(g("fallback"), "fallback")
    qtype = _str(g("qtype"), "qtype")
    resolvers = tuple(_resolver(r, i) for i, r in enumerate(_list(g("resolvers"), "resolvers")))
    names = tuple(_str(n, f"names[{i}]") for i, n in enumerate(_list(g("names"), "names")))
    tlist = _list(g("targets"), "targets")
    targets: list[Target] = []
    for i, t in enumerate(tlist):
        try:
            targets.append(parse_target(_str(t, f"targets[{i}]")))
        except ValueError as e:
            _fail(f"agent answer: targets[{i}]: {e}")
    texts = _list(g("texts"), "texts")
    for i, t in enumerate(texts):
        _str(t, f"texts[{i}]")
    if not texts or texts[0] != "":
        _fail("agent answer: texts[0] should be the empty text")
    dialled = [_hostport(*r.dest) for r in resolvers]

    dns: list[DnsResult] = []
    for i, item in enumerate(_list(g("dns"), "dns")):
        w = f"dns[{i}]"
        it = _list(item, w, 11)
        s = _int(it[0], w + " seq", 1)
        if not since < s <= seq:
            _fail(f"agent answer: {w} has seq {s}, outside {since + 1}..{seq}")
        ri = _index(it[2], resolvers, w + " resolver")
        flags = _int(it[7], w + " flags", 0, 3)
        r = resolvers[ri]
        dns.append(DnsResult(
            vantage=vantage, resolver=r.key, address=r.address, target=dialled[ri],
            qname=names[_index(it[3], names, w + " name")], qtype=qtype,
            outcome=_enum(it[4], _DNS_OUTCOMES, w + " outcome"),
            latency_ms=_num(it[5], w + " latency_ms"), answers=_int(it[6], w + " answers"),
            tc_seen=bool(flags & TC_SEEN), via_tcp=bool(flags & VIA_TCP),
            rcode=_str(it[8], w + " rcode"), error=texts[_index(it[9], texts, w + " error")],
            raw=texts[_index(it[10], texts, w + " raw")], timestamp=_num(it[1], w + " timestamp")))
    egress: list[EgressResult] = []
    for i, item in enumerate(_list(g("egress"), "egress")):
        w = f"egress[{i}]"
        it = _list(item, w, 11)
        s = _int(it[0], w + " seq", 1)
        if not since < s <= seq:
            _fail(f"agent answer: {w} has seq {s}, outside {since + 1}..{seq}")
        t = targets[_index(it[2], targets, w + " target")]
        egress.append(EgressResult(
            vantage=vantage, target=t.text, address=_str(it[3], w + " address"), port=t.port,
            mode=_enum(it[4], _MODES, w + " mode"), outcome=_enum(it[5], _EGRESS_OUTCOMES, w + " outcome"),
            latency_ms=_num(it[6], w + " latency_ms"), error=texts[_index(it[7], texts, w + " error")],
            timestamp=_num(it[1], w + " timestamp"),
            fallback=texts[_index(it[8], texts, w + " fallback")], via=_str(it[9], w + " via"),
            raw=texts[_index(it[10], texts, w + " raw")]))
    errors = []
    for i, e in enumerate(_list(g("errors"), "errors")):
        el = _list(e, f"errors[{i}]", 2)
        errors.append(AgentError(_num(el[0], f"errors[{i}] timestamp"), _str(el[1], f"errors[{i}] message")))
    return AgentReport(
        vantage=vantage, node=node, claimed_vantage=claimed, version=version, started=started,
        now=now, since=since, seq=seq, oldest=oldest, dns_interval=dns_interval,
        egress_interval=egress_interval, mode=mode, mode_requested=mode_requested,
        fallback=fallback, qtype=qtype, resolvers=resolvers, names=names,
        targets=tuple(t.text for t in targets), dns=tuple(dns), egress=tuple(egress),
        errors=tuple(errors))
