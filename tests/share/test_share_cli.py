"""Which runs share an engine (the context's key), the choice a second run makes
(attach, or `--no-attach`), and a viewer that redraws only what changed."""

from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path

from probes import config as configmod
from probes.engine.publisher import Publisher
from probes.record.codec import decode_stats, stats_row
from probes.share import wire
from probes.share.host import Host
from probes.share.place import Ownership, context_key, place_for, try_own
from probes.share.rows import live_row
from probes.share.viewer import ViewerPublisher
from tests.readable.fixtures import T0, dns_source, store_for
from tests.share.engine import wait_for
from tui import format as fmt
from tui import share_cli

KUBECONFIG = """apiVersion: v1
kind: Config
current-context: {current}
contexts:
- name: prod
  context: {{cluster: c, user: u}}
- name: staging
  context: {{cluster: c, user: u}}
clusters:
- name: c
  cluster: {{server: https://127.0.0.1:6443}}
users:
- name: u
  user: {{token: t}}
"""


def _cfg(**kube: str) -> configmod.Config:
    cfg = configmod.Config()
    return dataclasses.replace(cfg, kube=dataclasses.replace(cfg.kube, **kube))


def test_the_key_follows_kubeconfig_context_and_arm_endpoint(tmp_path: Path) -> None:
    kc = tmp_path / "config"
    kc.write_text(KUBECONFIG.format(current="prod"))
    link = tmp_path / "link"
    link.symlink_to(kc)
    env: dict[str, str] = {}
    key = context_key(share_cli.key_parts(_cfg(kubeconfig=str(kc)), False, env))
    # the current context named or not, the file by another name: the same engine
    assert context_key(share_cli.key_parts(_cfg(kubeconfig=str(kc), context="prod"), False, env)) == key
    assert context_key(share_cli.key_parts(_cfg(kubeconfig=str(link)), False, env)) == key
    assert context_key(share_cli.key_parts(_cfg(kubeconfig=str(kc)), False, {"KUBECONFIG": "/nope"})) == key
    # another context, another file, another ARM endpoint: another engine
    assert context_key(share_cli.key_parts(_cfg(kubeconfig=str(kc), context="staging"), False, env)) != key
    other = tmp_path / "other"
    other.write_text(KUBECONFIG.format(current="prod"))
    assert context_key(share_cli.key_parts(_cfg(kubeconfig=str(other)), False, env)) != key
    cfg = _cfg(kubeconfig=str(kc))
    cfg = dataclasses.replace(cfg, azure=dataclasses.replace(cfg.azure, arm_endpoint="https://arm.example"))
    assert context_key(share_cli.key_parts(cfg, False, env)) != key
    # the demo: scenario and nodes
    demo = configmod.Config()
    k1 = context_key(share_cli.key_parts(demo, True))
    assert context_key(share_cli.key_parts(demo, True)) == k1
    assert (
        context_key(
            share_cli.key_parts(dataclasses.replace(demo, demo=dataclasses.replace(demo.demo, scenario="f4")), True)
        )
        != k1
    )
    assert (
        context_key(share_cli.key_parts(dataclasses.replace(demo, demo=dataclasses.replace(demo.demo, nodes=50)), True))
        != k1
    )


def test_a_second_run_attaches_unless_told_not_to() -> None:
    cfg = configmod.Config()
    first = share_cli.attach_or_own(cfg, True, False)
    assert isinstance(first, Ownership)  # nobody ran: this run owns the demo's place
    host = Host(first)
    try:
        second = share_cli.attach_or_own(cfg, True, False)
        assert share_cli.is_connection(second)  # attaches to the first
        assert isinstance(second, socket.socket)
        second.close()
        assert share_cli.attach_or_own(cfg, True, True) is None  # --no-attach: its own engine, not shared
        other = dataclasses.replace(cfg, demo=dataclasses.replace(cfg.demo, scenario="f4"))
        third = share_cli.attach_or_own(other, True, False)
        assert isinstance(third, Ownership)  # another scenario: another engine
        third.release()
    finally:
        host.close()
    again = share_cli.attach_or_own(cfg, True, True)  # the first left: --no-attach owns (and shares) it
    assert isinstance(again, Ownership)
    again.release()


def test_the_viewer_keeps_what_did_not_change() -> None:
    """A DNS row changes: the viewer's next frame has a new DNS view and the very same
    kube part (so the app leaves the tree alone), and only that row in `changed`."""
    store = store_for("healthy")
    dns = dns_source(store, "healthy")
    pub = Publisher(store, dns=dns, clock=lambda: 100.0, wall_clock=lambda: T0 + 100, findings=False)
    owned = try_own(place_for("identity"))
    assert owned is not None
    host = Host(owned)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        host.offer(pub.publish())
        sock.connect(str(owned.place.socket))
        viewer = ViewerPublisher(sock, interval=0.02)
        first = viewer.publish()
        frames = []
        viewer.start(frames.append)
        key = next(iter(first.dns.stats))
        old = first.dns.stats[key]
        r = dns.history.results(key)[-1]
        dns.history.add(key, r)  # one more result on one row
        host.offer(pub.publish())
        wait_for(lambda: frames and frames[-1].dns.stats[key].count != old.count, 5, "the row's new stats")
        last = frames[-1]
        assert last.kube is first.kube
        assert last.dns.changed == frozenset({key})
        assert all(last.dns.stats[k] is first.dns.stats[k] for k in first.dns.stats if k != key)
        n = viewer.frames
        time.sleep(0.3)  # nothing moves: no frame is built
        assert viewer.frames == n
        viewer.stop()
    finally:
        sock.close()
        host.close()


