"""The entry point's one malloc setting: set on glibc, left alone when the user chose."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

SNIPPET = "from probes.memtune import tune_malloc; print(tune_malloc())"


def run(env_extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's threshold is glibc's")
def test_sets_the_threshold_on_glibc() -> None:
    assert run({}) == "True"


def test_a_users_own_threshold_wins() -> None:
    assert run({"MALLOC_MMAP_THRESHOLD_": "65536"}) == "False"


def test_the_console_entry_point_applies_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from tui import cli

    called: list[bool] = []
    monkeypatch.setattr(cli, "tune_malloc", lambda: called.append(True) or True)
    monkeypatch.setattr(cli, "main", lambda: 0)
    monkeypatch.setattr(cli.os, "_exit", lambda rc: called.append(rc == 0))
    cli.console_main()
    assert called == [True, True]
