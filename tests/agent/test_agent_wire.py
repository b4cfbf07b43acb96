"""The JSON contract: round trip, cursor semantics, readable errors, and a fuzzed decode
that raises nothing but AgentDataError."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.agent import wire
from probes.agent.core import Agent, AgentSettings
from probes.agent.wire import SCHEMA, AgentDataError, AgentReport, decode, encode
from probes.dns.probe import DnsOutcome as DOut
from probes.dns.probe import DnsResult
from probes.dns.resolvers import NODELOCAL_IP, Resolver, ResolverKind
from probes.egress.probe import EgressMode, EgressResult
from probes.egress.probe import EgressOutcome as EOut
from probes.egress.targets import parse_target
from probes.kube.model import node_vantage

NODE = "aks-userpool-87654321-vmss00000a"
V = node_vantage(NODE)
RESOLVERS = (
    Resolver("nodelocal", ResolverKind.NODELOCAL, NODELOCAL_IP, 53, ("127.0.0.1", 5353)),
    Resolver("kube-dns", ResolverKind.KUBE_DNS, "10.0.0.10"),
    Resolver("custom/[fd00::53]:5353", ResolverKind.CUSTOM, "fd00::53", 5353),
)
NAMES = ("kubernetes.default.svc.cluster.local", "mcr.microsoft.com")
TARGETS = tuple(parse_target(t) for t in ("mcr.microsoft.com:443", "10.1.2.3:8443", "[fd00::1]:443"))


class Clock:
    def __init__(self) -> None:
        self.t = 1_717_000_000.0

    def __call__(self) -> float:
        return self.t


def _agent(feed: int = 2048) -> Agent:
    return Agent(
        AgentSettings(
            NODE,
            resolvers=RESOLVERS,
            names=NAMES,
            targets=TARGETS,
            feed_size=feed,
            dns_interval=5.0,
            egress_interval=7.5,
        ),
        wall=Clock(),
    )


def _dns_results() -> list[DnsResult]:
    out = []
    for i, o in enumerate(DOut):
        r = RESOLVERS[i % 3]
        host, port = r.dest
        out.append(
            DnsResult(
                V,
                r.key,
                r.address,
                f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                NAMES[i % 2],
                "A",
                o,
                0.125 * (i + 1),
                answers=i % 3,
                tc_seen=i % 2 == 0,
                via_tcp=i % 4 == 0,
                rcode="NOERROR" if o is DOut.OK else "",
                error="" if o is DOut.OK else f"trouble {o.value}",
                raw=f"answer {i}" if i % 3 == 0 else "",
                timestamp=1_716_999_000.5 + i,
                size=40 + 100 * i,
                no_edns=("truncated-tcp-ok", "", "truncated-tcp-failed")[i % 3],
            )
        )
    return out


def _egress_results() -> list[EgressResult]:
    out = []
    for i, o in enumerate(EOut):
        t = TARGETS[i % 3]
        out.append(
            EgressResult(
                V,
                t.text,
                "" if o is EOut.DNS_FAILURE else "20.1.2.3",
                t.port,
                EgressMode.SYN if i % 2 else EgressMode.CONNECT,
                o,
                1.5 + i,
                "" if o is EOut.OPEN else f"why {o.value}",
                1_716_999_100.25 + i,
                "raw sockets not permitted" if i % 2 == 0 else "",
                "127.0.0.2:4040" if i == 0 else "",
                f"TCP SA {i}" if i % 2 else "",
            )
        )
    # through the cluster's HTTP proxy: the proxy and its answer to CONNECT travel too
    out.append(
        EgressResult(
            V,
            TARGETS[0].text,
            "10.50.2.4",
            TARGETS[0].port,
            EgressMode.PROXY,
            EOut.PROXY_REFUSED,
            3.0,
            "proxy answered 403",
            1_716_999_200.0,
            proxy="proxy.hub.example:3128",
            status=403,
        )
    )
    return out


def _fed(feed: int = 2048) -> tuple[Agent, list]:
    agent = _agent(feed)
    sent = []
    for r in [*_dns_results(), *_egress_results()]:
        agent.record(r.key, r)
        sent.append(r)
    return agent, sent


def test_round_trip_rebuilds_the_results():
    agent, sent = _fed()
    rep = decode(encode(agent, 0), V)
    assert isinstance(rep, AgentReport)
    assert (rep.node, rep.claimed_vantage, rep.seq, rep.oldest, rep.since, rep.missed) == (NODE, V, len(sent), 1, 0, 0)
    assert (rep.dns_interval, rep.egress_interval, rep.qtype, rep.mode_requested) == (5.0, 7.5, "A", "auto")
    assert rep.resolvers == RESOLVERS and rep.names == NAMES and rep.targets == tuple(t.text for t in TARGETS)
    dns_sent = [r for r in sent if isinstance(r, DnsResult)]
    eg_sent = [r for r in sent if isinstance(r, EgressResult)]
    # raw travels with the newest result of its key only (what History keeps)
    newest_raw: dict = {}
    for r in sent:
        if r.raw:
            newest_raw[r.key] = r
    for got, want in zip(rep.dns, dns_sent, strict=True):
        want_raw = want.raw if newest_raw.get(want.key) is want else ""
        assert got == dataclasses.replace(want, raw=want_raw)
    for got, want in zip(rep.egress, eg_sent, strict=True):
        want_raw = want.raw if newest_raw.get(want.key) is want else ""
        assert got == dataclasses.replace(want, raw=want_raw)


def test_decode_stamps_the_readers_vantage_not_the_agents_claim():
    agent, _ = _fed()
    rep = decode(encode(agent, 0), "node/the-real-node")
    assert rep.vantage == "node/the-real-node" and rep.claimed_vantage == V
    assert {r.vantage for r in (*rep.dns, *rep.egress)} == {"node/the-real-node"}
    assert {r.key.vantage for r in rep.dns} == {"node/the-real-node"}


def test_two_reads_share_their_texts_and_the_history_keeps_the_results_as_they_are():
    """Each read decodes the agent's answer afresh; its texts are the same string objects
    from one read to the next, so History keeps an agent's result itself (no copy made to
    share them with the previous result: the reader replays ~190 results a second)."""
    from probes.engine.history import History

    agent, _ = _fed()
    body = encode(agent, 0)
    first, second = decode(bytes(body), "node/" + NODE), decode(bytes(body), "node/" + NODE)
    text_fields = ("vantage", "resolver", "address", "target", "qname", "qtype", "rcode", "error")
    for a, b in zip(first.dns, second.dns, strict=True):
        assert a == b and all(getattr(a, f) is getattr(b, f) for f in text_fields)
    for a, b in zip(first.egress, second.egress, strict=True):
        assert all(getattr(a, f) is getattr(b, f) for f in ("vantage", "target", "address", "error", "via", "proxy"))
    h = History()
    for r in first.dns:
        h.add(r.key, r)
    kept = [r for r in second.dns if not r.raw]  # a raw answer is stripped (kept once per key)
    assert kept
    for r in kept:
        h.add(r.key, r)
        assert h.results(r.key)[-1] is r


def test_cursor_missed_results_and_restart():
    agent, sent = _fed(feed=4)
    n = len(sent)
    rep = decode(encode(agent, 0), V)
    assert rep.oldest == n - 3 and rep.missed == n - 4
    assert len(rep.dns) + len(rep.egress) == 4
    rep = decode(encode(agent, n - 2), V)
    assert rep.missed == 0 and len(rep.dns) + len(rep.egress) == 2 and rep.since == n - 2
    rep = decode(encode(agent, n), V)
    assert rep.dns == () and rep.egress == () and rep.seq == n
    # a cursor from before the agent restarted: everything held, since echoed as 0
    rep = decode(encode(agent, n + 1000), V)
    assert rep.since == 0 and len(rep.dns) + len(rep.egress) == 4


def test_payload_stays_compact():
    agent = _agent()
    errs = [
        "no answer before the deadline",
        "no answer to SYN within 2s (dropped: NSG/firewall, SNAT exhaustion or a silent blackhole)",
    ]
    for i in range(700):
        if i % 2:
            r = DnsResult(
                V,
                "kube-dns",
                "10.0.0.10",
                "10.0.0.10:53",
                NAMES[i % 2],
                "A",
                DOut.TIMEOUT if i % 3 == 0 else DOut.OK,
                0.412 + i / 7,
                1,
                rcode="NOERROR",
                error=errs[0] if i % 3 == 0 else "",
                raw="x" * 300,
                timestamp=1_717_000_000.123 + i,
            )
        else:
            r = EgressResult(
                V,
                TARGETS[0].text,
                "20.1.2.3",
                443,
                EgressMode.CONNECT,
                EOut.TIMEOUT if i % 3 == 0 else EOut.OPEN,
                2000.0 + i / 3,
                errs[1] if i % 3 == 0 else "",
                1_717_000_000.456 + i,
                "raw sockets not permitted (SYN mode needs root or CAP_NET_RAW); using connect",
            )
        agent.record(r.key, r)
    body = encode(agent, 0)
    assert len(body) / 700 < 90, f"{len(body) / 700:.0f} bytes per result"
    rep = decode(body, V)
    assert len(rep.dns) + len(rep.egress) == 700


def _doc() -> dict:
    agent, _ = _fed()
    return orjson.loads(encode(agent, 0))


def _err(data: bytes) -> str:
    with pytest.raises(AgentDataError) as ei:
        decode(data, V)
    msg = str(ei.value)
    assert len(msg.splitlines()) == 1 and len(msg) < 400, msg
    return msg


def test_errors_say_what_is_wrong_in_one_line():
    assert "not JSON" in _err(b"<html>502 Bad Gateway</html>")
    assert "not JSON" in _err(b"\xff\xfe{}")
    assert "not JSON" in _err(b'{"schema": NaN}')
    assert "not an object" in _err(b"[1, 2]")
    d = _doc()
    d["schema"] = "aksnet-top/agent/v2"
    assert "speaks schema 'aksnet-top/agent/v2', expected aksnet-top/agent/v1" in _err(orjson.dumps(d))
    assert "MB" in _err(b" " * (wire.MAX_BYTES + 1))
    for mutate, says in (
        (lambda d: d.pop("seq"), "lacks seq"),
        (lambda d: d.update(seq=True), "seq should be a whole number"),
        (lambda d: d.update(now="soon"), "now should be a number"),
        (lambda d: d["dns"][0].__setitem__(4, "fine"), "not one of"),
        (lambda d: d["dns"][0].__setitem__(5, -1.0), "dns[0] latency_ms should be a number >= 0"),
        (lambda d: d["dns"][0].__setitem__(2, 99), "resolver refers to entry 99"),
        (lambda d: d["egress"][0].__setitem__(0, 10**6), "outside"),
        (lambda d: d["resolvers"][0].update(kind="dnsmasq"), "kind"),
        (lambda d: d["targets"].append("no-port"), "targets[3]"),
        (lambda d: d.update(texts=["x"]), "texts[0]"),
        (lambda d: d.update(mode="icmp"), "mode"),
        (lambda d: d["dns"].__setitem__(0, [1, 2]), "at least 11"),
        (lambda d: d.update(oldest=10**9), "oldest"),
    ):
        d = _doc()
        mutate(d)
        assert says in _err(orjson.dumps(d)), says


def test_huge_numbers_and_deep_nesting_are_data_errors():
    _err(b'{"schema": "aksnet-top/agent/v1", "seq": 1e999}')
    _err(b'{"schema": "aksnet-top/agent/v1", "seq": 123456789012345678901234567890}')
    _err(b"[" * 100_000 + b"]" * 100_000)
    d = _doc()
    d["started"] = 1.7976931348623157e308
    assert decode(orjson.dumps(d), V).started == d["started"]  # large but finite: accepted


def _only_data_errors(data: bytes) -> None:
    try:
        rep = decode(data, V)
    except AgentDataError as e:
        assert str(e) and len(str(e).splitlines()) == 1, str(e)
        return
    assert isinstance(rep, AgentReport)
    for r in (*rep.dns, *rep.egress):
        assert math.isfinite(r.latency_ms) and r.vantage == V


def _dumps(doc) -> bytes:
    """Any JSON text, including what orjson would refuse to write (big integers, NaN)."""
    return json.dumps(doc, allow_nan=True).encode("utf-8", "surrogatepass")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=6) | st.dictionaries(st.text(max_size=12), kids, max_size=6),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data):
    _only_data_errors(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_fuzz_random_json_documents(doc):
    _only_data_errors(_dumps(doc))
    if isinstance(doc, dict):
        _only_data_errors(_dumps({**doc, "schema": SCHEMA}))


BASE = _doc()


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


PATHS = [p for p in _paths(BASE) if p]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), json_values, st.booleans()), min_size=1, max_size=3))
def test_fuzz_mutated_valid_documents(mutations):
    doc = copy.deepcopy(BASE)
    for path, value, delete in mutations:
        node = doc
        try:
            for k in path[:-1]:
                node = node[k]
            if delete and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    _only_data_errors(_dumps(doc))


def test_later_v1_agents_may_add_trailing_items_and_keys():
    d = _doc()
    for row in (*d["dns"], *d["egress"], *d["errors"]):
        row.extend([7, "later", {"x": [1]}])
    d["resolvers"][0]["new_key"] = [1, 2]
    d["resolvers"][0]["target"].append("extra")
    d["something_new"] = {"nested": [1, 2, 3]}
    rep = decode(orjson.dumps(d), V)
    assert rep == decode(orjson.dumps(_doc()), V)


def test_the_schema_is_said_before_any_field_error():
    d = _doc()
    d["schema"], d["seq"] = "aksnet-top/agent/v2", "not a number"
    assert "speaks schema 'aksnet-top/agent/v2'" in _err(orjson.dumps(d))
    d = _doc()
    del d["schema"]
    assert "speaks schema None" in _err(orjson.dumps(d))


def test_a_page_of_2048_results_decodes():
    agent = _agent(2048)
    for i in range(2048):
        r = _dns_results()[i % 10] if i % 2 else _egress_results()[i % 6]
        agent.record(r.key, dataclasses.replace(r, timestamp=r.timestamp + i))
    rep = decode(encode(agent, 0), V)
    assert len(rep.dns) + len(rep.egress) == 2048 and rep.missed == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(orjson.dumps(BASE))), st.binary(max_size=8))
def test_fuzz_truncated_and_spliced_pages(cut, tail):
    body = orjson.dumps(BASE)
    _only_data_errors(body[:cut] + tail)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from('{}[]",:0123456789.eE-+ \n\tabcdefnrtul\\\u00e9\u2028'), max_size=300))
def test_fuzz_json_like_text(text):
    _only_data_errors(text.encode("utf-8"))
    _only_data_errors(b'{"schema": "aksnet-top/agent/v1", ' + text.encode("utf-8"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["dns", "egress", "errors", "resolvers", "names", "targets", "texts"]), json_values)
def test_fuzz_an_extra_row_of_anything(table, row):
    doc = copy.deepcopy(BASE)
    doc[table].append(row)
    _only_data_errors(_dumps(doc))


def test_a_dns_row_of_an_older_agent_has_no_profile_fields():
    """Rows of agents from before the no-EDNS profile end at `raw`: they decode with
    size 0 and no no-EDNS outcome."""
    agent, _ = _fed()
    doc = json.loads(encode(agent, 0))
    doc["dns"] = [row[:11] for row in doc["dns"]]
    rep = decode(json.dumps(doc).encode(), V)
    assert rep.dns and all(r.size == 0 and r.no_edns == "" for r in rep.dns)
    doc["dns"][0] = [*doc["dns"][0], 734, "not-an-outcome"]
    with pytest.raises(AgentDataError, match="dns"):
        decode(json.dumps(doc).encode(), V)