def test_the_badge_falls_back_to_words() -> None:
    assert fmt.screens_badge(3) == "👥 3"
    assert fmt.screens_badge(3, ascii_only=True) == "3 viewers"
    assert fmt.unicode_ok({"TERM": "xterm", "LANG": "en_US.UTF-8"})
    assert not fmt.unicode_ok({"TERM": "xterm", "LANG": "C"})
    assert not fmt.unicode_ok({"TERM": "linux", "LANG": "en_US.UTF-8"})
    assert not fmt.unicode_ok({"TERM": "vt100", "LC_ALL": "en_US.utf8"})
    assert fmt.unicode_ok({"TERM": "screen-256color"}, encoding="utf-8")  # tmux, no locale set: the stream's


def test_live_rows_read_back_as_the_recorders_rows() -> None:
    """The socket's probe rows are laid out as the recorder's (the viewer decodes them with
    the codec), with the credentials in their free text masked."""
    store = store_for("f4")
    dns = dns_source(store, "f4")
    stats = dns.history.snapshot(since=0)
    assert stats
    for st in stats.values():
        assert decode_stats(live_row(st)) == decode_stats(stats_row(st))
    st = next(iter(stats.values()))
    secret = dataclasses.replace(
        st,
        last_error="GET https://user:hunter2@proxy.example/ failed",
        last=dataclasses.replace(st.last, error="Bearer abcdefgh1234"),
    )
    row = live_row(secret)
    assert "hunter2" not in str(row) and "abcdefgh1234" not in str(row)


def test_a_viewers_detail_screen_follows_its_row_through_the_owner() -> None:
    """The viewer asks to follow a row: the owner's publisher puts its last results in the
    frames and the viewer sees them; the owner's own follow of the same row survives the
    viewer's unfollow, and a viewer that leaves takes its follows with it."""
    store = store_for("healthy")
    dns = dns_source(store, "healthy")
    pub = Publisher(store, dns=dns, clock=lambda: 100.0, wall_clock=lambda: T0 + 100, findings=False)
    owned = try_own(place_for("follow"))
    assert owned is not None
    host = Host(owned)
    host.follow_through(pub)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        host.offer(pub.publish())
        sock.connect(str(owned.place.socket))
        viewer = ViewerPublisher(sock, interval=0.02)
        first = viewer.publish()
        frames = []
        viewer.start(frames.append)
        key = next(iter(first.dns.stats))
        assert not first.dns.details
        viewer.follow("dns", key)

        def details():  # type: ignore[no-untyped-def]
            host.offer(pub.publish())
            return frames and frames[-1].dns.details.get(key)

        got = wait_for(details, 5, "the followed row's results on the viewer")
        assert [r.latency_ms for r in got] == [r.latency_ms for r in dns.history.results(key)[-50:]]
        pub.follow("dns", key)  # the owner's own detail screen on the same row
        viewer.unfollow("dns", key)
        time.sleep(0.2)
        assert pub.publish().dns.details.get(key), "the owner still follows it"
        pub.unfollow("dns", key)
        assert not pub.publish().dns.details
        viewer.follow("dns", key)
        wait_for(lambda: pub.publish().dns.details.get(key), 5, "followed again")
        viewer.stop()  # leaves: its follows go
        wait_for(lambda: not pub.publish().dns.details, 5, "the viewer's follow dropped")
    finally:
        sock.close()
        host.close()


def test_requests_the_owner_cannot_read_are_ignored() -> None:
    """A viewer's garbage (unknown kinds, keys that are not names, not messages at all)
    never reaches the publisher nor stops the host."""
    store = store_for("healthy")
    pub = Publisher(store, dns=dns_source(store, "healthy"), findings=False)
    owned = try_own(place_for("garbage"))
    assert owned is not None
    host = Host(owned)
    host.follow_through(pub)
    host.offer(pub.publish())
    bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        bad.connect(str(owned.place.socket))
        for msg in (
            {"k": "follow", "kind": "dns", "key": [["x"], {"y": 1}]},
            {"k": "follow", "kind": "nope", "key": ["a"]},
            {"k": "follow", "kind": "dns"},
            {"k": "rm -rf", "kind": "dns", "key": ["a", "b", "c"]},
        ):
            wire.send(bad, msg)
        bad.sendall(b"\x00\x00\x00\x03abc")  # not msgpack: the host hangs up on it
        wait_for(lambda: host.viewers == 0, 5, "the host hangs up")
        assert not pub.publish().dns.details
        good = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        good.connect(str(owned.place.socket))
        viewer = ViewerPublisher(good)
        assert viewer.publish().dns is not None  # the host still serves
        viewer.stop()
    finally:
        bad.close()
        host.close()
