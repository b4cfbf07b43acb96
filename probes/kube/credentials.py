"""Bearer credentials that change over time: exec credential plugins and token files.

An exec plugin (kubelogin on Entra ID clusters) is run the way client-go runs it: the
command with its args and env, `KUBERNETES_EXEC_INFO` describing the request, an
`ExecCredential` of the same apiVersion on stdout. Its answer is kept until its
`expirationTimestamp` (a minute early) or until the server answers 401, then the plugin
runs again. A token file is re-read when it changes (projected service account tokens
rotate every hour).
"""

from __future__ import annotations

import base64
import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from probes.kube.kubeconfig import Endpoint

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXPIRY_SKEW = 60.0  # seconds: refresh this long before the plugin says the token expires
EXEC_TIMEOUT = 120.0  # an interactive login (device code) may take a while; not forever


class CredentialError(Exception):
    """The exec credential plugin failed or answered something unusable."""


@dataclass(frozen=True, slots=True)
class ExecAnswer:
    token: str
    cert_data: bytes | None
    key_data: bytes | None
    expires_at: float | None  # time.time() seconds, or None: valid until a 401


def _rfc3339(value: str) -> float:
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:  # Python < 3.11 wants at most 6 fraction digits; Go writes up to 9
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        text = f"{head}.{digits[:6]}{tail[len(digits) :]}"
    return datetime.fromisoformat(text).timestamp()


