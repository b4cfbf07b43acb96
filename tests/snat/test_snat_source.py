"""The Azure source through the real azure-mgmt clients against the lab ARM endpoint:
discovery, metrics, call budget and every error state. Frozen clocks, loopback only."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime

import pytest

from probes.azure.service import AzureState
from probes.lab.arm import LabArmServer
from probes.lab.scenario import load_scenario
from tests.snat.snat_helpers import T0, lab_store, service, start_lab
from tests.support.leaks import guard_threads


@pytest.fixture(autouse=True)
def _no_leaks():
    yield from guard_threads()


def wait(svc, cond, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = svc.report()
        if cond(r):
            return r
        time.sleep(0.02)
    raise AssertionError(f"timed out; last report: {svc.report()}")


def run(arm: LabArmServer, cond, **kw):  # type: ignore[no-untyped-def]
    svc = service(arm, lab_store(arm.scenario), **kw)
    svc.start()
    try:
        return wait(svc, cond), svc
    finally:
        svc.stop(3.0)


def test_discovery_and_metrics_f10_exhaustion():
    with start_lab("snat-exhaustion") as arm:
        r, _ = run(arm, lambda r: r.table is not None)
        t = r.target
        assert r.state is AzureState.LIVE
        assert (
            t.cluster_name == "aks-lab" and t.outbound_type == "loadBalancer" and t.outbound_rule == "aksOutboundRule"
        )
        assert (
            t.node_resource_group == "MC_rg-aks-lab_aks-lab_westeurope" and t.outbound_ips == 1 and t.idle_timeout == 30
        )
        hot = r.table.nodes[0]
        assert hot.node == "aks-nodepool1-57993984-vmss000001" and hot.used == hot.allocated == 1024 and hot.failed > 0
        assert all(n.state == "ok" for n in r.table.nodes[1:]) and len(r.table.nodes) == 5
        assert len(hot.used_series) == 30
        assert (
            r.findings[0].severity == "critical"
            and "SNAT exhausted on aks-nodepool1-57993984-vmss000001" in r.findings[0].text
        )
        q = [x.query for x in arm.requests.records() if x.resource == "metrics"]
        ports = next(x for x in q if "UsedSnatPorts" in x["metricnames"])
        assert ports["$filter"] == "BackendIPAddress eq '*'" and int(ports["top"]) >= 5
        assert ports["aggregation"] == "Average,Maximum" and ports["interval"] == "PT1M"
        assert ports["api-version"] == "2024-02-01"
        conns = next(x for x in q if x["metricnames"] == "SnatConnectionCount")
        assert "ConnectionState eq '*'" in conns["$filter"] and conns["aggregation"] == "Total"


def test_f11_tier_drop_fifty_nodes():
    with start_lab("snat-tier-drop") as arm:
        r, _ = run(arm, lambda r: r.table is not None)
        assert len(r.table.nodes) == 50  # top was raised past the default 10 series
        a = r.allocation
        assert (a.nodes, a.surge, a.expected, a.during_surge) == (50, 1, 1024, 512)
        texts = [f.text for f in r.findings]
        assert any("1024 to 512" in t for t in texts) and any("during an upgrade surge" in t for t in texts)


def test_steady_state_calls_per_minute():
    now = [T0]
    with start_lab("healthy", clock=lambda: now[0]) as arm:
        svc = service(arm, lab_store(arm.scenario), clock=lambda: now[0])
        svc.start()
        try:
            wait(svc, lambda r: r.table is not None)
            first = len(arm.requests)
            # managed clusters, load balancer, route tables, subnet, the path (NSGs, VNet; the
            # subnet's route table is one of the tables just listed), ports, connections, then
            # the public IPs the nodes leave with
            wait(svc, lambda r: svc.path() is not None and svc.path().public_ips_read)
            first = len(arm.requests)
            assert first == 9
            per_minute = []
            for minute in range(1, 61):
                before = len(arm.requests)
                now[0] = T0 + 60 * minute
                wait(svc, lambda r, m=minute: r.updated == T0 + 60 * m)
                per_minute.append(len(arm.requests) - before)
            steady = len(arm.requests) - first
            # metrics every minute, one rediscovery (2 calls) in the hour, the route table and
            # subnet re-read every 5 min, and the network path (3 calls) every 10 min: one call a
            # minute on top of the metrics, never in a minute that made another
            assert max(per_minute) <= 3 and steady <= 3 * 60
            assert 2 * 60 + 2 + 2 * 10 + 3 * 5 <= steady <= 2 * 60 + 2 + 2 * 12 + 3 * 6
            path_kinds = ("nsgs", "nsg", "vnet", "vnets", "routetable", "publicips", "prefixes", "publicip", "firewall")
            path_calls = [r for r in arm.requests.records() if r.resource in path_kinds]
            assert 3 + 3 * 5 <= len(path_calls) <= 3 + 3 * 6  # 0.3 calls a minute added
            p = svc.path()
            assert p is not None and p.notes == () and p.nic_nsgs and p.route_table and len(p.routes) == 5
            assert p.egress_identity().known and p.egress_identity().via == "LB"
            assert svc.routes() is not None and svc.routes().error == "" and len(svc.routes().routes) == 5
            assert arm.requests.count(status=200) == len(arm.requests)
        finally:
            svc.stop(3.0)


@pytest.mark.parametrize(
    "status,state,words",
    [
        (401, AzureState.UNAUTHORIZED, "az login"),
        (403, AzureState.FORBIDDEN, "Monitoring Reader"),
        (500, AzureState.ERROR, "500"),
        (503, AzureState.ERROR, "503"),
    ],
)
def test_error_states(status, state, words):
    with start_lab("healthy") as arm:
        arm.faults.add(r"/providers/Microsoft\.Insights/metrics$", status=status)
        r, _ = run(arm, lambda r: r.state is state)
        assert words in r.message + r.detail
        if status == 403:
            assert "loadBalancers/kubernetes" in r.detail and "--role 'Monitoring Reader'" in r.detail


def test_throttled_waits_retry_after_then_recovers():
    now = [T0]
    with start_lab("healthy", clock=lambda: now[0]) as arm:
        arm.faults.add(r"/metrics$", status=429, retry_after=120, times=1)
        svc = service(arm, lab_store(arm.scenario), clock=lambda: now[0])
        svc.start()
        try:
            r = wait(svc, lambda r: r.state is AzureState.THROTTLED)
            assert r.retry_at == T0 + 120 and "120 s" in r.message
            n = len(arm.requests)
            now[0] = T0 + 60
            time.sleep(0.2)
            assert len(arm.requests) == n  # no call before Retry-After
            now[0] = T0 + 121
            r = wait(svc, lambda r: r.state is AzureState.LIVE)
            assert r.table is not None
        finally:
            svc.stop(3.0)


def test_malformed_body():
    with start_lab("healthy") as arm:
        arm.faults.malformed_json(r"/metrics$", times=None)
        r, _ = run(arm, lambda r: r.state is AzureState.ERROR)
        assert "malformed" in r.message


def test_no_credential_says_what_to_run():
    from azure.identity import CredentialUnavailableError

    class NoCredential:
        def get_token(self, *scopes, **kw):  # type: ignore[no-untyped-def]
            raise CredentialUnavailableError("DefaultAzureCredential failed to retrieve a token")

    with start_lab("healthy") as arm:
        r, _ = run(arm, lambda r: r.state is AzureState.NO_CREDENTIAL, credential=NoCredential)
        assert "az login" in r.detail and len(arm.requests) == 0


def test_nat_gateway_is_cluster_level():
    sc = load_scenario("snat-exhaustion")
    sc.extra["azure"] = type(sc.extra["azure"])(outbound_type="managedNATGateway")
    with LabArmServer(sc, clock=lambda: T0) as arm:
        r, _ = run(arm, lambda r: r.state is AzureState.CLUSTER_LEVEL)
        assert "no per-node dimension" in r.detail and r.table is None
        names = {m.name for m in r.cluster}
        assert names == {"snatconnectioncount", "totalconnectioncount", "packetdropcount"}


def test_disabled_makes_no_call():
    with start_lab("healthy") as arm:
        svc = service(arm, lab_store(arm.scenario), enabled=False)
        svc.start()
        time.sleep(0.1)
        svc.stop()
        assert svc.report().state is AzureState.DISABLED and len(arm.requests) == 0


def test_sdk_not_imported_by_the_pane_or_features():
    import subprocess
    import sys

    code = (
        "import sys, tui.features, tui.snat_pane, probes.azure.service, probes.lab.arm; "
        "print(sorted(m for m in sys.modules if m.startswith('azure')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def _span_minutes(q: dict[str, str]) -> float:
    a, _, b = q["timespan"].partition("/")
    return (
        datetime.fromisoformat(b.replace("Z", "+00:00")) - datetime.fromisoformat(a.replace("Z", "+00:00"))
    ).total_seconds() / 60


@contextmanager
def _exhaustion():  # type: ignore[no-untyped-def]
    """(lab, started service, its clock, its first report) on the snat-exhaustion lab at T0."""
    now = [T0]
    with start_lab("snat-exhaustion", clock=lambda: now[0]) as arm:
        svc = service(arm, lab_store(arm.scenario), clock=lambda: now[0])
        svc.start()
        try:
            yield arm, svc, now, wait(svc, lambda r: r.table is not None)
        finally:
            svc.stop(3.0)


def test_refreshes_read_the_last_minutes_and_keep_the_window():
    """After a whole window, a refresh asks for the minute since the last read plus the 3
    Azure Monitor may still revise, and merges them in: the chart keeps its 30 points and
    the newest value is the lab's. Within the hour, with the same nodes, it never reads
    the whole window again."""
    with _exhaustion() as (arm, svc, now, first):
        hot0 = first.table.nodes[0]
        spans = []
        for minute in range(1, 17):
            before = len(arm.requests)
            now[0] = T0 + 60 * minute
            r = wait(svc, lambda r, m=minute: r.updated == T0 + 60 * m)
            q = [x.query for x in arm.requests.records()[before:] if x.resource == "metrics"]
            assert len(q) == 2
            spans.append(_span_minutes(q[0]))
            hot = r.table.nodes[0]
            assert hot.node == hot0.node and len(hot.used_series) == 30 and len(hot.times) == 30
            assert hot.times[-1] == hot0.times[-1] + 60 * minute  # the window moved with the clock
            assert list(hot.times) == sorted(set(hot.times))  # no minute twice after the merge
            assert hot.used == hot.allocated == 1024 and hot.failed > 0
        assert spans == [4.0] * 16


def test_a_refresh_after_failed_ones_reads_the_whole_gap():
    """Ten minutes of 500s from Azure Monitor, then an answer: the next read spans every
    minute since the last good one (plus the 3 it may revise), so the chart has no hole and
    the failed SNAT connections of those minutes count. A gap as long as the window reads
    the whole window."""
    with _exhaustion() as (arm, svc, now, first):
        hot0 = first.table.nodes[0]
        arm.faults.add(r"/metrics$", status=500)
        for minute in range(1, 11):
            failed = arm.requests.count(status=500)
            now[0] = T0 + 60 * minute
            r = wait(svc, lambda r, f=failed: arm.requests.count(status=500) > f and r.state is AzureState.ERROR)
            assert r.updated == T0  # nothing read since
        arm.faults.clear()
        before = len(arm.requests)
        now[0] = T0 + 60 * 11
        r = wait(svc, lambda r: r.state is AzureState.LIVE and r.updated == T0 + 60 * 11)
        q = [x.query for x in arm.requests.records()[before:] if x.resource == "metrics" and x.status == 200]
        assert [_span_minutes(x) for x in q] == [14.0, 14.0]  # 11 minutes since the last good read + 3
        hot = r.table.nodes[0]
        assert hot.node == hot0.node and len(hot.times) == 30
        assert all(b - a == 60 for a, b in zip(hot.times, hot.times[1:], strict=False))  # no hole
        assert hot.times[-1] == hot0.times[-1] + 60 * 11
        assert hot.failed >= hot0.failed  # the gap's minutes are counted, not skipped
        # a gap as long as the window: the whole window again
        arm.faults.add(r"/metrics$", status=500)
        failed = arm.requests.count(status=500)
        now[0] = T0 + 60 * 12
        wait(svc, lambda r: arm.requests.count(status=500) > failed and r.state is AzureState.ERROR)
        arm.faults.clear()
        before = len(arm.requests)
        now[0] = T0 + 60 * 41
        r = wait(svc, lambda r: r.state is AzureState.LIVE and r.updated == T0 + 60 * 41)
        q = [x.query for x in arm.requests.records()[before:] if x.resource == "metrics" and x.status == 200]
        assert [_span_minutes(x) for x in q] == [30.0, 30.0]
        assert len(r.table.nodes[0].times) == 30


def test_a_costly_refresh_spaces_the_next_ones(monkeypatch):
    """A refresh's own CPU keeps its share of a core under REFRESH_SHARE: when it costs more
    than that share of refresh_seconds, the next one comes later (at most PACED_MAX), and
    the report says how far apart they are. With the real share, a small cluster's refresh
    stays at refresh_seconds (test_steady_state_calls_per_minute)."""
    import probes.azure.service as service_mod
    from tui.snat_pane import header

    monkeypatch.setattr(service_mod, "REFRESH_SHARE", 1e-9)  # any refresh costs more than that
    with _exhaustion() as (arm, svc, now, first):
        assert first.paced == 0.0  # the whole first read does not pace: its cost is not a refresh's
        now[0] = T0 + 60
        r = wait(svc, lambda r: r.updated == T0 + 60 and r.paced == service_mod.PACED_MAX)
        assert "every ~5 min" in header(r, lambda: T0 + 61, width=200).plain
        metrics = arm.requests.count(resource="metrics")
        for minute in (2, 3, 4, 5):
            now[0] = T0 + 60 * minute + 30
            time.sleep(0.15)
            assert arm.requests.count(resource="metrics") == metrics, minute  # not before 5 min
        now[0] = T0 + 60 + service_mod.PACED_MAX
        wait(svc, lambda r: r.updated == T0 + 60 + service_mod.PACED_MAX)
        assert arm.requests.count(resource="metrics") == metrics + 2
