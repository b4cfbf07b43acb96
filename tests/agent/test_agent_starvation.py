"""The agent cannot be starved (issue 12): `aksnet-top agent run` as a process, 500 idle
connections held open from loopback (re-opened as soon as the agent drops one), and a
prober asking /healthz the way the kubelet does (a new connection, 1 s timeout). Before
the fix, 40 idle connections made 17 of 22 probes fail."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time

from tests.agent.test_agent_main import _read_until

IDLE = 500
RUN_FOR = 8.0  # s of attack while the prober asks
PROBE_EVERY = 0.2


def _open(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))  # EINPROGRESS on loopback: done within the next select
    return s


def _closed_by_peer(s: socket.socket) -> bool:
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def _healthz(port: int, timeout: float = 1.0) -> float | None:
    """Seconds to a 200 "ok", or None (refused, reset, wrong answer, over `timeout`)."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: agent\r\n\r\n")
            data = b""
            while True:
                left = timeout - (time.monotonic() - t0)
                if left <= 0:
                    return None
                s.settimeout(left)
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    took = time.monotonic() - t0
    return took if data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\nok\n") and took <= timeout else None


def test_healthz_answers_under_500_idle_connections():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKSNET_AGENT_") and k != "NODE_NAME"}
    args = ["--node", "n1", "--bind", "127.0.0.1", "--port", "0", "--mode", "connect", "--confine"]
    args += ["--no-aks-defaults", "--kube-dns", "127.0.0.1", "--interval", "60"]  # nothing to probe
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "agent", "run", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    idle: list[socket.socket] = []
    results: list[float | None] = []
    try:
        line = _read_until(proc, "listening on", 20)
        port = int(line.split("listening on 127.0.0.1:")[1].split(":")[0])
        assert _healthz(port) is not None
        idle = [_open(port) for _ in range(IDLE)]
        stop = threading.Event()

        def prober() -> None:
            while not stop.wait(PROBE_EVERY):
                results.append(_healthz(port))

        t = threading.Thread(target=prober, daemon=True)
        t.start()
        end = time.monotonic() + RUN_FOR
        reopened = 0
        while time.monotonic() < end:  # keep 500 open: every one the agent drops comes back
            readable, _, _ = select.select(idle, [], [], 0.05)
            for s in readable:
                if _closed_by_peer(s):
                    s.close()
                    idle[idle.index(s)] = _open(port)
                    reopened += 1
        stop.set()
        t.join(5)
        ok = [r for r in results if r is not None]
        print(f"\n{len(ok)}/{len(results)} /healthz within 1 s under {IDLE} idle connections ({reopened} re-opened)")
        assert len(results) >= 20
        assert len(ok) >= 0.95 * len(results), results
        assert reopened > 0  # the attack really filled the agent's slots
    finally:
        for s in idle:
            s.close()
        proc.terminate()
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
