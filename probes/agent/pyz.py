"""The agent as one zipapp (``aksnet-agent.pyz``) that a stock Python image runs.

``aksnet-top agent install`` (and ``manifest``) ship the agent in a ConfigMap instead of
an image nobody has built: this module zips, from the installed package files, the
agent's own modules (:data:`AGENT_MODULES`, what ``agent run`` imports in connect mode)
and its pure-Python dependencies (:data:`PURE_PACKAGES`: dnspython, prometheus_client),
with a ``__main__`` that runs ``probes.agent.main.run``. The pod mounts the ConfigMap at
``/agent`` and runs ``python3 /agent/aksnet-agent.pyz --bind=… …``.

What the agent leaves out of the zip, and why it still runs:

* msgspec (a C extension): the agent writes its JSON with :mod:`json`
  (:mod:`probes.agent.page`); only the app's reader decodes with msgspec;
* orjson, PyYAML, kubernetes, azure, textual: never imported by ``agent run``;
* scapy and :mod:`probes.egress.syn`: SYN mode only. The ConfigMap agent runs in
  connect mode (no NET_RAW); asked for ``--mode auto`` it finds no scapy and says it
  uses connect mode;
* idna: dnspython uses it for IDNA 2008 when present and falls back to the standard
  library's IDNA 2003 codec without it; every name the agent asks for is ASCII.

The archive is deterministic (sorted entries, fixed timestamps), so the same installation
gives the same bytes and the DaemonSet's ``aksnet-top/agent-sha256`` annotation changes
only when the code does. Sources only (no ``.pyc``: the pod's root filesystem is
read-only and zipimport compiles in memory), deflated; :data:`LIMIT` is the ConfigMap's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import zipfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["AGENT_MODULES", "PURE_PACKAGES", "LIMIT", "PYZ_NAME", "Pyz", "build", "PyzError"]

PYZ_NAME = "aksnet-agent.pyz"
LIMIT = 1024 * 1024  # a ConfigMap holds at most 1 MiB of data and binaryData together
MIN_PYTHON = (3, 11)

# What `agent run` imports in connect mode (tests/agentdeploy/test_pyz.py runs the zip under
# `python -I -S` to prove the list is whole, and compares it with a fresh import).
AGENT_MODULES = (
    "probes",
    "probes.exitcodes",
    "probes.agent",
    "probes.agent.core",
    "probes.agent.echo",
    "probes.agent.hint",
    "probes.agent.http",
    "probes.agent.main",
    "probes.agent.page",
    "probes.agent.rounds",
    "probes.dns",
    "probes.dns.probe",
    "probes.dns.resolvers",
    "probes.dns.result",
    "probes.dns.service",
    "probes.egress",
    "probes.egress.probe",
    "probes.egress.proxy",
    "probes.egress.result",
    "probes.egress.service",
    "probes.egress.targets",
    "probes.engine",
    "probes.engine.following",
    "probes.engine.health",
    "probes.engine.history",
    "probes.engine.nudge",
    "probes.engine.scheduler",
    "probes.kube",
    "probes.kube.model",
)
# import name -> distribution name (for its version in the zip's PYZ-INFO)
PURE_PACKAGES = {"dns": "dnspython", "prometheus_client": "prometheus_client"}
_SKIP_DIRS = {"__pycache__", "tests", "test"}
_STAMP = (1980, 1, 1, 0, 0, 0)

_MAIN = '''\
"""aksnet-top's per-node agent, {version}, as a zipapp: python3 aksnet-agent.pyz --help"""
import sys

if sys.version_info < {min_python!r}:
    sys.stderr.write("aksnet-agent.pyz needs Python {min_text} or newer, this is %s\\n" % sys.version.split()[0])
    sys.exit(3)

import probes.agent.core as core

core._VERSION = {version!r}
from probes.agent.main import run

args = sys.argv[1:]
if args[:2] == ["agent", "run"]:
    args = args[2:]
elif args[:1] == ["run"]:
    args = args[1:]
sys.exit(int(run(args) or 0))
'''


class PyzError(Exception):
    """The zipapp cannot be built from this installation (one line, the user's words)."""


@dataclass(frozen=True, slots=True)
class Pyz:
    data: bytes
    version: str
    files: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "0+unknown"


def _module_file(name: str) -> tuple[str, Path]:
    """(path in the zip, file) of one of our modules."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise PyzError(f"the agent's module {name} is not installed as a .py file: cannot build {PYZ_NAME}")
    arc = name.replace(".", "/") + ("/__init__.py" if spec.submodule_search_locations else ".py")
    return arc, Path(spec.origin)


def _package_files(name: str) -> list[tuple[str, Path]]:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise PyzError(f"{name} ({PURE_PACKAGES[name]}) is not installed: cannot build {PYZ_NAME}")
    root = Path(next(iter(spec.submodule_search_locations)))
    out = []
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if any(p in _SKIP_DIRS for p in rel.parts[:-1]) or not f.is_file():
            continue
        if f.suffix in (".so", ".pyd", ".dylib"):
            raise PyzError(f"{name} carries a compiled extension ({rel}): it cannot go into {PYZ_NAME}")
        if f.suffix == ".py" or f.name == "py.typed":
            out.append((f"{name}/{rel.as_posix()}", f))
    return out


def build(app_version: str | None = None) -> Pyz:
    """The zipapp's bytes. Raises PyzError when this installation cannot supply it."""
    ver = app_version or _version("aksnet-top")
    files = [_module_file(m) for m in AGENT_MODULES]
    for pkg in PURE_PACKAGES:
        files += _package_files(pkg)
    info = [f"aksnet-top {ver}", *(f"{d} {_version(d)}" for d in PURE_PACKAGES.values())]
    main = _MAIN.format(version=f"{ver}+pyz", min_python=MIN_PYTHON, min_text=".".join(str(x) for x in MIN_PYTHON))
    buf = io.BytesIO()
    buf.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:

        def put(arc: str, data: bytes) -> None:
            zi = zipfile.ZipInfo(arc, _STAMP)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data, compresslevel=9)

        put("__main__.py", main.encode())
        put("PYZ-INFO", ("\n".join(info) + "\n").encode())
        for arc, path in sorted(set(files)):
            try:
                put(arc, path.read_bytes())
            except OSError as e:
                raise PyzError(f"cannot read {path} for {PYZ_NAME}: {e.strerror or e}") from None
    data = buf.getvalue()
    if len(data) > LIMIT:
        raise PyzError(f"{PYZ_NAME} is {len(data):,} bytes, over the ConfigMap limit of {LIMIT:,}")
    return Pyz(data, ver, len(files) + 2)
