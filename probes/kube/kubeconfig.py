"""Read kubeconfig files the way kubectl does, into one `Endpoint`: where and how to connect.

Written here (instead of `kubernetes.config`) because that module imports the whole
client package — models, the dynamic client, websockets, oauthlib — about 180 ms before
the first request, for a job that is a YAML read and a few lookups.

kubectl's rules, as implemented:
- `--kubeconfig` alone, else every file of `$KUBECONFIG` (os.pathsep-separated), else
  `~/.kube/config`. Merging several files: the first file to name a cluster, user or
  context wins it; the first non-empty current-context wins.
- Relative paths in a file (certificate-authority, client-certificate, client-key,
  tokenFile, an exec command with a slash in it) are relative to that file's directory.
- Inline `*-data` fields are base64; the files they stand for are read at connect time.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from probes.redact import redact_url


class KubeconfigError(Exception):
    """The kubeconfig is missing, unreadable or inconsistent; `hint` says what to run."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One context, resolved: the server and every credential kubectl would use for it."""

    context: str
    server: str
    source: str  # the kubeconfig path(s), or "in-cluster"
    ca_data: bytes | None = None  # PEM
    insecure: bool = False
    tls_server_name: str = ""
    proxy_url: str = ""
    cert_data: bytes | None = None  # PEM client certificate
    key_data: bytes | None = None
    token: str = ""
    token_file: str = ""  # re-read when it changes (projected service account tokens rotate)
    username: str = ""
    password: str = ""
    exec_spec: dict[str, Any] | None = None  # the user's `exec:` block, command path resolved
    exec_cluster: dict[str, Any] = field(default_factory=dict)  # for provideClusterInfo
    user: str = ""


def kubeconfig_paths(explicit: str, env: dict[str, str]) -> list[Path]:
    if explicit:
        return [Path(explicit).expanduser()]
    if env.get("KUBECONFIG"):
        return [Path(p).expanduser() for p in env["KUBECONFIG"].split(os.pathsep) if p]
    home = env.get("HOME")
    return [Path(home, ".kube", "config") if home else Path("~/.kube/config").expanduser()]


def _parse(path: Path) -> dict[str, Any]:
    text = path.read_bytes()
    if text.lstrip()[:1] == b"{":  # JSON is YAML too; orjson is already loaded for the lists
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):
            return doc
    # lazy: PyYAML (~10 ms) only for a kubeconfig that is not JSON
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(text, Loader=loader)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise KubeconfigError(f"kubeconfig {path} is not valid: not a mapping but {type(doc).__name__}")
    return doc


@dataclass(slots=True)
class Merged:
    """The merged view of one or more kubeconfig files; each entry remembers its file."""

    paths: list[Path]
    current: str = ""
    clusters: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)
    users: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return os.pathsep.join(str(p) for p in self.paths)


def merge(paths: list[Path]) -> Merged:
    """Read and merge the files (kubectl's first-wins rules). Raises KubeconfigError."""
    m = Merged(paths)
    for path in paths:
        try:
            doc = _parse(path)
        except KubeconfigError:
            raise
        except OSError as e:
            raise KubeconfigError(f"kubeconfig {path} cannot be read: {e.strerror or e}") from None
        except RecursionError:
            raise KubeconfigError(f"kubeconfig {path} is not valid: lists or mappings nested too deeply") from None
        except Exception as e:  # noqa: BLE001 - yaml errors and friends: the file is not a kubeconfig
            what = " ".join(str(e).split())  # PyYAML's messages span lines (the mark, a caret)
            raise KubeconfigError(f"kubeconfig {path} is not valid: {type(e).__name__}: {what[:300]}") from None
        if not m.current and isinstance(doc.get("current-context"), str):
            m.current = doc["current-context"]
        for key, into, inner in (
            ("clusters", m.clusters, "cluster"),
            ("users", m.users, "user"),
            ("contexts", m.contexts, "context"),
        ):
            entries = doc.get(key) or []
            if not isinstance(entries, list):
                raise KubeconfigError(
                    f"kubeconfig {path} is not valid: `{key}` is not a list",
                    "check the file with `kubectl config view`",
                )
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict) or entry.get("name") is None:
                    raise KubeconfigError(
                        f"kubeconfig {path} is not valid: {key}[{i}] has no name",
                        "check the file with `kubectl config view`",
                    )
                if not isinstance(entry["name"], str):  # `name: 2024` is a number to YAML (and to kubectl)
                    raise KubeconfigError(
                        f"kubeconfig {path} is not valid: {key}[{i}].name is {_show(entry['name'])}, not text",
                        f'quote it: name: "{_show(entry["name"])}"'
                        if isinstance(entry["name"], (int, float))
                        else "check the file with `kubectl config view`",
                    )
                body = entry.get(inner) or {}
                if not isinstance(body, dict):
                    raise KubeconfigError(
                        f"kubeconfig {path}: {inner} {entry['name']!r} is not a mapping",
                        "check the file with `kubectl config view`",
                    )
                if entry["name"] not in into:
                    into[entry["name"]] = body if key == "contexts" else (body, path)  # type: ignore[assignment]
    return m


