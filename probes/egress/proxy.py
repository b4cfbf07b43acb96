"""Egress through the cluster's HTTP proxy: which targets go through it (``noProxy``), and
the bounded CONNECT probe that checks one.

AKS's ``httpProxyConfig`` (httpProxy, httpsProxy, noProxy, trustedCa) is injected into
the nodes (containerd, kubelet) and into pods as ``HTTP_PROXY``/``HTTPS_PROXY``/
``NO_PROXY``; a pod that talks TLS to the Internet opens a TCP connection to the proxy and
asks ``CONNECT host:port HTTP/1.1``. So does this probe, for every target the no-proxy
list does not cover: TCP to the proxy, the CONNECT request, the status line read under
the same timeout as a handshake, then the connection is closed. Outcomes
(probes.egress.result.EgressOutcome):

* **open** — the proxy answered 2xx: it opened the tunnel (it reached the destination);
* **proxy-refused** — any other status (403 by an ACL, 407 without credentials, 502/504
  when the proxy itself cannot reach the destination), kept in ``status``;
* **proxy-timeout** — connected, but no status line before the deadline (a hung proxy,
  or one waiting on a destination that does not answer);
* **proxy-unreachable** — no TCP connection to the proxy (refused, no route, no answer).

:func:`bypass` follows Go's ``golang.org/x/net/http/httpproxy`` (what kubelet and
containerd use): ``*`` bypasses everything; an IP or CIDR matches addresses; ``example.com``
matches it and its subdomains, ``.example.com`` only the subdomains; an entry with a port
matches that port only. Pure except :func:`connect_via`.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from probes.egress.result import EgressOutcome

MAX_STATUS_LINE = 1024  # bytes read for the status line at most


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """The cluster's proxy as a pod sees it (its environment, or httpProxyConfig)."""

    http_proxy: str = ""  # http://host:port
    https_proxy: str = ""
    no_proxy: tuple[str, ...] = ()
    trusted_ca: str = ""  # PEM (or base64 of PEM, as httpProxyConfig.trustedCa) for a TLS proxy

    @property
    def enabled(self) -> bool:
        return bool(self.http_proxy or self.https_proxy)

    def url_for(self, port: int) -> str:
        """The proxy a client of host:port uses: plain HTTP (80) asks HTTP_PROXY, anything
        else is TLS and asks HTTPS_PROXY; each falls back to the other."""
        if port == 80:
            return self.http_proxy or self.https_proxy
        return self.https_proxy or self.http_proxy

    @staticmethod
    def from_env(env: Mapping[str, str]) -> ProxySettings | None:
        """From HTTPS_PROXY/HTTP_PROXY/NO_PROXY (either case, upper first, as AKS injects them)."""

        def get(name: str) -> str:
            return (env.get(name) or env.get(name.lower()) or "").strip()

        s = ProxySettings(
            get("HTTP_PROXY"),
            get("HTTPS_PROXY"),
            tuple(x.strip() for x in get("NO_PROXY").split(",") if x.strip()),
        )
        return s if s.enabled else None

    @staticmethod
    def of(config: object) -> ProxySettings | None:
        """From anything with http_proxy/https_proxy/no_proxy (probes.azure.path.PathData)."""
        s = ProxySettings(
            str(getattr(config, "http_proxy", "") or ""),
            str(getattr(config, "https_proxy", "") or ""),
            tuple(str(x) for x in getattr(config, "no_proxy", ()) or ()),
            str(getattr(config, "trusted_ca", "") or ""),
        )
        return s if s.enabled else None


