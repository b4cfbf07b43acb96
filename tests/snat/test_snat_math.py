"""Tier and join arithmetic (probes.azure.snat): units and properties, no server."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.azure.snat import (
    PORTS_PER_IP,
    MetricsError,
    allocation,
    default_ports,
    join,
    merge_series,
    next_tier,
    node_findings,
    parse_metrics,
    parse_surge,
)


def payload(
    points: dict[str, list[tuple[float, float]]],
    failed: dict[str, list[float]] | None = None,
    alloc: int = 1024,
    dim_case: str = "backendipaddress",
) -> bytes:
    def ts(i: int) -> str:
        return f"2026-11-23T10:{i:02d}:00Z"

    def md(ip: str, state: str | None = None) -> list[dict]:
        out = [{"name": {"value": dim_case}, "value": ip}]
        if state:
            out.append({"name": {"value": "ConnectionState"}, "value": state})
        return out

    a = [
        {
            "metadatavalues": md(ip),
            "data": [{"timeStamp": ts(i), "average": alloc, "maximum": alloc} for i in range(len(p))],
        }
        for ip, p in points.items()
    ]
    u = [
        {
            "metadatavalues": md(ip),
            "data": [{"timeStamp": ts(i), "average": av, "maximum": mx} for i, (av, mx) in enumerate(p)],
        }
        for ip, p in points.items()
    ]
    c = [
        {"metadatavalues": md(ip, "Failed"), "data": [{"timeStamp": ts(i), "total": v} for i, v in enumerate(f)]}
        for ip, f in (failed or {}).items()
    ]
    return orjson.dumps(
        {
            "value": [
                {"name": {"value": "AllocatedSnatPorts"}, "timeseries": a},
                {"name": {"value": "UsedSnatPorts"}, "timeseries": u},
                {"name": {"value": "SnatConnectionCount"}, "timeseries": c},
            ]
        }
    )


def test_tier_table_boundaries():
    assert [default_ports(n) for n in (1, 50, 51, 100, 101, 200, 201, 400, 401, 800, 801, 1000, 1001)] == [
        1024,
        1024,
        512,
        512,
        256,
        256,
        128,
        128,
        64,
        64,
        32,
        32,
        0,
    ]
    assert next_tier(50) == (50, 512) and next_tier(51) == (100, 256) and next_tier(1001) is None


def test_surge_parsing():
    assert parse_surge("1", 47) == 1 and parse_surge("33%", 10) == 4 and parse_surge(None, 20) == 2
    assert parse_surge("10%", 3) == 1 and parse_surge("x", 5) == 1 and parse_surge("5", 0) == 0


def test_f11_fifty_nodes_surge_drops_the_tier():
    a = allocation(50, surge=1)
    assert (a.expected, a.during_surge, a.headroom_nodes) == (1024, 512, 0)
    assert a.findings[0].severity == "warning" and "1024 to 512" in a.findings[0].text


def test_fixed_ports_must_fit_outbound_ips_with_surge():
    ok = allocation(60, surge=2, outbound_ips=1, fixed_ports=1024)  # 62 × 1024 = 63,488
    assert ok.findings == () and ok.expected == 1024 and ok.headroom_nodes is None
    tight = allocation(62, surge=2, outbound_ips=1, fixed_ports=1024)  # 64 × 1024 > 64,000
    assert tight.findings[0].severity == "warning" and "cannot add nodes" in tight.findings[0].text
    over = allocation(70, surge=0, outbound_ips=1, fixed_ports=1024)
    assert over.findings[0].severity == "critical" and "beyond 62" in over.findings[0].text
    assert allocation(70, fixed_ports=1024, outbound_ips=2).findings == ()


def test_join_maps_backend_ip_to_node_and_sorts_by_pressure():
    body = payload(
        {
            "10.0.0.4": [(100, 120)] * 3,
            "10.0.0.5": [(900, 1000), (1000, 1024), (1024, 1024)],
            "10.0.0.99": [(10, 10)] * 3,
        },
        failed={"10.0.0.5": [0, 3, 7]},
        dim_case="BackendIPAddress",
    )
    t = join(parse_metrics(body), [("n4", "10.0.0.4", "p"), ("n5", "10.0.0.5", "p"), ("n6", "10.0.0.6", "p")])
    assert [n.node for n in t.nodes] == ["n5", "n4", ""]
    hot = t.nodes[0]
    assert (hot.allocated, hot.used, hot.failed, hot.failed_last, hot.state) == (1024, 1024, 10, 7, "critical")
    assert t.nodes[1].pct == 120 / 1024 * 100 and t.nodes[1].state == "ok"
    assert t.unmatched == ("10.0.0.99",) and t.silent == ("n6",)
    f = node_findings(t, allocation(3))
    assert f[0].severity == "critical" and "SNAT exhausted on n5: 1024/1024" in f[0].text and "10 failed" in f[0].text


def test_malformed_payloads_raise_metrics_error():
    for bad in (
        b'{"value": [{"name": {"value": "UsedSnatPorts"}, "timeseries": [{"data": [{"timeSt',
        b'{"nope": 1}',
        b'{"value": [{"timeseries": [{"data": [{"average": 1}]}]}]}',
    ):
        try:
            parse_metrics(bad)
        except MetricsError:
            continue
        raise AssertionError(f"accepted {bad!r}")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 1000), st.integers(0, 50))
def test_surge_never_raises_the_allocation(nodes, surge):
    a = allocation(nodes, surge)
    assert 0 < a.during_surge <= a.expected <= 1024 or nodes + surge > 1000
    assert a.expected * nodes <= PORTS_PER_IP  # the default table always fits one IP


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.integers(1, 250), st.lists(st.integers(0, 1024), min_size=1, max_size=30), max_size=40))
def test_join_is_total_and_ordered(used):
    points = {f"10.1.0.{k}": [(float(v), float(v)) for v in vs] for k, vs in used.items()}
    nodes = [(f"node{k}", f"10.1.0.{k}", "p") for k in range(1, 200, 3)]
    t = join(parse_metrics(payload(points)), nodes)
    assert {n.ip for n in t.nodes} == set(points)
    keys = [n.pressure for n in t.nodes]
    assert keys == sorted(keys)
    for n in t.nodes:
        assert n.node == (f"node{n.ip.rsplit('.', 1)[1]}" if any(ip == n.ip for _, ip, _ in nodes) else "")
        assert n.used == points[n.ip][-1][1]


def _answer(series: dict[str, list[tuple[int, float | None]]]) -> bytes:
    """A Metrics - List body: one UsedSnatPorts series per backend IP, points (minute, Maximum)."""

    def point(m: int, v: float | None) -> dict[str, object]:
        p: dict[str, object] = {"timeStamp": f"2026-12-01T10:{m:02d}:00Z"}
        if v is not None:
            p["maximum"] = v
        return p

    ts = [
        {
            "metadatavalues": [{"name": {"value": "BackendIPAddress"}, "value": ip}],
            "data": [point(m, v) for m, v in pts],
        }
        for ip, pts in series.items()
    ]
    return orjson.dumps({"value": [{"name": {"value": "UsedSnatPorts"}, "timeseries": ts}]})


def test_merge_series_replaces_revised_minutes_and_ages_out():
    old = parse_metrics(_answer({"10.0.0.4": [(m, 10.0 * m) for m in range(0, 6)], "10.0.0.5": [(0, 1.0), (1, 2.0)]}))
    new = parse_metrics(_answer({"10.0.0.4": [(4, 99.0), (5, 98.0), (6, None)], "10.0.0.6": [(6, 7.0)]}))
    t_min1 = old[0].times[1]
    merged = {s.dims["backendipaddress"]: s for s in merge_series(old, new, since=t_min1)}
    a = merged["10.0.0.4"]
    assert [int((t - a.times[0]) / 60) for t in a.times] == [0, 1, 2, 3, 4, 5]  # minutes 1..6, none twice
    assert list(a.maximum)[:3] == [10.0, 20.0, 30.0] and list(a.maximum)[3:5] == [99.0, 98.0]
    assert a.maximum[5] != a.maximum[5] and a.last("maximum") == 98.0  # the empty newest minute is NaN
    assert list(merged["10.0.0.5"].maximum) == [2.0]  # no new points: kept, minute 0 aged out
    assert list(merged["10.0.0.6"].maximum) == [7.0]  # a new backend comes in as it is
    assert len(old[0].maximum) == 6  # the kept window itself is not changed


def test_merge_series_shares_one_times_column_and_keeps_each_series_values():
    """Backends answered with the same minutes share one merged times column (one array for
    thousands of series, not one each); their values stay their own, and a backend whose
    minutes differ gets its own column."""
    old = parse_metrics(_answer({f"10.0.0.{i}": [(m, float(i * 100 + m)) for m in range(0, 6)] for i in range(4, 8)}))
    new = parse_metrics(
        _answer(
            {
                **{f"10.0.0.{i}": [(m, float(i * 1000 + m)) for m in range(4, 7)] for i in range(4, 7)},
                "10.0.0.7": [(5, 1.0), (6, 2.0)],  # one minute fewer: its own times
            }
        )
    )
    merged = {s.dims["backendipaddress"]: s for s in merge_series(old, new, since=old[0].times[0])}
    a, b, c, d = (merged[f"10.0.0.{i}"] for i in range(4, 8))
    assert a.times is b.times is c.times and d.times is not a.times
    assert len(a.times) == 7 and len(d.times) == 7 and list(d.times) == list(a.times)
    assert list(a.maximum) == [400.0, 401.0, 402.0, 403.0, 4004.0, 4005.0, 4006.0]
    assert list(b.maximum) == [500.0, 501.0, 502.0, 503.0, 5004.0, 5005.0, 5006.0]
    assert list(d.maximum) == [700.0, 701.0, 702.0, 703.0, 704.0, 1.0, 2.0]
    again = merge_series(list(merged.values()), new, since=old[0].times[1])  # a merge of merged series
    assert len({id(s.times) for s in again if s.dims["backendipaddress"] != "10.0.0.7"}) == 1


def test_snat_rows_of_one_table_match_with_the_times_memo():
    """The recorder writes a table's rows with one times list per shared column: each row
    is what it is without the memo."""
    from probes.record.codec import snat_row

    pts = {f"10.1.0.{k}": [(float(k), float(k + m)) for m in range(5)] for k in range(1, 40)}
    t = join(parse_metrics(payload(pts)), [(f"node{k}", f"10.1.0.{k}", "p") for k in range(1, 40)])
    memo: dict[int, list[int]] = {}
    rows = [snat_row(n, memo) for n in t.nodes]
    assert rows == [snat_row(n) for n in t.nodes]
    assert len({id(r[9]) for r in rows}) == len({id(n.times) for n in t.nodes}) < len(rows)


_VALUE = st.one_of(st.none(), st.floats(0, 5000, allow_nan=False), st.integers(0, 5000))


@st.composite
def _answers(draw: st.DrawFn) -> bytes:
    """A Metrics - List body of several metrics whose series have any number of points,
    each point carrying any of the aggregations or none (a minute still aggregating)."""
    metrics = []
    for name, aggs in (("UsedSnatPorts", ("average", "maximum")), ("SnatConnectionCount", ("total",))):
        series = []
        for i in range(draw(st.integers(0, 9))):
            n = draw(st.integers(0, 6))
            data = []
            for m in range(n):
                p: dict[str, object] = {"timeStamp": f"2026-12-01T10:{m:02d}:00Z"}
                for a in aggs:
                    v = draw(_VALUE)
                    if v is not None:
                        p[a] = v
                data.append(p)
            md = [{"name": {"value": "BackendIPAddress"}, "value": f"10.0.0.{i}"}]
            if name == "SnatConnectionCount":
                md.append({"name": {"value": "ConnectionState"}, "value": draw(st.sampled_from(["Failed", "ok"]))})
            series.append({"metadatavalues": md, "data": data})
        metrics.append({"name": {"value": name}, "timeseries": series})
    return orjson.dumps({"value": metrics})


def _plain(col) -> list[object]:  # type: ignore[no-untyped-def]
    return ["nan" if v != v else v for v in col]


@settings(max_examples=120, deadline=None)
@given(_answers(), st.integers(1, 4))
def test_the_chunked_parse_and_the_join_read_as_the_points_say(body, chunk):
    """The raw answer, its arrays decoded a chunk at a time (a chunk as small as 1 series,
    so that chunks end mid-metric), gives each series the columns the decoded points give;
    and the join's failed count, latest failed minute and chart read what a walk over the
    points reads (the join finds them from sums and trailing gaps, not point by point)."""
    from unittest import mock

    import probes.azure.snat as snat

    with mock.patch.object(snat, "_CHUNK", chunk):
        fast = parse_metrics(body)
    slow = parse_metrics(orjson.loads(body))  # a decoded document: the points themselves
    assert [(s.metric, s.dims) for s in fast] == [(s.metric, s.dims) for s in slow]
    for f, s in zip(fast, slow, strict=True):
        assert _plain(f.times) == _plain(s.times)
        for agg in ("average", "maximum", "total"):
            assert _plain(f._col(agg)) == _plain(s._col(agg)), agg
    table = join(fast, [(f"n{i}", f"10.0.0.{i}", "p") for i in range(9)])
    doc = orjson.loads(body)
    for row in table.nodes:
        failed = [
            [p.get("total") for p in ts["data"]]
            for m in doc["value"]
            if m["name"]["value"] == "SnatConnectionCount"
            for ts in m["timeseries"]
            if ts["metadatavalues"][0]["value"] == row.ip and ts["metadatavalues"][1]["value"] == "Failed"
        ]
        assert row.failed == sum(v for vs in failed for v in vs if v is not None)
        if len(failed) == 1:  # (two failed series of one IP add their latest minutes)
            present = [v for v in failed[0] if v is not None]
            assert row.failed_last == (present[-1] if present else 0.0)
        used = [
            ts["data"]
            for m in doc["value"]
            if m["name"]["value"] == "UsedSnatPorts"
            for ts in m["timeseries"]
            if ts["metadatavalues"][0]["value"] == row.ip
        ]
        if used:
            chart = [p.get("maximum", p.get("average")) for p in used[-1]]
            assert _plain(row.used_series) == _plain([float("nan") if v is None else v for v in chart])
