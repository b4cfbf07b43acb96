"""Connect to the API server the way kubectl does, and speak raw HTTP to it.

kubeconfig files (merged `$KUBECONFIG`, contexts, client certificates, bearer tokens and
token files, exec credential plugins such as kubelogin, proxies) and the in-cluster
service account are read by `probes.kube.kubeconfig`; requests go through urllib3 in
`probes.kube.client`. The official `kubernetes` package is not imported on this path:
loading it cost about 180 ms before the first request (its models, dynamic client,
websockets and oauthlib), for a YAML read and an HTTP GET. Responses stay raw bytes for
orjson; watch streams are read line by line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, cast

import orjson
from isal import igzip, isal_zlib

from probes.kube.credentials import CredentialError
from probes.kube.kubeconfig import (
    SA_DIR,
    KubeconfigError,
    in_cluster_endpoint,
    kubeconfig_paths,
    merge,
    resolve,
)
from probes.redact import redact_url

ACCEPT_JSON = "application/json"
IN_CLUSTER_TOKEN = SA_DIR / "token"


class KubeConnectError(Exception):
    """The client could not be set up. `hint` says what the operator can run next."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


@dataclass(frozen=True, slots=True)
class ApiTarget:
    """Which cluster we talk to, for the header and error messages (the server's URL with
    any credentials in it replaced by ``***``: probes.redact)."""

    context: str
    server: str
    source: str  # kubeconfig path(s) or "in-cluster"


def in_cluster(env: dict[str, str] | None = None) -> bool:
    env = dict(os.environ) if env is None else env
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and IN_CLUSTER_TOKEN.exists()


KUBELOGIN_HINT = (
    "for Entra ID clusters install kubelogin (`az aks install-cli`) and run "
    "`kubelogin convert-kubeconfig -l azurecli`; check the plugin with `kubectl get nodes`"
)


def load(kubeconfig: str = "", context: str = "", env: dict[str, str] | None = None) -> tuple[Any, ApiTarget]:
    """Return (KubeClient, ApiTarget) or raise KubeConnectError with a next step.

    An exec credential plugin runs here once, so that a missing or failing kubelogin is
    one clear line before the screen opens, not an anonymous 401 later.
    """
    # lazy: urllib3 (~30 ms) loads only when a cluster is contacted, not for the CLI's start or `check --help`
    from probes.kube.client import KubeClient

    env = dict(os.environ) if env is None else env
    paths = kubeconfig_paths(kubeconfig, env)
    existing = [p for p in paths if p.is_file()]
    try:
        if not existing and not kubeconfig and in_cluster(env):
            ep = in_cluster_endpoint(env)
        elif not existing:
            where = ", ".join(str(p) for p in paths)
            raise KubeConnectError(
                f"no kubeconfig found ({where})",
                "run `az aks get-credentials -g <resource-group> -n <cluster>`, pass --kubeconfig, "
                "or try the embedded demo cluster with `aksnet-top --demo`",
            )
        else:
            ep = resolve(merge(existing), context)  # several $KUBECONFIG files merge, like kubectl
        api = KubeClient(ep, env)
        if ep.exec_spec is not None:
            api.creds.exec_answer()
    except KubeconfigError as e:
        raise KubeConnectError(e.message, e.hint) from None
    except CredentialError as e:
        raise KubeConnectError(
            f"context {ep.context!r}: the exec credential plugin failed: {e}", KUBELOGIN_HINT
        ) from None
    # the target is what the user sees (header, check, messages): never its credentials
    return api, ApiTarget(context=ep.context, server=redact_url(ep.server), source=ep.source)


class HttpError(Exception):
    """A non-2xx answer from the API server, with its v1 Status decoded when there was one."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


def get(
    api: Any, path: str, query: list[tuple[str, str]] | None = None, timeout: Any = 10.0, stream: bool = False
) -> Any:
    """GET `path` with the client's auth; return the urllib3 response (body unread if stream).

    Asks for gzip, as kubectl does (urllib3 decodes it in `.data` and `.stream()`).
    Raises HttpError for a non-2xx answer (body read and decoded), and lets urllib3's
    connection errors through for the caller to classify.
    """
    resp = api.request("GET", path, query, headers=GET_HEADERS, timeout=timeout, stream=stream)
    if 200 <= resp.status < 300:
        return resp
    body = resp.data or b""
    resp.release_conn()
    raise _http_error(resp.status, resp.reason or "", body, resp.headers.get("Retry-After"))


GET_HEADERS = {"Accept": ACCEPT_JSON, "Accept-Encoding": "gzip"}


# what ISA-L raises for a damaged (IsalError) or cut (EOFError) stream, or a bad header
_INFLATE_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, cast("type[BaseException]", isal_zlib.error))


class BadBody(ValueError):
    """A body that cannot be read as its headers say (a corrupt or truncated gzip stream)."""


def read_raw(resp: Any) -> tuple[bytes, str]:
    """The whole body of a response opened with stream=True, as sent (not inflated), and its
    content coding ("" or "gzip"); BadBody for a coding that was not asked for."""
    raw = resp.read(decode_content=False)
    encoding = str(resp.headers.get("Content-Encoding") or "").strip().lower()
    if encoding in ("", "identity"):
        return bytes(raw), ""
    if encoding not in ("gzip", "x-gzip"):
        raise BadBody(f"Content-Encoding {encoding!r} was not asked for")
    return bytes(raw), "gzip"


def inflate(raw: bytes, encoding: str) -> bytes:
    """`raw` decoded from its content coding (see read_raw), gzip by ISA-L.

    A 5,000-node list is 4.7 MB of gzip that inflates to 64 MB: ISA-L does that about four
    times faster than zlib (which urllib3 would use), and the GIL is released meanwhile."""
    if not encoding:
        return raw
    try:
        return bytes(igzip.decompress(raw))
    except _INFLATE_ERRORS as e:
        raise BadBody(f"its gzip body does not inflate ({e})") from None


def inflate_head(raw: bytes, encoding: str, size: int = 64 * 1024) -> bytes:
    """At most the first `size` bytes of the decoded body, inflating no more of it than
    that (a list's metadata, continue token included, is in its head); b"" when even the
    head does not inflate (inflate() then says why)."""
    if not encoding:
        return raw[:size]
    try:
        return bytes(isal_zlib.decompressobj(wbits=31).decompress(raw, size))
    except _INFLATE_ERRORS:
        return b""


def _http_error(status: int, reason: str, body: bytes, retry_after: str | None) -> HttpError:
    message = ""
    try:
        doc = orjson.loads(body)
        if isinstance(doc, dict):
            message = str(doc.get("message") or "")
            reason = str(doc.get("reason") or reason)
    except orjson.JSONDecodeError:
        message = body[:200].decode("utf-8", "replace").strip()
    ra: float | None = None
    if retry_after:
        try:
            ra = max(0.0, float(retry_after))
        except ValueError:
            ra = None
    return HttpError(status, reason, message or reason, ra)


def set_read_timeout(resp: Any, seconds: float) -> bool:
    """Give the rest of a streamed response its own read deadline (the headers had theirs).
    False when the socket cannot be reached (then the request's read timeout stays)."""
    sock = getattr(getattr(resp, "connection", None), "sock", None)
    if sock is None:
        return False
    try:
        sock.settimeout(seconds)
    except OSError:
        return False
    return True