def parse_proxy(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a proxy URL; a bare host:port is http. ValueError in words."""
    text = url.strip()
    if not text:
        raise ValueError("empty proxy URL")
    u = urlsplit(text if "://" in text else "http://" + text)
    scheme = u.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"proxy {url!r}: scheme {scheme!r} is not http or https")
    if not u.hostname:
        raise ValueError(f"proxy {url!r} has no host")
    try:
        port = u.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"proxy {url!r} has an invalid port") from None
    return scheme, u.hostname, port


def proxy_text(url: str) -> str:
    """host:port of a proxy URL (no credentials), or the URL when it does not parse."""
    try:
        _, host, port = parse_proxy(url)
    except ValueError:
        return url
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bypass(no_proxy: Sequence[str], host: str, port: int) -> bool:
    """True when `host`:`port` is reached directly (an entry of `no_proxy` covers it)."""
    h = host.strip().lower().rstrip(".").strip("[]")
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        ip = None
    for raw in no_proxy:
        e = raw.strip().lower()
        if not e:
            continue
        if e == "*":
            return True
        want_port = 0
        if "/" in e:  # a CIDR
            try:
                net = ipaddress.ip_network(e, strict=False)
            except ValueError:
                continue
            if ip is not None and ip.version == net.version and ip in net:
                return True
            continue
        if e.count(":") == 1 or (e.startswith("[") and "]:" in e):
            head, _, p = e.rpartition(":")
            if p.isdigit():
                e, want_port = head.strip("[]"), int(p)
        if want_port and want_port != port:
            continue
        try:
            eip = ipaddress.ip_address(e.strip("[]"))
        except ValueError:
            eip = None
        if eip is not None:
            if ip is not None and ip == eip:
                return True
            continue
        if ip is not None:
            continue
        if e.startswith("*."):
            e = e[1:]
        if e.startswith("."):
            if h.endswith(e):
                return True
        elif h == e or h.endswith("." + e):
            return True
    return False


def _tls_context(trusted_ca: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    pem = trusted_ca.strip()
    if pem and "BEGIN CERTIFICATE" not in pem:
        try:
            pem = base64.b64decode(pem, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            pem = ""
    if pem:
        ctx.load_verify_locations(cadata=pem)
    return ctx


def _status(line: bytes) -> tuple[int, str]:
    """(status, reason) of an HTTP status line; (0, text) when it is not one."""
    text = line.decode("latin-1", "replace").strip()
    parts = text.split(" ", 2)
    if len(parts) >= 2 and parts[0].upper().startswith("HTTP/") and parts[1].isdigit() and len(parts[1]) == 3:
        return int(parts[1]), parts[2] if len(parts) > 2 else ""
    return 0, text[:80]


_REASONS = {
    403: "the proxy forbids it (an ACL: the destination is not allowed)",
    407: "the proxy wants credentials (Proxy-Authenticate)",
    502: "the proxy could not reach the destination (Bad Gateway)",
    503: "the proxy could not reach the destination (Service Unavailable)",
    504: "the proxy's connection to the destination timed out (Gateway Timeout)",
}


async def connect_via(
    proxy_host: str,
    proxy_port: int,
    target_host: str,
    target_port: int,
    timeout: float,
    *,
    scheme: str = "http",
    proxy_label: str = "",
    trusted_ca: str = "",
) -> tuple[EgressOutcome, float, str, int]:
    """One CONNECT through the proxy at proxy_host:proxy_port (an address): (outcome, ms,
    error, status). The whole exchange stays within `timeout` seconds, then the connection
    is closed. The time is the CONNECT's round trip when the tunnel opened."""
    label = proxy_label or f"{proxy_host}:{proxy_port}"
    authority = f"[{target_host}]:{target_port}" if ":" in target_host else f"{target_host}:{target_port}"
    t0 = time.monotonic()
    deadline = t0 + timeout
    writer: asyncio.StreamWriter | None = None
    try:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    proxy_host,
                    proxy_port,
                    ssl=_tls_context(trusted_ca) if scheme == "https" else None,
                    server_hostname=None if scheme != "https" else proxy_label.rsplit(":", 1)[0] or proxy_host,
                )
        except TimeoutError:
            return (
                EgressOutcome.PROXY_UNREACHABLE,
                (time.monotonic() - t0) * 1000.0,
                f"proxy {label}: no answer to the connection within {timeout:g}s",
                0,
            )
        except ssl.SSLError as e:
            return EgressOutcome.PROXY_UNREACHABLE, (time.monotonic() - t0) * 1000.0, f"proxy {label}: TLS: {e}", 0
        except OSError as e:
            why = e.strerror or str(e) or type(e).__name__
            return EgressOutcome.PROXY_UNREACHABLE, (time.monotonic() - t0) * 1000.0, f"proxy {label}: {why}", 0
        t1 = time.monotonic()
        writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode("ascii", "replace"))
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                await writer.drain()
                line = await reader.readuntil(b"\n")
        except TimeoutError:
            return (
                EgressOutcome.PROXY_TIMEOUT,
                (time.monotonic() - t0) * 1000.0,
                f"proxy {label} accepted the connection but did not answer CONNECT {authority} within {timeout:g}s",
                0,
            )
        except asyncio.LimitOverrunError:
            line = b""
        except (asyncio.IncompleteReadError, OSError) as e:
            partial = getattr(e, "partial", b"")
            if not partial:
                return (
                    EgressOutcome.PROXY_REFUSED,
                    (time.monotonic() - t0) * 1000.0,
                    f"proxy {label} closed the connection without answering CONNECT {authority}",
                    0,
                )
            line = partial
        status, reason = _status(line[:MAX_STATUS_LINE])
        ms = (time.monotonic() - t1) * 1000.0
        if 200 <= status < 300:
            return EgressOutcome.OPEN, ms, "", status
        if status == 0:
            return EgressOutcome.PROXY_REFUSED, ms, f"proxy {label}: not an HTTP answer to CONNECT ({reason!r})", 0
        why = _REASONS.get(status, "the proxy did not open the tunnel")
        return (
            EgressOutcome.PROXY_REFUSED,
            ms,
            f"proxy {label} answered {status} {reason} to CONNECT {authority}: {why}",
            status,
        )
    finally:
        if writer is not None:
            writer.close()


__all__ = ["ProxySettings", "bypass", "connect_via", "parse_proxy", "proxy_text"]
