"""The agent's one port: a small HTTP/1.1 server on asyncio.

    GET /v1/results?since=N   the feed after seq N, JSON (probes.agent.wire), gzip if asked;
        &coredns=pod@ip@node,…  the CoreDNS pods to probe from now on (probes.agent.hint)
        &rounds=K               first run every job K times (1..3) now, the pods just told
                                included, and answer when they are in (at most
                                probes.agent.rounds.ROUND_WAIT s): `check`'s one read
                                per agent; granted once per the agent's slowest interval
    GET /metrics              Prometheus text exposition 0.0.4, by prometheus_client
    GET /healthz              200 "ok"

One request per connection (``Connection: close``): the readers are the API server's pod
proxy (every 10–200 s per agent), the kubelet's probes and a Prometheus scraper, so
keep-alive buys nothing and every connection's life stays bounded: the request head must
arrive within ``header_timeout`` s and ``max_header`` bytes, the answer must drain within
``write_timeout`` s. Unknown paths get 404, other methods 405, a bad request line or
query 400.

Nobody can starve the port (issue 12: 32 slots held by 40 idle connections made the
kubelet's ``/healthz`` fail 17 of 22 probes, and liveness restarted the pod). What tells a
reader from a squatter is that a reader sends its request head at once:

* a new connection has ``grace`` s (0.1) to send its request head before it counts. One
  that did is a request: it is admitted, and if its address already holds
  ``max_per_client`` connections, the oldest *idle* one of them is closed to make room;
* one that did not is *idle*: it keeps its place only while its address holds fewer than
  ``max_per_client`` connections (else it is closed at once), and only until its head's
  deadline (``header_timeout``). Idle connections never push anyone out, so holding
  connections open, or re-opening them as fast as they are closed, never keeps a request
  out: it only fills its own address's share;
* ``max_connections`` bounds every open connection, waiting ones included (a file
  descriptor each): past it a newcomer is closed unless an idle one can make room;
* ``max_clients`` bounds the answers being written at once (``/v1/results`` and
  ``/metrics``; more get 503), and ``/healthz`` is outside it: a reserved path that costs
  nothing to answer.

Through the API server's pod proxy every reader arrives from the same few addresses (the
konnectivity agents, or the control plane), the kubelet's probes from the node's; the
manifest's NetworkPolicy admits no one else (probes.agent.manifest).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from prometheus_client import ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from probes.agent import page
from probes.agent.hint import PARAM as HINT_PARAM
from probes.agent.hint import CorednsPod, parse_hint
from probes.agent.rounds import PARAM as ROUNDS_PARAM
from probes.agent.rounds import ROUND_WAIT, parse_rounds
from probes.engine.history import percentile

log = logging.getLogger("probes.agent.http")

MAX_HEADER = 16 * 1024
HEADER_TIMEOUT = 3.0  # s from connect to the end of the request head (the pod proxy sends it at once)
WRITE_TIMEOUT = 10.0
MAX_CLIENTS = 32  # answers of /v1/results and /metrics being written at once
MAX_CONNECTIONS = 1024  # open connections, every client together, waiting ones too (a file descriptor each)
MAX_PER_CLIENT = 64  # admitted connections from one address (the pod proxy: a konnectivity agent or node)
GRACE = 0.1  # s a new connection has to send its request head before it counts as idle
HEALTH_PATH = "/healthz"
LINGER = 1.0  # s a closing connection waits for the client's FIN
GZIP_MIN = 1400  # bytes: below one packet compression buys nothing
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_TOKEN = set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class BadRequest(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- Prometheus exposition ------------------------------------------------------------------


class AgentCollector(Collector):
    """The agent's counters and recent latencies, read from the agent at each scrape (no
    metric objects kept in step with the ring: the agent's own counts are the truth)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        agent = self.agent
        s = agent.settings
        mode = agent.mode
        info = GaugeMetricFamily(
            "aksnet_agent_info",
            "The agent: node, vantage, version, egress mode in use.",
            labels=("node", "vantage", "version", "mode"),
        )
        info.add_metric((s.node, s.vantage, agent.version, mode.value if mode is not None else ""), 1)
        yield info
        yield GaugeMetricFamily(
            "aksnet_agent_start_time_seconds", "When the agent started, Unix time.", value=float(agent.started)
        )
        yield GaugeMetricFamily("aksnet_agent_results_seq", "Sequence number of the newest result.", value=agent.seq)
        yield GaugeMetricFamily("aksnet_agent_results_held", "Results held in the agent's ring.", value=agent.held)

        address = agent.addresses
        queries = CounterMetricFamily(
            "aksnet_agent_dns_queries",
            "DNS queries by resolver, name and outcome.",
            labels=("resolver", "address", "name", "outcome"),
        )
        for (res, name, outcome), n in sorted(agent.dns_counts.items()):
            queries.add_metric((res, address.get(res, ""), name, outcome), n)
        yield queries
        dns_lat = GaugeMetricFamily(
            "aksnet_agent_dns_latency_ms",
            "DNS answer time, ms, over the last answers (quantile 0.5 and 0.95).",
            labels=("resolver", "address", "name", "quantile"),
        )
        for (res, name), lat in sorted(agent.dns_latencies().items()):
            for q, v in _quantiles(lat):
                dns_lat.add_metric((res, address.get(res, ""), name, q), v)
        yield dns_lat
        checks = CounterMetricFamily(
            "aksnet_agent_egress_checks", "TCP egress checks by target and outcome.", labels=("target", "outcome")
        )
        for (target, outcome), n in sorted(agent.egress_counts.items()):
            checks.add_metric((target, outcome), n)
        yield checks
        hs = GaugeMetricFamily(
            "aksnet_agent_egress_handshake_ms",
            "TCP handshake time, ms, over the last open checks (quantile 0.5 and 0.95).",
            labels=("target", "quantile"),
        )
        for target, lat in sorted(agent.egress_latencies().items()):
            for q, v in _quantiles(lat):
                hs.add_metric((target, q), v)
        yield hs
        stats = agent.scheduler_stats
        if stats is not None:
            yield CounterMetricFamily(
                "aksnet_agent_skipped_ticks",
                "Probe runs skipped because the previous run of the same job was still going.",
                value=stats.skipped_ticks,
            )
        yield CounterMetricFamily(
            "aksnet_agent_errors", "Probe jobs that failed inside the agent (bugs).", value=agent.error_count
        )


