"""The agent's one port: JSON results, Prometheus metrics, health, and the rules that keep
every connection bounded."""

from __future__ import annotations

import asyncio
import gzip
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from probes.agent.core import Agent, AgentSettings, settings_for
from probes.agent.http import AgentServer, metrics_text
from probes.agent.wire import decode
from probes.dns.probe import DnsOutcome as Outcome
from probes.dns.probe import DnsResult
from probes.dns.resolvers import NODELOCAL_IP
from probes.egress.probe import EgressMode, EgressResult
from probes.egress.probe import EgressOutcome as EOut
from tests.agent.agent_helpers import DROP, until

NODE = "aks-nodepool1-12345678-vmss000002"
V = f"node/{NODE}"


async def request(port: int, raw: bytes, timeout: float = 3.0) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(timeout):
            data = await reader.read()  # the server closes: read to EOF
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    assert int(headers["content-length"]) == len(body)
    return status, headers, body


def get(path: str, *headers: str) -> bytes:
    return ("\r\n".join([f"GET {path} HTTP/1.1", "Host: agent", *headers, "", ""])).encode()


def _fed_agent() -> Agent:
    agent = Agent(AgentSettings(NODE, dns_interval=5.0))
    for i in range(40):
        agent.record(
            ("d", i % 2),
            DnsResult(
                V,
                "kube-dns",
                "10.0.0.10",
                "10.0.0.10:53",
                "kubernetes.default.svc.cluster.local",
                "A",
                Outcome.OK if i % 4 else Outcome.TIMEOUT,
                1.0 + i,
                timestamp=1000.0 + i,
                error="" if i % 4 else "no answer before the deadline",
            ),
        )
        agent.record(
            ("e",),
            EgressResult(
                V,
                "mcr.microsoft.com:443",
                "20.1.2.3",
                443,
                EgressMode.CONNECT,
                EOut.OPEN if i % 5 else EOut.TIMEOUT,
                10.0 + i,
                timestamp=1000.0 + i,
            ),
        )
    return agent


@pytest.fixture
async def served():
    agent = _fed_agent()
    server = await AgentServer(agent, "127.0.0.1", 0, header_timeout=0.3).start()
    try:
        yield agent, server
    finally:
        await server.stop()


async def test_results_health_and_metrics(served):
    agent, server = served
    status, h, body = await request(server.port, get("/healthz"))
    assert (status, body, h["connection"]) == (200, b"ok\n", "close")
    status, h, body = await request(server.port, get("/v1/results?since=70"))
    assert status == 200 and h["content-type"] == "application/json"
    rep = decode(body, V)
    assert rep.seq == 80 and len(rep.dns) + len(rep.egress) == 10
    status, h, body = await request(server.port, get("/v1/results"))
    assert len(decode(body, V).dns) == 40
    status, h, body = await request(server.port, get("/metrics"))
    assert status == 200 and h["content-type"].startswith("text/plain; version=0.0.4")
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    queries = {
        (s.labels["resolver"], s.labels["address"], s.labels["outcome"]): s.value
        for s in fams["aksnet_agent_dns_queries"].samples
    }  # the parser strips _total
    assert queries == {("kube-dns", "10.0.0.10", "ok"): 30, ("kube-dns", "10.0.0.10", "timeout"): 10}
    checks = {s.labels["outcome"]: s.value for s in fams["aksnet_agent_egress_checks"].samples}
    assert checks == {"open": 32, "timeout": 8}
    lat = {s.labels["quantile"]: s.value for s in fams["aksnet_agent_dns_latency_ms"].samples}
    assert set(lat) == {"0.5", "0.95"} and 1.0 <= lat["0.5"] <= lat["0.95"] <= 40.0
    hs = {s.labels["quantile"]: s.value for s in fams["aksnet_agent_egress_handshake_ms"].samples}
    assert set(hs) == {"0.5", "0.95"}
    assert fams["aksnet_agent_results_seq"].samples[0].value == 80
    assert fams["aksnet_agent_start_time_seconds"].samples[0].value == pytest.approx(agent.started, abs=1e-3)
    assert fams["process_resident_memory_bytes"].samples[0].value > 1e6
    assert fams["aksnet_agent_info"].samples[0].labels["node"] == NODE


