"""The HTTPS service against the loopback endpoints: it schedules every host, bounds what
runs, records per row, follows the hosts callable, and says what it cannot do.

Every wait has a deadline; everything is stopped in finally; nothing is dialled beyond
loopback (rows with other addresses are either redirected by the dial map or left out)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from probes.dns.service import wait_for
from probes.engine.health import Health
from probes.ingress.httpsservice import HttpsService, HttpsSettings, TlsTarget, plan_targets
from probes.ingress.tlsresult import TlsKey, TlsOutcome

FAST = dict(interval=0.3, timeout=0.4, jitter=0.05)


def rows(lab, *hosts):
    return [(h, *lab.hosts[h][:2]) for h in hosts]


def keys(svc):
    return [TlsKey("local", t.host, t.address, t.port) for t in svc.plan().targets]


def all_reported(svc, n, rounds=1):
    ks = keys(svc)
    if len(ks) != n:
        return False
    sts = [svc.history.stats(k) for k in ks]
    return all(s is not None and s.count >= rounds for s in sts)


EXPECTED = {
    "shop.lab.test": (TlsOutcome.VALID, Health.GOOD),
    "soon.lab.test": (TlsOutcome.EXPIRING, Health.DEGRADED),
    "old.lab.test": (TlsOutcome.EXPIRED, Health.FAILING),
    "wrong.lab.test": (TlsOutcome.WRONG_HOST, Health.FAILING),
    "self.lab.test": (TlsOutcome.UNTRUSTED, Health.FAILING),
    "refused.lab.test": (TlsOutcome.REFUSED, Health.FAILING),
    "hang.lab.test": (TlsOutcome.TIMEOUT, Health.FAILING),
    "plain.lab.test": (TlsOutcome.TLS_ERROR, Health.FAILING),
}


def test_schedules_every_host_and_records_each_row(lab):
    svc = HttpsService(
        lambda: rows(lab, *EXPECTED), HttpsSettings(ca_bundle=lab.ca_path, **FAST), poll=0.05, refresh=60
    )
    try:
        svc.start()
        assert wait_for(lambda: all_reported(svc, len(EXPECTED), rounds=2), 15), "not every host reported twice"
        plan = svc.plan()
        assert plan.jobs == len(EXPECTED) and plan.error == "" and plan.left_out_count == 0
        assert [t.host for t in plan.targets] == list(EXPECTED)
        for k in keys(svc):
            st = svc.history.stats(k)
            outcome, health = EXPECTED[k.host]
            assert st.last.outcome is outcome, (k.host, st.last.error)
            assert svc.health(k) is health
            assert st.last.key == k
    finally:
        svc.stop()


def test_interval_and_history_bounds(lab):
    """Runs follow the interval (not back to back), and a row keeps only `history` results."""
    s = HttpsSettings(ca_bundle=lab.ca_path, interval=0.2, timeout=0.4, jitter=0.0, history=3)
    svc = HttpsService(lambda: rows(lab, "shop.lab.test"), s, poll=0.05, refresh=60)
    try:
        svc.start()
        t0 = time.monotonic()
        assert wait_for(lambda: all_reported(svc, 1, rounds=6), 15)
        took = time.monotonic() - t0
        (k,) = keys(svc)
        st = svc.history.stats(k)
        assert st.count >= 6 and st.attempts == 3 and len(svc.history.results(k)) == 3
        assert took > 5 * 0.2 * 0.9  # six runs need five intervals at least
    finally:
        svc.stop()


def test_concurrency_cap_holds_under_many_hung_hosts(lab):
    """Twelve hosts on the endpoint that never answers TLS, a cap of three: never more than
    three handshakes in flight, and each one ends at its timeout."""
    ip, port, _ = lab.hosts["hang.lab.test"]
    hung = [(f"h{i}.lab.test", ip, port) for i in range(12)]
    s = HttpsSettings(ca_bundle=lab.ca_path, interval=5.0, timeout=0.3, jitter=0.0, concurrency=3)
    svc = HttpsService(lambda: hung, s, poll=0.05, refresh=60)
    try:
        svc.start()
        assert wait_for(lambda: all_reported(svc, 12), 10)
        assert svc._probe is not None and 1 <= svc._probe.peak_inflight <= 3
        assert svc._scheduler is not None and svc._scheduler.stats.timeouts == 0  # the probe's bound came first
        for k in keys(svc):
            last = svc.history.stats(k).last
            assert last.outcome is TlsOutcome.TIMEOUT and 250 < last.latency_ms < 1000
    finally:
        svc.stop()


def test_follows_the_hosts_callable(lab):
    """A host added or removed is planned at the store's next version (or the refresh
    tick); the removed row's history is forgotten; unchanged rows keep theirs."""
    current = rows(lab, "shop.lab.test", "soon.lab.test")
    store = SimpleNamespace(version=1)
    svc = HttpsService(lambda: list(current), HttpsSettings(ca_bundle=lab.ca_path, **FAST), store=store, poll=0.05)
    try:
        svc.start()
        assert wait_for(lambda: all_reported(svc, 2), 10)
        shop = TlsKey("local", *rows(lab, "shop.lab.test")[0])
        before = svc.history.stats(shop).count
        current[:] = rows(lab, "shop.lab.test", "refused.lab.test")
        store.version = 2
        assert wait_for(lambda: all_reported(svc, 2) and "refused.lab.test" in {k.host for k in keys(svc)}, 10)
        assert {k.host for k in svc.history.keys()} == {"shop.lab.test", "refused.lab.test"}
        assert svc.history.stats(shop).count >= before  # kept its history
    finally:
        svc.stop()