def _quantiles(lat: list[float]) -> list[tuple[str, float]]:
    if not lat:
        return []
    lat.sort()
    return [("0.5", percentile(lat, 50)), ("0.95", percentile(lat, 95))]


class AgentMetrics:
    """``/metrics`` of one agent: a private registry (never the global one, no exporter
    thread, no second port) holding the agent's collector and prometheus_client's
    ProcessCollector (CPU seconds, resident memory, open fds, start time from /proc)."""

    def __init__(self, agent: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(AgentCollector(agent))
        ProcessCollector(registry=self.registry)

    def text(self) -> bytes:
        """Prometheus text format 0.0.4."""
        return generate_latest(self.registry)


def metrics_text(agent: Any) -> bytes:
    """One exposition of `agent` (tests, one-off use; the server keeps its AgentMetrics)."""
    return AgentMetrics(agent).text()


# --- the server ---------------------------------------------------------------------------------


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """(method, target, headers with lower-case names) or BadRequest."""
    try:
        text = head.decode("latin-1")
    except Exception:  # noqa: BLE001 - latin-1 decodes anything; keep the guard anyway
        raise BadRequest(400, "request head is not text") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest(400, "bad request line")
    method, target, version = parts
    if not method or not set(method) <= _TOKEN:
        raise BadRequest(400, "bad method")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(400, "unsupported HTTP version")
    if not target.startswith("/") or any(c <= " " or c == "\x7f" for c in target):
        raise BadRequest(400, "bad request target")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or not set(name) <= _TOKEN:
            raise BadRequest(400, "bad header line")
        headers[name.lower()] = value.strip()
    return method, target, headers


def _since(query: str) -> int:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise BadRequest(400, "bad query string") from None
    values = [v for k, v in pairs if k == "since"]
    if not values:
        return 0
    if len(values) > 1:
        raise BadRequest(400, "since given more than once")
    v = values[0]
    if not v.isascii() or not v.isdigit() or len(v) > 19 or int(v) > 2**63 - 1:
        raise BadRequest(400, "since must be a whole number >= 0")
    return int(v)


def _coredns(query: str) -> tuple[CorednsPod, ...] | None:
    """The CoreDNS pods the reader hands over (probes.agent.hint); None: not given."""
    values = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == HINT_PARAM]
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(400, f"{HINT_PARAM} given more than once")
    try:
        return parse_hint(values[0])
    except ValueError as e:
        raise BadRequest(400, str(e)) from None


