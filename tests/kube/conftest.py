"""Helpers for the connection tests: an exec credential plugin written as a small script."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

PLUGIN = r'''#!{python}
"""A stand-in for kubelogin: prints an ExecCredential, counts its runs."""
import json, os, sys, datetime
here = os.path.dirname(os.path.abspath(__file__))
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
with open(os.path.join(here, "runs"), "a") as f:
    f.write(json.dumps({{"info": info, "args": sys.argv[1:], "env": os.environ.get("PLUGIN_ENV", "")}}) + "\n")
if os.path.exists(os.path.join(here, "fail")):
    print("AADSTS70043: the refresh token has expired", file=sys.stderr)
    sys.exit(1)
token = open(os.path.join(here, "token")).read().strip()
status = {{"token": token}}
ttl = os.environ.get("PLUGIN_TTL")
if ttl:
    exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=float(ttl))
    status["expirationTimestamp"] = exp.strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}}))
'''


class Plugin:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.path = directory / "fake-kubelogin"
        self.path.write_text(PLUGIN.format(python=sys.executable))
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR)
        self.token("t0")

    def token(self, value: str) -> None:
        (self.dir / "token").write_text(value)

    def fail(self, on: bool = True) -> None:
        p = self.dir / "fail"
        if on:
            p.write_text("1")
        elif p.exists():
            os.unlink(p)

    def runs(self) -> list[str]:
        p = self.dir / "runs"
        return p.read_text().splitlines() if p.exists() else []

    def exec_spec(
        self, api_version: str = "client.authentication.k8s.io/v1", ttl: float | None = None, **extra: object
    ) -> dict:
        env = [{"name": "PLUGIN_ENV", "value": "from-kubeconfig"}]
        if ttl is not None:
            env.append({"name": "PLUGIN_TTL", "value": str(ttl)})
        return {
            "apiVersion": api_version,
            "command": str(self.path),
            "args": ["get-token", "--login", "azurecli"],
            "env": env,
            "interactiveMode": "Never",
            **extra,
        }


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    d = tmp_path / "plugin"
    d.mkdir()
    return Plugin(d)
