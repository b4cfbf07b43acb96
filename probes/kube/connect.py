"""Connect to the API server the way kubectl does, and speak raw HTTP through the client.

The official client loads kubeconfig files (contexts, client certificates, bearer tokens,
exec credential plugins such as kubelogin) and the in-cluster service account. We keep
that, but skip its model layer: responses come back as raw bytes for orjson, and watch
streams are read line by line.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCEPT_JSON = "application/json"
IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


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
    """Which cluster we talk to, for the header and error messages."""

    context: str
    server: str
    source: str  # kubeconfig path(s) or "in-cluster"


def _kubeconfig_paths(explicit: str, env: dict[str, str]) -> list[Path]:
    if explicit:
        return [Path(explicit).expanduser()]
    if env.get("KUBECONFIG"):
        return [Path(p).expanduser() for p in env["KUBECONFIG"].split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def in_cluster(env: dict[str, str] | None = None) -> bool:
    env = dict(os.environ) if env is None else env
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and IN_CLUSTER_TOKEN.exists()


def load(kubeconfig: str = "", context: str = "", env: dict[str, str] | None = None) -> tuple[Any, ApiTarget]:
    """Return (kubernetes ApiClient, ApiTarget) or raise KubeConnectError with a next step."""
    env = dict(os.environ) if env is None else env
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    cfg = client.Configuration()
    paths = _kubeconfig_paths(kubeconfig, env)
    existing = [p for p in paths if p.is_file()]
    if not existing and not kubeconfig and in_cluster(env):
        try:
            config.load_incluster_config(client_configuration=cfg)
        except ConfigException as e:
            raise KubeConnectError(f"in-cluster configuration failed: {e}") from None
        return _client(cfg), ApiTarget(context="in-cluster", server=cfg.host, source="in-cluster")
    if not existing:
        where = ", ".join(str(p) for p in paths)
        raise KubeConnectError(
            f"no kubeconfig found ({where})",
            "run `az aks get-credentials -g <resource-group> -n <cluster>`, pass --kubeconfig, "
            "or try the embedded demo cluster with `aksnet-top --demo`",
        )
    config_file = os.pathsep.join(str(p) for p in existing)  # several $KUBECONFIG files merge, like kubectl
    try:
        contexts, active = config.list_kube_config_contexts(config_file=config_file)
    except ConfigException as e:
        raise KubeConnectError(f"kubeconfig {existing[0]}: {e}", "check the file with `kubectl config view`") from None
    except Exception as e:  # yaml errors and friends: the file is not a kubeconfig
        raise KubeConnectError(f"kubeconfig {existing[0]} is not valid: {type(e).__name__}: {e}") from None
    names = [c.get("name", "") for c in contexts or []]
    if context and context not in names:
        known = ", ".join(names) or "none"
        raise KubeConnectError(
            f"context {context!r} not found in the kubeconfig (known: {known})",
            "list them with `kubectl config get-contexts`",
        )
    if not context and not active:
        raise KubeConnectError(
            "the kubeconfig has no current context",
            "pass --context or run `kubectl config use-context <name>`",
        )
    chosen = context or (active or {}).get("name", "")
    try:
        with _captured_client_errors() as errors:
            config.load_kube_config(
                config_file=config_file, context=context or None, client_configuration=cfg, persist_config=False
            )
        if errors and "exec" in " ".join(errors).lower() + _user_kind(contexts, chosen, config_file):
            raise KubeConnectError(f"context {chosen!r}: the exec credential plugin failed: {errors[-1]}", KUBELOGIN_HINT)
    except ConfigException as e:
        hint = KUBELOGIN_HINT if "exec" in str(e).lower() else ""
        raise KubeConnectError(f"context {chosen!r}: {e}", hint) from None
    except KubeConnectError:
        raise
    except Exception as e:
        raise KubeConnectError(f"context {chosen!r} could not be loaded: {type(e).__name__}: {e}") from None
    source = os.pathsep.join(str(p) for p in existing)
    return _client(cfg), ApiTarget(context=chosen, server=cfg.host, source=source)


KUBELOGIN_HINT = (
    "for Entra ID clusters install kubelogin (`az aks install-cli`) and run "
    "`kubelogin convert-kubeconfig -l azurecli`; check the plugin with `kubectl get nodes`"
)


@contextlib.contextmanager
def _captured_client_errors() -> Iterator[list[str]]:
    """The client logs (instead of raising) when an exec plugin fails; catch those lines.

    They would otherwise go to stderr, under the TUI, and the failure would only show up
    later as an anonymous 401.
    """
    errors: list[str] = []

    class _Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record.getMessage())

    root = logging.getLogger()
    handler = _Grab(level=logging.ERROR)
    root.addHandler(handler)
    try:
        yield errors
    finally:
        root.removeHandler(handler)


def _user_kind(contexts: list[dict[str, Any]] | None, chosen: str, config_file: str) -> str:
    """'exec' when the chosen context's user runs a credential plugin (for the error text)."""
    for c in contexts or []:
        if c.get("name") == chosen:
            user = (c.get("context") or {}).get("user", "")
            try:
                import yaml

                for path in config_file.split(os.pathsep):
                    doc = yaml.safe_load(Path(path).read_text()) or {}
                    for u in doc.get("users") or []:
                        if u.get("name") == user and "exec" in (u.get("user") or {}):
                            return "exec"
            except Exception:
                return ""
    return ""


def _client(cfg: Any) -> Any:
    from kubernetes import client

    api = client.ApiClient(configuration=cfg)
    api.user_agent = "aksnet-top/0.1 (read-only)"
    return api


class HttpError(Exception):
    """A non-2xx answer from the API server, with its v1 Status decoded when there was one."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


def get(api: Any, path: str, query: list[tuple[str, str]] | None = None, timeout: Any = 10.0, stream: bool = False) -> Any:
    """GET `path` with the client's auth; return the urllib3 response (body unread if stream).

    Raises HttpError for a non-2xx answer (body read and decoded), and lets urllib3's
    connection errors through for the caller to classify.
    """
    method, url, headers, _, _ = api.param_serialize(
        "GET", path, query_params=query or [], header_params={"Accept": ACCEPT_JSON}, auth_settings=["BearerToken"]
    )
    resp = api.call_api(method, url, header_params=headers, _request_timeout=timeout).response
    if 200 <= resp.status < 300:
        return resp
    body = resp.data or b""
    resp.release_conn()
    raise _http_error(resp.status, resp.reason or "", body, resp.headers.get("Retry-After"))


def _http_error(status: int, reason: str, body: bytes, retry_after: str | None) -> HttpError:
    import orjson

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