def _check_server(server: str, where: str, cluster: str) -> None:
    """kubectl refuses these too; said before a connection is tried, with the URL redacted."""
    hint = "check it with `kubectl config view`"
    try:
        u = urlsplit(server)
        port = u.port  # ValueError when out of range or not a number
    except ValueError:
        raise KubeconfigError(
            f"{where}: cluster {cluster!r}: server {redact_url(server)!r} is not a URL", hint
        ) from None
    if u.scheme not in ("https", "http") or not u.hostname:
        raise KubeconfigError(
            f"{where}: cluster {cluster!r}: server {redact_url(server)!r} is not an http(s) URL with a host", hint
        )
    del port


def _pem(data: bytes, what: str, where: str) -> bytes:
    if b"-----BEGIN" not in data:
        raise KubeconfigError(
            f"{where}: {what} is not PEM (no -----BEGIN line)", "check it with `kubectl config view --raw`"
        )
    return data


def _show(v: Any) -> str:
    """A value from the file, quoted for a message: one line, at most 60 characters."""
    try:
        s = str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else repr(v)
    except ValueError:  # an integer of more than 4300 digits
        return "a very long number"
    return s if len(s) <= 60 else s[:57] + "..."


def _b64(value: Any, what: str, where: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=False)
    except ValueError as e:
        raise KubeconfigError(f"{where}: {what} is not base64: {e}") from None


def _file(value: Any, base: Path, what: str, where: str) -> bytes:
    p = _rel(value, base)
    try:
        return Path(p).read_bytes()
    except OSError as e:
        raise KubeconfigError(f"{where}: cannot read {what} {p}: {e.strerror or e}") from None


def _rel(value: Any, base: Path) -> str:
    p = os.path.expanduser(str(value))
    return p if os.path.isabs(p) else str(base.parent / p)


