"""The Kubernetes source against an API server that misbehaves as real ones do: what the
user sees and by when, how many requests it makes during the fault, and how soon it is
current again once the server is back. Every wait is bounded; margins are generous."""

from __future__ import annotations

import threading
import time

from probes.engine.publisher import Publisher
from probes.engine.store import worst_status
from probes.kube.model import SourceState
from probes.kube.reflector import WATCH_GRACE
from probes.kube.source import VERSION_TIMEOUT
from tests.faults.conftest import KIND_NAMES, all_live, kind_status
from tests.support.wait import wait_for

DEFAULT_DEADLINE = 10 + WATCH_GRACE  # kube.watch_timeout's default + the grace: the documented silence limit


def max_rate(api, kind: str, t0: float, t1: float) -> float:  # type: ignore[no-untyped-def]
    return api.count(kind=kind, since=t0, until=t1) / (t1 - t0)


def next_try_in(store, kind: str) -> float:  # type: ignore[no-untyped-def]
    st = kind_status(store, kind)
    assert st is not None and st.retry_at is not None, st
    return max(0.0, st.retry_at - time.monotonic())


def test_frozen_server_shows_stale_data_within_the_deadline_and_reconverges(api, start):
    src, store = start()
    assert wait_for(lambda: all_live(store), 10)
    t_freeze = time.monotonic()
    api.set_mode("freeze")
    # never "live" past the deadline: every kind is stale (its data as old as its last event)
    assert wait_for(
        lambda: all(
            (s := kind_status(store, k)) is not None and s.state is not SourceState.LIVE and s.stale_since is not None
            for k in KIND_NAMES
        ),
        DEFAULT_DEADLINE + 3,
    ), [kind_status(store, k) for k in KIND_NAMES]
    t_seen = time.monotonic()
    assert t_seen - t_freeze <= DEFAULT_DEADLINE + 3
    for k in KIND_NAMES:
        st = kind_status(store, k)
        assert st.stale_since <= t_freeze + 0.1  # type: ignore[union-attr,operator]
    # the frame the app renders says so too: its kube part is stale, its worst status is not live
    frame = Publisher(store, findings=False).step()
    assert frame.kube.stale_since() is not None
    worst = worst_status(frame.kube.statuses)
    assert worst is not None and worst.state is not SourceState.LIVE
    assert len(frame.topology.nodes) == 5  # the data stays, marked
    # while frozen: no storm (a held request at a time, then the backoff)
    time.sleep(4)
    t_end = time.monotonic()
    for k in KIND_NAMES:
        assert max_rate(api, k, t_freeze, t_end) <= 1.0
    # back: current again within the wait the status announced (+ the held request's answer)
    left = max(next_try_in(store, k) if kind_status(store, k).retry_at else 0 for k in KIND_NAMES)  # type: ignore[union-attr]
    api.set_mode("ok")
    assert wait_for(lambda: all_live(store), left + 3), [kind_status(store, k) for k in KIND_NAMES]
    assert store.snapshot().stale_since() is None


def test_blackholed_server_is_said_within_5_s_and_without_retries(api, start):
    api.set_mode("blackhole")
    t0 = time.monotonic()
    src, store = start()
    assert wait_for(
        lambda: (s := store.snapshot().status("kubernetes")) is not None and s.state is SourceState.UNREACHABLE, 5
    )
    assert time.monotonic() - t0 <= VERSION_TIMEOUT + 1
    st = store.snapshot().status("kubernetes")
    assert "not answering" in st.message and st.retry_at is not None  # type: ignore[union-attr]
    assert api.count(kind="version") == 1  # one request per try: no hidden retries
    time.sleep(2)
    assert api.count(kind="version", until=time.monotonic()) <= 2
    left = max(0.0, st.retry_at - time.monotonic())  # type: ignore[union-attr,operator]
    api.set_mode("ok")  # what was held is closed unanswered; the next try finds the server
    assert wait_for(lambda: all_live(store), left + 2 * 1.6 * 1.2 + VERSION_TIMEOUT + 2)


def _storm(api, store, mode: str, seconds: float = 8.0):  # type: ignore[no-untyped-def]
    """Switch to `mode` with every kind live and its watches renewed into it; return
    (t0, t1) of the fault window after `seconds`."""
    api.set_mode(mode)
    api.expire_all()  # the open watches end now, so every kind meets the fault at once
    t0 = time.monotonic()
    time.sleep(seconds)
    return t0, time.monotonic()


