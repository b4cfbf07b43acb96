"""The agent's egress-IP check: GET an echo endpoint the user configures (``agents.echo_url``,
off by default) and keep the address it says it saw — the public IP this node's traffic
leaves with, to hold against what ARM says (probes.azure.egressid).

An echo endpoint answers a GET with the client's address: plain text (``20.93.1.2``, as
api.ipify.org or ifconfig.me do) or JSON with ``ip``, ``origin`` or ``address``. One
request, HTTP/1.1 with ``Connection: close``, bounded by a timeout; at most 4 KB read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
from urllib.parse import urlsplit

MAX_BODY = 4096


def check_echo_url(url: str) -> str:
    """The URL if usable (http or https with a host), else ValueError in words."""
    u = urlsplit(url.strip())
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"echo URL {url!r}: expected http(s)://host[:port]/path")
    try:
        _ = u.port
    except ValueError:
        raise ValueError(f"echo URL {url!r} has an invalid port") from None
    return url.strip()


def parse_echo(body: bytes) -> str:
    """The address an echo endpoint's body names; ValueError when it names none."""
    text = body.decode("utf-8", "replace").strip()
    candidates = [text]
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = {}
        if isinstance(doc, dict):
            candidates = [str(doc.get(k, "")) for k in ("ip", "origin", "address")]
    for c in candidates:
        first = c.split(",")[0].strip()  # httpbin's origin may list proxies after the client
        try:
            return str(ipaddress.ip_address(first))
        except ValueError:
            continue
    raise ValueError(f"the echo endpoint's answer names no IP address ({text[:60]!r})")


async def fetch_echo(url: str, timeout: float) -> tuple[str, str]:
    """(the address the endpoint saw, "") or ("", why not)."""
    u = urlsplit(url)
    host = u.hostname or ""
    port = u.port or (443 if u.scheme == "https" else 80)
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ssl.create_default_context() if u.scheme == "https" else None
            )
            try:
                hosthdr = host if u.port is None else f"{host}:{port}"
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {hosthdr}\r\nUser-Agent: aksnet-top-agent\r\n"
                    "Accept: text/plain, application/json\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
                data = b""
                while len(data) < MAX_BODY + 2048:
                    chunk = await reader.read(4096)
                    if not chunk:
                        break
                    data += chunk
            finally:
                writer.close()
    except TimeoutError:
        return "", f"echo {host}: no answer within {timeout:g}s"
    except (OSError, ssl.SSLError) as e:
        return "", f"echo {host}: {e.strerror or e}" if isinstance(e, OSError) else f"echo {host}: TLS: {e}"
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    parts = status.split(" ", 2)
    if len(parts) < 2 or parts[1] != "200":
        return "", f"echo {host} answered {status[:60]!r}"
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    try:
        return parse_echo(body[:MAX_BODY]), ""
    except ValueError as e:
        return "", f"echo {host}: {e}"


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_s, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_s.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


__all__ = ["check_echo_url", "fetch_echo", "parse_echo"]
