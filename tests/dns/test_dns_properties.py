"""Property tests: the classifier on hostile bytes, history statistics on random data."""

from __future__ import annotations

import math
import threading

import dns.message
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.dns.probe import DnsOutcome, DnsResult, classify
from probes.engine.history import History

Q = dns.message.make_query("kubernetes.default.svc.cluster.local", "A", use_edns=0)
GOOD = dns.message.make_response(Q).to_wire()


@settings(max_examples=400, deadline=None)
@given(raw=st.binary(max_size=600), tcp=st.booleans())
def test_classify_random_bytes_never_raises(raw, tcp):
    v = classify(Q, raw, tcp=tcp)
    assert isinstance(v.outcome, DnsOutcome)
    assert isinstance(v.error, str)


@settings(max_examples=400, deadline=None)
@given(flags=st.binary(min_size=2, max_size=2), rest=st.binary(max_size=400), tcp=st.booleans())
def test_classify_right_id_random_body_never_raises(flags, rest, tcp):
    """Bytes that pass the id check reach the parser: still never raises."""
    raw = Q.id.to_bytes(2, "big") + flags + rest
    v = classify(Q, raw, tcp=tcp)
    assert isinstance(v.outcome, DnsOutcome) and not v.ignorable


@settings(max_examples=300, deadline=None)
@given(
    pos=st.integers(min_value=0, max_value=len(GOOD) - 1),
    byte=st.integers(0, 255),
    cut=st.integers(min_value=0, max_value=len(GOOD)),
)
def test_classify_mutated_answer_never_raises(pos, byte, cut):
    raw = bytearray(GOOD)
    raw[pos] = byte
    v = classify(Q, bytes(raw[: max(cut, pos + 1)]))
    assert isinstance(v.outcome, DnsOutcome)


outcomes = st.sampled_from(list(DnsOutcome))
results = st.builds(
    lambda o, lat: DnsResult("local", "r", "1.2.3.4", "1.2.3.4:53", "n", "A", o, lat),
    outcomes,
    st.floats(min_value=0.0, max_value=10_000.0, allow_nan=False),
)


@settings(max_examples=200, deadline=None)
@given(rs=st.lists(results, min_size=1, max_size=400), maxlen=st.integers(1, 300))
def test_history_stats_invariants(rs, maxlen):
    h = History(maxlen=maxlen)
    for r in rs:
        h.add("k", r)
    s = h.stats("k")
    assert s is not None
    assert s.count == len(rs) and s.attempts == min(len(rs), maxlen)
    assert 0.0 <= s.loss_pct <= 100.0
    if s.p50 is not None:
        assert s.p50 <= s.p95 <= s.p99
        window = rs[-maxlen:]
        ok = [r.latency_ms for r in window if r.success]
        assert min(ok) <= s.p50 and s.p99 <= max(ok)
    else:
        assert s.successes == 0
    lost = sum(1 for r in rs[-maxlen:] if r.outcome in (DnsOutcome.TIMEOUT, DnsOutcome.NETWORK_ERROR))
    assert abs(s.loss_pct - 100.0 * lost / s.attempts) < 1e-9
    assert s.last_outcome == rs[-1].outcome.value
    assert len(s.recent) <= 60


def test_history_versions_and_cache():
    h = History(maxlen=10)
    r = DnsResult("local", "r", "a", "a:53", "n", "A", DnsOutcome.OK, 1.0)
    assert h.version == 0 and h.stats("k") is None
    h.add("k", r)
    v1 = h.version
    s1 = h.stats("k")
    assert h.stats("k") is s1  # cached until the next append
    h.add("j", r)
    assert h.version > v1 and h.version_of("k") == v1
    assert set(h.snapshot(since=v1)) == {"j"}
    h.add("k", DnsResult("local", "r", "a", "a:53", "n", "A", DnsOutcome.TIMEOUT, 2000.0, error="no answer"))
    s2 = h.stats("k")
    assert s2 is not s1 and s2.loss_pct == 50.0 and s2.last_error == "no answer"
    assert s2.recent == (1.0, None)
    h.retain(["j"])
    assert h.keys() == ["j"]


def test_history_concurrent_reader_and_writer():
    h = History(maxlen=100)
    r = DnsResult("local", "r", "a", "a:53", "n", "A", DnsOutcome.OK, 1.0)
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader():
        try:
            while not stop.is_set():
                h.snapshot()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(20_000):
            h.add(i % 50, r)
    finally:
        stop.set()
        t.join(5)
    assert not errors and sum(h.stats(k).count for k in h.keys()) == 20_000


def _from_scratch(window, spark):
    """The window's figures computed the plain way (what History kept incrementally)."""
    lat = sorted(r.latency_ms for r in window if r.success and r.latency_ms == r.latency_ms)
    lost = sum(1 for r in window if not r.success and r.lost)
    recent = tuple(r.latency_ms if r.success else None for r in window[-spark:])

    def pct(p):
        return lat[min(max(1, math.ceil(p / 100 * len(lat))), len(lat)) - 1] if lat else None

    return len(lat), pct(50), pct(95), pct(99), 100.0 * lost / len(window), recent


nan_or_float = st.one_of(st.floats(min_value=0.0, max_value=10_000.0, allow_nan=False), st.just(math.nan))


@settings(max_examples=300, deadline=None)
@given(
    rs=st.lists(
        st.builds(
            lambda o, lat: DnsResult("local", "r", "1.2.3.4", "1.2.3.4:53", "n", "A", o, lat), outcomes, nan_or_float
        ),
        min_size=1,
        max_size=120,
    ),
    maxlen=st.integers(1, 40),
    spark=st.integers(1, 60),
    read_every=st.integers(1, 7),
)
def test_history_running_summary_matches_the_window(rs, maxlen, spark, read_every):
    """The summary kept on every append (evictions included, NaN latencies, a sparkline
    longer or shorter than the window) equals the window's figures computed from scratch,
    whenever it is read."""
    h = History(maxlen=maxlen, spark=spark)
    for i, r in enumerate(rs, start=1):
        h.add("k", r)
        if i % read_every == 0 or i == len(rs):
            s = h.stats("k")
            window = rs[max(0, i - maxlen) : i]
            want = _from_scratch(window, spark)
            got = (s.successes, s.p50, s.p95, s.p99, s.loss_pct, s.recent)
            assert got[:5] == want[:5]
            assert len(got[5]) == len(want[5])
            assert all(a == b or (a != a and b != b) for a, b in zip(got[5], want[5]))  # NaN == NaN here
            assert s.attempts == len(window) and s.count == i and s.last == window[-1]