async def test_gzip_when_asked(served):
    agent, server = served
    status, h, body = await request(server.port, get("/v1/results?since=0", "Accept-Encoding: br, gzip"))
    assert status == 200 and h["content-encoding"] == "gzip"
    assert decode(gzip.decompress(body), V).seq == agent.seq
    status, h, _ = await request(server.port, get("/healthz", "Accept-Encoding: gzip"))
    assert "content-encoding" not in h  # too small to be worth it


@pytest.mark.parametrize(
    "raw, status",
    [
        (get("/nope"), 404),
        (get("/v1/results?since=-1"), 400),
        (get("/v1/results?since=abc"), 400),
        (get("/v1/results?since=1&since=2"), 400),
        (get("/v1/results?since=99999999999999999999"), 400),
        (b"POST /v1/results HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"DELETE /metrics HTTP/1.1\r\n\r\n", 405),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /healthz HTTP/2.0\r\n\r\n", 400),
        (b"GET healthz HTTP/1.1\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
    ],
)
async def test_bad_requests_get_the_right_status(served, raw, status):
    _, server = served
    got, h, _ = await request(server.port, raw)
    assert got == status
    if status == 405:
        assert h["allow"] == "GET"


async def test_a_slow_client_is_cut_off(served):
    _, server = served
    t0 = time.monotonic()
    status, _, _ = await request(server.port, b"GET /healthz HTTP/1.1\r\n")  # never finishes its head
    assert status == 408 and time.monotonic() - t0 < 2.0


async def _close_all(conns) -> None:
    for _, w in conns:
        w.close()
        try:
            await w.wait_closed()
        except ConnectionError:
            pass


async def test_idle_connections_never_keep_healthz_out_and_stop_is_prompt():
    """Issue 12: 32 slots held by idle connections made /healthz fail. Now idle connections
    only fill their address's share; a request closes the oldest idle one to get in."""
    agent = _fed_agent()
    server = await AgentServer(agent, "127.0.0.1", 0, header_timeout=5.0, max_clients=2, max_per_client=3).start()
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(6)]
    try:
        await until(lambda: server.refused == 3 and server.open_connections == 3, what="three idle turned away")
        for _ in range(5):
            status, _, body = await request(server.port, get("/healthz"))
            assert (status, body) == (200, b"ok\n")
        assert server.evicted == 1  # the first made room; the next ones found it free again

        # the turned-away ones and the evicted one were closed: their reads end at once
        async def ended(r: asyncio.StreamReader) -> bool:
            try:
                async with asyncio.timeout(0.5):
                    return await r.read() == b""
            except TimeoutError:
                return False

        assert sum([await ended(r) for r, _ in idle]) == 4
    finally:
        t0 = time.monotonic()
        await server.stop(1.0)
        assert time.monotonic() - t0 < 1.0  # idle clients do not hold the stop
        await _close_all(idle)


async def test_every_connection_is_bounded():
    agent = _fed_agent()
    server = await AgentServer(agent, "127.0.0.1", 0, header_timeout=5.0, max_connections=4, grace=2.0).start()
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(6)]
    try:  # still in their grace: none can be evicted, so the surplus is closed at once
        await until(lambda: server.refused == 2 and len(server._tasks) == 4, what="two over the bound closed")
    finally:
        await server.stop(1.0)
        await _close_all(idle)


async def test_busy_answers_get_503_but_healthz_is_reserved():
    agent = _fed_agent()
    server = await AgentServer(agent, "127.0.0.1", 0, max_clients=0).start()
    try:
        assert (await request(server.port, get("/v1/results")))[0] == 503
        assert (await request(server.port, get("/metrics")))[0] == 503
        status, _, body = await request(server.port, get("/healthz"))
        assert (status, body) == (200, b"ok\n")
    finally:
        await server.stop()


