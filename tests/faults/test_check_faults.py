"""`check` under API-server faults: it fails fast with one line on stderr for what retrying
cannot fix soon, and never calls a run healthy when its topology was not live throughout."""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from probes import check
from probes import demo as demomod
from probes.config import Config, KubeConfig
from probes.exitcodes import ExitCode
from tests.support.faultapi import FaultApi

FAST = 3.0  # seconds: the bound for refused, no such name, 401 and 403


def run_on(kubeconfig: str) -> tuple[check.CheckResult, float]:
    cfg = dataclasses.replace(Config(), kube=KubeConfig(kubeconfig=kubeconfig))
    t0 = time.monotonic()
    result = check.run(cfg, cycles=1, interval=0.5)
    return result, time.monotonic() - t0


def one_error_line(caplog: Any) -> str:
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    "mode, needle",
    [
        ("refused", "connection refused"),
        ("unauthorized", "401 Unauthorized"),
        ("forbidden", "forbidden: cannot list nodes"),
    ],
)
def test_check_fails_fast_with_one_line(mode: str, needle: str, tmp_path: Path, caplog: Any) -> None:
    with FaultApi() as api:
        kc = api.write_kubeconfig(tmp_path / "kc")
        if mode == "refused":
            api.refuse()
        else:
            api.set_mode(mode)
        with caplog.at_level(logging.ERROR):
            result, took = run_on(kc)
    assert result.exit is ExitCode.COULD_NOT_RUN
    assert took < FAST, took
    assert any(needle in e for e in result.report["errors"]), result.report["errors"]
    assert result.report["status"] == "error" and result.report["exit_code"] == 3
    assert needle in one_error_line(caplog)


def test_check_fails_fast_when_the_name_does_not_resolve(tmp_path: Path, caplog: Any, monkeypatch: Any) -> None:
    # the resolver's answer for this one name is "no such name" (no query leaves the host)
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *a: Any, **kw: Any) -> Any:
        if host == "api.faults.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with FaultApi() as api:
        kc = api.write_kubeconfig(tmp_path / "kc")
        Path(kc).write_text(Path(kc).read_text().replace("127.0.0.1", "api.faults.invalid"))
        with caplog.at_level(logging.ERROR):
            result, took = run_on(kc)
    assert result.exit is ExitCode.COULD_NOT_RUN and took < FAST
    assert any("the name does not resolve" in e for e in result.report["errors"])
    assert "the name does not resolve" in one_error_line(caplog)
    assert api.count() == 0


def test_check_on_a_silent_server_says_so_after_its_wait(tmp_path: Path) -> None:
    with FaultApi() as api:
        kc = api.write_kubeconfig(tmp_path / "kc")
        api.set_mode("blackhole")
        result, took = run_on(kc)
    assert result.exit is ExitCode.COULD_NOT_RUN
    # a silent server may still answer: check waits max(5, 2 × kube.request_timeout) = 20 s for it
    assert took < 20.0 + 3.0
    assert any("not answering" in e for e in result.report["errors"]), result.report["errors"]


def test_check_exits_3_when_the_api_server_dies_mid_run(monkeypatch: Any, caplog: Any) -> None:
    """The demo's lab stops right after the listing: its API server is gone mid-run."""
    real = demomod.launch
    box: dict[str, Any] = {}

    def launch(*a: Any, **kw: Any) -> Any:
        started = real(*a, **kw)
        ready = started.ready

        def ready_and_kept(*ra: Any, **rkw: Any) -> Any:
            box["demo"] = ready(*ra, **rkw)
            return box["demo"]

        started.ready = ready_and_kept  # type: ignore[method-assign]
        return started

    def log(msg: str) -> None:
        if msg.startswith("listed"):
            box["demo"].stop(wait=True)

    monkeypatch.setattr(demomod, "launch", launch)
    with caplog.at_level(logging.ERROR):
        result = check.run(Config(), demo=True, cycles=2, interval=1.0, log=log)
    assert result.exit is ExitCode.COULD_NOT_RUN
    errors = result.report["errors"]
    assert errors and all(e.startswith("kubernetes") for e in errors), errors
    assert result.report["status"] == "error"
    assert "the topology could not be trusted" in one_error_line(caplog)


def test_check_healthy_demo_has_no_errors() -> None:
    result = check.run(Config(), demo=True, cycles=1, interval=0.5)
    assert result.report["errors"] == [] and result.exit is not ExitCode.COULD_NOT_RUN
