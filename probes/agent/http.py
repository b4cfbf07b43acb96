"""The agent's one port: a small HTTP/1.1 server on asyncio (no dependencies).

    GET /v1/results?since=N   the feed after seq N, JSON (probes.agent.wire), gzip if asked
    GET /metrics              Prometheus text exposition 0.0.4
    GET /healthz              200 "ok"

One request per connection (``Connection: close``): the readers are the API server's pod
proxy (every 10–200 s per agent) and a Prometheus scraper, so keep-alive buys nothing and
every connection's life stays bounded: the request head must arrive within
``header_timeout`` s and ``max_header`` bytes, the answer must drain within
``write_timeout`` s, and at most ``max_clients`` connections are served at once (more get
503). Unknown paths get 404, other methods 405, a bad request line or query 400.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import math
import os
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from probes.agent import wire
from probes.engine.history import percentile

log = logging.getLogger("probes.agent.http")

MAX_HEADER = 16 * 1024
HEADER_TIMEOUT = 5.0
WRITE_TIMEOUT = 10.0
MAX_CLIENTS = 32
LINGER = 1.0  # s a closing connection waits for the client's FIN
GZIP_MIN = 1400  # bytes: below one packet compression buys nothing
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}
_TOKEN = set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class BadRequest(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- Prometheus exposition ------------------------------------------------------------------

def escape_label(v: str) -> str:
    """A label value as the text format wants it: backslash, double quote, newline escaped."""
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{escape_label(str(v))}"' for k, v in kv.items()) + "}"


def _num(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(round(v, 6))


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def metrics_text(agent: Any) -> bytes:
    """The agent's counters and recent latencies, Prometheus text format 0.0.4."""
    s = agent.settings
    out: list[str] = []

    def family(name: str, kind: str, help_: str) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")

    mode = agent.mode
    family("aksnet_agent_info", "gauge", "The agent: node, vantage, version, egress mode in use.")
    out.append("aksnet_agent_info" + _labels(node=s.node, vantage=s.vantage, version=agent.version,
                                             mode=mode.value if mode is not None else "") + " 1")
    family("aksnet_agent_start_time_seconds", "gauge", "When the agent started, Unix time.")
    out.append(f"aksnet_agent_start_time_seconds {_num(float(agent.started))}")
    family("aksnet_agent_results_seq", "gauge", "Sequence number of the newest result.")
    out.append(f"aksnet_agent_results_seq {agent.seq}")
    family("aksnet_agent_results_held", "gauge", "Results held in the agent's ring.")
    out.append(f"aksnet_agent_results_held {agent.held}")

    address = agent.addresses
    family("aksnet_agent_dns_queries_total", "counter", "DNS queries by resolver, name and outcome.")
    for (res, name, outcome), n in sorted(agent.dns_counts.items()):
        out.append("aksnet_agent_dns_queries_total" + _labels(
            resolver=res, address=address.get(res, ""), name=name, outcome=outcome) + f" {n}")
    family("aksnet_agent_dns_latency_ms", "gauge",
           "DNS answer time, ms, over the last answers (quantile 0.5 and 0.95).")
    for (res, name), lat in sorted(agent.dns_latencies().items()):
        if not lat:
            continue
        lat.sort()
        for q, pct in (("0.5", 50), ("0.95", 95)):
            out.append("aksnet_agent_dns_latency_ms" + _labels(
                resolver=res, address=address.get(res, ""), name=name, quantile=q)
                + " " + _num(percentile(lat, pct)))
    family("aksnet_agent_egress_checks_total", "counter", "TCP egress checks by target and outcome.")
    for (target, outcome), n in sorted(agent.egress_counts.items()):
        out.append("aksnet_agent_egress_checks_total" + _labels(target=target, outcome=outcome) + f" {n}")
    family("aksnet_agent_egress_handshake_ms", "gauge",
           "TCP handshake time, ms, over the last open checks (quantile 0.5 and 0.95).")
    for target, lat in sorted(agent.egress_latencies().items()):
        if not lat:
            continue
        lat.sort()
        for q, pct in (("0.5", 50), ("0.95", 95)):
            out.append("aksnet_agent_egress_handshake_ms" + _labels(target=target, quantile=q)
                       + " " + _num(percentile(lat, pct)))
    stats = agent.scheduler_stats
    if stats is not None:
        family("aksnet_agent_skipped_ticks_total", "counter",
               "Probe runs skipped because the previous run of the same job was still going.")
        out.append(f"aksnet_agent_skipped_ticks_total {stats.skipped_ticks}")
    family("aksnet_agent_errors_total", "counter", "Probe jobs that failed inside the agent (bugs).")
    out.append(f"aksnet_agent_errors_total {agent.error_count}")
    t = os.times()
    family("process_cpu_seconds_total", "counter", "User and system CPU time, s.")
    out.append(f"process_cpu_seconds_total {_num(t.user + t.system)}")
    family("process_resident_memory_bytes", "gauge", "Resident memory, bytes.")
    out.append(f"process_resident_memory_bytes {_rss_bytes()}")
    out.append("")
    return "\n".join(out).encode("utf-8")


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
    if not v.isascii() or not v.isdigit() or len(v) > 19 or int(v) > 2 ** 63 - 1:
        raise BadRequest(400, "since must be a whole number >= 0")
    return int(v)