def test_refresh_re_reads_hosts_without_a_store(lab):
    current = rows(lab, "shop.lab.test")
    svc = HttpsService(lambda: list(current), HttpsSettings(ca_bundle=lab.ca_path, **FAST), poll=0.05, refresh=0.2)
    try:
        svc.start()
        assert wait_for(lambda: all_reported(svc, 1), 10)
        current.append(rows(lab, "old.lab.test")[0])
        assert wait_for(lambda: all_reported(svc, 2), 10)
    finally:
        svc.stop()


def test_bad_rows_are_left_out_with_a_reason(lab):
    good = rows(lab, "shop.lab.test")[0]
    bad = [
        ("", "127.0.0.1", 443),
        ("x.lab.test", "not-an-ip", 443),
        ("y.lab.test", "127.0.0.1", 70000),
        ("z",),
        None,
        ("*.apps.lab.test", "127.0.0.1", 443),
    ]
    targets, left = plan_targets([good, *bad, good, ("SHOP.lab.test.", good[1], good[2])])
    assert targets == [TlsTarget("shop.lab.test", good[1], good[2])]  # duplicates, spelled either way, once
    assert len(left) == 6
    assert any("not an IP address" in w for w in left) and any("out of range" in w for w in left)
    assert any("wildcard host" in w for w in left)
    svc = HttpsService(lambda: [good, *bad], HttpsSettings(ca_bundle=lab.ca_path, **FAST), poll=0.05, refresh=60)
    try:
        svc.start()
        assert wait_for(lambda: all_reported(svc, 1), 10)
        plan = svc.plan()
        assert plan.left_out_count == 6 and len(plan.left_out) == 5 and plan.jobs == 1  # the first five said
    finally:
        svc.stop()


def test_a_failing_callable_is_an_error_line_and_the_service_recovers(lab):
    state = {"fail": True}
    store = SimpleNamespace(version=1)

    def hosts():
        if state["fail"]:
            raise KeyError("ingress model not ready")
        return rows(lab, "shop.lab.test")

    svc = HttpsService(hosts, HttpsSettings(ca_bundle=lab.ca_path, **FAST), store=store, poll=0.05, refresh=60)
    try:
        svc.start()
        assert wait_for(lambda: svc.plan().error != "", 5)
        assert "HTTPS probes could not follow the cluster: KeyError" in svc.plan().error
        state["fail"] = False
        store.version = 2
        assert wait_for(lambda: all_reported(svc, 1), 10)
        assert svc.error == "" and svc.plan().error == ""
    finally:
        svc.stop()


def test_unreadable_ca_bundle_probes_nothing_and_says_so(tmp_path, lab):
    s = HttpsSettings(ca_bundle=str(tmp_path / "missing.pem"), **FAST)
    svc = HttpsService(lambda: rows(lab, "shop.lab.test"), s, poll=0.05, refresh=60)
    try:
        svc.start()
        assert wait_for(lambda: svc.plan().error != "", 5)
        assert svc.plan().error.startswith("HTTPS probes: CA bundle") and "missing.pem" in svc.plan().error
        time.sleep(0.3)
        assert svc.plan().jobs == 0 and svc.history.keys() == []
    finally:
        svc.stop()


def test_confined_lab_dials_loopback_only(lab):
    """The lab's ingress IPs are public-looking addresses: the dial map sends them to the
    loopback endpoint; a row with no mapping is left out, never dialled."""
    ip, port, _ = lab.hosts["shop.lab.test"]
    rows_ = [("shop.lab.test", "20.50.60.70", 443), ("elsewhere.lab.test", "20.50.60.99", 443)]
    svc = HttpsService(
        lambda: rows_,
        HttpsSettings(ca_bundle=lab.ca_path, **FAST),
        dial_map={"20.50.60.70:443": (ip, port)},
        confine=True,
        poll=0.05,
        refresh=60,
    )
    try:
        svc.start()
        assert wait_for(lambda: all_reported(svc, 1), 10)
        plan = svc.plan()
        assert [t.host for t in plan.targets] == ["shop.lab.test"]
        assert plan.left_out_count == 1 and "beyond loopback" in plan.left_out[0]
        st = svc.history.stats(TlsKey("local", "shop.lab.test", "20.50.60.70", 443))
        assert st.last.outcome is TlsOutcome.VALID and st.last.via == f"{ip}:{port}"
    finally:
        svc.stop()


def test_stop_is_bounded_with_probes_in_flight(lab):
    ip, port, _ = lab.hosts["hang.lab.test"]
    s = HttpsSettings(ca_bundle=lab.ca_path, interval=5.0, timeout=3.0, jitter=0.0)
    svc = HttpsService(lambda: [(f"h{i}.lab.test", ip, port) for i in range(20)], s, poll=0.05, refresh=60)
    svc.start()
    try:
        assert wait_for(lambda: svc._probe is not None and svc._probe.inflight == 20, 5)
    finally:
        t0 = time.monotonic()
        svc.stop(timeout=2.0)
    assert time.monotonic() - t0 < 3.0