def test_410_on_every_watch_relists_with_backoff_and_reconverges(api, start):
    src, store = start()
    assert wait_for(lambda: all_live(store), 10)
    t0, t1 = _storm(api, store, "gone")
    for k in KIND_NAMES:
        st = kind_status(store, k)
        assert st.state is not SourceState.LIVE and st.stale_since is not None  # type: ignore[union-attr]
        assert max_rate(api, k, t0, t1) <= 1.0, (k, api.count(kind=k, since=t0, until=t1))
        # one list per backoff step: 0.8, 1.6, 3.2 s (±20 %) fit at most 4 lists in 8 s
        assert api.count("list", k, t0, t1) <= 4
    assert "410" in kind_status(store, "nodes").message  # type: ignore[union-attr]
    left = max(next_try_in(store, k) for k in KIND_NAMES)
    api.set_mode("ok")
    assert wait_for(lambda: all_live(store), left + 2)


def test_too_large_resource_version_relists_instead_of_repeating_it(api, start):
    src, store = start()
    assert wait_for(lambda: all_live(store), 10)
    t0, t1 = _storm(api, store, "too_large")
    st = kind_status(store, "nodes")
    assert st.state is SourceState.ERROR and "resourceVersion" in st.message  # type: ignore[union-attr]
    for k in KIND_NAMES:
        assert api.count("list", k, t0, t1) >= 1  # it relisted (a fresh RV), not the same RV forever
        assert api.count("list", k, t0, t1) <= 4 and max_rate(api, k, t0, t1) <= 1.0


def test_state_replaced_by_a_restart_replaces_the_cache_within_two_steps(api, start):
    src, store = start()
    assert wait_for(lambda: all_live(store), 10)
    assert len(store.snapshot().topology.nodes) == 5
    t0 = time.monotonic()
    api.replace_state(nodes=3)  # a restart on another etcd: lower resourceVersions, 3 nodes
    # the cut watch retries from its RV (0.8 s), gets 504 too large, relists (1.6 s): <= 2 steps
    assert wait_for(lambda: len(store.snapshot().topology.nodes) == 3, 2 * 1.6 * 1.2 + 2)
    assert {n.name for n in store.snapshot().topology.nodes} == set(api.node_names())
    assert wait_for(lambda: all_live(store), 5)
    assert time.monotonic() - t0 < 10


def test_throttled_is_said_with_the_next_try_and_honoured(api, start):
    api.retry_after = 3
    api.set_mode("throttle")
    src, store = start()
    assert wait_for(lambda: (s := store.snapshot().status("kubernetes")) is not None and "throttled" in s.message, 2)
    st = store.snapshot().status("kubernetes")
    assert "throttled by the API server" in st.message and 2.0 <= st.retry_at - time.monotonic() <= 3.5  # type: ignore[union-attr,operator]
    time.sleep(5)
    assert api.count(kind="version", until=time.monotonic()) <= 3  # one per Retry-After
    api.set_mode("ok")
    assert wait_for(lambda: all_live(store), 6)


def test_unauthorized_and_forbidden_back_off_to_the_cap(api, start):
    api.set_mode("unauthorized")
    src, store = start()
    assert wait_for(
        lambda: (s := store.snapshot().status("kubernetes")) is not None and s.state is SourceState.UNAUTHORIZED, 2
    )
    st = store.snapshot().status("kubernetes")
    assert st.fatal and st.retry_at - time.monotonic() > 20  # type: ignore[union-attr,operator]
    time.sleep(1)
    assert api.count(kind="version", until=time.monotonic()) == 1
    src.stop(2.0)
    api.set_mode("forbidden")
    src, store = start()
    assert wait_for(
        lambda: all((s := kind_status(store, k)) is not None and s.state is SourceState.FORBIDDEN for k in KIND_NAMES),
        3,
    )
    st = kind_status(store, "nodes")
    assert st.message == "forbidden: cannot list nodes at the cluster scope" and st.fatal  # type: ignore[union-attr]
    assert 'cannot list resource "nodes"' in st.detail  # type: ignore[union-attr]
    t = time.monotonic()
    time.sleep(1)
    assert api.count("list", "nodes", t - 5, time.monotonic()) == 1


