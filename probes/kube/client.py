"""HTTP to the API server with urllib3 alone: TLS, client certificates, bearer credentials,
proxies, gzip. What the official client's ApiClient did for us, minus its import cost.

One `KubeClient` per connection target; its pool is shared by the threads that use it
(urllib3 pools are thread-safe). Responses are urllib3 `HTTPResponse`s, bodies raw bytes.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import tempfile
import threading
import warnings
from http.client import RemoteDisconnected
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3

from probes.kube.credentials import Credentials, ExecAnswer
from probes.kube.kubeconfig import Endpoint, KubeconfigError

DEFAULT_USER_AGENT = "aksnet-top/0.1 (read-only)"
POOL_MAXSIZE = 32  # reflectors, the next page in flight, events, the agent reader's budget


def _ssl_context(ep: Endpoint, cert: bytes | None, key: bytes | None) -> Any:
    if ep.insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ep.ca_data:
        ctx = ssl.create_default_context(cadata=ep.ca_data.decode("ascii", "replace"))
    else:
        ctx = ssl.create_default_context()
    if cert and key:
        _load_cert_chain(ctx, cert, key)
    return ctx


def _load_cert_chain(ctx: Any, cert: bytes, key: bytes) -> None:
    """ssl wants files: write both to a private temporary directory, load, delete at once."""
    with tempfile.TemporaryDirectory(prefix="aksnet-top-") as d:
        cpath, kpath = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        for path, data in ((cpath, cert), (kpath, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cpath, kpath)


def env_proxy(server: str, env: dict[str, str]) -> str:
    """The proxy the environment asks for `server` ("" for none), like Go's ProxyFromEnvironment:
    lower-case variables first, NO_PROXY by host suffix, IP or CIDR, loopback never proxied."""
    parts = urlsplit(server)
    scheme, host = parts.scheme or "https", (parts.hostname or "").lower()

    def var(name: str) -> str:
        return env.get(name.lower()) or env.get(name.upper()) or ""

    proxy = var(f"{scheme}_proxy") or var("all_proxy")
    if not proxy or host in ("localhost", "") or host.startswith("127.") or host == "::1":
        return ""
    for entry in (e.strip().lower() for e in var("no_proxy").split(",")):
        if not entry:
            continue
        if entry == "*":
            return ""
        name = entry.split(":")[0] if entry.count(":") == 1 else entry
        if "/" in name:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(name, strict=False):
                    return ""
            except ValueError:
                pass
            continue
        name = name.lstrip("*")
        if host == name.lstrip(".") or (name.startswith(".") and host.endswith(name)) or host.endswith("." + name):
            return ""
    return proxy if "://" in proxy else f"http://{proxy}"


class KubeClient:
    """Requests to one API server with one identity; `close()` when done."""

    def __init__(self, ep: Endpoint, env: dict[str, str] | None = None, user_agent: str = DEFAULT_USER_AGENT) -> None:
        self.ep = ep
        self.server = ep.server
        self.user_agent = user_agent
        # never urllib3's hidden retries (3, unpaced, each a full timeout): every caller
        # paces its own attempts and says when the next one is
        self.retries: Any = False
        self.creds = Credentials(ep, env)
        self._env = dict(os.environ) if env is None else env
        self._lock = threading.Lock()
        self._pool: Any = None
        self._pool_cert: tuple[bytes | None, bytes | None] | None = None

    # --- connection pool ---------------------------------------------------------------
    def pool(self, ans: ExecAnswer | None = None) -> Any:
        """The pool for the current client certificate (an exec plugin may rotate it)."""
        cert: tuple[bytes | None, bytes | None] = (None, None)
        if self.server.startswith("https"):
            cert = (
                (ans.cert_data, ans.key_data)
                if ans is not None and ans.cert_data and ans.key_data
                else (self.ep.cert_data, self.ep.key_data)
            )
        with self._lock:
            if self._pool is not None and cert == self._pool_cert:
                return self._pool
            old, self._pool = self._pool, self._make_pool(*cert)
            self._pool_cert = cert
        if old is not None:
            old.clear()
        return self._pool

    def _make_pool(self, cert: bytes | None, key: bytes | None) -> Any:
        kw: dict[str, Any] = {"maxsize": POOL_MAXSIZE, "block": False}
        if self.server.startswith("https"):
            kw["ssl_context"] = _ssl_context(self.ep, cert, key)
            if self.ep.insecure:
                kw["cert_reqs"] = "CERT_NONE"

                # kubectl says nothing per request either; only this server's warning is muted
                host = urlsplit(self.server).hostname or ""
                warnings.filterwarnings(
                    "ignore", message=f".*host '{re.escape(host)}'", category=urllib3.exceptions.InsecureRequestWarning
                )
            if self.ep.tls_server_name:
                kw["server_hostname"] = self.ep.tls_server_name
                kw["assert_hostname"] = self.ep.tls_server_name
        proxy = self.ep.proxy_url or env_proxy(self.server, self._env)
        if not proxy:
            return urllib3.PoolManager(**kw)
        if proxy.startswith("socks"):
            try:
                # lazy: PySocks is optional: only a socks5:// proxy needs it
                from urllib3.contrib.socks import SOCKSProxyManager
            except ImportError:
                raise KubeconfigError(
                    f"proxy {proxy} needs PySocks", "pip install pysocks, or use an http(s) proxy"
                ) from None
            return SOCKSProxyManager(proxy, **kw)
        return urllib3.ProxyManager(proxy, **kw)

    # --- requests ----------------------------------------------------------------------
    def url(self, path: str, query: list[tuple[str, str]] | None = None) -> str:
        return self.server + path + ("?" + urlencode(query, quote_via=quote) if query else "")

    def request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout: Any = 10.0,
        stream: bool = False,
    ) -> Any:
        """One request; the urllib3 response (body unread if `stream`). A 401 with an exec
        plugin runs the plugin again and retries once, as client-go does."""
        url = self.url(path, query)
        t = (
            urllib3.Timeout(connect=timeout[0], read=timeout[1])
            if isinstance(timeout, tuple)
            else urllib3.Timeout(timeout)
        )
        for attempt in (1, 2):
            hdrs = {"User-Agent": self.user_agent, **(headers or {})}
            ans = self.creds.exec_answer() if self.ep.exec_spec is not None else None  # once per request
            auth = self.creds.header(ans)
            if auth:
                hdrs["Authorization"] = auth
            pool = self.pool(ans)
            kw: dict[str, Any] = {
                "headers": hdrs,
                "body": body,
                "timeout": t,
                "preload_content": not stream,
                "retries": self.retries,
            }
            try:
                resp = pool.request(method, url, **kw)
            except urllib3.exceptions.ProtocolError as e:
                # a kept-alive connection the server had closed, found closed before any answer:
                # once more on a new one, as Go's transport does (no timeout is ever retried)
                if not any(isinstance(c, RemoteDisconnected) for c in (e.__context__, *e.args)):
                    raise
                resp = pool.request(method, url, **kw)
            if resp.status != 401 or attempt == 2 or not self.creds.refresh_after_401():
                return resp
            resp.drain_conn()
            resp.release_conn()
        return resp  # pragma: no cover - the loop returns

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.clear()
