"""The Dockerfile, read (no Docker engine here), and the capability model it relies on, run.

The image sets ``cap_net_raw+p`` on its interpreter and the pod runs with
``allowPrivilegeEscalation: false``; the claim is that a non-root process started the way
runc starts a container's process (NET_RAW in its bounding and permitted sets, no ambient
set, no_new_privs) keeps NET_RAW across the exec of that interpreter and can raise it
with :func:`probes.agent.cli.raise_net_raw`, and that without NET_RAW the interpreter
still starts and raw sockets are refused (the agent's auto mode then uses connect).
The second part runs that experiment with setpriv when the tests run as root.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
CAP_NET_RAW_P = struct.pack("<5I", 0x02000000, 1 << 13, 0, 0, 0)  # VFS_CAP_REVISION_2, permitted NET_RAW


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_two_stages_on_a_slim_python_311_tag():
    (arg,) = [rest for word, rest in _instructions() if word == "ARG"]
    assert arg == "PYTHON_IMAGE=python:3.11-slim-bookworm" and "@sha256" not in arg
    froms = [rest for word, rest in _instructions() if word == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]


def test_installs_the_project_without_test_extras():
    runs = [rest for word, rest in _instructions() if word == "RUN"]
    pip = [r for r in runs if "pip install" in r]
    assert pip == ["python -m pip install --prefix=/install ."]
    assert not any("[test]" in r or "libcap2-bin" in r for r in runs)


def test_runtime_is_non_root_exec_form_and_copies_only_the_install():
    ins = _instructions()
    runtime = ins[[i for i, (w, _) in enumerate(ins) if w == "FROM"][-1] :]
    assert ("USER", "65532:65532") in runtime
    (entry,) = [rest for word, rest in runtime if word == "ENTRYPOINT"]
    assert json.loads(entry) == ["aksnet-top"], "exec form: no shell at runtime"
    assert [rest for word, rest in runtime if word == "COPY"] == ["--from=build /install /usr/local"]
    assert ("EXPOSE", "9102") in runtime
    user_at = runtime.index(("USER", "65532:65532"))
    assert all(w != "RUN" for w, _ in runtime[user_at:]), "nothing runs as root after USER"


def test_file_capability_bytes_are_setcaps():
    """The struct.pack in the Dockerfile is `setcap cap_net_raw+p` (checked with setcap when it is here)."""
    m = re.search(r"struct\.pack\((.*?)\); os\.setxattr", DOCKERFILE)
    assert m, "the Dockerfile sets the capability with os.setxattr"
    args = ast.literal_eval(f"({m.group(1)},)".replace("1 << 13", str(1 << 13)))
    assert struct.pack(*args) == CAP_NET_RAW_P
    if os.geteuid() != 0 or not shutil.which("setcap"):
        pytest.skip("needs root and setcap to compare with the real tool")
    with tempfile.NamedTemporaryFile() as f:
        subprocess.run(["setcap", "cap_net_raw+p", f.name], check=True, timeout=10)
        assert os.getxattr(f.name, "security.capability") == CAP_NET_RAW_P


def test_dockerignore_is_an_allowlist():
    lines = [
        ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!probes/", "!tui/"} <= set(lines)
    assert not any(ln.startswith("!") and ("test" in ln or ".venv" in ln) for ln in lines)


_PROBE = r"""
import os, socket, sys
sys.path.insert(0, sys.argv[1])
from probes.agent.cli import raise_net_raw
status = open("/proc/self/status").read()
nnp = [l.split()[1] for l in status.splitlines() if l.startswith("NoNewPrivs")][0]
raised = raise_net_raw()
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP).close()
    raw = "raw-ok"
except PermissionError:
    raw = "raw-refused"
print(os.getuid(), nnp, raised, raw)
"""


@pytest.fixture
def cap_python():
    """A copy of the system python3 with cap_net_raw+p, somewhere uid 65532 can read."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("needs root on Linux")
    setpriv, system_python = shutil.which("setpriv"), shutil.which("python3", path="/usr/bin:/bin")
    if not setpriv or not system_python:
        pytest.skip("needs setpriv and /usr/bin/python3")
    d = tempfile.mkdtemp(prefix="agentdeploy-cap-")
    try:
        os.chmod(d, 0o755)
        py = os.path.join(d, "python3")
        shutil.copy2(os.path.realpath(system_python), py)
        os.chmod(py, 0o755)
        try:
            os.setxattr(py, "security.capability", CAP_NET_RAW_P)
        except OSError as e:
            pytest.skip(f"cannot set file capabilities here: {e}")
        probe = os.path.join(d, "probe.py")
        Path(probe).write_text(_PROBE)
        os.chmod(probe, 0o644)
        yield setpriv, py, probe, os.path.realpath(system_python)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _run(setpriv: str, py: str, probe: str, *opts: str) -> list[str]:
    home = "/usr"  # the copy lives elsewhere: point it at the system's standard library
    cmd = [setpriv, "--reuid=65532", "--regid=65532", "--clear-groups", "--inh-caps=-all", *opts, py, probe, str(ROOT)]
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONHOME": home, "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_net_raw_survives_no_new_privs(cap_python):
    """The pod: bounding set {NET_RAW}, NET_RAW permitted before exec, allowPrivilegeEscalation: false."""
    setpriv, py, probe, _ = cap_python
    assert _run(setpriv, py, probe, "--bounding-set=-all,+net_raw", "--no-new-privs") == [
        "65532",
        "1",
        "True",
        "raw-ok",
    ]


def test_without_net_raw_it_starts_and_raw_sockets_are_refused(cap_python):
    """Connect mode (no NET_RAW in the pod): the interpreter still starts; auto mode falls back."""
    setpriv, py, probe, _ = cap_python
    assert _run(setpriv, py, probe, "--bounding-set=-all", "--no-new-privs") == ["65532", "1", "False", "raw-refused"]


def test_without_the_file_capability_net_raw_is_lost(cap_python):
    """Why the image needs the file capability at all: a non-root exec drops permitted caps."""
    setpriv, _, probe, system_python = cap_python
    assert _run(setpriv, system_python, probe, "--bounding-set=-all,+net_raw") == ["65532", "0", "False", "raw-refused"]
