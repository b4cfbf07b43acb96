"""Shared viewing end to end on a lab in this process: a viewer attached to an owner's
engine sees the same findings and adds no request to the API server or ARM (the lab
counts them); the socket is the owner's only; a stale socket is replaced; the viewer
says when the owner is gone; a viewer that stops reading never holds up the others."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from probes import config as configmod
from probes.engine.store import Store
from probes.kube.source import KubeSource
from probes.share import wire
from probes.share.host import _Viewer
from probes.share.place import (
    ShareError,
    attach_only,
    attach_or_own,
    connect,
    lock_is_held,
    place_for,
    try_own,
)
from probes.share.viewer import ViewerPublisher
from tests.share.engine import Owner, finding_keys, wait_for
from tui import cli, share_cli


def _counts(owner: Owner) -> tuple[int, int, int]:
    """(lists on the API server, discovery requests, ARM requests) so far. Watches are
    renewed every kube.watch_timeout; lists happen when an engine starts (or re-lists)."""
    api = owner.srv.request_log()
    return (
        sum(1 for r in api if r.verb == "list"),
        sum(1 for r in api if r.verb == "discovery"),
        len(owner.arm.requests),
    )


@pytest.fixture
def owner():  # type: ignore[no-untyped-def]
    o = Owner("f1", place_for("test-f1")).start()
    try:
        wait_for(lambda: any(f[0] == "route-missing" for f in finding_keys(o.latest)), 30, "the owner's F1 finding")
        wait_for(lambda: o.latest.path is not None, 30, "the owner's Azure path")
        yield o
    finally:
        o.stop()


def test_a_viewer_sees_the_same_findings_and_adds_no_request(owner):
    time.sleep(1.5)  # the engine's start-up reads are done
    lists0, disc0, arm0 = _counts(owner)
    t0 = time.monotonic()
    viewer = ViewerPublisher(connect(owner.host.owned.place))
    frames = []
    try:
        first = viewer.publish()  # as the app does: the first frame, then the cadence
        viewer.start(frames.append)
        assert finding_keys(first) == finding_keys(owner.latest)
        assert ("route-missing", "node/aks-userpool-39203369-vmss000001", "critical") in finding_keys(first)
        assert [n.name for n in first.kube.topology.nodes] == [n.name for n in owner.latest.kube.topology.nodes]
        assert first.path is not None and first.path.data.route_table == owner.latest.path.data.route_table
        wait_for(lambda: viewer.screens == 2 and owner.host.screens == 2, 5, "both count two screens")
        time.sleep(3.0)  # the viewer runs a while
        lists1, disc1, arm1 = _counts(owner)
        window = time.monotonic() - t0
        assert lists1 == lists0, "the viewer listed"
        assert arm1 == arm0, "ARM was asked while the viewer ran"  # the owner's next refresh is 60 s on
        assert disc1 - disc0 <= window + 1, "more than the owner's one heartbeat a second"
        # the counter sees a second engine: one KubeSource lists and watches every kind
        other = KubeSource(Store(), owner.kube_cfg)
        other.start()
        try:
            wait_for(lambda: _counts(owner)[0] >= lists1 + 3, 10, "a second engine's lists")
        finally:
            other.stop(2.0)
    finally:
        viewer.stop()
    wait_for(lambda: owner.host.screens == 1, 5, "the owner counts the viewer gone")


def test_the_socket_is_the_owners_only(owner, runtime_dir):
    place = owner.host.owned.place
    assert os.stat(place.dir).st_mode & 0o777 == 0o700
    assert os.stat(place.socket).st_mode & 0o777 == 0o600
    assert os.stat(place.dir).st_uid == os.getuid()
    if os.getuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs as root: the other-user check must run there")
        pytest.skip("needs root to become another user")
    nobody = pwd.getpwnam("nobody")
    runtime_dir.chmod(0o755)  # only our directory and socket keep others out, not the temp dir

    def as_nobody() -> str:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: become nobody, try to connect, say what happened
            try:
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(3)
                try:
                    s.connect(str(place.socket))
                    data = s.recv(64)
                    out = "read" if data else "closed"
                except PermissionError:
                    out = "denied"
                except OSError as e:
                    out = f"error {e.errno}"
                os.write(w, out.encode())
            finally:
                os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        got = os.read(r, 64).decode()
        os.close(r)
        return got

    assert as_nobody() == "denied"  # the 0700 directory
    place.dir.chmod(0o755)
    assert as_nobody() == "denied"  # the 0600 socket
    place.socket.chmod(0o666)
    refused = owner.host.refused
    assert as_nobody() == "closed"  # the owner checks the peer's uid and hangs up
    assert owner.host.refused == refused + 1
    assert owner.host.viewers == 0


def test_a_stale_socket_is_replaced(runtime_dir):
    place = place_for("stale")
    # an owner that dies without cleaning up (SIGKILL): its socket stays, its lock goes
    code = (
        "import sys, time; from probes.share.place import place_for, try_own; "
        "o = try_own(place_for('stale')); print('owned', flush=True); time.sleep(60)"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"owned"
        assert lock_is_held(place)
        assert try_own(place) is None  # a live owner is never displaced
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    assert place.socket.exists() and not lock_is_held(place)
    assert connect(place) is None  # nobody listens
    assert attach_only(place) is None  # `attach`: nothing to attach to
    owned = attach_or_own(place)
    assert owned is not None and not isinstance(owned, socket.socket)
    try:
        assert os.stat(place.socket).st_mode & 0o777 == 0o600
        s = connect(place)
        assert s is not None  # the new owner's socket
        s.close()
    finally:
        owned.release()
    assert not place.socket.exists()


def test_attach_with_nothing_running_says_so(capsys):
    rc = cli.main(["attach", "--demo", "--scenario", "f4"])
    assert rc == 3
    err = capsys.readouterr().err
    assert "nothing to attach to" in err and "'f4'" in err and "aksnet-top --demo" in err


def test_the_viewer_says_when_the_owner_exits(runtime_dir):
    o = Owner("healthy", place_for("exit")).start()
    try:
        wait_for(lambda: o.latest is not None and o.latest.findings is not None, 30, "the owner's findings")
        viewer = ViewerPublisher(connect(o.host.owned.place))
        frames = []
        viewer.publish()
        viewer.start(frames.append)
    finally:
        o.stop()
    try:
        wait_for(lambda: frames and "exited" in frames[-1].error, 5, "the viewer hears the owner leave")
        assert f"pid {os.getpid()}" in frames[-1].error and "frozen" in frames[-1].error
        assert frames[-1].kube.topology.nodes, "the last frame stays on screen"
    finally:
        viewer.stop()


def test_a_killed_owner_is_seen_too(runtime_dir):
    place = place_for("killed")
    owned = try_own(place)
    assert owned is not None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(str(place.socket))
    served, _ = owned.listener.accept()
    wire.send(served, {"k": "hello", "proto": wire.PROTO, "pid": 4242, "banner": "", "target": ""})
    wire.send(served, {"k": "key", "t": time.time(), "s": {}, "n": 2})
    viewer = ViewerPublisher(conn, interval=0.05)
    frames = []
    viewer.publish()
    viewer.start(frames.append)
    served.close()  # no goodbye: the owner died
    owned.release()
    try:
        wait_for(lambda: frames and "went away" in frames[-1].error, 5, "the viewer notices")
        assert "pid 4242" in frames[-1].error
    finally:
        viewer.stop()


def test_a_viewer_that_stops_reading_drops_to_the_latest():
    """Its queue overflows: emptied, and the next frame sends it the whole state; the
    engine's side (`push`) never waits."""

    class _Host:
        def _gone(self, v: object) -> None:
            pass

    a, b = socket.socketpair()
    try:
        v = _Viewer(_Host(), a, limit=4)  # type: ignore[arg-type]
        v.need_key = False
        for _ in range(10):  # its sender is not running: nothing is read
            v.push(b"x" * 10)
        assert v.dropped == 2 and v.need_key  # full at 4: emptied at the 5th and the 10th
        assert len(v.q) == 0
        v.push(b"key")  # what the host sends a viewer that needs the whole state
        assert list(v.q) == [b"key"]
    finally:
        a.close()
        b.close()


def test_the_directory_is_made_private_or_refused(runtime_dir):
    d = runtime_dir / "aksnet-top"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    place = place_for("priv")
    assert place.dir == d and os.stat(d).st_mode & 0o777 == 0o700  # closed to others
    if os.getuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs as root: the other-owner check must run there")
        pytest.skip("needs root to give the directory to another user")
    nobody = pwd.getpwnam("nobody")
    os.chown(d, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(ShareError, match="belongs to another user"):
        place_for("priv")
    # the app says so in one line and runs with an engine of its own, not shared
    assert share_cli.attach_or_own(configmod.Config(), True, False) is None