async def test_one_client_holding_connections_pushes_out_only_its_own():
    agent = _fed_agent()
    server = await AgentServer(agent, "127.0.0.1", 0, header_timeout=5.0, max_per_client=4).start()
    other = [await asyncio.open_connection("127.0.0.1", server.port, local_addr=("127.0.0.3", 0)) for _ in range(3)]
    greedy = [await asyncio.open_connection("127.0.0.1", server.port, local_addr=("127.0.0.2", 0)) for _ in range(40)]
    try:
        await until(lambda: server.refused == 36, what="the greedy client's surplus turned away")
        assert server._per_peer == {"127.0.0.2": 4, "127.0.0.3": 3}
        # the other client's idle connections are untouched: it can still ask on them
        r, w = other[0]
        w.write(get("/healthz"))
        async with asyncio.timeout(2):
            assert (await r.read()).endswith(b"\r\n\r\nok\n")
    finally:
        await server.stop(1.0)
        await _close_all(other + greedy)


def test_label_values_are_escaped():
    weird = 'a"b\\c\nd'
    agent = Agent(AgentSettings(weird))
    text = metrics_text(agent).decode()
    assert 'node="a\\"b\\\\c\\nd"' in text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["aksnet_agent_info"].samples[0].labels["node"] == weird


async def test_a_live_agent_served_end_to_end(responder):
    ok, drop = responder(), responder(DROP)
    s = settings_for(
        NODE,
        kube_dns="10.0.0.10",
        nodelocal=True,
        confine=True,
        dns_overrides={NODELOCAL_IP: drop.address, "10.0.0.10": ok.address},
        dns_interval=0.1,
        dns_timeout=0.2,
    )
    agent = Agent(s)
    server = await AgentServer(agent, "127.0.0.1", 0).start()
    await agent.start()
    try:
        since, dns = 0, []
        end = time.monotonic() + 5
        while len({r.resolver for r in dns}) < 2 or len(dns) < 8:
            assert time.monotonic() < end, "no results through HTTP"
            _, _, body = await request(server.port, get(f"/v1/results?since={since}"))
            rep = decode(body, V)
            assert rep.since == since and rep.missed == 0
            dns += rep.dns
            since = rep.seq
            await asyncio.sleep(0.1)
    finally:
        await server.stop()
        await agent.stop(1.0)
    assert {r.outcome for r in dns if r.resolver == "nodelocal"} == {Outcome.TIMEOUT}
    assert {r.outcome for r in dns if r.resolver == "kube-dns"} == {Outcome.OK}


def test_metrics_by_prometheus_client_on_a_private_registry_without_threads():
    import threading

    from prometheus_client import REGISTRY

    from probes.agent.http import AgentMetrics

    agent = Agent(AgentSettings(NODE))
    before = threading.active_count()
    metrics = AgentMetrics(agent)
    text = metrics.text().decode()
    assert threading.active_count() == before  # no exporter thread, no second server
    assert metrics.text().decode().count("# TYPE aksnet_agent_info gauge") == 1  # scrape twice: no duplicates
    assert not [m for m in REGISTRY.collect() if m.name.startswith("aksnet_")]  # the global registry is left alone
    fams = {
        (f.name, f.type): {tuple(sorted(s.labels)) for s in f.samples} for f in text_string_to_metric_families(text)
    }
    assert fams[("aksnet_agent_info", "gauge")] == {("mode", "node", "vantage", "version")}
    assert fams[("aksnet_agent_errors", "counter")] == {()}
    assert fams[("process_cpu_seconds", "counter")] == {()}
    assert {
        ("aksnet_agent_dns_queries", "counter"),
        ("aksnet_agent_dns_latency_ms", "gauge"),
        ("aksnet_agent_egress_checks", "counter"),
        ("aksnet_agent_egress_handshake_ms", "gauge"),
        ("aksnet_agent_results_seq", "gauge"),
        ("aksnet_agent_results_held", "gauge"),
        ("aksnet_agent_start_time_seconds", "gauge"),
        ("process_resident_memory_bytes", "gauge"),
    } <= set(fams)
