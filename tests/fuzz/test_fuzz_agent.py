"""Fuzzing the agent's two parsers: its wire format as the app reads it (wire.decode: only
AgentDataError escapes) and the request heads its HTTP server reads (only BadRequest, and
a server that answers every connection with a status line)."""

from __future__ import annotations

import asyncio

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.agent.http import AgentServer, BadRequest, _parse_head, _since
from probes.agent.wire import SCHEMA, AgentDataError, decode, encode
from tests.agent.test_agent_http import _fed_agent
from tests.fuzz.strategies import json_like

FUZZ = settings(max_examples=250, deadline=None)
V = "node/aks-nodepool1-12345678-vmss000002"
GOOD = orjson.loads(encode(_fed_agent(), 0))


def _decode(raw: bytes) -> None:
    try:
        rep = decode(raw, V)
    except AgentDataError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert rep.seq >= 0


@FUZZ
@given(raw=st.binary(max_size=400))
def test_wire_bytes(raw):
    _decode(raw)


def _mutations():
    """A real answer with one part replaced by anything."""
    keys = st.sampled_from(sorted(GOOD))
    return st.tuples(keys, json_like(list(GOOD), leaves=15), st.integers(0, 5), st.integers(0, 12))


@FUZZ
@given(m=_mutations())
def test_wire_mutated_answers(m):
    key, value, row, col = m
    doc = orjson.loads(orjson.dumps(GOOD))
    target = doc.get(key)
    if isinstance(target, list) and target and isinstance(target[min(row, len(target) - 1)], list):
        r = target[min(row, len(target) - 1)]
        r[min(col, len(r) - 1)] = value
    else:
        doc[key] = value
    try:
        raw = orjson.dumps(doc)
    except orjson.JSONEncodeError:
        return
    _decode(raw)


@FUZZ
@given(doc=json_like(list(GOOD) + ["schema", SCHEMA], leaves=30))
def test_wire_any_json(doc):
    try:
        raw = orjson.dumps(doc)
    except orjson.JSONEncodeError:
        return
    _decode(raw)


METHODS = st.sampled_from(["GET", "POST", "get", "", "G ET"]) | st.text(max_size=6)
TARGETS = st.sampled_from(["/healthz", "/metrics", "/v1/results", "/v1/results?since=", "*", ""]).flatmap(
    lambda t: st.tuples(st.just(t), st.text(max_size=20)).map(lambda p: p[0] + p[1])
)


@FUZZ
@given(
    head=st.binary(max_size=300)
    | st.tuples(METHODS, TARGETS, st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", ""]), st.text(max_size=60)).map(
        lambda p: f"{p[0]} {p[1]} {p[2]}\r\n{p[3]}".encode("utf-8", "surrogatepass")
    )
)
def test_request_heads(head):
    try:
        method, target, headers = _parse_head(head)
    except BadRequest as e:
        assert e.code == 400
        return
    assert method and target.startswith("/") and isinstance(headers, dict)


@FUZZ
@given(query=st.text(max_size=40) | st.sampled_from(["since=1", "since=-1", "since=1&since=2", "since=%31"]))
def test_since_queries(query):
    try:
        assert _since(query) >= 0
    except BadRequest as e:
        assert e.code == 400


@settings(max_examples=60, deadline=None)
@given(raws=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=4))
def test_server_answers_any_bytes_with_a_status(raws):
    """Whatever a client sends, it gets an HTTP status line (or, for a head that never
    ends, a 408 after the head deadline) and the server keeps serving."""

    async def main() -> None:
        server = await AgentServer(_fed_agent(), "127.0.0.1", 0, header_timeout=0.3, grace=0.05).start()
        try:
            for raw in raws:
                r, w = await asyncio.open_connection("127.0.0.1", server.port)
                w.write(raw + (b"\r\n\r\n" if b"\r\n\r\n" not in raw else b""))
                async with asyncio.timeout(3):
                    data = await r.read()
                w.close()
                assert data.startswith(b"HTTP/1.1 "), data[:40]
            r, w = await asyncio.open_connection("127.0.0.1", server.port)
            w.write(b"GET /healthz HTTP/1.1\r\n\r\n")
            async with asyncio.timeout(3):
                assert (await r.read()).endswith(b"\r\n\r\nok\n")
            w.close()
        finally:
            await server.stop()

    asyncio.run(main())