class AgentServer:
    """Serves one agent on (host, port); port 0 picks a free one (see ``address``)."""

    def __init__(self, agent: Any, host: str = "0.0.0.0", port: int = 9102, *,
                 header_timeout: float = HEADER_TIMEOUT, write_timeout: float = WRITE_TIMEOUT,
                 max_header: int = MAX_HEADER, max_clients: int = MAX_CLIENTS) -> None:
        self.agent = agent
        self.host = host
        self.port = port
        self.header_timeout = header_timeout
        self.write_timeout = write_timeout
        self.max_header = max_header
        self.max_clients = max_clients
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self.requests: dict[int, int] = {}  # status -> count

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    async def start(self) -> "AgentServer":
        """Bind and listen; raises OSError (EADDRINUSE, EACCES) when the port cannot be had."""
        self._server = await asyncio.start_server(self._client, self.host, self.port,
                                                  limit=self.max_header, reuse_address=True)
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

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            if len(self._tasks) > self.max_clients:
                await self._send(reader, writer, 503, b"busy\n", "text/plain")
                return
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            # stop() cancels us; ending quietly keeps 3.11's stream callback from logging
            # the cancellation as an error
            pass
        except Exception:  # noqa: BLE001 - one bad client must never stop the server
            log.debug("agent http: client failed", exc_info=True)
        finally:
            if task is not None:
                self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.header_timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            await self._send(reader, writer, 408, b"request head not received in time\n", "text/plain")
            return
        except asyncio.LimitOverrunError:
            await self._send(reader, writer, 431, b"request head too large\n", "text/plain")
            return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        try:
            method, target, headers = _parse_head(head[:-4])
            status, body, ctype = self._route(method, target)
        except BadRequest as e:
            status, body, ctype = e.code, (str(e) + "\n").encode(), "text/plain"
        extra: list[str] = []
        if status == 405:
            extra.append("Allow: GET")
        if (status == 200 and len(body) >= GZIP_MIN
                and "gzip" in headers.get("accept-encoding", "").lower()):
            body = gzip.compress(body, compresslevel=5, mtime=0)
            extra += ["Content-Encoding: gzip", "Vary: Accept-Encoding"]
        await self._send(reader, writer, status, body, ctype, extra)

    def _route(self, method: str, target: str) -> tuple[int, bytes, str]:
        u = urlsplit(target)
        path = u.path
        if path not in ("/v1/results", "/metrics", "/healthz"):
            return 404, b"not found: try /v1/results?since=N, /metrics or /healthz\n", "text/plain"
        if method != "GET":
            return 405, b"only GET is served\n", "text/plain"
        if path == "/healthz":
            return 200, b"ok\n", "text/plain"
        if path == "/metrics":
            return 200, metrics_text(self.agent), METRICS_TYPE
        since = _since(u.query)
        return 200, wire.encode(self.agent, since), wire.CONTENT_TYPE

    async def _send(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int,
                    body: bytes, ctype: str, extra: list[str] | None = None) -> None:
        self.requests[status] = self.requests.get(status, 0) + 1
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
                f"Content-Type: {ctype}", f"Content-Length: {len(body)}",
                "Cache-Control: no-store", "Connection: close", *(extra or ()), "", ""]
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