def test_malformed_objects_are_skipped_and_counted(api, start):
    api.bad_items = [{"kind": "Node", "metadata": []}, {"kind": "Node", "metadata": {"labels": {}}}]
    src, store = start()
    settled = (SourceState.CONNECTING, SourceState.SYNCING)
    # every kind settled, the ingress path's optional ones too (they would be the worst status)
    assert wait_for(lambda: all_live(store) and all(s.state not in settled for s in store.snapshot().statuses), 10)
    assert len(store.snapshot().topology.nodes) == 5  # the list is not lost for two bad objects
    st = kind_status(store, "nodes")
    assert st.detail == (  # type: ignore[union-attr]
        "2 objects ignored: node[5]: metadata is not an object; node[6]: metadata.name is missing"
    )
    assert worst_status(store.snapshot().statuses) == st  # the note is what the status line shows


def test_error_event_without_a_status_is_a_watch_error_not_a_crash(api, start):
    src, store = start()
    assert wait_for(lambda: all_live(store), 10)
    t0, t1 = _storm(api, store, "bad_error", seconds=5)
    st = kind_status(store, "nodes")
    assert st.state is SourceState.ERROR and "ERROR event without a Status" in st.message  # type: ignore[union-attr]
    assert all(r.thread.is_alive() for r in src.reflectors)
    for k in KIND_NAMES:
        assert 1 <= api.count("list", k, t0, t1) <= 3  # relisted, paced
    api.set_mode("ok")
    assert wait_for(lambda: all_live(store), max(next_try_in(store, k) for k in KIND_NAMES) + 2)


def test_streams_cut_mid_event_back_off_and_keep_the_data(api, start):
    src, store = start()
    assert wait_for(lambda: all_live(store), 10)
    t0, t1 = _storm(api, store, "cut", seconds=6)
    for k in KIND_NAMES:
        assert max_rate(api, k, t0, t1) <= 1.0
    assert len(store.snapshot().topology.nodes) == 5
    assert store.snapshot().stale_since() is not None
    api.set_mode("ok")
    assert wait_for(lambda: all_live(store), max(next_try_in(store, k) for k in KIND_NAMES) + 2)


def test_events_keep_a_kind_live_and_arrive(api, start):
    src, store = start(watch_timeout=2)  # renewed every 1.6-2 s
    assert wait_for(lambda: all_live(store), 10)
    name = api.node_names()[0]
    api.modify_node(name, ready=False)
    assert wait_for(lambda: store.snapshot().topology.node(name).ready is False, 3)  # type: ignore[union-attr]
    # a quiet healthy server (bookmarks only) stays live past several watch renewals
    done = threading.Event()
    seen: list[SourceState] = []

    def watch_states() -> None:
        while not done.wait(0.1):
            st = kind_status(store, "nodes")
            seen.append(st.state)  # type: ignore[union-attr]

    t = threading.Thread(target=watch_states, daemon=True)
    t.start()
    time.sleep(5)
    done.set()
    t.join(2)
    assert seen and all(s is SourceState.LIVE for s in seen)
    assert api.count("watch", "nodes") >= 3  # it was renewed meanwhile, without a flicker


def test_the_ingress_kinds_wait_for_the_first_lists_and_the_policy_kinds_do_not(api, start):
    """A slow first nodes list (5,000 nodes) is not shared with the ingress path's discovery
    and lists: they start once the kinds `check` waits for have listed. The NetworkPolicy
    kinds are among those: their small lists go out while the nodes' page is prepared."""
    api.list_delay["nodes"] = 1.0
    t0 = time.monotonic()
    src, store = start()
    assert wait_for(lambda: all_live(store), 8)
    assert wait_for(lambda: any("ingresses" in p for _, p in api.paths), 5)
    with api.cond:
        first_nodes = min(t for t, v, k in api.requests if (v, k) == ("list", "nodes"))
        policy = [t for t, v, k in api.requests if k in ("networkpolicies", "namespaces") and t >= t0]
        ingress = [t for t, p in api.paths if ("ingress" in p or "cert-manager" in p) and t >= t0]
    assert policy and ingress, (policy, ingress)
    assert min(policy) < first_nodes + 0.5  # asked while the nodes list was held
    assert min(ingress) >= first_nodes + 1.0  # not before the nodes list was answered