def _on_a_terminal() -> bool:
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def run_exec(spec: dict[str, Any], cluster: dict[str, Any], env: dict[str, str] | None = None) -> ExecAnswer:
    """Run the plugin once; its credential, or CredentialError with the plugin's own words."""
    # lazy: subprocess (~3 ms) only for an exec credential plugin (kubelogin)
    import subprocess

    api_version = str(spec.get("apiVersion") or "")
    command = str(spec.get("command") or "")
    if api_version not in EXEC_API_VERSIONS:
        raise CredentialError(
            f"exec plugin {command!r}: apiVersion {api_version!r} is not supported (use client.authentication.k8s.io/v1 or v1beta1)"
        )
    if not command:
        raise CredentialError("exec plugin: no command")
    run_env = dict(os.environ if env is None else env)
    for item in spec.get("env") or []:
        if isinstance(item, dict) and item.get("name"):
            run_env[str(item["name"])] = str(item.get("value") or "")
    mode = str(spec.get("interactiveMode") or "IfAvailable")
    interactive = mode != "Never" and _on_a_terminal()
    if mode == "Always" and not interactive:
        raise CredentialError(f"exec plugin {command!r} needs a terminal (interactiveMode: Always) and there is none")
    info: dict[str, Any] = {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": interactive}}
    if spec.get("provideClusterInfo"):
        info["spec"]["cluster"] = dict(cluster)
    run_env["KUBERNETES_EXEC_INFO"] = orjson.dumps(info).decode()
    args = [command, *[str(a) for a in spec.get("args") or []]]
    try:
        # On a terminal (the check before the screen opens) the plugin may talk to the
        # operator: kubelogin's device-code login prints its code on stderr and waits.
        # Otherwise its stderr is kept for the error line and stdin is not its to read.
        proc = subprocess.run(
            args,
            env=run_env,
            stdin=None if interactive else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None if interactive else subprocess.PIPE,
            timeout=EXEC_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        hint = (
            f" ({spec['installHint'].strip()})"
            if isinstance(spec.get("installHint"), str) and spec["installHint"].strip()
            else ""
        )
        raise CredentialError(f"exec plugin {command!r} not found{hint}") from None
    except PermissionError:
        raise CredentialError(f"exec plugin {command!r} is not executable") from None
    except subprocess.TimeoutExpired:
        raise CredentialError(f"exec plugin {command!r} did not answer within {EXEC_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        said = ((proc.stderr or b"").decode("utf-8", "replace").strip().splitlines() or [""])[-1][:300]
        raise CredentialError(f"exec plugin {command!r} exited with {proc.returncode}" + (f": {said}" if said else ""))
    try:
        doc = orjson.loads(proc.stdout)
    except orjson.JSONDecodeError:
        raise CredentialError(f"exec plugin {command!r} did not print an ExecCredential (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
        raise CredentialError(f"exec plugin {command!r} did not print an ExecCredential")
    if doc.get("apiVersion") != api_version:
        raise CredentialError(
            f"exec plugin {command!r} answered apiVersion {doc.get('apiVersion')!r}, asked for {api_version!r}"
        )
    raw_status = doc.get("status")
    status: dict[str, Any] = raw_status if isinstance(raw_status, dict) else {}
    token = str(status.get("token") or "")
    cert = str(status.get("clientCertificateData") or "")
    key = str(status.get("clientKeyData") or "")
    if not token and not (cert and key):
        raise CredentialError(f"exec plugin {command!r} returned neither a token nor a client certificate and key")
    expires: float | None = None
    if status.get("expirationTimestamp"):
        try:
            expires = _rfc3339(str(status["expirationTimestamp"]))
        except ValueError:
            raise CredentialError(
                f"exec plugin {command!r}: bad expirationTimestamp {status['expirationTimestamp']!r}"
            ) from None
    return ExecAnswer(token, cert.encode() if cert else None, key.encode() if key else None, expires)


# The last answer per plugin invocation, shared by every Credentials of the process: the
# app checks the kubeconfig before its screen opens and the source connects again after,
# and kubelogin need not run (hundreds of milliseconds, or a login) twice for that.
_SHARED: dict[bytes, ExecAnswer] = {}
_SHARED_LOCK = threading.Lock()


def _shared_key(spec: dict[str, Any], cluster: dict[str, Any]) -> bytes:
    return orjson.dumps([spec, cluster], option=orjson.OPT_SORT_KEYS)


class Credentials:
    """The Authorization header for the next request; thread-safe, refreshed on demand."""

    def __init__(self, ep: Endpoint, env: dict[str, str] | None = None, clock: Any = time.time) -> None:
        self.ep = ep
        self._env = env
        self._clock = clock
        self._lock = threading.Lock()
        self._exec: ExecAnswer | None = None
        self._file_token = ep.token
        self._file_stamp: tuple[float, int] | None = None
        self.exec_runs = 0  # how many times the plugin ran (tests read it)

    def exec_answer(self, force: bool = False) -> ExecAnswer | None:
        """The plugin's current answer, running it when there is none, it expired, or `force`."""
        if self.ep.exec_spec is None:
            return None
        key = _shared_key(self.ep.exec_spec, self.ep.exec_cluster)
        with self._lock:
            cur = self._exec
            if cur is None and not force:
                with _SHARED_LOCK:
                    cur = _SHARED.get(key)
            if force or cur is None or (cur.expires_at is not None and cur.expires_at - EXPIRY_SKEW <= self._clock()):
                cur = run_exec(self.ep.exec_spec, self.ep.exec_cluster, self._env)
                self.exec_runs += 1
                with _SHARED_LOCK:
                    _SHARED[key] = cur
            self._exec = cur
            return cur

    def header(self, ans: ExecAnswer | None = None) -> str:
        """`Bearer …`, `Basic …` or "" (client certificate only, or anonymous). `ans`: the
        plugin answer already fetched for this request (else it is fetched here)."""
        if self.ep.exec_spec is not None:
            ans = ans or self.exec_answer()
            if ans is not None and ans.token:
                return f"Bearer {ans.token}"
        if self.ep.token_file:
            token = self._read_token_file()
            if token:
                return f"Bearer {token}"
        if self.ep.token:
            return f"Bearer {self.ep.token}"
        if self.ep.username:
            return "Basic " + base64.b64encode(f"{self.ep.username}:{self.ep.password}".encode()).decode()
        return ""

    def _read_token_file(self) -> str:
        path = self.ep.token_file
        try:
            st = os.stat(path)
        except OSError:
            return self._file_token
        stamp = (st.st_mtime, st.st_size)
        with self._lock:
            if stamp != self._file_stamp:
                try:
                    with open(path, encoding="utf-8") as f:
                        self._file_token = f.read().strip()
                    self._file_stamp = stamp
                except OSError:
                    pass
            return self._file_token

    def refresh_after_401(self) -> bool:
        """The server refused the credential: run the plugin again (once per 401). True if
        there is something new to try."""
        if self.ep.exec_spec is None:
            return False
        old = self._exec
        new = self.exec_answer(force=True)
        return new is not None and (old is None or new.token != old.token or new.cert_data != old.cert_data)
