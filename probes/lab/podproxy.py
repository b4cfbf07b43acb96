"""The lab API server's pod proxy, ``pods/{[scheme:]name[:port]}/proxy/{path}``, as
kube-apiserver's ProxyREST does it: headers filtered both ways, X-Forwarded-*, Go's
error texts for every way an upstream fails, and bounds (dial, whole answer, size) so
that a test never hangs on a pod."""

from __future__ import annotations

import errno
import http.client
import ipaddress
import posixpath
import re
import socket
import time
from collections.abc import Callable
from urllib.parse import quote

import orjson

from .apirequest import ApiError, ApiRequest

__all__ = ["PROXY_PATH", "PodProxy"]

# ---------------------------------------------------------------------------- pod proxy helpers

PROXY_PATH = re.compile(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/proxy(/.*)?", re.S)
# hop-by-hop and per-connection headers: never forwarded either way (net/http/httputil)
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_UPSTREAM = _HOP | {"authorization", "host", "content-length", "expect"}
_NOT_DOWNSTREAM = _HOP | {"content-length", "date", "server"}
_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network is unreachable",
    errno.ECONNRESET: "connection reset by peer",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "broken pipe",
}


def _goq(s: str) -> str:
    """Go's %q, near enough for error messages."""
    return orjson.dumps(s).decode()


def _errno_text(e: OSError) -> str:
    """The syscall error as Go prints it (``connection refused``)."""
    if e.errno in _ERRNO_TEXT:
        return _ERRNO_TEXT[e.errno]
    t = e.strerror or str(e)
    return t[:1].lower() + t[1:]


def _global_unicast(ip: str) -> bool:
    """Go's net.IP.IsGlobalUnicast: what kube-apiserver lets the pod proxy dial."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (
        a.is_unspecified
        or a.is_loopback
        or a.is_link_local
        or a.is_multicast
        or a == ipaddress.IPv4Address("255.255.255.255")
    )


def _upstream_path(rest: str) -> str:
    """The path the pod sees: cleaned like Go's path.Join, trailing slash kept, re-escaped like url.EscapedPath."""
    rest = rest.lstrip("/")
    if not rest:
        return "/"
    p = posixpath.normpath("/" + rest)
    if rest.endswith("/") and not p.endswith("/"):
        p += "/"
    return quote(p, safe="/$&+,:;=@")