def resolve(m: Merged, context: str) -> Endpoint:
    """The Endpoint for `context` (or the current one). Raises KubeconfigError."""
    names = list(m.contexts)
    if context and context not in m.contexts:
        raise KubeconfigError(
            f"context {context!r} not found in the kubeconfig (known: {', '.join(names) or 'none'})",
            "list them with `kubectl config get-contexts`",
        )
    chosen = context or m.current
    if not chosen:
        raise KubeconfigError(
            "the kubeconfig has no current context", "pass --context or run `kubectl config use-context <name>`"
        )
    if chosen not in m.contexts:
        raise KubeconfigError(
            f"the current context {chosen!r} is not in the kubeconfig (known: {', '.join(names) or 'none'})",
            "pass --context or run `kubectl config use-context <name>`",
        )
    ctx = m.contexts[chosen]
    where = f"context {chosen!r}"
    cluster_name, user_name = str(ctx.get("cluster") or ""), str(ctx.get("user") or "")
    if cluster_name not in m.clusters:
        raise KubeconfigError(
            f"{where}: cluster {cluster_name!r} is not in the kubeconfig", "check it with `kubectl config view`"
        )
    cluster, cpath = m.clusters[cluster_name]
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise KubeconfigError(f"{where}: cluster {cluster_name!r} has no server", "check it with `kubectl config view`")
    if "://" not in server:
        server = "https://" + server
    _check_server(server, where, cluster_name)
    ca: bytes | None = None
    if cluster.get("certificate-authority-data"):
        ca = _b64(cluster["certificate-authority-data"], "certificate-authority-data", where)
        ca = _pem(ca, "certificate-authority-data", where)
    elif cluster.get("certificate-authority"):
        ca = _pem(
            _file(cluster["certificate-authority"], cpath, "certificate-authority", where),
            "certificate-authority",
            where,
        )
    user: dict[str, Any] = {}
    upath = cpath
    if user_name:
        if user_name not in m.users:
            raise KubeconfigError(
                f"{where}: user {user_name!r} is not in the kubeconfig", "check it with `kubectl config view`"
            )
        user, upath = m.users[user_name]
    cert = key = None
    if user.get("client-certificate-data"):
        cert = _pem(
            _b64(user["client-certificate-data"], "client-certificate-data", where), "client-certificate-data", where
        )
    elif user.get("client-certificate"):
        cert = _pem(_file(user["client-certificate"], upath, "client-certificate", where), "client-certificate", where)
    if user.get("client-key-data"):
        key = _pem(_b64(user["client-key-data"], "client-key-data", where), "client-key-data", where)
    elif user.get("client-key"):
        key = _pem(_file(user["client-key"], upath, "client-key", where), "client-key", where)
    exec_spec = None
    if isinstance(user.get("exec"), dict):
        exec_spec = dict(user["exec"])
        command = str(exec_spec.get("command") or "")
        if os.sep in command and not os.path.isabs(command):
            exec_spec["command"] = _rel(command, upath)
    elif isinstance(user.get("auth-provider"), dict):
        name = user["auth-provider"].get("name", "")
        raise KubeconfigError(
            f"{where}: the {name!r} auth-provider is no longer supported by Kubernetes clients",
            "for AKS run `kubelogin convert-kubeconfig -l azurecli` (it rewrites the kubeconfig to an exec plugin)",
        )
    token_file = _rel(user["tokenFile"], upath) if user.get("tokenFile") else ""
    return Endpoint(
        context=chosen,
        server=server,
        source=m.source,
        ca_data=ca,
        insecure=cluster.get("insecure-skip-tls-verify") is True,  # a quoted "false" is no reason to skip TLS checks
        tls_server_name=str(cluster.get("tls-server-name") or ""),
        proxy_url=str(cluster.get("proxy-url") or ""),
        cert_data=cert,
        key_data=key,
        token=str(user.get("token") or ""),
        token_file=token_file,
        username=str(user.get("username") or ""),
        password=str(user.get("password") or ""),
        exec_spec=exec_spec,
        exec_cluster={
            "server": server,
            **(
                {"certificate-authority-data": cluster["certificate-authority-data"]}
                if cluster.get("certificate-authority-data")
                else {}
            ),
            **({"insecure-skip-tls-verify": True} if cluster.get("insecure-skip-tls-verify") else {}),
            **({"tls-server-name": cluster["tls-server-name"]} if cluster.get("tls-server-name") else {}),
            **({"proxy-url": cluster["proxy-url"]} if cluster.get("proxy-url") else {}),
        },
        user=user_name,
    )


SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster_endpoint(env: dict[str, str], sa_dir: Path = SA_DIR) -> Endpoint:
    """The pod's service account, as client-go's rest.InClusterConfig reads it."""
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise KubeconfigError(
            "in-cluster configuration failed: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"
        )
    token_file = sa_dir / "token"
    try:
        token = token_file.read_text().strip()
    except OSError as e:
        raise KubeconfigError(f"in-cluster configuration failed: cannot read {token_file}: {e.strerror or e}") from None
    if not token:
        raise KubeconfigError(f"in-cluster configuration failed: {token_file} is empty")
    try:
        ca = (sa_dir / "ca.crt").read_bytes()
    except OSError as e:
        raise KubeconfigError(
            f"in-cluster configuration failed: cannot read {sa_dir / 'ca.crt'}: {e.strerror or e}"
        ) from None
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Endpoint(
        context="in-cluster",
        server=f"https://{hostport}",
        source="in-cluster",
        ca_data=ca,
        token=token,
        token_file=str(token_file),
    )