def _rounds(query: str) -> int:
    """The rounds the reader asks for before the answer (0: none, the default)."""
    try:
        return parse_rounds([v for k, v in parse_qsl(query, keep_blank_values=True) if k == ROUNDS_PARAM])
    except ValueError as e:
        raise BadRequest(400, str(e)) from None


@dataclass(slots=True)
class _Conn:
    """One open connection: who, and whether it has sent its request head yet."""

    peer: str
    writer: asyncio.StreamWriter
    idle: bool = True  # admitted without a request head: may be closed to let a request in


def _fd_room() -> int:
    """Connections this process can hold: its open-file limit less a margin for the rest."""
    try:
        # lazy: resource is POSIX-only (the app imports this package on any OS); read once per server
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return MAX_CONNECTIONS
    return MAX_CONNECTIONS if soft == resource.RLIM_INFINITY else max(16, soft - 64)


def _peer(writer: asyncio.StreamWriter) -> str:
    addr = writer.get_extra_info("peername")
    return str(addr[0]) if isinstance(addr, tuple) and addr else ""


class AgentServer:
    """Serves one agent on (host, port); port 0 picks a free one (see ``address``)."""

    def __init__(
        self,
        agent: Any,
        host: str = "0.0.0.0",
        port: int = 9102,
        *,
        header_timeout: float = HEADER_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
        max_header: int = MAX_HEADER,
        max_clients: int = MAX_CLIENTS,
        max_connections: int = MAX_CONNECTIONS,
        max_per_client: int = MAX_PER_CLIENT,
        grace: float = GRACE,
    ) -> None:
        self.agent = agent
        self.host = host
        self.port = port
        self.header_timeout = header_timeout
        self.write_timeout = write_timeout
        self.max_header = max_header
        self.max_clients = max_clients
        self.max_connections = max(1, min(max_connections, _fd_room()))
        self.max_per_client = max(1, min(max_per_client, self.max_connections))
        self.grace = min(grace, header_timeout)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._conns: dict[asyncio.Task, _Conn] = {}  # admitted (past the grace), oldest first
        self._per_peer: dict[str, int] = {}
        self._answering = 0  # answers of the bounded paths being written
        self.requests: dict[int, int] = {}  # status -> count
        self.evicted = 0  # idle connections closed to let a request in
        self.refused = 0  # connections closed unserved: their address's share or every slot was taken
        self.metrics = AgentMetrics(agent)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    async def start(self) -> AgentServer:
        """Bind and listen; raises OSError (EADDRINUSE, EACCES) when the port cannot be had."""
        self._server = await asyncio.start_server(
            self._client, self.host, self.port, limit=self.max_header, reuse_address=True
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        return self

    async def stop(self, timeout: float = 1.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        try:
            async with asyncio.timeout(timeout):
                await server.wait_closed()
        except TimeoutError:
            pass

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    def _evict(self, pred: Callable[[_Conn], bool]) -> bool:
        """Close the oldest idle connection that `pred` accepts; False if there is none."""
        for task, c in self._conns.items():
            if c.idle and pred(c):
                self._forget(task)
                self.evicted += 1
                c.writer.transport.abort()
                return True
        return False

    def _admit(self, task: asyncio.Task, conn: _Conn) -> bool:
        """Count `conn` (past its grace). A request makes room by closing an idle
        connection of its address; an idle one only takes a free place."""
        if self._per_peer.get(conn.peer, 0) >= self.max_per_client:
            if conn.idle:
                return False
            self._evict(lambda c: c.peer == conn.peer)  # none idle: it is still served (an answer is short)
        self._conns[task] = conn
        self._per_peer[conn.peer] = self._per_peer.get(conn.peer, 0) + 1
        return True

    def _forget(self, task: asyncio.Task) -> None:
        c = self._conns.pop(task, None)
        if c is not None:
            left = self._per_peer[c.peer] - 1
            if left:
                self._per_peer[c.peer] = left
            else:
                del self._per_peer[c.peer]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            if len(self._tasks) >= self.max_connections and not self._evict(lambda c: True):
                self.refused += 1
                return
            self._tasks.add(task)
            await self._serve(reader, writer, task, _Conn(_peer(writer), writer))
        except asyncio.CancelledError:
            # stop() cancels us; ending quietly keeps 3.11's stream callback from logging
            # the cancellation as an error
            pass
        except Exception:  # noqa: BLE001 - one bad client must never stop the server
            log.debug("agent http: client failed", exc_info=True)
        finally:
            self._tasks.discard(task)
            self._forget(task)
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _read_head(self, reader: asyncio.StreamReader, task: asyncio.Task, conn: _Conn) -> bytes | None:
        """The request head (admitting the connection on the way), or None when it was
        turned away or the client left; raises TimeoutError and LimitOverrunError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.header_timeout
        try:
            async with asyncio.timeout(self.grace):
                head: bytes | None = await reader.readuntil(b"\r\n\r\n")  # kept in the buffer on timeout
        except TimeoutError:
            head = None
        conn.idle = head is None
        if not self._admit(task, conn):
            self.refused += 1
            return None
        if head is None:
            async with asyncio.timeout_at(deadline):
                head = await reader.readuntil(b"\r\n\r\n")
            conn.idle = False
        return head

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, task: asyncio.Task, conn: _Conn
    ) -> None:
        try:
            head = await self._read_head(reader, task, conn)
        except TimeoutError:
            await self._send(reader, writer, 408, b"request head not received in time\n", "text/plain")
            return
        except asyncio.LimitOverrunError:
            await self._send(reader, writer, 431, b"request head too large\n", "text/plain")
            return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        if head is None:
            return
        try:
            method, target, headers = _parse_head(head[:-4])
        except BadRequest as e:
            await self._send(reader, writer, e.code, (str(e) + "\n").encode(), "text/plain")
            return
        bounded = urlsplit(target).path != HEALTH_PATH  # the kubelet's probe is never kept waiting
        if bounded and self._answering >= self.max_clients:
            await self._send(reader, writer, 503, b"busy\n", "text/plain")
            return
        self._answering += bounded
        try:
            try:
                await self._prepare(method, target)
                status, body, ctype = self._route(method, target)
            except BadRequest as e:
                status, body, ctype = e.code, (str(e) + "\n").encode(), "text/plain"
            extra: list[str] = []
            if status == 405:
                extra.append("Allow: GET")
            if status == 200 and len(body) >= GZIP_MIN and "gzip" in headers.get("accept-encoding", "").lower():
                body = gzip.compress(body, compresslevel=5, mtime=0)
                extra += ["Content-Encoding: gzip", "Vary: Accept-Encoding"]
            await self._send(reader, writer, status, body, ctype, extra)
        finally:
            self._answering -= bounded

    async def _prepare(self, method: str, target: str) -> None:
        """A read's side effects before its answer: the CoreDNS pods it hands over, then
        the rounds it asks for (waited for at most ROUND_WAIT s; they finish regardless)."""
        u = urlsplit(target)
        if method != "GET" or u.path != "/v1/results":
            return
        _since(u.query)  # a bad query is refused before anything is done for it
        pods = _coredns(u.query)
        rounds = _rounds(u.query)
        if pods is not None and hasattr(self.agent, "set_coredns"):
            self.agent.set_coredns(pods)
        task = self.agent.probe_now(rounds) if rounds and hasattr(self.agent, "probe_now") else None
        if task is not None:
            await asyncio.wait({task}, timeout=ROUND_WAIT)

    def _route(self, method: str, target: str) -> tuple[int, bytes, str]:
        u = urlsplit(target)
        path = u.path
        if path not in ("/v1/results", "/metrics", HEALTH_PATH):
            return 404, b"not found: try /v1/results?since=N, /metrics or /healthz\n", "text/plain"
        if method != "GET":
            return 405, b"only GET is served\n", "text/plain"
        if path == HEALTH_PATH:
            return 200, b"ok\n", "text/plain"
        if path == "/metrics":
            return 200, self.metrics.text(), METRICS_TYPE
        since = _since(u.query)
        return 200, page.encode(self.agent, since), page.CONTENT_TYPE

    async def _send(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        ctype: str,
        extra: list[str] | None = None,
    ) -> None:
        self.requests[status] = self.requests.get(status, 0) + 1
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            f"Content-Type: {ctype}",
            f"Content-Length: {len(body)}",
            "Cache-Control: no-store",
            "Connection: close",
            *(extra or ()),
            "",
            "",
        ]
        try:
            writer.write("\r\n".join(head).encode("latin-1") + body)
            async with asyncio.timeout(self.write_timeout):
                await writer.drain()
            # lingering close: FIN first, then let the client finish (or drop what it still
            # sends) for a moment; closing with unread input would send RST, and a RST can
            # destroy the answer before the client has read it
            if writer.can_write_eof():
                writer.write_eof()
            async with asyncio.timeout(LINGER):
                while await reader.read(4096):
                    pass
            writer.close()
        except (TimeoutError, ConnectionError):
            writer.transport.abort()