class PodProxy(ApiRequest):
    def _proxy(self, ns: str, ident: str, rest: str) -> None:
        """``pods/{[scheme:]name[:port]}/proxy/{path}`` as kube-apiserver's ProxyREST does it.

        Port: the given one, else the pod's first container port. The pod's first podIPs
        entry must be a global unicast address (400 "address not allowed" otherwise, e.g.
        while Pending); any failure to get an HTTP answer is 503 "error trying to reach
        service: ...". Phase and readiness are not checked: kube-apiserver does not either.
        """
        lab = self.lab
        parts = ident.split(":")
        if len(parts) > 3:
            raise ApiError(400, "BadRequest", f"invalid pod request {_goq(ident)}")
        scheme, name, port_s = parts if len(parts) == 3 else ("", parts[0], parts[1] if len(parts) == 2 else "")
        if not name or scheme not in ("", "http", "https"):
            raise ApiError(400, "BadRequest", f"invalid pod request {_goq(ident)}")
        e = lab.state.store.get("pods", f"{ns}/{name}")
        if e is None:
            raise self._not_found("pods", name)
        pod = e.obj
        if not port_s:
            for c in pod.get("spec", {}).get("containers", []):
                if c.get("ports"):
                    port_s = str(c["ports"][0]["containerPort"])
                    break
        ips = pod.get("status", {}).get("podIPs") or []
        ip = (ips[0].get("ip") or "") if ips else ""
        if not _global_unicast(ip):
            raise ApiError(400, "BadRequest", "address not allowed")

        def unreachable(msg: str) -> ApiError:
            return ApiError(503, "ServiceUnavailable", f"error trying to reach service: {msg}")

        if scheme == "https":
            raise unreachable("https to pods is not supported by the lab's pod proxy (use http:NAME:PORT)")
        if not port_s:
            port = 80
        elif port_s.isdigit():
            port = int(port_s)
            if not 0 < port < 65536:
                raise unreachable(f"dial tcp: address {port_s}: invalid port")
        else:
            try:
                port = socket.getservbyname(port_s, "tcp")  # Go's dialer resolves service names too
            except OSError:
                raise unreachable(f"dial tcp: lookup tcp/{port_s}: unknown port") from None
        host = f"[{ip}]" if ":" in ip else ip
        display = f"{host}:{port}"
        path = _upstream_path(rest)
        fwd_uri = f"/api/v1/namespaces/{ns}/pods/{ident}/proxy{path}"
        target = lab.state.dial_target(ns, name, port)
        if target is None:  # a lab pod nothing runs behind: its ports refuse
            raise unreachable(f"dial tcp {display}: connect: connection refused")
        deadline = time.monotonic() + lab.proxy_timeout
        try:
            sock = socket.create_connection(
                target, timeout=max(0.001, min(lab.proxy_dial_timeout, deadline - time.monotonic()))
            )
        except TimeoutError:
            raise unreachable(f"dial tcp {display}: i/o timeout") from None
        except OSError as ex:
            raise unreachable(f"dial tcp {display}: connect: {_errno_text(ex)}") from None
        self.server.track(sock)
        try:
            if lab.stopping.is_set():
                self.close_connection = True
                return
            self._proxy_exchange(
                sock,
                target,
                display,
                path + ("?" + self._raw_query if self._raw_query else ""),
                fwd_uri,
                deadline,
                unreachable,
            )
        finally:
            self.server.untrack(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _upstream_headers(self, fwd_uri: str) -> list[tuple[str, str]]:
        out = [
            (k, v)
            for k, v in self.headers.items()
            if k.lower() not in _NOT_UPSTREAM
            and k.lower() != "x-forwarded-for"
            and not k.lower().startswith("impersonate-")
        ]
        prior = self.headers.get("X-Forwarded-For")
        client = self.client_address[0] if self.client_address else ""
        out.append(("X-Forwarded-For", f"{prior}, {client}" if prior else client))
        out.append(("X-Forwarded-Uri", fwd_uri))
        return out

    def _proxy_exchange(
        self,
        sock: socket.socket,
        target: tuple[str, int],
        display: str,
        path_qs: str,
        fwd_uri: str,
        deadline: float,
        unreachable: Callable[[str], ApiError],
    ) -> None:
        lab = self.lab

        def left() -> float:
            r = deadline - time.monotonic()
            if r <= 0:
                raise TimeoutError
            return r

        conn = http.client.HTTPConnection(target[0], target[1])
        conn.sock = sock
        try:
            try:
                sock.settimeout(left())
                conn.putrequest(self.command, path_qs, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", display)
                for k, v in self._upstream_headers(fwd_uri):
                    conn.putheader(k, v)
                conn.endheaders()
                sock.settimeout(left())
                resp = conn.getresponse()
            except TimeoutError:
                raise unreachable("net/http: timeout awaiting response headers") from None
            except http.client.RemoteDisconnected:
                raise unreachable("EOF") from None
            except http.client.BadStatusLine as ex:
                # BadStatusLine.__init__ sets .line; typeshed does not declare it
                line = str(ex.line).rstrip("\r\n")  # type: ignore[attr-defined]
                raise unreachable(
                    f"net/http: HTTP/1.x transport connection broken: malformed HTTP response {_goq(line)}"
                ) from None
            except http.client.HTTPException as ex:
                raise unreachable(f"net/http: HTTP/1.x transport connection broken: {ex}") from None
            except OSError as ex:
                raise unreachable(f"read tcp {display}: {_errno_text(ex)}") from None
            declared = resp.getheader("Content-Length")
            declared = declared.strip() if declared and declared.strip().isdigit() else None
            cap = lab.proxy_max_bytes
            too_big = ApiError(
                502, "InternalError", f"the lab's pod proxy refuses answers over {cap} bytes, and {display} sent more"
            )
            if declared is not None and int(declared) > cap:
                raise too_big
            chunks: list[bytes] = []
            total, cut = 0, False
            if self.command != "HEAD":
                try:
                    while True:
                        sock.settimeout(left())
                        b = resp.read1(65536)
                        if not b:
                            break
                        total += len(b)
                        if total > cap:
                            raise too_big
                        chunks.append(b)
                except (TimeoutError, OSError, http.client.HTTPException):
                    cut = True  # the real proxy passes the status on, then breaks the body off
            if lab.stopping.is_set():
                self.close_connection = True
                return
            self._relay(resp.status, resp.getheaders(), b"".join(chunks), declared, cut)
        finally:
            conn.close()

    def _relay(self, code: int, headers: list[tuple[str, str]], body: bytes, declared: str | None, cut: bool) -> None:
        """Answer with the pod's status, headers and body (apiserver headers first, like its filters)."""
        self.send_response(code)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self._audit)
        for k, v in headers:
            lk = k.lower()
            if lk in _NOT_DOWNSTREAM or lk.startswith("access-control-"):
                continue
            self.send_header(k, v)
        if cut:
            self.close_connection = True
            if declared is not None:
                self.send_header("Content-Length", declared)
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if body:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
        else:
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(body)))
            elif declared is not None:
                self.send_header("Content-Length", declared)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        self.wfile.flush()
        self.record(code)
